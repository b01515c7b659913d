/**
 * The flash-attention kernel's variants (src/backends/cuda/codegen/flash-attention.ts) on the transformer shapes
 * we benchmark, each against today's default kernel: `bash scripts/gpu.sh bench flash-sweep` (about a minute on an
 * H100, most of it NVRTC).
 *
 * Each shape is timm's attention as torchc plans it: x [B, 197, 3·H·64] → (tanh: the projection stand-in) →
 * reshape/permute/slice into q, k, v read in place (row stride 3·H·64 elements), the output stored tokens-major
 * [B, 197, H, 64] for the projection after it. Per shape, every variant is compiled in one NVRTC program (ptxas
 * registers and spills from its log), run once on random inputs (the output pre-filled with NaN, so a row left
 * unwritten shows), compared with the default kernel's output (max |diff| / max |default|; above 2e-3 the run
 * fails) and the default with a float64 CPU reference on three heads (above 1e-2 it fails), then timed with CUDA
 * events: 10 warm-up launches, then 60 samples of `inner` back-to-back plain launches (no programmatic dependent
 * launch), the median per launch. A markdown table closes the run; PyTorch's scaled_dot_product_attention (flash,
 * efficient and cuDNN backends, fp16, the same strided q/k/v views) follows when python3 with torch is there.
 *
 * Without a GPU it compiles every variant for sm_90 and prints registers and spills only (NVRTC must be found).
 * Writes flash-sweep.json and flash-sweep.md into $OUT (else $TORCHC_BENCH_OUT, else the current folder).
 * FLASH_SWEEP_SHAPES=vit64,deit1 runs some shapes only.
 */
import type { CodegenContext } from "../../src/backends/cuda/codegen/element.js";
import {
  chooseAttentionKernel,
  describeAttentionChoice,
  type FlashAttentionConfig,
  flashConfigProblem,
  generateFlashAttentionKernel,
} from "../../src/backends/cuda/codegen/flash-attention.js";
import { type CudaModule, DeviceBuffer, type DeviceMemory, KernelArgs } from "../../src/backends/cuda/device/index.js";
import { type EnginePlan, planCudaEngine } from "../../src/backends/cuda/plan.js";
import { storageRoot } from "../../src/backends/cuda/plan/tensors.js";
import { float16BitsToNumber } from "../../src/ir/half.js";
import type { AttentionLayer } from "../../src/network/layers/index.js";
import { NetworkBuilder } from "../../src/network/builder.js";
import * as kit from "./sweep-support.js";

interface Shape {
  readonly key: string;
  readonly name: string;
  readonly B: number;
  readonly H: number;
  readonly T: number;
  readonly D: number;
}

const SHAPES: Shape[] = [
  { key: "vit64", name: "ViT-B/16 b64", B: 64, H: 12, T: 197, D: 64 },
  { key: "deit128", name: "DeiT-tiny b128", B: 128, H: 3, T: 197, D: 64 },
  { key: "vit1", name: "ViT-B/16 b1", B: 1, H: 12, T: 197, D: 64 },
  { key: "deit1", name: "DeiT-tiny b1", B: 1, H: 3, T: 197, D: 64 },
];

type Variant = readonly [label: string, change: Partial<FlashAttentionConfig>];

/** Many CTAs (B·H in the hundreds): occupancy, K/V reuse and padding decide. */
const MANY: Variant[] = [
  ["skip", { skipPadding: true }],
  ["skip mb4", { skipPadding: true, minBlocks: 4 }],
  ["2stage", { kvStages: 2 }],
  ["skip 2stage", { skipPadding: true, kvStages: 2 }],
  ["skip n32 2stage", { skipPadding: true, kvStages: 2, blockN: 32 }],
  ["skip n128", { skipPadding: true, blockN: 128 }],
  ["w8 skip mb2", { warps: 8, skipPadding: true, minBlocks: 2 }],
  ["w8 skip 2stage", { warps: 8, skipPadding: true, kvStages: 2 }],
  ["w8 skip n32 2stage mb2", { warps: 8, skipPadding: true, kvStages: 2, blockN: 32, minBlocks: 2 }],
  ["w7 skip 2stage mb2", { warps: 7, skipPadding: true, kvStages: 2, minBlocks: 2 }],
  ["w13 skip mb1", { warps: 13, skipPadding: true, minBlocks: 1 }],
];
/** Few heads (batch 1): parallelism decides, so small query tiles. */
const FEW: Variant[] = [
  ["skip", { skipPadding: true }],
  ["skip 2stage", { skipPadding: true, kvStages: 2 }],
  ["w1 skip", { warps: 1, skipPadding: true }],
  ["w1 skip 2stage", { warps: 1, skipPadding: true, kvStages: 2 }],
  ["w1 skip n32 2stage", { warps: 1, skipPadding: true, kvStages: 2, blockN: 32 }],
  ["w2 skip 2stage", { warps: 2, skipPadding: true, kvStages: 2 }],
  ["w4 skip 2stage", { warps: 4, skipPadding: true, kvStages: 2 }],
];

interface Row extends kit.VariantRow {
  tflops?: number;
}

const sweep = new kit.Sweep<Row>("flash-sweep");
const { say, rows } = sweep;

/** timm's block around attention: projection stand-in, q/k/v views of it, attention, tokens-major output. */
function blockNet(s: Shape) {
  const { B, H, T, D } = s;
  const b = new NetworkBuilder();
  const x = b.addInput("x", { dtype: "float16", shape: [B, T, 3 * H * D] });
  const p = b.add({ type: "activation", inputs: [x], fn: { kind: "tanh" } });
  const shuffle = (t: string, first: number[] | null, reshape: number[] | null, second: number[] | null) =>
    b.add({ type: "shuffle", inputs: [t], firstTranspose: first, reshape, secondTranspose: second });
  const r = shuffle(p, null, [B, T, 3, H, D], [2, 0, 3, 1, 4]);
  const [q, k, v] = [0, 1, 2].map((i) => {
    const sl = b.add({
      type: "slice",
      inputs: [r],
      starts: [i, 0, 0, 0, 0],
      ends: [i + 1, B, H, T, D],
      steps: [1, 1, 1, 1, 1],
    });
    return shuffle(sl, null, [B, H, T, D], null);
  });
  const y = b.add({ type: "attention", inputs: [q, k, v], scale: 1 / Math.sqrt(D), causal: false });
  const z = shuffle(shuffle(y, [0, 2, 1, 3], null, null), null, [B, T, H * D], null);
  const w = b.add({ type: "activation", inputs: [z], fn: { kind: "tanh" } });
  return b.build([{ tensor: w, as: "out" }]);
}

interface Planned {
  readonly plan: EnginePlan;
  readonly layer: AttentionLayer;
  readonly base: FlashAttentionConfig;
  readonly ctx: CodegenContext;
}

function planShape(s: Shape): Planned {
  const plan = planCudaEngine(blockNet(s), { precision: "fp16", channelsLast: false });
  const step = plan.steps.find((st) => st.kind === "attention");
  if (step?.kind !== "attention") throw new Error(`${s.name}: no attention step`);
  const info = (t: string) => plan.infos.get(t)!;
  const choice = chooseAttentionKernel(step.layer, info);
  if (choice.kernel !== "flash") throw new Error(`${s.name}: ${describeAttentionChoice(choice)}`);
  const [q, k, v] = step.layer.inputs.map(info);
  const rowStride = 3 * s.H * s.D;
  for (const t of [q, k, v])
    if (t.strides?.[2] !== rowStride || storageRoot(plan.infos, t.name) !== storageRoot(plan.infos, q.name))
      throw new Error(`${s.name}: ${t.name} is not a view of the qkv projection (strides ${t.strides})`);
  const out = info(step.layer.output);
  if (out.layout?.join() !== "0,2,1,3") throw new Error(`${s.name}: the output is not tokens-major (${out.layout})`);
  return { plan, layer: step.layer, base: choice.config, ctx: { info, scalarConstant: () => undefined } };
}

interface Built extends kit.SweepKernel {
  readonly config: FlashAttentionConfig;
}

/** The default and each variant that fits, generated; the ones that do not fit are said and left out. */
function variantsOf(s: Shape, p: Planned): Built[] {
  const list: Variant[] = [["default", {}], ...(s.B * s.H >= 132 ? MANY : FEW)];
  const built: Built[] = [];
  for (const [i, [label, change]] of list.entries()) {
    const config = { ...p.base, ...change };
    const problem = flashConfigProblem(config);
    const same = built.find((b) => JSON.stringify(b.config) === JSON.stringify(config));
    if (problem || same) {
      say(`  ${label}: skipped (${problem ?? `the same configuration as ${same?.label}`})`);
      continue;
    }
    const name = `flash_${s.key}_${i}`;
    built.push({ label, config, kernel: generateFlashAttentionKernel(name, p.layer, p.ctx, config), symbol: name });
  }
  return built;
}

function compileShape(variants: Built[]): CudaModule | undefined {
  return kit.compileVariants(
    sweep,
    variants,
    (v) =>
      `  ${v.label.padEnd(24)} ${describeAttentionChoice({ kernel: "flash", config: v.config }).padEnd(44)} grid ${v.kernel.grid[0]}×${v.kernel.block[0]}  ${kit.regsAndSpill(v)}`,
  ).module;
}

/** The float64 reference of head (b, h) against the kernel's output: max |diff| and max |ref|. */
function checkHead(s: Shape, qkv: Uint16Array, out: Uint16Array, b: number, h: number): [number, number] {
  const { H, T, D } = s;
  const C = 3 * H * D;
  const at = (which: number, t: number, d: number) => float16BitsToNumber(qkv[(b * T + t) * C + which * H * D + h * D + d]);
  const K = Array.from({ length: T }, (_, t) => Float64Array.from({ length: D }, (_, d) => at(1, t, d)));
  const V = Array.from({ length: T }, (_, t) => Float64Array.from({ length: D }, (_, d) => at(2, t, d)));
  let err = 0;
  let max = 0;
  const scores = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    const q = Float64Array.from({ length: D }, (_, d) => at(0, i, d));
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < T; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[d] * K[j][d];
      scores[j] = dot / Math.sqrt(D);
      m = Math.max(m, scores[j]);
    }
    let sum = 0;
    for (let j = 0; j < T; j++) sum += scores[j] = Math.exp(scores[j] - m);
    for (let d = 0; d < D; d++) {
      let o = 0;
      for (let j = 0; j < T; j++) o += scores[j] * V[j][d];
      o /= sum;
      const got = float16BitsToNumber(out[((b * T + i) * H + h) * D + d]);
      err = Math.max(err, Number.isFinite(got) ? Math.abs(got - o) : Number.POSITIVE_INFINITY);
      max = Math.max(max, Math.abs(o));
    }
  }
  return [err, max];
}

function runShape(s: Shape): void {
  say(`\n== ${s.name}: ${s.B}×${s.H} heads, L = S = ${s.T}, d${s.D}, q/k/v row stride ${3 * s.H * s.D}`);
  const p = planShape(s);
  const variants = variantsOf(s, p);
  const module = compileShape(variants);
  const flops = 4 * s.B * s.H * s.T * s.T * s.D;
  const gpu = sweep.gpu;
  if (!module || !gpu) {
    for (const v of variants) rows.push(rowOf(s, v));
    return;
  }
  const qkvRoot = storageRoot(p.plan.infos, p.layer.inputs[0]);
  const qkvHost = kit.randomHalves(s.B * s.T * 3 * s.H * s.D, 1234 + s.B * s.H, -1.5, 1.5);
  const qkv = DeviceBuffer.from(qkvHost);
  const out = DeviceBuffer.alloc(s.B * s.T * s.H * s.D * 2);
  const pointer = (t: string): DeviceMemory => {
    if (t === p.layer.output) return out;
    if (storageRoot(p.plan.infos, t) !== qkvRoot) throw new Error(`unexpected kernel parameter ${t}`);
    const offset = (p.plan.infos.get(t)!.offset ?? 0) * 2;
    return qkv.view(offset, qkv.bytes - offset);
  };
  let baseOut: Uint16Array | undefined;
  let baseUs = Number.NaN;
  try {
    for (const v of variants) {
      const row = rowOf(s, v);
      rows.push(row);
      try {
        const kernel = module.kernel(v.symbol);
        row.regs = kernel.registers;
        const args = new KernelArgs(v.kernel.params.map(() => "ptr" as const));
        v.kernel.params.forEach((param, j) => args.set(j, pointer(param.tensor)));
        out.fill(0xff, { stream: gpu.stream }); // NaN: a row a variant leaves unwritten shows
        kit.launchPlain(gpu.stream, kernel, v.kernel, args);
        gpu.stream.synchronize();
        const got = out.download(new Uint16Array(s.B * s.T * s.H * s.D));
        if (!baseOut) {
          baseOut = got;
          referenceCheck(s, qkvHost, got, row);
        } else {
          row.relErr = kit.relativeDiff(baseOut, got);
          sweep.checkVariant(s.name, v.label, row.relErr);
        }
        row.us = kit.timeLaunches(gpu.stream, kernel, v.kernel, args, s.B * s.H >= 132 ? 5 : 20);
        if (v.label === "default") baseUs = row.us;
        row.tflops = flops / (row.us * 1e-6) / 1e12;
        row.speedup = baseUs / row.us;
        args.free();
        say(`  ${v.label.padEnd(24)} ${row.us.toFixed(2).padStart(8)} µs  ${row.tflops.toFixed(1).padStart(6)} TFLOP/s  ${row.speedup.toFixed(2)}×  err ${row.relErr?.toExponential(2) ?? "-"}`);
      } catch (e) {
        row.error = sweep.failed(s.name, v.label, e);
      }
    }
  } finally {
    qkv.free();
    out.free();
    module.unload();
  }
}

function rowOf(s: Shape, v: Built): Row {
  return kit.variantRow(s.name, v, describeAttentionChoice({ kernel: "flash", config: v.config }));
}

/** The default kernel against float64 on three heads (first, middle, last). */
function referenceCheck(s: Shape, qkv: Uint16Array, out: Uint16Array, row: Row): void {
  const heads = [0, Math.floor((s.B * s.H) / 2), s.B * s.H - 1];
  let err = 0;
  let max = 0;
  for (const bh of new Set(heads)) {
    const [e, m] = checkHead(s, qkv, out, Math.floor(bh / s.H), bh % s.H);
    err = Math.max(err, e);
    max = Math.max(max, m);
  }
  row.relErr = err / max;
  say(`  default vs float64 on heads ${[...new Set(heads)].join(", ")}: max |diff| ${err.toExponential(2)} = ${row.relErr.toExponential(2)} of max |ref|`);
  sweep.checkReference(s.name, row.relErr);
}

/** PyTorch's SDPA backends on the same strided views; undefined (and a note) when python or torch is missing. */
function torchReference(shapes: Shape[]): string[] {
  const py = `
from torch.nn.attention import sdpa_kernel, SDPBackend
out = []
for key, name, B, H, T, D in json.loads(sys.argv[1]):
    qkv = torch.rand(B, T, 3, H, D, device="cuda", dtype=torch.float16) * 3 - 1.5
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    inner = 5 if B * H >= 132 else 20
    for be in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"):
        try:
            with sdpa_kernel([getattr(SDPBackend, be)]):
                us = med(lambda: F.scaled_dot_product_attention(q, k, v), inner)
            out.append({"shape": name, "backend": be, "us": us})
        except Exception as ex:
            out.append({"shape": name, "backend": be, "error": str(ex).split("\\n")[0][:160]})
print("SDPA_JSON " + json.dumps(out))
`;
  const arg = shapes.map((s) => [s.key, s.name, s.B, s.H, s.T, s.D]);
  type Result = { shape: string; backend: string; us?: number; error?: string };
  const r = kit.runTorch<Result[]>(py, arg, "SDPA_JSON", 90_000);
  if ("unavailable" in r) return [`PyTorch SDPA reference unavailable (${r.unavailable})`];
  const results = r.results;
  const lines = ["| shape | PyTorch SDPA backend | µs | TFLOP/s |", "| --- | --- | --- | --- |"];
  for (const x of results) {
    const s = shapes.find((sh) => sh.name === x.shape)!;
    const tf = x.us ? ((4 * s.B * s.H * s.T * s.T * s.D) / (x.us * 1e-6) / 1e12).toFixed(1) : "";
    lines.push(`| ${x.shape} | ${x.backend} | ${x.us?.toFixed(2) ?? `failed: ${x.error}`} | ${tf} |`);
  }
  return lines;
}

const shapes = kit.shapesFrom(SHAPES, "FLASH_SWEEP_SHAPES", (s) => s.key);
sweep.runShapes(shapes, runShape);
sweep.finish(
  "## flash-attention variants (µs per launch, median)",
  kit.variantTable(rows, ["TFLOP/s"], (r) => [kit.fixed(r.tflops, 1)]),
  "all variants within tolerance",
  () => torchReference(shapes),
);
