/**
 * The "kernels" part of quant.gpu.test.ts: real int8 (cuBLASLt IMMA) and fp8 E4M3 GEMMs through the device
 * QuantizedLinear, checked layer by layer against the simulated arithmetic on the same input (the
 * torchc.quantized_linear reference for int8; E4M3-rounded operands summed in float64 for fp8), the stack
 * against PyTorch fp32, and a timing table against cuBLASLt fp16.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlasLt } from "../../src/backends/cuda/device/blaslt.js";
import { createLtHandle, destroyLtHandle } from "../../src/backends/cuda/device/blaslt-plan.js";
import {
  buildQuantLtPlan,
  destroyQuantLtPlan,
  runQuantLtPlan,
} from "../../src/backends/cuda/device/blaslt-quant.js";
import { timeOnStream } from "../../src/backends/cuda/device/event.js";
import { DeviceBuffer } from "../../src/backends/cuda/device/memory.js";
import type { Stream } from "../../src/backends/cuda/device/stream.js";
import type { QuantIoDType } from "../../src/backends/cuda/kernels/matmul-int8.js";
import {
  type Fp8LinearSpec,
  QuantizedLinear,
  type QuantizedLinearSpec,
} from "../../src/backends/cuda/kernels/quantized-linear.js";
import { rng } from "../../src/backends/cuda/testing/nets.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Arg, Graph } from "../../src/ir/graph.js";
import { float16BitsToNumber, numberToFloat16Bits } from "../../src/ir/half.js";
import { E4M3_MAX, e4m3Bits, e4m3Value, quantizeValue } from "../../src/ops/quantize-math.js";
import { inferOutputTypes } from "../../src/passes/op-catalogue.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { foldQuantizedLayers } from "../../src/passes/quantize-fold.js";
import { insertQuantization, quantizationSites } from "../../src/passes/quantize-insert.js";
import { readNpy, writeNpy } from "../../src/util/npy.js";
import { quantizedLinearReference } from "../quant/reference.js";

/** A seeded generator (mulberry32) of roughly normal values (sum of four uniforms). */
export function normals(n: number, seed: number, scale: number): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: n }, () => (u() + u() + u() + u() - 2) * scale);
}

export interface FloatLinear {
  readonly k: number;
  readonly n: number;
  /** [n, k] */
  readonly w: Float32Array;
  readonly b: Float32Array;
}

/** Symmetric per-channel int8: scale amax_c / 127, values in [-127, 127] (quantize-insert.ts's rule). */
export function int8Weights(l: FloatLinear): { q: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(l.n);
  const q = new Int8Array(l.n * l.k);
  for (let c = 0; c < l.n; c++) {
    let amax = 0;
    for (let i = c * l.k; i < (c + 1) * l.k; i++) amax = Math.max(amax, Math.abs(l.w[i]));
    scales[c] = Math.fround(amax > 0 ? amax / 127 : 1);
    const inv = Math.fround(1 / scales[c]);
    for (let i = c * l.k; i < (c + 1) * l.k; i++) q[i] = quantizeValue(l.w[i], inv, 0, -127, 127);
  }
  return { q, scales };
}

/** E4M3 with one scale amax / 448 per output channel (quantize-insert.ts's rule), or one for the tensor. */
export function fp8Weights(
  l: FloatLinear,
  perChannel: boolean,
): { bytes: Uint8Array; scale: number | Float32Array } {
  const rows = perChannel ? l.n : 1;
  const per = (l.n * l.k) / rows;
  const scales = new Float32Array(rows);
  for (let c = 0; c < rows; c++) {
    let amax = 0;
    for (let i = c * per; i < (c + 1) * per; i++) amax = Math.max(amax, Math.abs(l.w[i]));
    scales[c] = Math.fround(amax > 0 ? amax / E4M3_MAX : 1);
  }
  const bytes = Uint8Array.from(l.w, (v, i) => e4m3Bits(v / scales[Math.floor(i / per)]));
  return { bytes, scale: perChannel ? scales : scales[0] };
}

/** torchc.quantized_linear's reference (what the simulated path computes) on the values `x` [m, k]. */
export function int8Reference(
  x: Float64Array,
  m: number,
  l: FloatLinear,
  q: { q: Int8Array; scales: Float32Array },
  inputScale: number,
): Float64Array {
  return quantizedLinearReference(
    { m, k: l.k, n: l.n, x, w: q.q, scales: q.scales, bias: l.b },
    { scale: inputScale },
  );
}

/**
 * Σ e4m3(x/sx)·sx · e4m3(w/sw[c])·sw[c] + b in float64, with the kernel's f32 x · f32(1/sx) before rounding; the
 * weight bytes and scales are the layer's own (a per-tensor fallback requantizes them).
 */
export function fp8Reference(x: Float64Array, m: number, l: FloatLinear, spec: Fp8LinearSpec): Float64Array {
  const f = Math.fround;
  const inv = f(1 / spec.inputScale);
  const sx = f(spec.inputScale);
  const ws = typeof spec.weightScale === "number" ? Float32Array.of(spec.weightScale) : spec.weightScale;
  const xq = Float64Array.from(x, (v) => e4m3Value(e4m3Bits(f(v * inv))) * sx);
  const wq = Float64Array.from(
    spec.weight,
    (b, i) => e4m3Value(b) * ws[ws.length === 1 ? 0 : Math.floor(i / l.k)],
  );
  const out = new Float64Array(m * l.n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < l.n; j++) {
      let s = 0;
      for (let p = 0; p < l.k; p++) s += xq[i * l.k + p] * wq[j * l.k + p];
      out[i * l.n + j] = s + l.b[j];
    }
  return out;
}

/** PyTorch fp32 (CUDA, TF32 off) through the stack of linear layers, or why it could not run. */
export function pytorchStack(
  x: Float32Array,
  m: number,
  layers: readonly FloatLinear[],
): Float32Array | string {
  const dir = mkdtempSync(join(tmpdir(), "torchc-qk-"));
  writeNpy(join(dir, "x.npy"), { dtype: "float32", shape: [m, layers[0].k], data: x });
  layers.forEach((l, i) => {
    writeNpy(join(dir, `w${i}.npy`), { dtype: "float32", shape: [l.n, l.k], data: l.w });
    writeNpy(join(dir, `b${i}.npy`), { dtype: "float32", shape: [l.n], data: l.b });
  });
  const script = [
    "import sys, numpy as np, torch",
    "torch.backends.cuda.matmul.allow_tf32 = False",
    "d = sys.argv[1]",
    "y = torch.from_numpy(np.load(f'{d}/x.npy')).cuda()",
    `for i in range(${layers.length}):`,
    "    w = torch.from_numpy(np.load(f'{d}/w{i}.npy')).cuda()",
    "    b = torch.from_numpy(np.load(f'{d}/b{i}.npy')).cuda()",
    "    y = torch.nn.functional.linear(y, w, b)",
    "np.save(f'{d}/y.npy', y.cpu().numpy())",
  ].join("\n");
  const r = spawnSync("python3", ["-c", script, dir], { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) return `PyTorch failed: ${(r.stderr ?? "").split("\n").slice(-3).join(" ")}`;
  return readNpy(join(dir, "y.npy")).data as Float32Array;
}

/** Host values → a device buffer of `dtype`; and back to float64 values. */
export function uploadAs(v: ArrayLike<number>, dtype: QuantIoDType): DeviceBuffer {
  return DeviceBuffer.from(
    dtype === "float16" ? Uint16Array.from(v, numberToFloat16Bits) : Float32Array.from(v),
  );
}

export function downloadAs(buf: DeviceBuffer, n: number, dtype: QuantIoDType): Float64Array {
  if (dtype === "float16") return Float64Array.from(buf.download(new Uint16Array(n)), float16BitsToNumber);
  return Float64Array.from(buf.download(new Float32Array(n)));
}

export function amax(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

/** max |a − b| / max |b|. */
export function relative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < b.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / (amax(b) || 1);
}

/** A QuantizedLinear for `l` of `kind`, or throws with cuBLASLt's or the checks' reason. */
export function quantizedLayer(
  handle: bigint | null,
  workspace: DeviceBuffer,
  kind: "int8" | "fp8",
  l: FloatLinear,
  m: number,
  dtype: QuantIoDType,
  inputScale: number,
  opts: { fastAccum?: boolean; fp8PerChannel?: boolean } = {},
): QuantizedLinear {
  const common = { m, inFeatures: l.k, outFeatures: l.n, dtype, inputScale, bias: l.b };
  let spec: QuantizedLinearSpec;
  if (kind === "int8") {
    const q = int8Weights(l);
    spec = { kind, ...common, weight: q.q, weightScales: q.scales };
  } else {
    const q = fp8Weights(l, opts.fp8PerChannel ?? false);
    spec = { kind, ...common, weight: q.bytes, weightScale: q.scale, fastAccum: opts.fastAccum };
  }
  const built = QuantizedLinear.create(handle, spec, workspace);
  if (!built.ok) throw new Error(`${kind} ${m}x${l.k}→${l.n} ${dtype}: ${built.reason}`);
  return built.layer;
}

/** One quantized kind's timing cells: GPU times, or why cuBLASLt (or the checks) refused it. */
export interface QuantTiming {
  readonly gemmMs?: number;
  readonly layerMs?: number;
  readonly variant?: string;
  readonly refused?: string;
}

export interface TimingRow {
  m: number;
  k: number;
  n: number;
  fp16Ms: number;
  int8: QuantTiming;
  fp8: QuantTiming;
}

function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The whole layer's time, then the GEMM alone on already-quantized operands (no bias), for one kind. */
function timeKind(
  kind: "int8" | "fp8",
  m: number,
  l: FloatLinear,
  x: DeviceBuffer,
  out: DeviceBuffer,
  stream: Stream,
  handle: bigint | null,
  workspace: DeviceBuffer,
  buf: (bytes: number) => DeviceBuffer,
  opts: { warmup: number; reps: number },
): QuantTiming {
  const { k, n } = l;
  let layer: QuantizedLinear;
  try {
    layer = quantizedLayer(handle, workspace, kind, l, m, "float16", 4 / 127, { fastAccum: true });
  } catch (e) {
    return { refused: reasonOf(e) };
  }
  try {
    const layerMs = timeOnStream(stream, () => layer.run(x, out, stream), opts);
    // scales in their own buffers, given to the plan before cuBLASLt's heuristic (as QuantizedLinear does)
    const sw = buf(4);
    const sx = buf(4);
    sw.upload(Float32Array.of(1));
    sx.upload(Float32Array.of(1));
    const g = buildQuantLtPlan(
      handle,
      { kind, m, n, k, out: "float16", bias: false, fastAccum: true },
      workspace.bytes,
      { pointers: () => ({ weightScale: sw.ptr, inputScale: sx.ptr }) },
    );
    if (!g.ok) return { layerMs, variant: layer.variant, refused: `GEMM alone: ${g.reason}` };
    try {
      const alpha = buf(n * 4);
      alpha.upload(new Float32Array(n).fill(1));
      const acc = g.plan.dType === "int32" ? buf(m * n * 4) : out;
      const xq = buf(m * k);
      const wq = buf(n * k);
      const gemmMs = timeOnStream(
        stream,
        () =>
          runQuantLtPlan(
            handle,
            g.plan,
            { xq: xq.ptr, wq: wq.ptr, d: acc.ptr, alpha: alpha.ptr, workspace: workspace.ptr },
            stream,
          ),
        opts,
      );
      return { gemmMs, layerMs, variant: layer.variant };
    } catch (e) {
      return { layerMs, variant: layer.variant, refused: `GEMM alone: ${reasonOf(e)}` };
    } finally {
      stream.synchronize();
      destroyQuantLtPlan(g.plan);
    }
  } catch (e) {
    return { refused: reasonOf(e) };
  } finally {
    stream.synchronize();
    layer.destroy();
  }
}

/**
 * GPU time of fp16 cuBLASLt linear, the int8 and fp8 GEMMs alone, and the whole quantized layers (fp16 I/O).
 * A kind cuBLASLt refuses gets its reason instead of times (the correctness tests fail on it; the table should
 * still show the other columns).
 */
export function timeShape(m: number, k: number, n: number, stream: Stream): TimingRow {
  const lt = BlasLt.create();
  const handle = createLtHandle();
  const workspace = DeviceBuffer.alloc(32 << 20);
  const owned: DeviceBuffer[] = [workspace];
  const buf = (bytes: number) => {
    const b = DeviceBuffer.alloc(bytes);
    owned.push(b);
    return b;
  };
  const x = buf(m * k * 2);
  const w = buf(n * k * 2);
  const bias = buf(n * 2);
  const out = buf(m * n * 2);
  const l: FloatLinear = { k, n, w: normals(n * k, 3, 0.02), b: normals(n, 4, 0.1) };
  x.upload(Uint16Array.from(normals(m * k, 5, 1), numberToFloat16Bits));
  w.upload(Uint16Array.from(l.w, numberToFloat16Bits));
  bias.upload(Uint16Array.from(l.b, numberToFloat16Bits));
  const opts = { warmup: 5, reps: 50 };
  try {
    const fp16Ms = timeOnStream(
      stream,
      () =>
        lt.linear({ x, weight: w, bias, out, m, inFeatures: k, outFeatures: n, dtype: "float16", stream }),
      opts,
    );
    const time = (kind: "int8" | "fp8") => timeKind(kind, m, l, x, out, stream, handle, workspace, buf, opts);
    return { m, k, n, fp16Ms, int8: time("int8"), fp8: time("fp8") };
  } finally {
    stream.synchronize();
    for (const b of owned) b.free();
    destroyLtHandle(handle);
    lt.destroy();
  }
}

/** The table's cells for one kind: GEMM, layer, variant, layer / fp16 — or "refused: …" across them. */
export function timingCells(t: QuantTiming, fp16Ms: number, withVariant: boolean): string[] {
  const ms = (v: number | undefined) => (v === undefined ? "—" : `${(v * 1000).toFixed(1)} µs`);
  const cells = [ms(t.gemmMs), ms(t.layerMs)];
  if (withVariant) cells.push(t.variant ?? "—");
  cells.push(t.layerMs === undefined ? "—" : (t.layerMs / fp16Ms).toFixed(2));
  // the GEMM cell holds the reason (the layer's cells stay when only the GEMM-alone plan was refused)
  if (t.refused) cells[0] = `refused: ${t.refused.replaceAll("|", "/")}`;
  return cells;
}

/**
 * A two-layer MLP as an aten graph, x [m, 768] → linear 3072 → relu → linear 768, quantized the way PTQ does it
 * (quantize-insert.ts: int8 activations at max|x| / 127, per-channel symmetric weights) and folded into
 * torchc.quantized_linear layers (quantize-fold.ts). The hidden range is the float model's on `x`.
 */
export function quantizedMlp(x: Float32Array, m: number, act: "relu" | "gelu" = "relu"): Graph {
  const b = new GraphBuilder();
  b.addInput("x", { dtype: "float32", shape: [m, 768] });
  const l1: FloatLinear = { k: 768, n: 3072, w: normals(3072 * 768, 41, 0.03), b: normals(3072, 42, 0.1) };
  const l2: FloatLinear = { k: 3072, n: 768, w: normals(768 * 3072, 43, 0.02), b: normals(768, 44, 0.1) };
  for (const [name, l] of [
    ["fc1", l1],
    ["fc2", l2],
  ] as const) {
    const weight = (target: string, shape: number[], data: Float32Array) =>
      b.addWeight(target, { kind: "parameter", target, tensor: { dtype: "float32", shape, data } });
    weight(`${name}.weight`, [l.n, l.k], l.w);
    weight(`${name}.bias`, [l.n], l.b);
  }
  const node = (op: string, args: Record<string, Arg>, out: string) => {
    const [type] = inferOutputTypes(op, args, (v) => b.typeOf(v)) ?? [];
    b.addNode(op, args, [{ name: out, type }], {}, out);
    return out;
  };
  const T = (name: string): Arg => ({ kind: "tensor", name });
  const h = node("aten.linear.default", { input: T("x"), weight: T("fc1.weight"), bias: T("fc1.bias") }, "h");
  const r = node(act === "relu" ? "aten.relu.default" : "aten.gelu.default", { self: T(h) }, "r");
  node("aten.linear.default", { input: T(r), weight: T("fc2.weight"), bias: T("fc2.bias") }, "y");
  b.setOutputs(["y"]);
  const lowered = runPipeline(b.build(), defaultPipeline({})).graph;
  // the float hidden activation's range on x, as calibration would observe it
  let hidden = 0;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < l1.n; j++) {
      let s = l1.b[j];
      for (let p = 0; p < l1.k; p++) s += x[i * l1.k + p] * l1.w[j * l1.k + p];
      hidden = Math.max(hidden, s);
    }
  const sites = quantizationSites(lowered);
  const amaxOf = new Map(sites.map((s) => [s.input, s.input === "x" ? amax(x) : hidden]));
  return foldQuantizedLayers(insertQuantization(lowered, amaxOf, "int8"));
}
