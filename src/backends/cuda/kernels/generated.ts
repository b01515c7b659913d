/**
 * Source for every step that runs a generated kernel, and the one NVRTC program that holds them all
 * (identical kernels are emitted once). Pure: compiling and loading happen in the builder.
 */

import type { DType } from "../../../ir/dtype.js";
import { generateAttentionKernel } from "../codegen/attention.js";
import { generateChannelSumsKernel } from "../codegen/channel-sums.js";
import { PRELUDE } from "../codegen/ctypes.js";
import { depthwiseRowBlocking, generateDepthwiseRowsKernel } from "../codegen/depthwise-rows.js";
import type { CodegenContext, GeneratedKernel } from "../codegen/element.js";
import { generateElementKernel, vectorWidth } from "../codegen/element.js";
import { generateExciteKernel } from "../codegen/excite.js";
import { generateFlashAttentionKernel } from "../codegen/flash-attention.js";
import { generateGemvKernel } from "../codegen/gemv.js";
import { generatePointwiseConvKernel } from "../codegen/pointwise-conv.js";
import { generatePointwiseGemmKernel } from "../codegen/pointwise-gemm.js";
import { generateNormalizationKernel, generateReduceKernel, generateSoftmaxKernel } from "../codegen/rows.js";
import { generateSpatialMeanKernel, spatialMeanShape } from "../codegen/spatial-mean.js";
import type { Step } from "../fuse/steps.js";

export function generateStepKernel(
  step: Step,
  name: string,
  ctx: CodegenContext,
): GeneratedKernel | undefined {
  switch (step.kind) {
    case "element": {
      if (step.group.channelSums) return generateChannelSumsKernel(name, step.group, ctx);
      const rows = depthwiseRowBlocking(step.group, ctx, vectorWidth(step.group, ctx));
      return rows
        ? generateDepthwiseRowsKernel(name, step.group, ctx, rows)
        : generateElementKernel(name, step.group, ctx);
    }
    case "reduce": {
      const spatial = spatialMeanShape(step.layer, ctx);
      return spatial
        ? generateSpatialMeanKernel(name, step.layer, ctx, spatial)
        : generateReduceKernel(name, step.layer, ctx);
    }
    case "softmax":
      return generateSoftmaxKernel(name, step.layer, ctx, step);
    case "normalization":
      return generateNormalizationKernel(name, step.layer, ctx, step);
    case "attention":
      return step.choice.kernel === "flash"
        ? generateFlashAttentionKernel(name, step.layer, ctx, step.choice.config)
        : generateAttentionKernel(name, step.layer, ctx);
    case "conv":
      if (step.engine === "pointwise") return generatePointwiseConvKernel(name, step, ctx);
      if (step.engine === "gemm") return generatePointwiseGemmKernel(name, step, ctx);
      if (step.engine !== "gemv") return undefined;
      return step.next ? generateExciteKernel(name, step, ctx) : generateGemvKernel(name, step, ctx);
    default:
      return undefined;
  }
}

export interface Program {
  readonly source: string;
  /** For each input kernel, the symbol of the (possibly shared) kernel in the program. */
  readonly symbols: readonly string[];
  readonly uniqueKernels: number;
  /** What `source` is made of: the prelude, then each distinct kernel (its symbol and source) in order. */
  readonly prelude: string;
  readonly units: readonly { readonly symbol: string; readonly source: string }[];
}

/** Concatenates kernels into one translation unit, emitting each distinct body once. */
export function assembleProgram(kernels: readonly GeneratedKernel[], dtypes: ReadonlySet<DType>): Program {
  const byBody = new Map<string, string>();
  const units: { symbol: string; source: string }[] = [];
  const symbols = kernels.map((k) => {
    const body = k.source
      .replace(`void __launch_bounds__`, "")
      .replace(new RegExp(`\\b${k.name}\\(`), "KERNEL(");
    const known = byBody.get(body);
    if (known) return known;
    byBody.set(body, k.name);
    units.push({ symbol: k.name, source: k.source });
    return k.name;
  });
  const prelude = dtypes.has("bfloat16") ? PRELUDE : PRELUDE.replace("#include <cuda_bf16.h>\n", "");
  const source = `${prelude}\n${units.map((u) => u.source).join("\n")}`;
  return { source, symbols, uniqueKernels: units.length, prelude, units };
}

/**
 * The program as `parts` programs (at most one per kernel) of about equal source length, each with the prelude, for NVRTC to
 * compile at once on worker threads. Contiguous runs of kernels, so the same plan always splits the same way
 * (each part is cached on its own). One part is the program itself.
 */
export function splitProgram(
  program: Program,
  parts: number,
): { readonly source: string; readonly symbols: readonly string[] }[] {
  const n = Math.max(1, Math.min(Math.floor(parts), program.units.length));
  if (n === 1) return [{ source: program.source, symbols: program.units.map((u) => u.symbol) }];
  const total = program.units.reduce((a, u) => a + u.source.length, 0);
  const groups: { symbol: string; source: string }[][] = [[]];
  let done = 0;
  program.units.forEach((u, i) => {
    const current = groups[groups.length - 1];
    // a new part once the parts so far hold their share of the source, or when every part still to fill needs
    // one of the kernels left
    const share = done >= (total * groups.length) / n;
    const needed = program.units.length - i <= n - groups.length;
    if (current.length > 0 && groups.length < n && (share || needed)) groups.push([]);
    groups[groups.length - 1].push(u);
    done += u.source.length;
  });
  return groups.map((g) => ({
    source: `${program.prelude}\n${g.map((u) => u.source).join("\n")}`,
    symbols: g.map((u) => u.symbol),
  }));
}
