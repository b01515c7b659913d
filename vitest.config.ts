import { configDefaults, defineConfig } from "vitest/config";
import { resolveSeed } from "./test/setup/fast-check-seed.js";

// One fast-check seed per run, resolved here so that every worker uses the same one: fixed in `npm test`,
// fresh with TORCHC_FC_SEED=random (`npm run test:fuzz`), printed unless it is the fixed one.
const seed = resolveSeed(process.env.TORCHC_FC_SEED);
if (process.env.TORCHC_FC_SEED) process.stderr.write(`fast-check seed ${seed} (replay: TORCHC_FC_SEED=${seed} npm test)\n`);
process.env.TORCHC_FC_SEED = String(seed);

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // GPU tests run on the GPU machine through `npm run test:gpu` (node:test); test/gpu.skipped.test.ts says so here.
    exclude: [...configDefaults.exclude, "test/gpu/**"],
    setupFiles: ["test/setup/fast-check.ts", "test/setup/yield-between-tests.ts"],
    env: { TORCHC_FC_SEED: String(seed) },
    testTimeout: 60_000,
    pool: "forks",
  },
});
