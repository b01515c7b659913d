// For test files that run native parts through the fake libraries: vitest hooks, so not part of build.ts.
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe } from "vitest";
import { buildFakes } from "./build.js";

/**
 * Builds the fake libraries for this test file: before its tests, library discovery is pointed at them (no
 * Python) and its cache cleared; after them, they are removed. Returns `describe` for the suites that need them,
 * or `describe.skip` where no C compiler could build them.
 */
export function fakeLibrarySuite(): typeof describe {
  const fakes = buildFakes();
  beforeAll(async () => {
    if (!fakes) return;
    process.env.TORCHC_LIBRARY_PATH = fakes;
    process.env.TORCHC_PYTHON = "none";
    (await import("../../../src/ffi/index.js")).clearDiscoveryCache();
  });
  afterAll(() => {
    if (fakes) rmSync(fakes, { recursive: true, force: true });
  });
  return fakes ? describe : (describe.skip as typeof describe);
}
