/**
 * 1×1 convolutions on 1×1 feature maps (squeeze-excite, classifier heads) are matrix-vector products: one
 * warp per output element, lanes striding over input channels (coalesced along both x and the weight row),
 * a shuffle reduction, then bias and the fused activations. One small kernel instead of a cuDNN call.
 */
import { numel } from "../../../ir/tensor.js";
import type { ConvStep, SpatialMeanSource } from "../fuse/steps.js";
import type { CodegenContext, GeneratedKernel } from "./element.js";
import { Emitter, indexType } from "./emitter.js";
import { activationExpr } from "./scalar-ops.js";

const ROWS_PER_BLOCK = 8;

/**
 * x[nn, ci] of a spatial mean its producer left as per-tile channel sums (fuse/steps.ts SpatialMeanSource): the
 * tiles added in order, then divided by the pixel count as the reduce kernel does.
 */
export function spatialMean(
  e: Emitter,
  src: SpatialMeanSource,
  nn: string,
  ci: string,
  channels: number,
): string {
  const p = e.param(src.partials);
  const s = e.fresh("xs");
  e.line(`float ${s} = 0.0f;`);
  e.line(
    `for (int t = 0; t < ${src.tiles}; ++t) ${s} += ${p}[((${e.idx})(${nn}) * ${src.tiles} + t) * ${channels} + (${ci})];`,
  );
  return e.let("float", `${s} / (float)${src.count}`);
}

export function generateGemvKernel(name: string, step: ConvStep, ctx: CodegenContext): GeneratedKernel {
  const [, w, b] = step.layer.inputs;
  const x = step.x;
  const xi = ctx.info(x);
  const out = ctx.info(step.output);
  const [n, cin] = xi.shape;
  const cout = out.shape[1];
  const rows = n * cout;
  const idx = indexType(
    [numel(xi.shape) * (step.xMean?.tiles ?? 1), numel(ctx.info(w).shape), rows].map((v) => v * 4),
  );
  const e = new Emitter(ctx.info, idx);
  e.line("const int lane = threadIdx.x & 31;");
  e.line(`const ${idx} row = (${idx})blockIdx.x * ${ROWS_PER_BLOCK} + (threadIdx.x >> 5);`);
  e.line(`if (row >= ${rows}) return;`);
  e.line(`const ${idx} nn = row / ${cout};`);
  e.line(`const ${idx} co = row % ${cout};`);
  e.line("float acc = 0.0f;");
  e.block(`for (int ci = lane; ci < ${cin}; ci += 32)`, () => {
    const xv = step.xMean ? spatialMean(e, step.xMean, "nn", "ci", cin) : e.load(x, ["nn", "ci", "0", "0"]);
    const wv = e.load(w, ["co", "ci", "0", "0"]);
    e.line(`acc += (float)${xv} * (float)${wv};`);
  });
  e.line("acc = tc_warp_sum(acc);");
  e.block("if (lane == 0)", () => {
    let v = b ? e.let("float", `acc + (float)${e.load(b, ["co"])}`) : "acc";
    for (const op of step.epilogue) {
      if (op.kind !== "act") throw new Error("gemv epilogues hold activations only");
      v = e.let(
        "float",
        activationExpr({ kind: op.fn } as Parameters<typeof activationExpr>[0], v, "float32"),
      );
    }
    e.store(step.output, ["nn", "co", "0", "0"], v, out.logicalDType);
  });
  const source = `extern "C" __global__ void __launch_bounds__(${32 * ROWS_PER_BLOCK}) ${name}(${e.signature()}) {\n${e.body()}\n}\n`;
  return {
    name,
    source,
    params: e.params,
    grid: [Math.ceil(rows / ROWS_PER_BLOCK), 1, 1],
    block: [32 * ROWS_PER_BLOCK, 1, 1],
    sharedBytes: 0,
  };
}
