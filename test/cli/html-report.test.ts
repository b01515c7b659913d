// `torchc inspect --partition --html`: the page's structure, parsed without a browser (runs everywhere), and the
// page rendered by headless Chromium (Debian's chromium package; skipped, saying so, where it is not installed).
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultRegistry } from "../../src/converters/index.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { renderPartitionHtml } from "../../src/partition/html-report.js";
import { partitionGraph } from "../../src/partition/index.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { MODELS, tempDir, torchc } from "../helpers.js";
import { all, type El, hasClass, parseHtml } from "./html-dom.js";
import { readPng } from "./png.js";

const MODEL = join(MODELS, "tiny_efficientnet.pt2");
// SiLU forced to the fallback: engine and fallback segments alternate, with both kinds of reason.
const FLAGS = ["--torch-executed-ops", "aten.silu.default"];

async function partitionOf(file: string) {
  const model = await loadModel(file);
  const { graph } = runPipeline(model.graph, defaultPipeline({ enabledPrecisions: ["float32"] }));
  return partitionGraph(graph, { registry: defaultRegistry(), torchExecutedOps: ["aten.silu.default"] });
}

const nodeRows = (doc: El) => all(doc, (e) => e.tag === "tr" && hasClass(e, "node"));
const svgNodes = (doc: El) => all(doc, (e) => e.tag === "g" && hasClass(e, "node"));

describe("the partition page's structure (no browser)", () => {
  it("holds every node once in the graph and once in its segment, and every fallback reason", async () => {
    const p = await partitionOf(MODEL);
    const doc = parseHtml(
      renderPartitionHtml({ title: MODEL, graph: p.graph, segments: p.segments, report: p.report }),
    );
    const names = p.segments.flatMap((s) => s.nodes.map((n) => n.name));
    expect(names).toHaveLength(p.graph.nodes.length);
    expect(nodeRows(doc).map((r) => r.attrs["data-node"])).toEqual(names);
    expect(svgNodes(doc).map((g) => g.attrs["data-node"])).toEqual(names);
    const t = p.report.totals;
    expect(t.fallbackNodes).toBeGreaterThan(0);
    expect(t.engineSegments).toBeGreaterThan(1);
    const sections = all(doc, (e) => e.tag === "section" && hasClass(e, "segment"));
    expect(sections.map((s) => s.attrs["data-kind"])).toEqual(p.segments.map((s) => s.kind));
    const fallback = all(doc, (e) => e.tag === "tr" && hasClass(e, "fallback-node"));
    expect(fallback.map((r) => r.children[3].text)).toEqual(p.report.fallbackNodes.map((f) => f.reason));
    expect(fallback.map((r) => r.text).join("\n")).toMatch(/in torchExecutedOps/);
    expect(fallback.map((r) => r.text).join("\n")).toMatch(/fewer than minBlockSize/);
    expect(all(doc, (e) => e.attrs.id === "totals")[0].text).toBe(
      `${t.nodes} nodes: ${t.engineNodes} nodes in ${t.engineSegments} engine segments, ${t.fallbackNodes} nodes in ${t.fallbackSegments} fallback segments`,
    );
  });

  it("escapes what comes from the model and the converters: a hostile reason stays text", async () => {
    const p = await partitionOf(MODEL);
    const hostile = `</td></tr><script>document.title="owned"</script><img src=x onerror=alert(1)> & 'q' "r"`;
    const report = {
      ...p.report,
      fallbackNodes: p.report.fallbackNodes.map((f) => ({ ...f, reason: hostile })),
    };
    const title = `<b>model</b> & "co"`;
    const html = renderPartitionHtml({ title, graph: p.graph, segments: p.segments, report });
    const doc = parseHtml(html);
    expect(all(doc, (e) => e.tag === "script")).toHaveLength(1);
    expect(all(doc, (e) => e.tag === "img")).toHaveLength(0);
    expect(all(doc, (e) => e.tag === "b")).toHaveLength(0);
    const reasons = all(doc, (e) => e.tag === "td" && hasClass(e, "reason")).map((e) => e.text);
    // once in the segment's table and once in the fallback table
    expect(reasons).toHaveLength(2 * p.report.fallbackNodes.length);
    expect(new Set(reasons)).toEqual(new Set([hostile]));
    expect(all(doc, (e) => e.tag === "h1")[0].text).toBe(`partition of ${title}`);
  });

  it("is self-contained: no external scripts, styles, images or fonts", async () => {
    const p = await partitionOf(MODEL);
    const html = renderPartitionHtml({ title: "m", graph: p.graph, segments: p.segments, report: p.report });
    const doc = parseHtml(html);
    expect(all(doc, (e) => e.tag === "link" || e.tag === "img" || e.tag === "iframe")).toEqual([]);
    const refs = all(doc, (e) => "src" in e.attrs || "href" in e.attrs).map(
      (e) => e.attrs.src ?? e.attrs.href,
    );
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) expect(r).toMatch(/^#/);
    expect(html).not.toMatch(/@import|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });
});

describe("torchc inspect --partition --html", () => {
  it("writes the page with each engine's layers and kernel schedule, and prints the text report as before", () => {
    const out = join(tempDir(), "report.html");
    const r = torchc("inspect", MODEL, "--partition", ...FLAGS, "--html", out);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/fallback nodes:/);
    const doc = parseHtml(readFileSync(out, "utf8"));
    const engines = all(doc, (e) => e.tag === "section" && e.attrs["data-kind"] === "engine");
    expect(engines.length).toBeGreaterThan(1);
    for (const s of engines) {
      const summaries = all(s, (e) => e.tag === "summary").map((e) => e.text);
      expect(summaries.some((t) => /^\d+ layers? \(the converters' output\)$/.test(t))).toBe(true);
      expect(summaries.some((t) => /^\d+ kernel steps? \(the engine's schedule\)$/.test(t))).toBe(true);
      const pre = all(s, (e) => e.tag === "pre").map((e) => e.text);
      expect(pre[0]).toMatch(/= convolution\(/);
    }
    const body = all(doc, (e) => e.tag === "body")[0];
    expect(Number(body.attrs["data-nodes"])).toBe(nodeRows(doc).length);
  });

  it("refuses --html without --partition, and a path it cannot write, in one line", () => {
    const a = torchc("inspect", MODEL, "--html", join(tempDir(), "x.html"));
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/^error: --html writes the partition report: use it with --partition\n$/);
    const b = torchc("inspect", MODEL, "--partition", "--html", join(tempDir(), "no", "such", "dir.html"));
    expect(b.code).toBe(1);
    expect(b.err).toMatch(/^error: --html .*dir\.html: cannot write \(ENOENT\)\n$/);
  });
});

/** Debian's chromium (or TORCHC_CHROMIUM), if it is on this machine. */
function findChromium(): string | undefined {
  const names = process.env.TORCHC_CHROMIUM
    ? [process.env.TORCHC_CHROMIUM]
    : ["chromium", "chromium-browser"];
  for (const n of names) {
    const candidates = n.includes("/")
      ? [n]
      : (process.env.PATH ?? "").split(delimiter).map((d) => join(d, n));
    for (const c of candidates) {
      try {
        accessSync(c, constants.X_OK);
        return c;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

const chromium = findChromium();
if (!chromium)
  process.stderr.write(
    "test/cli/html-report: the headless-browser check is skipped: no chromium on PATH " +
      "(apt-get install -y chromium, or set TORCHC_CHROMIUM)\n",
  );

function headless(args: string[], page: string) {
  const profile = tempDir();
  const r = spawnSync(
    chromium!,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      `--user-data-dir=${profile}`,
      "--window-size=1400,1000",
      ...args,
      `file://${page}`,
    ],
    { encoding: "buffer", timeout: 90_000, maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`chromium failed (${r.status}): ${r.stderr?.toString().slice(-2000)}`);
  return r.stdout.toString("utf8");
}

describe.skipIf(!chromium)("the partition page in headless Chromium", () => {
  it("renders: the script ran over every node, and the screenshot shows both segment colours", () => {
    const dir = tempDir();
    const page = join(dir, "report.html");
    const r = torchc("inspect", MODEL, "--partition", ...FLAGS, "--html", page);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    // The DOM after the page's script ran: it marks the document with the node count it found.
    const dom = parseHtml(headless(["--dump-dom"], page));
    const rows = nodeRows(dom);
    expect(rows.length).toBeGreaterThan(20);
    expect(dom.attrs["data-ready"]).toBe(String(rows.length));
    expect(all(dom, (e) => e.tag === "td" && hasClass(e, "reason")).map((e) => e.text)).toContain(
      "in torchExecutedOps",
    );

    const shot = join(dir, "report.png");
    headless([`--screenshot=${shot}`], page);
    const img = readPng(readFileSync(shot));
    expect([img.width, img.height]).toEqual([1400, 1000]);
    let ink = 0;
    let orange = 0;
    let green = 0;
    for (let i = 0; i < img.rgba.length; i += 4) {
      const [red, g, b] = [img.rgba[i], img.rgba[i + 1], img.rgba[i + 2]];
      if (red + g + b < 600) ink++;
      if (red > 200 && g > 60 && g < 110 && b < 40) orange++; // the fallback colour #e65100
      if (red < 70 && g > 105 && g < 145 && b < 70) green++; // the engine colour #2e7d32
    }
    const n = img.width * img.height;
    expect(ink / n).toBeGreaterThan(0.03);
    expect(orange).toBeGreaterThan(500);
    expect(green).toBeGreaterThan(500);
  }, 180_000);
});
