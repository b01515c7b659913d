/** The partition HTML report's inline style and script: the page loads nothing from anywhere. */

export const ENGINE_COLOURS = ["#2e7d32", "#1565c0"] as const;
export const FALLBACK_COLOUR = "#e65100";

export const STYLE = `
:root { --engine: ${ENGINE_COLOURS[0]}; --engine2: ${ENGINE_COLOURS[1]}; --fallback: ${FALLBACK_COLOUR}; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 16px 24px 48px; max-width: 1400px; color: #1b1b1b; }
h1 { font-size: 20px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.totals { color: #444; margin: 0 0 8px; }
.legend span { display: inline-block; margin-right: 16px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: 4px; }
.layout { display: grid; grid-template-columns: minmax(320px, 460px) 1fr; gap: 24px; align-items: start; }
.graph { position: sticky; top: 8px; max-height: calc(100vh - 16px); overflow: auto; border: 1px solid #ddd; border-radius: 6px; }
.segment { border: 1px solid #ddd; border-left: 6px solid var(--engine); border-radius: 6px; padding: 8px 12px; margin-bottom: 12px; }
.segment.engine.alt { border-left-color: var(--engine2); }
.segment.fallback { border-left-color: var(--fallback); background: #fff8f2; }
.segment .io { color: #555; margin: 2px 0 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 2px 8px 2px 0; vertical-align: top; }
th { font-weight: 600; color: #555; border-bottom: 1px solid #eee; }
tr.node:target, tr.node.hit { background: #fff59d; }
.reason { color: #b71c1c; }
details { margin-top: 6px; }
details pre { margin: 4px 0 0; padding: 6px 8px; background: #f6f8fa; border-radius: 4px; overflow-x: auto; max-height: 420px; }
.note { color: #666; font-style: italic; }
#filter { font: inherit; padding: 3px 6px; width: 260px; }
svg text { font: 11px ui-monospace, SFMono-Regular, Menlo, monospace; }
svg a:hover rect { stroke: #000; stroke-width: 1.5; }
`;

/** Filtering by node name or op, and a highlight of the node that a graph box links to. */
export const SCRIPT = `
(() => {
  const box = document.getElementById("filter");
  const rows = [...document.querySelectorAll("tr.node")];
  const count = document.getElementById("filter-count");
  box.addEventListener("input", () => {
    const q = box.value.trim().toLowerCase();
    let shown = 0;
    for (const r of rows) {
      const hit = q === "" || r.dataset.node.toLowerCase().includes(q) || r.dataset.op.toLowerCase().includes(q);
      r.hidden = !hit;
      if (hit) shown++;
    }
    count.textContent = q === "" ? "" : shown + " of " + rows.length + " nodes";
  });
  document.documentElement.dataset.ready = String(rows.length);
})();
`;
