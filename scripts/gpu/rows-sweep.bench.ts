/**
 * The rows kernels' variants (src/backends/cuda/codegen/rows-knobs.ts) on the transformer shapes we benchmark, each
 * against today's default kernel: `bash scripts/gpu.sh bench rows-sweep` (well under 90 s on an H100).
 *
 * Each shape is a pre-norm block's residual add and layer norm as torchc plans it: a, r [B, T, C] fp16 → s = a + r
 * (stored: the next residual reads it) → y = layer_norm(s) — one rows kernel that reads a and r and writes s and y,
 * 4·rows·C·2 bytes (the memory floor below counts exactly those, at 3.35 TB/s). Swin-T's LayerNorms have no fused
 * residual where the add follows a window reverse; the sweep gives every shape the residual, so its bytes are the
 * larger case. Per shape, every variant (a set of TORCHC_ROWS_* knobs) is planned, all compiled in one NVRTC program
 * (ptxas registers and spills from its log), run once on random inputs (outputs pre-filled with NaN), compared with
 * the default kernel's y and s (max |diff| / max |default|; above 2e-3 the run fails), the default with a float64 CPU
 * reference on a few rows (above 1e-2 it fails), then timed with CUDA events: 10 warm-up launches, 60 samples of
 * `inner` back-to-back plain launches, the median per launch. A markdown table closes the run; PyTorch (a + r, then
 * F.layer_norm, fp16) follows when python3 with torch is there.
 *
 * Without a GPU it compiles every variant for sm_90 and prints registers and spills only (NVRTC must be found).
 * Writes rows-sweep.json and rows-sweep.md into $OUT (else $TORCHC_BENCH_OUT, else the current folder).
 * ROWS_SWEEP_SHAPES=vit64,deit128 runs some shapes only.
 */
import { type CudaModule, DeviceBuffer, KernelArgs } from "../../src/backends/cuda/device/index.js";
import type { NormalizationStep } from "../../src/backends/cuda/fuse/steps.js";
import { planCudaEngine } from "../../src/backends/cuda/plan.js";
import { tensorFromNumbers } from "../../src/ir/tensor.js";
import { NetworkBuilder } from "../../src/network/builder.js";
import * as kit from "./sweep-support.js";

interface Shape {
  readonly key: string;
  readonly name: string;
  readonly B: number;
  readonly T: number;
  readonly C: number;
}

const SHAPES: Shape[] = [
  { key: "vit64", name: "ViT-B/16 b64", B: 64, T: 197, C: 768 },
  { key: "deit128", name: "DeiT-tiny b128", B: 128, T: 197, C: 192 },
  { key: "swin1", name: "Swin-T b64 stage 1", B: 64, T: 3136, C: 96 },
  { key: "swin2", name: "Swin-T b64 stage 2", B: 64, T: 784, C: 192 },
  { key: "swin3", name: "Swin-T b64 stage 3", B: 64, T: 196, C: 384 },
  { key: "swin4", name: "Swin-T b64 stage 4", B: 64, T: 49, C: 768 },
  { key: "vit1", name: "ViT-B/16 b1", B: 1, T: 197, C: 768 },
];

const SMS = 132;
type Knobs = Record<string, string>;
const VARIANTS: [label: string, knobs: Knobs][] = [
  ["default", {}],
  ["lanes auto", { LANES: "auto" }],
  ["lanes 8", { LANES: "8" }],
  ["lanes 16", { LANES: "16" }],
  ["onepass", { ONEPASS: "1" }],
  ["preload", { PRELOAD: "1" }],
  ["minblocks 6", { MINBLOCKS: "6" }],
  [`grid ${SMS}x4`, { GRID: String(SMS * 4) }],
  [`grid ${SMS}x8`, { GRID: String(SMS * 8) }],
  ["auto onepass", { LANES: "auto", ONEPASS: "1" }],
  ["auto onepass preload", { LANES: "auto", ONEPASS: "1", PRELOAD: "1" }],
  [`auto onepass grid ${SMS}x8`, { LANES: "auto", ONEPASS: "1", GRID: String(SMS * 8) }],
  ["auto onepass mb6", { LANES: "auto", ONEPASS: "1", MINBLOCKS: "6" }],
];

const FLOOR_BYTES_PER_S = 3.35e12;

interface Row extends kit.VariantRow {
  gbs?: number;
  floor?: number;
}

const sweep = new kit.Sweep<Row>("rows-sweep");
const { HALF } = kit;
const { say, rows } = sweep;

function setKnobs(knobs: Knobs): void {
  for (const k of Object.keys(process.env)) if (k.startsWith("TORCHC_ROWS_") && k !== "TORCHC_ROWS_VECTOR") delete process.env[k];
  for (const [k, v] of Object.entries(knobs)) process.env[`TORCHC_ROWS_${k}`] = v;
}

/** a + r → layer norm (its sum read after, by a stand-in for the next block's residual add). */
function blockNet(s: Shape) {
  const { B, T, C } = s;
  const b = new NetworkBuilder();
  const a = b.addInput("a", { dtype: "float16", shape: [B, T, C] });
  const r = b.addInput("r", { dtype: "float16", shape: [B, T, C] });
  const sum = b.add({ type: "elementwise", op: "add", inputs: [a, r] });
  const ramp = (lo: number, hi: number) => Array.from({ length: C }, (_, i) => lo + ((hi - lo) * ((i * 37) % C)) / C);
  const w = b.constant(tensorFromNumbers("float16", [C], ramp(0.5, 1.5)), "w");
  const bias = b.constant(tensorFromNumbers("float16", [C], ramp(-0.3, 0.3)), "b");
  const y = b.add({ type: "normalization", kind: "layer", beginAxis: 2, epsilon: 1e-6, inputs: [sum, w, bias] });
  const next = b.add({ type: "activation", inputs: [sum], fn: { kind: "tanh" } });
  return b.build([
    { tensor: y, as: "y" },
    { tensor: next, as: "next" },
  ]);
}

interface Built extends kit.SweepKernel {
  readonly knobs: Knobs;
  readonly step: NormalizationStep;
}

function build(s: Shape): Built[] {
  const net = blockNet(s);
  const built: Built[] = [];
  for (const [i, [label, knobs]] of VARIANTS.entries()) {
    setKnobs(knobs);
    const plan = planCudaEngine(net, { precision: "fp16", channelsLast: false });
    const at = plan.steps.findIndex((st) => st.kind === "normalization");
    const step = plan.steps[at] as NormalizationStep;
    const k = plan.kernels[at];
    if (!k) throw new Error(`${s.name}: the norm step has no generated kernel`);
    if (!step.prologue?.length || step.stores?.length !== 1)
      throw new Error(`${s.name}: the residual add is not fused into the norm (${plan.summary.join("; ")})`);
    const name = `rows_${s.key}_${i}`;
    const kernel = { ...k, name, source: k.source.replace(new RegExp(`\\b${k.name}\\(`), `${name}(`) };
    built.push({ label, knobs, kernel, step, symbol: name });
  }
  setKnobs({});
  return built;
}

function describe(v: Built): string {
  const head = /rows: register path, ([^,]+),.*?(\d+) per lane/.exec(v.kernel.source);
  const path = head ? `${head[1]}, ${head[2]} chunks/lane` : "scalar loops";
  return `${path}, grid ${v.kernel.grid[0]}×${v.kernel.block[0]}`;
}

function compileShape(all: Built[]): { module?: CudaModule; variants: Built[] } {
  // identical kernels are emitted once: time each once
  const once = (list: Built[]) =>
    list.filter((v, i) => {
      const first = list.findIndex((u) => u.symbol === v.symbol && u.kernel.grid[0] === v.kernel.grid[0]);
      if (first !== i) say(`  ${v.label}: skipped (the same kernel as ${list[first].label})`);
      return first === i;
    });
  const line = (v: Built) => `  ${v.label.padEnd(28)} ${describe(v).padEnd(52)} ${kit.regsAndSpill(v)}`;
  return kit.compileVariants(sweep, all, line, once);
}

/** Host data and device buffers of one shape: a, r, w, b in; s, y out. */
interface Data {
  readonly host: Record<"a" | "r" | "w" | "b", Uint16Array>;
  readonly dev: Record<"a" | "r" | "w" | "b" | "s" | "y", DeviceBuffer>;
}

function makeData(s: Shape): Data {
  const n = s.B * s.T * s.C;
  const host = {
    a: kit.randomHalves(n, 11 + s.C, 0.5, 3.5), // rows whose mean is far from 0, as a residual stream's
    r: kit.randomHalves(n, 29 + s.T, -1.5, 1.5),
    w: kit.randomHalves(s.C, 5, 0.5, 1.5),
    b: kit.randomHalves(s.C, 7, -0.3, 0.3),
  };
  const dev = {
    a: DeviceBuffer.from(host.a),
    r: DeviceBuffer.from(host.r),
    w: DeviceBuffer.from(host.w),
    b: DeviceBuffer.from(host.b),
    s: DeviceBuffer.alloc(n * 2),
    y: DeviceBuffer.alloc(n * 2),
  };
  return { host, dev };
}

/** Which buffer each of the kernel's parameters is. */
function argsFor(v: Built, d: Data): KernelArgs {
  const st = v.step;
  const add = st.prologue?.find((l) => l.type === "elementwise");
  const final = st.epilogue?.length ? st.epilogue[st.epilogue.length - 1].output : st.layer.output;
  const [, scale, bias] = st.layer.inputs;
  const which = (t: string): DeviceBuffer => {
    if (t === add?.inputs[0]) return d.dev.a;
    if (t === add?.inputs[1]) return d.dev.r;
    if (t === scale) return d.dev.w;
    if (t === bias) return d.dev.b;
    if (t === st.stores?.[0]) return d.dev.s;
    if (t === final) return d.dev.y;
    throw new Error(`unexpected kernel parameter ${t}`);
  };
  const args = new KernelArgs(v.kernel.params.map(() => "ptr" as const));
  v.kernel.params.forEach((p, j) => args.set(j, which(p.tensor)));
  return args;
}

/** The default kernel's y against float64 (from the fp16 sum it stored) on a few rows: max |diff| / max |ref|. */
function referenceCheck(s: Shape, d: Data, sOut: Uint16Array, yOut: Uint16Array, row: Row): void {
  const R = s.B * s.T;
  const { C } = s;
  let err = 0;
  let max = 0;
  for (const i of new Set([0, 1, R >> 1, R - 2, R - 1])) {
    const x = Float64Array.from({ length: C }, (_, j) => HALF[d.host.a[i * C + j]] + HALF[d.host.r[i * C + j]]);
    for (let j = 0; j < C; j++) err = Math.max(err, Math.abs(HALF[sOut[i * C + j]] - x[j]) / 4);
    const mean = x.reduce((p, q) => p + q, 0) / C;
    const variance = x.reduce((p, q) => p + (q - mean) ** 2, 0) / C;
    const rstd = 1 / Math.sqrt(variance + 1e-6);
    for (let j = 0; j < C; j++) {
      const want = (x[j] - mean) * rstd * HALF[d.host.w[j]] + HALF[d.host.b[j]];
      const got = HALF[yOut[i * C + j]];
      err = Math.max(err, Number.isFinite(got) ? Math.abs(got - want) : Number.POSITIVE_INFINITY);
      max = Math.max(max, Math.abs(want));
    }
  }
  row.relErr = err / max;
  say(`  default vs float64 on 5 rows: ${row.relErr.toExponential(2)} of max |ref|`);
  sweep.checkReference(s.name, row.relErr);
}

function runVariant(s: Shape, v: Built, module: CudaModule, d: Data, base: { s?: Uint16Array; y?: Uint16Array; us: number }): void {
  const n = s.B * s.T * s.C;
  const row = rowOf(s, v);
  rows.push(row);
  const kernel = module.kernel(v.symbol);
  row.regs = kernel.registers;
  const args = argsFor(v, d);
  const { stream } = sweep.gpu!;
  try {
    d.dev.s.fill(0xff, { stream });
    d.dev.y.fill(0xff, { stream });
    kit.launchPlain(stream, kernel, v.kernel, args);
    stream.synchronize();
    const sOut = d.dev.s.download(new Uint16Array(n));
    const yOut = d.dev.y.download(new Uint16Array(n));
    if (!base.y || !base.s) {
      base.s = sOut;
      base.y = yOut;
      referenceCheck(s, d, sOut, yOut, row);
    } else {
      row.relErr = Math.max(kit.relativeDiff(base.y, yOut), kit.relativeDiff(base.s, sOut));
      sweep.checkVariant(s.name, v.label, row.relErr);
    }
    const us = kit.timeLaunches(stream, kernel, v.kernel, args, n >= 1 << 22 ? 10 : 50);
    if (v.label === "default") base.us = us;
    const bytes = 4 * n * 2;
    row.us = us;
    row.gbs = bytes / (us * 1e-6) / 1e9;
    row.floor = (bytes / FLOOR_BYTES_PER_S / (us * 1e-6)) * 100;
    row.speedup = base.us / us;
    say(
      `  ${v.label.padEnd(28)} ${us.toFixed(2).padStart(8)} µs  ${row.gbs.toFixed(0).padStart(5)} GB/s  ${row.floor.toFixed(0)}% of floor  ${row.speedup.toFixed(2)}×  err ${row.relErr?.toExponential(2) ?? "-"}`,
    );
  } finally {
    args.free();
  }
}

function runShape(s: Shape): void {
  const n = s.B * s.T * s.C;
  say(`\n== ${s.name}: [${s.B * s.T}, ${s.C}] fp16, a + r → s (stored), layer_norm(s) → y; floor ${((8 * n) / FLOOR_BYTES_PER_S * 1e6).toFixed(2)} µs`);
  const { module, variants } = compileShape(build(s));
  if (!module) {
    for (const v of variants) rows.push(rowOf(s, v));
    return;
  }
  const d = makeData(s);
  const base: { s?: Uint16Array; y?: Uint16Array; us: number } = { us: Number.NaN };
  try {
    for (const v of variants) {
      try {
        runVariant(s, v, module, d, base);
      } catch (e) {
        const error = sweep.failed(s.name, v.label, e);
        const row = rows.find((r) => r.shape === s.name && r.variant === v.label);
        if (row) row.error = error;
      }
    }
  } finally {
    for (const b of Object.values(d.dev)) b.free();
    module.unload();
  }
}

function rowOf(s: Shape, v: Built): Row {
  return kit.variantRow(s.name, v, describe(v));
}

/** PyTorch: a + r, then F.layer_norm (and the norm alone), fp16; lines of a table, or a note. */
function torchReference(shapes: Shape[]): string[] {
  const py = `
out = []
for name, B, T, C in json.loads(sys.argv[1]):
    a = torch.rand(B, T, C, device="cuda", dtype=torch.float16) * 3 + 0.5
    r = torch.rand(B, T, C, device="cuda", dtype=torch.float16) * 3 - 1.5
    w = torch.rand(C, device="cuda", dtype=torch.float16) + 0.5
    b = torch.rand(C, device="cuda", dtype=torch.float16) * 0.6 - 0.3
    inner = 10 if B * T * C >= (1 << 22) else 50
    s = a + r
    out.append({"shape": name, "what": "a + r, F.layer_norm", "us": med(lambda: F.layer_norm(a + r, (C,), w, b, 1e-6), inner)})
    out.append({"shape": name, "what": "F.layer_norm alone", "us": med(lambda: F.layer_norm(s, (C,), w, b, 1e-6), inner)})
print("ROWS_JSON " + json.dumps(out))
`;
  const arg = shapes.map((s) => [s.name, s.B, s.T, s.C]);
  const r = kit.runTorch<{ shape: string; what: string; us: number }[]>(py, arg, "ROWS_JSON", 60_000);
  if ("unavailable" in r) return [`PyTorch reference unavailable (${r.unavailable})`];
  const results = r.results;
  const lines = ["| shape | PyTorch | µs | % of floor (4 tensors) |", "| --- | --- | --- | --- |"];
  for (const x of results) {
    const s = shapes.find((sh) => sh.name === x.shape)!;
    const floorUs = ((8 * s.B * s.T * s.C) / FLOOR_BYTES_PER_S) * 1e6;
    lines.push(`| ${x.shape} | ${x.what} | ${x.us.toFixed(2)} | ${((floorUs / x.us) * 100).toFixed(0)}% |`);
  }
  return lines;
}

const shapes = kit.shapesFrom(SHAPES, "ROWS_SWEEP_SHAPES", (s) => s.key);
sweep.runShapes(shapes, runShape);
sweep.finish(
  "## rows (residual add + layer norm) variants (µs per launch, median)",
  kit.variantTable(rows, ["GB/s", "% of 3.35 TB/s floor"], (r) => [
    kit.fixed(r.gbs, 0),
    r.floor ? `${r.floor.toFixed(0)}%` : "",
  ]),
  "all variants within tolerance",
  () => torchReference(shapes),
);
