/**
 * `torchc inspect --partition --html out.html`: the partition as one self-contained page (inline CSS, script and
 * SVG; nothing loaded from anywhere). The graph's nodes in segment order, coloured by engine or fallback, the
 * layers and kernels of each engine segment, and the reason for every fallback node. Every string from the model
 * or a converter is escaped.
 */
import type { Graph, Node } from "../ir/graph.js";
import { formatType } from "../ir/printer.js";
import { nodeReads } from "../ir/reads.js";
import { ENGINE_COLOURS, FALLBACK_COLOUR, SCRIPT, STYLE } from "./html-assets.js";
import type { PartitionReport } from "./report.js";
import type { Segment } from "./segment.js";

/** What the caller knows about an engine segment beyond the partition: its layers and its kernel schedule. */
export interface SegmentDetails {
  /** One line per layer the converters made. */
  readonly layers?: readonly string[];
  /** One line per kernel step of the engine's schedule. */
  readonly kernels?: readonly string[];
  /** Why layers or kernels are absent, or what they assume. */
  readonly note?: string;
}

export interface HtmlReportInput {
  /** The model's path or name, the page's title. */
  readonly title: string;
  /** The graph the segments were cut from (`Partition.graph`). */
  readonly graph: Graph;
  readonly segments: readonly Segment[];
  readonly report: PartitionReport;
  /** By segment index. */
  readonly details?: ReadonlyMap<number, SegmentDetails>;
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text for HTML content and attribute values alike. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const shortOp = (op: string) => op.replace(/^aten\./, "").replace(/\.default$/, "");
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function colourOf(segment: Segment, engineOrdinal: number): string {
  return segment.kind === "fallback" ? FALLBACK_COLOUR : ENGINE_COLOURS[engineOrdinal % 2];
}

interface Row {
  readonly node: Node;
  readonly id: string;
  readonly segment: Segment;
  readonly colour: string;
  readonly y: number;
}

const ROW = 18;
const LANE = 110;
const BOX = 300;

/** Rows of the graph picture: one band header per segment, then its nodes, in segment order. */
function layoutRows(segments: readonly Segment[]): {
  rows: Row[];
  bands: { s: Segment; y: number; colour: string }[];
  height: number;
} {
  const rows: Row[] = [];
  const bands: { s: Segment; y: number; colour: string }[] = [];
  let y = 8;
  let engines = 0;
  let k = 0;
  for (const s of segments) {
    const colour = colourOf(s, engines);
    if (s.kind === "engine") engines++;
    bands.push({ s, y, colour });
    y += ROW + 2;
    for (const node of s.nodes) {
      rows.push({ node, id: `n${k++}`, segment: s, colour, y });
      y += ROW;
    }
    y += 8;
  }
  return { rows, bands, height: y };
}

/** Data edges between nodes as arcs in the lane left of the boxes; edges that cross segments are dashed. */
function edgePaths(rows: readonly Row[]): string[] {
  const producer = new Map<string, Row>();
  for (const r of rows) for (const o of r.node.outputs) producer.set(o, r);
  const paths: string[] = [];
  for (const r of rows) {
    for (const v of nodeReads(r.node)) {
      const p = producer.get(v);
      if (!p || p === r) continue;
      const y0 = p.y + ROW / 2;
      const y1 = r.y + ROW / 2;
      const bulge = Math.min(LANE - 6, 6 + 3 * Math.sqrt(Math.abs(y1 - y0)));
      const cross = p.segment !== r.segment;
      paths.push(
        `<path d="M${LANE} ${y0} C${LANE - bulge} ${y0} ${LANE - bulge} ${y1} ${LANE} ${y1}" fill="none" ` +
          `stroke="${cross ? "#000" : p.colour}" stroke-opacity="${cross ? 0.7 : 0.45}"${cross ? ' stroke-dasharray="3 2"' : ""}/>`,
      );
    }
  }
  return paths;
}

function graphSvg(segments: readonly Segment[]): { svg: string; rows: Row[] } {
  const { rows, bands, height } = layoutRows(segments);
  const width = LANE + BOX + 8;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="graph">`,
  ];
  for (const b of bands) {
    const label = `segment ${b.s.index} · ${b.s.kind} · ${plural(b.s.nodes.length, "node")}`;
    parts.push(
      `<g class="band" data-segment="${b.s.index}"><rect x="${LANE}" y="${b.y}" width="${BOX}" height="${ROW}" rx="3" fill="${b.colour}"/>` +
        `<text x="${LANE + 6}" y="${b.y + 13}" fill="#fff">${escapeHtml(label)}</text></g>`,
    );
  }
  parts.push(...edgePaths(rows));
  for (const r of rows) {
    const fallback = r.segment.kind === "fallback";
    const text = clip(`${shortOp(r.node.op)}  ${r.node.name}`, 44);
    parts.push(
      `<a href="#${r.id}"><g class="node ${r.segment.kind}" data-node="${escapeHtml(r.node.name)}">` +
        `<title>${escapeHtml(`${r.node.name} = ${r.node.op}`)}</title>` +
        `<rect x="${LANE}" y="${r.y + 1}" width="${BOX}" height="${ROW - 2}" rx="3" fill="${fallback ? "#ffe0c7" : "#eef5ee"}" stroke="${r.colour}"/>` +
        `<text x="${LANE + 6}" y="${r.y + 13}">${escapeHtml(text)}</text></g></a>`,
    );
  }
  parts.push("</svg>");
  return { svg: parts.join("\n"), rows };
}

function typesOf(graph: Graph, names: readonly string[]): string {
  return names.map((n) => (graph.values[n] ? formatType(graph.values[n]) : "?")).join(", ");
}

function where(node: Node): string {
  return [node.meta.modulePath ? `module ${node.meta.modulePath}` : "", node.meta.sourceLocation ?? ""]
    .filter(Boolean)
    .join(", ");
}

function detailsBlock(title: string, lines: readonly string[] | undefined): string {
  if (!lines || lines.length === 0) return "";
  return `<details><summary>${escapeHtml(title)}</summary><pre class="mono">${escapeHtml(lines.join("\n"))}</pre></details>`;
}

function segmentSection(
  input: HtmlReportInput,
  s: Segment,
  rows: readonly Row[],
  reasons: ReadonlyMap<string, string>,
  alt: boolean,
): string {
  const fallback = s.kind === "fallback";
  const d = input.details?.get(s.index);
  const body = rows
    .filter((r) => r.segment === s)
    .map((r) => {
      const reason = reasons.get(r.node.name);
      const at = where(r.node);
      return (
        `<tr class="node ${s.kind}" id="${r.id}" data-node="${escapeHtml(r.node.name)}" data-op="${escapeHtml(r.node.op)}">` +
        `<td class="mono">${escapeHtml(r.node.name)}</td><td class="mono">${escapeHtml(shortOp(r.node.op))}</td>` +
        `<td class="mono">${escapeHtml(typesOf(input.graph, r.node.outputs))}</td>` +
        (fallback ? `<td class="reason">${escapeHtml(reason ?? "unknown")}</td>` : "") +
        `<td>${escapeHtml(at)}</td></tr>`
      );
    })
    .join("\n");
  const head = `<tr><th>node</th><th>op</th><th>output</th>${fallback ? "<th>why it falls back</th>" : ""}<th>where</th></tr>`;
  return [
    `<section class="segment ${s.kind}${alt ? " alt" : ""}" id="segment-${s.index}" data-segment="${s.index}" data-kind="${s.kind}">`,
    `<h3>segment ${s.index} · ${s.kind} · ${plural(s.nodes.length, "node")}</h3>`,
    `<div class="io mono">inputs: ${escapeHtml(s.inputs.join(", ") || "—")} &nbsp; outputs: ${escapeHtml(s.outputs.join(", ") || "—")}</div>`,
    `<table>${head}\n${body}</table>`,
    detailsBlock(`${plural(d?.layers?.length ?? 0, "layer")} (the converters' output)`, d?.layers),
    detailsBlock(`${plural(d?.kernels?.length ?? 0, "kernel step")} (the engine's schedule)`, d?.kernels),
    d?.note ? `<p class="note">${escapeHtml(d.note)}</p>` : "",
    "</section>",
  ].join("\n");
}

function fallbackTable(report: PartitionReport): string {
  if (report.fallbackNodes.length === 0)
    return `<p id="no-fallback">No fallback nodes: the whole graph runs in engines.</p>`;
  const rows = report.fallbackNodes.map(
    (f) =>
      `<tr class="fallback-node" data-node="${escapeHtml(f.node)}"><td class="mono">${escapeHtml(f.node)}</td>` +
      `<td class="mono">${escapeHtml(f.op)}</td><td><a href="#segment-${f.segment}">${f.segment}</a></td>` +
      `<td class="reason">${escapeHtml(f.reason)}</td>` +
      `<td>${escapeHtml([f.modulePath ? `module ${f.modulePath}` : "", f.sourceLocation ?? ""].filter(Boolean).join(", "))}</td></tr>`,
  );
  return `<table id="fallback-nodes"><tr><th>node</th><th>op</th><th>segment</th><th>reason</th><th>where</th></tr>\n${rows.join("\n")}</table>`;
}

/** The page. Pure: the same input gives the same bytes. */
export function renderPartitionHtml(input: HtmlReportInput): string {
  const t = input.report.totals;
  const { svg, rows } = graphSvg(input.segments);
  const reasons = new Map(input.report.fallbackNodes.map((f) => [f.node, f.reason]));
  let engines = 0;
  const sections = input.segments.map((s) => {
    const alt = s.kind === "engine" && engines++ % 2 === 1;
    return segmentSection(input, s, rows, reasons, alt);
  });
  const summary =
    `${plural(t.nodes, "node")}: ${plural(t.engineNodes, "node")} in ${plural(t.engineSegments, "engine segment")}, ` +
    `${plural(t.fallbackNodes, "node")} in ${plural(t.fallbackSegments, "fallback segment")}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="torchc inspect --partition --html">
<title>${escapeHtml(`partition of ${input.title}`)}</title>
<style>${STYLE}</style>
</head>
<body data-nodes="${t.nodes}" data-fallback-nodes="${t.fallbackNodes}">
<h1>partition of ${escapeHtml(input.title)}</h1>
<p class="totals" id="totals">${escapeHtml(summary)}</p>
<p class="legend"><span><i class="swatch" style="background:${ENGINE_COLOURS[0]}"></i><i class="swatch" style="background:${ENGINE_COLOURS[1]}"></i>engine segments (alternating)</span><span><i class="swatch" style="background:${FALLBACK_COLOUR}"></i>fallback segments</span><span>dashed arcs: values that cross segments</span></p>
<p><input id="filter" type="search" placeholder="filter nodes by name or op" aria-label="filter nodes"> <span id="filter-count"></span></p>
<div class="layout">
<div class="graph">${svg}</div>
<div>
<h2>Segments</h2>
${sections.join("\n")}
<h2>Fallback nodes</h2>
${fallbackTable(input.report)}
</div>
</div>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
