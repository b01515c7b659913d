import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "vitest";
import { ROOT } from "./helpers.js";

// The GPU tests need an NVIDIA GPU, CUDA 13 and PyTorch's libraries; they run on the GPU machine with
// `npm run test:gpu` (scripts/gpu.sh). Here they are listed as skipped, with the reason, never faked.
const gpuTests = readdirSync(join(ROOT, "test", "gpu")).filter((f) => f.endsWith(".gpu.test.ts"));

describe("GPU tests (skipped: no GPU in this environment; run `npm run test:gpu` on a GPU machine)", () => {
  for (const f of gpuTests) it.skip(`test/gpu/${f}`, () => {});
});
