/**
 * A straightforward fused attention kernel: one block per (batch, query row). The query row and the row of
 * scores live in shared memory; scores → mask → softmax (fp32, fully masked rows give zeros as PyTorch's
 * math SDPA) → weighted sum of values. Correct for any layout; fast enough for ViT-sized sequences.
 */
import { numel } from "../../../ir/tensor.js";
import type { AttentionLayer } from "../../../network/layers/index.js";
import { addressedElements } from "../plan/tensors.js";
import { floatLiteral } from "./ctypes.js";
import { broadcastCoords, type CodegenContext, type GeneratedKernel } from "./element.js";
import { decompose, Emitter, indexType } from "./emitter.js";

const THREADS = 128;

interface AttentionShape {
  readonly batch: readonly number[];
  /** Query rows, features, keys, value features. */
  readonly L: number;
  readonly E: number;
  readonly S: number;
  readonly Ev: number;
}

function attentionShape(layer: AttentionLayer, ctx: CodegenContext): AttentionShape {
  const [q, k, v] = layer.inputs;
  const qi = ctx.info(q);
  const ki = ctx.info(k);
  const vi = ctx.info(v);
  const [L, E] = qi.shape.slice(-2);
  const S = ki.shape[ki.shape.length - 2];
  const Ev = vi.shape[vi.shape.length - 1];
  if ((S + E) * 4 > 46 * 1024)
    throw new Error(
      `attention layer '${layer.name}': ${S} keys × ${E} features exceed the fused kernel's shared memory`,
    );
  return { batch: ctx.info(layer.output).shape.slice(0, -2), L, E, S, Ev };
}

/** `v` reduced (max or sum) over the block: warp shuffles, then the warps' partials through `red`. */
function blockReduce(e: Emitter, v: string, op: "max" | "sum"): void {
  e.line(`${v} = ${op === "max" ? `tc_warp_max(${v})` : `tc_warp_sum(${v})`};`);
  e.line(`if ((tid & 31) == 0) red[tid >> 5] = ${v};`);
  e.line("__syncthreads();");
  e.line(`${v} = red[0];`);
  e.line(
    `for (int w = 1; w < ${THREADS / 32}; ++w) ${v} = ${op === "max" ? `fmaxf(${v}, red[w])` : `${v} + red[w]`};`,
  );
  e.line("__syncthreads();");
}

/** The query row into shared memory, then each key's scaled (causal, masked) score into sc and its max into mx. */
function emitScores(
  e: Emitter,
  layer: AttentionLayer,
  ctx: CodegenContext,
  sh: AttentionShape,
  bc: string[],
): void {
  const [q, k, , mask] = layer.inputs;
  const qb = broadcastCoords(bc, ctx.info(q).shape.slice(0, -2));
  const kb = broadcastCoords(bc, ctx.info(k).shape.slice(0, -2));
  e.block(`for (int t = tid; t < ${sh.E}; t += ${THREADS})`, () => {
    e.line(`qs[t] = (float)${e.load(q, [...qb, "i", "t"])};`);
  });
  e.line("__syncthreads();");
  e.line(`float mx = -TC_INF;`);
  e.block(`for (int j = tid; j < ${sh.S}; j += ${THREADS})`, () => {
    e.line("float s = 0.0f;");
    e.block(`for (int t = 0; t < ${sh.E}; ++t)`, () => {
      e.line(`s += qs[t] * (float)${e.load(k, [...kb, "j", "t"])};`);
    });
    e.line(`s *= ${floatLiteral(layer.scale)};`);
    if (layer.causal) e.line("if (j > i) s = -TC_INF;");
    if (mask) {
      const mi = ctx.info(mask);
      const mc = broadcastCoords([...bc, "i", "j"], mi.shape);
      const m = e.load(mask, mc);
      if (mi.logicalDType === "bool") e.line(`if (!${m}) s = -TC_INF;`);
      else e.line(`s += (float)${m};`);
    }
    e.line("sc[j] = s;");
    e.line("mx = fmaxf(mx, s);");
  });
}

/** Softmax of the scores in place (a fully masked row gives zeros), then the weighted sum of values. */
function emitSoftmaxAndValues(
  e: Emitter,
  layer: AttentionLayer,
  ctx: CodegenContext,
  sh: AttentionShape,
  bc: string[],
): void {
  const v = layer.inputs[2];
  const vb = broadcastCoords(bc, ctx.info(v).shape.slice(0, -2));
  blockReduce(e, "mx", "max");
  e.line("const bool dead = mx == -TC_INF;");
  e.line("float sum = 0.0f;");
  e.block(`for (int j = tid; j < ${sh.S}; j += ${THREADS})`, () => {
    e.line("const float p = dead ? 0.0f : __expf(sc[j] - mx);");
    e.line("sc[j] = p;");
    e.line("sum += p;");
  });
  blockReduce(e, "sum", "sum");
  e.line("const float inv = dead ? 0.0f : 1.0f / sum;");
  e.block(`for (int t = tid; t < ${sh.Ev}; t += ${THREADS})`, () => {
    e.line("float acc = 0.0f;");
    e.block(`for (int j = 0; j < ${sh.S}; ++j)`, () => {
      e.line(`acc += sc[j] * (float)${e.load(v, [...vb, "j", "t"])};`);
    });
    e.store(layer.output, [...bc, "i", "t"], "acc * inv", ctx.info(layer.output).logicalDType);
  });
}

export function generateAttentionKernel(
  name: string,
  layer: AttentionLayer,
  ctx: CodegenContext,
): GeneratedKernel {
  const [q, k, v, mask] = layer.inputs;
  const sh = attentionShape(layer, ctx);
  const idx = indexType(
    // a strided q/k/v view addresses its root beyond its own numel
    [q, k, v, layer.output, ...(mask ? [mask] : [])].map((t) => addressedElements(ctx.info(t)) * 4),
  );
  const e = new Emitter(ctx.info, idx);
  e.line(`__shared__ float qs[${sh.E}];`);
  e.line(`__shared__ float sc[${sh.S}];`);
  e.line(`__shared__ float red[${THREADS / 32}];`);
  e.line("const int tid = threadIdx.x;");
  e.line(`const ${idx} blk = blockIdx.x;`);
  e.line(`const ${idx} i = blk % ${sh.L};`);
  e.line(`const ${idx} b = blk / ${sh.L};`);
  const bc = decompose(
    e,
    "b",
    sh.batch,
    sh.batch.map((_, a) => a),
  );
  emitScores(e, layer, ctx, sh, bc);
  emitSoftmaxAndValues(e, layer, ctx, sh, bc);
  const source = `extern "C" __global__ void __launch_bounds__(${THREADS}) ${name}(${e.signature()}) {\n${e.body()}\n}\n`;
  return {
    name,
    source,
    params: e.params,
    grid: [Math.max(1, numel(sh.batch) * sh.L), 1, 1],
    block: [THREADS, 1, 1],
    sharedBytes: 0,
  };
}
