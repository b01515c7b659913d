import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // GPU tests run on the GPU machine through `npm run test:gpu` (node:test); test/gpu.skipped.test.ts says so here.
    exclude: [...configDefaults.exclude, "test/gpu/**"],
    testTimeout: 60_000,
    pool: "forks",
  },
});
