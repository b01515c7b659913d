/**
 * What a scheduled step is, for the profile: its kind (which kind of kernel or library call) and the IR nodes
 * its layers came from (converters name layers `<node>/<what>`).
 */
import type { ProfiledKind } from "../../../core/profile.js";
import type { Layer } from "../../../network/layers/index.js";
import { type Step, stepLayers } from "../fuse/steps.js";

export interface StepLabel {
  readonly kind: ProfiledKind;
  readonly nodes: readonly string[];
}

/** The IR node a layer came from. */
export function nodeOf(layer: Layer): string {
  const slash = layer.name.indexOf("/");
  return slash > 0 ? layer.name.slice(0, slash) : layer.name;
}

function kindOf(s: Step, generatedGemm: boolean): ProfiledKind {
  switch (s.kind) {
    case "element":
      // Relayout and unstage copies the scheduler adds around library calls are groups of identities.
      return s.group.layers.every((l) => l.type === "identity") ? "copy" : "element";
    case "reduce":
    case "softmax":
    case "normalization":
      return "rows";
    case "attention":
      return "attention";
    case "conv":
      // the tensor-core 1×1 convolutions apart from the small-GEMM matmuls below
      if (s.engine === "cudnn") return generatedGemm ? "conv-int8" : "cudnn";
      return s.engine === "gemm" ? "conv-gemm" : s.engine;
    case "matmul":
      return generatedGemm ? "gemm" : "cublaslt";
  }
}

/**
 * `generatedGemm`: a matmul step the generated small GEMM runs (small-gemm-select.ts), not cuBLASLt, or an int8
 * convolution the generated implicit GEMM runs (igemm-conv-select.ts), not cuDNN; `sparse`: a
 * linear or 1×1 convolution cuSPARSELt runs (sparse-select.ts).
 */
export function stepLabel(s: Step, generatedGemm = false, sparse = false): StepLabel {
  const kind = sparse ? "cusparselt" : kindOf(s, generatedGemm);
  return { kind, nodes: [...new Set(stepLayers(s).map(nodeOf))] };
}
