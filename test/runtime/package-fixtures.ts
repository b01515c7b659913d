// What the .torchc package tests (package-format.test.ts, package-inspect.test.ts) build on.
import { join } from "node:path";
import { loadModel } from "../../src/frontends/load-model.js";
import { type CompiledModule, compile } from "../../src/runtime/compile.js";
import type { BuildTarget } from "../../src/runtime/package-artifacts.js";
import { MODELS, tempDir } from "../helpers.js";

/** The build target the packages with saved engines claim. */
export const H100: BuildTarget = {
  backend: "cuda",
  arch: "sm_90",
  device: "NVIDIA H100 80GB HBM3",
  driver: 13000,
  cuda: "13.0",
  cudnn: 91900,
  cublasLt: 130100,
};

/** fixtures' mlp.pt2 compiled on the reference backend and saved as a plain package (`plain`, mlp.torchc). */
export async function plainMlpPackage(): Promise<{ compiled: CompiledModule; plain: string }> {
  const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
  const plain = join(tempDir(), "mlp.torchc");
  compiled.save(plain);
  return { compiled, plain };
}
