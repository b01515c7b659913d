/**
 * Squeeze-excite's two 1×1 convolutions on 1×1 maps in one kernel (a gemv step with `next`, fuse/schedule.ts):
 * each block computes one sample's whole hidden vector into shared memory (warp per hidden unit, lanes over the
 * input channels), then a slice of the expand convolution's outputs from it (warp per output). With several
 * slices per sample the hidden vector is recomputed per block: it is small (≤ a few hundred dot products), and a
 * second launch costs more at small batch than the repeated arithmetic.
 */
import { numel } from "../../../ir/tensor.js";
import type { ConvStep, SpatialMeanSource } from "../fuse/steps.js";
import type { CodegenContext, GeneratedKernel } from "./element.js";
import { Emitter, indexType } from "./emitter.js";
import { spatialMean } from "./gemv.js";
import { SEGMENTED_SHUFFLES } from "./rows-knobs.js";
import { activationExpr } from "./scalar-ops.js";

const WARPS = 16;
/** Blocks to aim for across the batch: about two per SM on an H100, fewer slices as the batch grows. */
const TARGET_BLOCKS = 264;
const MIN_OUTPUTS_PER_SLICE = 64;
/** Channels per lane in the wide loops: one 16-byte load of fp16/bf16. */
const LANE_WIDTH = 8;

type Act = Parameters<typeof activationExpr>[0];

function epilogue(e: Emitter, step: ConvStep, acc: string, co: string): string {
  const b = step.layer.inputs[2];
  let v = b ? e.let("float", `${acc} + (float)${e.load(b, [co])}`) : acc;
  for (const op of step.epilogue) {
    if (op.kind !== "act") throw new Error("gemv epilogues hold activations only");
    v = e.let("float", activationExpr({ kind: op.fn } as Act, v, "float32"));
  }
  return v;
}

export function generateExciteKernel(name: string, first: ConvStep, ctx: CodegenContext): GeneratedKernel {
  const second = first.next;
  if (!second) throw new Error("generateExciteKernel needs a gemv step with a next step");
  const xi = ctx.info(first.x);
  const out = ctx.info(second.output);
  const [n, cin] = xi.shape;
  const hidden = ctx.info(first.output).shape[1];
  const cout = out.shape[1];
  const slices = Math.max(
    1,
    Math.min(Math.ceil(cout / MIN_OUTPUTS_PER_SLICE), Math.floor(TARGET_BLOCKS / n)),
  );
  const perSlice = Math.ceil(cout / slices);
  const w1 = first.layer.inputs[1];
  const w2 = second.layer.inputs[1];
  const idx = indexType(
    [
      numel(xi.shape) * (first.xMean?.tiles ?? 1),
      numel(ctx.info(w1).shape),
      numel(ctx.info(w2).shape),
      n * cout,
    ].map((v) => v * 4),
  );
  const e = new Emitter(ctx.info, idx);
  e.line(`__shared__ float hid[${hidden}];`);
  const mean = first.xMean;
  e.line("const int lane = threadIdx.x & 31;");
  e.line("const int warp = threadIdx.x >> 5;");
  e.line(`const ${idx} nn = (${idx})blockIdx.x / ${slices};`);
  e.line(`const int slice = blockIdx.x % ${slices};`);
  if (mean) {
    // The pooled input from its producer's tile sums, once per block, before any warp reads it.
    e.line(`__shared__ float xin[${cin}];`);
    pooledInput(e, mean, cin);
    e.line("__syncthreads();");
  }
  const vector = process.env.TORCHC_EXCITE_VECTOR !== "0";
  const wide = (t: string) => vectorizable(e, t, 1);
  const squeezeWidth =
    vector && cin % LANE_WIDTH === 0 && wide(w1) && (mean !== undefined || wide(first.x)) ? LANE_WIDTH : 1;
  squeeze(e, first, hidden, cin, mean !== undefined, squeezeWidth);
  e.line("__syncthreads();");
  e.line(`const int end = min(${cout}, (slice + 1) * ${perSlice});`);
  if (vector && hidden % LANE_WIDTH === 0 && wide(w2)) exciteWide(e, second, hidden, perSlice);
  else exciteScalar(e, second, hidden, perSlice);
  const source = `${SEGMENTED_SHUFFLES}extern "C" __global__ void __launch_bounds__(${32 * WARPS}) ${name}(${e.signature()}) {\n${e.body()}\n}\n`;
  return {
    name,
    source,
    params: e.params,
    grid: [n * slices, 1, 1],
    block: [32 * WARPS, 1, 1],
    sharedBytes: 0,
  };
}

/**
 * xin[c] = Σ_tiles partials[nn, tile, c] / count. With few channels the block's threads split the tiles too: S
 * threads per channel each add every S-th tile, then one adds the S partial sums (a fixed order: the same bytes
 * every run). One thread per channel adding a 112² layer's ~100 tiles one after another was a chain of ~100
 * dependent L2 loads in every block, which made the depthwise fold slower than the reduce it replaced (H200,
 * session 10: 0.437 against 0.393 ms at EfficientNet-B0 batch 1).
 */
function pooledInput(e: Emitter, mean: SpatialMeanSource, cin: number): void {
  const threads = 32 * WARPS;
  // TORCHC_SE_POOL_SPLIT=0: one thread per channel adds every tile (the old reader, for A/B timing)
  const split =
    process.env.TORCHC_SE_POOL_SPLIT === "0"
      ? 1
      : Math.max(1, Math.min(mean.tiles, Math.floor(threads / cin)));
  if (split === 1) {
    e.block(`for (int ci = threadIdx.x; ci < ${cin}; ci += ${threads})`, () =>
      e.line(`xin[ci] = ${spatialMean(e, mean, "nn", "ci", cin)};`),
    );
    return;
  }
  const p = e.param(mean.partials);
  e.line(`__shared__ float xpart[${split * cin}];`);
  e.block(`if (threadIdx.x < ${split * cin})`, () => {
    e.line(`const int ci = threadIdx.x % ${cin};`);
    e.line(`const int s = threadIdx.x / ${cin};`);
    e.line("float acc = 0.0f;");
    e.line(
      `for (int t = s; t < ${mean.tiles}; t += ${split}) acc += ${p}[((${e.idx})nn * ${mean.tiles} + t) * ${cin} + ci];`,
    );
    e.line(`xpart[s * ${cin} + ci] = acc;`);
  });
  e.line("__syncthreads();");
  e.block(`if (threadIdx.x < ${cin})`, () => {
    e.line("float acc = 0.0f;");
    e.line(`for (int s = 0; s < ${split}; ++s) acc += xpart[s * ${cin} + threadIdx.x];`);
    e.line(`xin[threadIdx.x] = acc / (float)${mean.count};`);
  });
}

/** Whether `tensor` can be read LANE_WIDTH elements at a time along `axis` (unit stride, 16-byte aligned rows). */
function vectorizable(e: Emitter, tensor: string, axis: number): boolean {
  e.vec = { base: "vb", width: LANE_WIDTH };
  try {
    return e.vectorizable(tensor, axis) && e.info(tensor).shape.length === 4;
  } finally {
    e.vec = undefined;
  }
}

/**
 * The hidden vector, warp per hidden unit, each lane reading `width` consecutive input channels of x and of the
 * weight row at a time: 8 (one 16-byte load each) makes a 1152-channel dot product 5 dependent loads per lane
 * instead of 36; 1 is the scalar loop.
 */
function squeeze(
  e: Emitter,
  first: ConvStep,
  hidden: number,
  cin: number,
  pooled: boolean,
  width: number,
): void {
  const w1 = first.layer.inputs[1];
  const v = width > 1 ? "vb" : "ci";
  e.block(`for (int j = warp; j < ${hidden}; j += ${WARPS})`, () => {
    e.line("float acc = 0.0f;");
    const head = width > 1 ? `${v} = lane * ${width}` : `${v} = lane`;
    e.block(`for (int ${head}; ${v} < ${cin}; ${v} += ${32 * width})`, () => {
      if (width > 1) e.vec = { base: v, width };
      try {
        for (let q = 0; q < width; q++) {
          const c = width > 1 ? `${v}+${q}` : v;
          const xv = pooled ? `xin[${c}]` : e.load(first.x, ["nn", c, "0", "0"]);
          e.line(`acc += (float)${xv} * (float)${e.load(w1, ["j", c, "0", "0"])};`);
        }
      } finally {
        e.vec = undefined;
      }
    });
    e.line("acc = tc_warp_sum(acc);");
    e.block("if (lane == 0)", () => e.line(`hid[j] = ${epilogue(e, first, "acc", "j")};`));
  });
}

/** This block's slice of the outputs, warp per output, lanes over the hidden units one at a time. */
function exciteScalar(e: Emitter, second: ConvStep, hidden: number, perSlice: number): void {
  const w2 = second.layer.inputs[1];
  const out = e.info(second.output);
  e.block(`for (int co = slice * ${perSlice} + warp; co < end; co += ${WARPS})`, () => {
    e.line("float acc = 0.0f;");
    e.block(`for (int j = lane; j < ${hidden}; j += 32)`, () => {
      e.line(`acc += hid[j] * (float)${e.load(w2, ["co", "j", "0", "0"])};`);
    });
    e.line("acc = tc_warp_sum(acc);");
    e.block("if (lane == 0)", () =>
      e.store(second.output, ["nn", "co", "0", "0"], epilogue(e, second, "acc", "co"), out.logicalDType),
    );
  });
}

/**
 * This block's slice of the outputs with 16-byte weight loads: a group of G lanes per output (G the power of two
 * that covers the hidden units 8 at a time, 8 for SE's usual 32–64), 32 / G outputs per warp at once, a segmented
 * shuffle sum per group. The loop bound is the same for every lane of a warp, so each shuffle has the whole warp.
 */
function exciteWide(e: Emitter, second: ConvStep, hidden: number, perSlice: number): void {
  const w2 = second.layer.inputs[1];
  const out = e.info(second.output);
  let group = 1;
  while (group < 32 && group * LANE_WIDTH < hidden) group *= 2;
  const perWarp = 32 / group;
  e.block(
    `for (int cb = slice * ${perSlice} + warp * ${perWarp}; cb < end; cb += ${WARPS * perWarp})`,
    () => {
      e.line(`const int co = cb + lane / ${group};`);
      e.line("float acc = 0.0f;");
      e.block("if (co < end)", () => {
        e.block(
          `for (int vb = (lane % ${group}) * ${LANE_WIDTH}; vb < ${hidden}; vb += ${group * LANE_WIDTH})`,
          () => {
            e.vec = { base: "vb", width: LANE_WIDTH };
            try {
              for (let q = 0; q < LANE_WIDTH; q++)
                e.line(`acc += hid[vb+${q}] * (float)${e.load(w2, ["co", `vb+${q}`, "0", "0"])};`);
            } finally {
              e.vec = undefined;
            }
          },
        );
      });
      e.line(`acc = tc_seg_sum(acc, ${group});`);
      e.block(`if (co < end && lane % ${group} == 0)`, () =>
        e.store(second.output, ["nn", "co", "0", "0"], epilogue(e, second, "acc", "co"), out.logicalDType),
      );
    },
  );
}
