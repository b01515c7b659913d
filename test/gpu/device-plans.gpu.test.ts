/**
 * The plan builders production uses, on the real cuDNN and cuBLASLt: the engine's fused conv (graph from
 * device/conv-graph.ts, engines from device/cudnn-engines.ts) with every epilogue kind, tuning, a refusal that
 * must carry cuDNN's status; the device API's conv with the activations the shared table added (tanh,
 * gelu_erf); the engine's strided-batched and fused-epilogue matmuls through device/blaslt-plan.ts. Each result
 * is compared with a float64 loop written here (‖out − ref‖ / ‖ref‖: fp32 with TF32 off ≤ 1e-4, fp16 ≤ 1e-2).
 * Runs under Node's test runner on the GPU machine (`bash scripts/gpu.sh test device-plans`).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildConvPlan, Cudnn } from "../../src/backends/cuda/device/conv.js";
import type { ConvActivation } from "../../src/backends/cuda/device/conv-shape.js";
import { DeviceBuffer } from "../../src/backends/cuda/device/memory.js";
import { Stream } from "../../src/backends/cuda/device/stream.js";
import { buildCudnnConv, type CudnnConvSpec } from "../../src/backends/cuda/kernels/conv-cudnn.js";
import {
  buildLtMatmul,
  createLtHandle,
  destroyLtHandle,
  type MatmulGeometry,
} from "../../src/backends/cuda/kernels/matmul-cublaslt.js";
import { rng } from "../../src/backends/cuda/testing/nets.js";
import { tensorBytes, tensorFromBytes, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { convSpec, fusedEpilogue, matmulShape } from "../backends/cuda/specs.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";

const { skip } = openGpu();
const report = gpuReporter("device-plans");
recordTestStarts();

type Dims = [number, number, number, number];
type IoDType = "float16" | "float32";

/** Memory index of logical [a, b, c, d] in NCHW (KCRS) or NHWC (KRSC) order. */
function offset(layout: "NHWC" | "NCHW", [, d1, d2, d3]: Dims, [a, b, c, d]: Dims): number {
  return layout === "NHWC" ? ((a * d2 + c) * d3 + d) * d1 + b : ((a * d1 + b) * d2 + c) * d3 + d;
}

/** Random logical values, rounded to `dtype`, and their bytes in `layout`. */
function operand(seed: number, dims: Dims, layout: "NHWC" | "NCHW", dtype: IoDType, scale = 1) {
  const r = rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const logical = toFloat64Array(
    tensorFromNumbers(
      dtype,
      [n],
      Array.from({ length: n }, () => (r() * 2 - 1) * scale),
    ),
  );
  const stored = new Float64Array(n);
  let i = 0;
  for (let a = 0; a < dims[0]; a++)
    for (let b = 0; b < dims[1]; b++)
      for (let c = 0; c < dims[2]; c++)
        for (let d = 0; d < dims[3]; d++) stored[offset(layout, dims, [a, b, c, d])] = logical[i++];
  return { logical, bytes: tensorBytes(tensorFromNumbers(dtype, [n], stored)) };
}

/** Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

const ACT: Record<string, (v: number) => number> = {
  relu: (v) => Math.max(0, v),
  tanh: Math.tanh,
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  silu: (v) => v / (1 + Math.exp(-v)),
  gelu_erf: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  gelu_tanh: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
};

/** Direct convolution in float64 over logical NCHW / KCRS values (groups 1). */
function convReference(
  x: Float64Array,
  w: Float64Array,
  [n, c, h, wd]: Dims,
  [k, , r, s]: Dims,
  [, , oh, ow]: Dims,
  stride: number,
  pad: number,
): Float64Array {
  const y = new Float64Array(n * k * oh * ow);
  for (let b = 0; b < n; b++)
    for (let o = 0; o < k; o++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let acc = 0;
          for (let ci = 0; ci < c; ci++)
            for (let u = 0; u < r; u++)
              for (let v = 0; v < s; v++) {
                const hi = i * stride - pad + u;
                const wi = j * stride - pad + v;
                if (hi < 0 || hi >= h || wi < 0 || wi >= wd) continue;
                acc += x[((b * c + ci) * h + hi) * wd + wi] * w[((o * c + ci) * r + u) * s + v];
              }
          y[((b * k + o) * oh + i) * ow + j] = acc;
        }
  return y;
}

/** y as logical NCHW values, read back from `layout` memory. */
function readBack(buf: DeviceBuffer, dims: Dims, layout: "NHWC" | "NCHW", dtype: IoDType): Float64Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const bytes = buf.download(new Uint8Array(n * (dtype === "float16" ? 2 : 4)));
  const stored = toFloat64Array(tensorFromBytes(dtype, [n], bytes));
  const out = new Float64Array(n);
  let i = 0;
  for (let a = 0; a < dims[0]; a++)
    for (let b = 0; b < dims[1]; b++)
      for (let c = 0; c < dims[2]; c++)
        for (let d = 0; d < dims[3]; d++) out[i++] = stored[offset(layout, dims, [a, b, c, d])];
  return out;
}

function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(got[i])) return Number.POSITIVE_INFINITY;
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

const X: Dims = [2, 8, 7, 7];
const W: Dims = [16, 8, 3, 3];
const Y: Dims = [2, 16, 7, 7];

function fusedSpec(layout: "NHWC" | "NCHW", dtype: IoDType, channel: Float64Array): CudnnConvSpec {
  return convSpec({ layout, dtype, x: X, w: W, y: Y, epilogue: fusedEpilogue("residual", channel) });
}

/** f with a cuDNN handle, destroyed after. */
function withCudnn(f: (cudnn: Cudnn) => void): void {
  const cudnn = Cudnn.create();
  try {
    f(cudnn);
  } finally {
    cudnn.destroy();
  }
}

/** Runs the engine's fused conv on random data and returns ‖y − ref‖ / ‖ref‖ (after tuning when asked). */
function runFusedConv(cudnn: Cudnn, layout: "NHWC" | "NCHW", dtype: IoDType, tune: boolean): number {
  const channel = Float64Array.from({ length: 16 }, (_, i) => 0.5 + i / 16);
  const built = buildCudnnConv(cudnn, fusedSpec(layout, dtype, channel), { tune });
  if (!built.ok) assert.fail(`cuDNN refused the engine's fused conv: ${built.reason}`);
  const plan = built.plan;
  const x = operand(1, X, layout, dtype);
  const w = operand(2, W, layout, dtype, 0.3);
  const bias = operand(3, [1, 16, 1, 1], layout, dtype, 0.2);
  const residual = operand(4, Y, layout, dtype);
  const chan = tensorBytes(tensorFromNumbers(dtype, [16], channel));
  const bufs = [x.bytes, w.bytes, bias.bytes, residual.bytes, chan].map((b) => DeviceBuffer.from(b));
  const y = DeviceBuffer.alloc(Y.reduce((a, b) => a * b, 1) * 4);
  const ws = DeviceBuffer.alloc(Math.max(256, plan.workspaceBytes));
  const stream = Stream.create();
  try {
    const [dx, dw, db, dr, dc] = bufs;
    plan.bind({ x: dx.ptr, w: dw.ptr, bias: db.ptr, y: y.ptr, extra: [dr.ptr, dc.ptr] }, ws.ptr);
    if (tune) {
      const t = plan.tune(stream);
      report(`conv.tune.${layout}.${dtype}`, { ...t, candidatesLeft: plan.candidateCount });
      assert.equal(plan.candidateCount, 1);
    }
    plan.execute(stream);
    stream.synchronize();
    const conv = convReference(x.logical, w.logical, X, W, Y, 1, 1);
    const hw = Y[2] * Y[3];
    const ref = conv.map((v, i) => {
      const ch = Math.floor(i / hw) % 16;
      const t = Math.tanh(v + bias.logical[ch]) + residual.logical[i];
      return ACT.gelu_erf(t * channel[ch]);
    });
    const err = relError(readBack(y, Y, layout, dtype), ref);
    report(`conv.fused.${layout}.${dtype}${tune ? ".tuned" : ""}`, { err, engine: plan.engineIndex });
    return err;
  } finally {
    plan.destroy();
    for (const b of [...bufs, y, ws]) b.free();
    stream.destroy();
  }
}

describe("engine conv plans on cuDNN", { skip }, () => {
  it("bias → tanh → +residual → ×channel → gelu_erf, NHWC fp16", () => {
    withCudnn((cudnn) => {
      assert.ok(runFusedConv(cudnn, "NHWC", "float16", false) <= 1e-2);
    });
  });

  it("the same chain in NCHW fp32 (TF32 off) is refused with cuDNN's reason, for the engine to split it", () => {
    // H100, cuDNN 9 of torch 2.11: the heuristics offer no engine for a GELU epilogue on a strict-fp32 NCHW graph.
    // cuDNN says so in one of two ways: a NOT_SUPPORTED status (session 3), or heuristics that finalize and
    // propose no engine config (18bf27e, cuDNN 9.19: device/cudnn-engines.ts heuristicConfigs). Both come back as
    // { ok: false } and the builder's convSupported answers false for either, so the scheduler tries shorter
    // epilogues (fuse/schedule.ts tryConv, down to the bare conv): checked below on this cuDNN.
    withCudnn((cudnn) => {
      const spec = fusedSpec("NCHW", "float32", new Float64Array(16).fill(1));
      const built = buildCudnnConv(cudnn, spec, { tune: false });
      report("conv.fused.NCHW.float32", { built: built.ok ? "ok" : built.reason });
      if (built.ok) {
        built.plan.destroy();
        assert.ok(runFusedConv(cudnn, "NCHW", "float32", false) <= 1e-4);
        return;
      }
      assert.match(
        built.reason,
        /^(cuDNN refused: .*CUDNN_STATUS_NOT_SUPPORTED|cuDNN's heuristics proposed no engine for this graph)/,
      );
      // the split: the longest shorter epilogue cuDNN takes, as tryConv looks for it
      let kept = -1;
      for (let k = spec.epilogue.length - 1; k >= 0 && kept < 0; k--) {
        const shorter = buildCudnnConv(
          cudnn,
          { ...spec, epilogue: spec.epilogue.slice(0, k) },
          { tune: false },
        );
        if (shorter.ok) {
          shorter.plan.destroy();
          kept = k;
        }
      }
      report("conv.fused.NCHW.float32.split", { epilogueOpsKept: kept, of: spec.epilogue.length });
      assert.ok(kept >= 0, "cuDNN took no prefix of the chain, not even the bare convolution");
    });
  });

  it("tune() keeps one candidate and the result stays right", () => {
    withCudnn((cudnn) => {
      assert.ok(runFusedConv(cudnn, "NHWC", "float16", true) <= 1e-2);
    });
  });

  it("a refused graph comes back with cuDNN's status, not as a silent undefined", () => {
    withCudnn((cudnn) => {
      // y's spatial size does not match the convolution's output (7×7 with padding 1): cuDNN must refuse
      const bad = { ...fusedSpec("NHWC", "float16", new Float64Array(16)), y: [2, 16, 5, 5] as Dims };
      const built = buildCudnnConv(cudnn, bad, { tune: false });
      report("conv.refused", { built: built.ok ? "ok" : built.reason });
      assert.equal(built.ok, false);
      if (!built.ok) assert.match(built.reason, /^cuDNN refused: .*CUDNN_STATUS_/);
    });
  });
});

describe("device API conv with the shared activation table", { skip }, () => {
  // gelu_erf and gelu_tanh on NCHW fp32: cuDNN's heuristics proposed no engine on the H100 run of session 3. Where
  // cuDNN refuses, the device API must say so with cuDNN's status; where it builds, the numbers are checked.
  const mayRefuse = new Set<ConvActivation>(["gelu_erf", "gelu_tanh"]);
  for (const activation of ["tanh", "gelu_erf", "gelu_tanh"] as const satisfies readonly ConvActivation[]) {
    it(`conv + bias + ${activation}, NCHW fp32${mayRefuse.has(activation) ? " (or refused with cuDNN's status)" : ""}`, () => {
      const cudnn = Cudnn.create();
      const spec = { layout: "NCHW", dtype: "float32", n: 2, c: 8, h: 7, w: 7, k: 16, r: 3, s: 3 } as const;
      let plan: ReturnType<typeof buildConvPlan>;
      try {
        plan = buildConvPlan(cudnn, { ...spec, padding: 1, bias: true, activation });
      } catch (e) {
        cudnn.destroy();
        if (!mayRefuse.has(activation)) throw e;
        assert.match(String(e), /CUDNN_STATUS_NOT_SUPPORTED/);
        report(`conv.device.${activation}`, { refused: String(e).slice(0, 160) });
        return;
      }
      const x = operand(11, X, "NCHW", "float32");
      const w = operand(12, W, "NCHW", "float32", 0.3);
      const b = operand(13, [1, 16, 1, 1], "NCHW", "float32", 0.2);
      const io = {
        x: DeviceBuffer.from(x.bytes),
        w: DeviceBuffer.from(w.bytes),
        bias: DeviceBuffer.from(b.bytes),
        y: DeviceBuffer.alloc(plan.geometry.y.bytes),
      };
      try {
        plan.execute(io);
        const hw = Y[2] * Y[3];
        const ref = convReference(x.logical, w.logical, X, W, Y, 1, 1).map((v, i) =>
          ACT[activation](v + b.logical[Math.floor(i / hw) % 16]),
        );
        const err = relError(readBack(io.y, Y, "NCHW", "float32"), ref);
        report(`conv.device.${activation}`, { err, engine: plan.engineIndex });
        assert.ok(err <= 1e-4, `${activation}: ${err}`);
      } finally {
        plan.destroy();
        for (const buf of Object.values(io)) buf.free();
        cudnn.destroy();
      }
    });
  }
});

/** Y[b] = A[b]·op(B) (+ bias, activation) in float64; B broadcast over the batch when `bBatched` is false. */
function matmulReference(
  a: Float32Array,
  b: Float32Array,
  g: MatmulGeometry,
  bias?: Float32Array,
  act?: (v: number) => number,
): Float64Array {
  const rows = g.m * g.batch;
  const y = new Float64Array(rows * g.n);
  for (let bi = 0; bi < g.batch; bi++)
    for (let i = 0; i < g.m; i++)
      for (let j = 0; j < g.n; j++) {
        let acc = bias ? bias[j] : 0;
        for (let p = 0; p < g.k; p++) {
          const av = a[bi * g.strideA + i * g.k + p];
          const bv = g.bT ? b[bi * g.strideB + j * g.k + p] : b[bi * g.strideB + p * g.n + j];
          acc += av * bv;
        }
        y[(bi * g.m + i) * g.n + j] = act ? act(acc) : acc;
      }
  return y;
}

function randomF32(seed: number, n: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

describe("engine matmul plans on cuBLASLt", { skip }, () => {
  const cases: { name: string; g: MatmulGeometry; bias: boolean; activation: "none" | "relu" | "gelu" }[] = [
    {
      name: "strided batch 3, B [N,K] broadcast",
      g: { ...matmulShape(5, 6, 8, { bT: true, batch: 3, strideA: 40, strideD: 30 }), dtype: "float32" },
      bias: false,
      activation: "none",
    },
    {
      name: "linear (batch folded into M) + bias + gelu",
      g: { ...matmulShape(12, 24, 32, { bT: true }), dtype: "float32" },
      bias: true,
      activation: "gelu",
    },
    {
      name: "B [K,N] + bias + relu",
      g: { ...matmulShape(7, 16, 16), dtype: "float32" },
      bias: true,
      activation: "relu",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const handle = createLtHandle();
      const built = buildLtMatmul(handle, c.g, { bias: c.bias, activation: c.activation }, false, 32 << 20);
      if (!built.ok) assert.fail(built.reason);
      const g = c.g;
      const a = randomF32(21, g.batch * g.m * g.k);
      const b = randomF32(22, g.k * g.n * (g.strideB === 0 ? 1 : g.batch));
      const bias = c.bias ? randomF32(23, g.n) : undefined;
      const da = DeviceBuffer.from(a);
      const db = DeviceBuffer.from(b);
      const dbias = bias ? DeviceBuffer.from(bias) : undefined;
      const dd = DeviceBuffer.alloc(g.batch * g.m * g.n * 4);
      const ws = DeviceBuffer.alloc(Math.max(256, built.plan.workspaceBytes));
      const stream = Stream.create();
      try {
        built.plan.bind(da.ptr, db.ptr, dd.ptr, dbias?.ptr, ws.ptr);
        built.plan.execute(stream);
        stream.synchronize();
        const act = c.activation === "none" ? undefined : c.activation === "relu" ? ACT.relu : ACT.gelu_tanh;
        const err = relError(
          dd.download(new Float32Array(g.batch * g.m * g.n)),
          matmulReference(a, b, g, bias, act),
        );
        report(`matmul.${c.name}`, { err });
        assert.ok(err <= 1e-4, `${c.name}: ${err}`);
      } finally {
        built.plan.destroy();
        for (const buf of [da, db, dd, ws, ...(dbias ? [dbias] : [])]) buf.free();
        stream.destroy();
        destroyLtHandle(handle);
      }
    });
  }
});
