/**
 * Compiles the fake native libraries (fake_*.c) into a temp folder under the sonames discovery looks for.
 * Returns null when no C compiler is available (the tests that need them are then skipped).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe } from "vitest";
import { clearDiscoveryCache } from "../../../src/ffi/index.js";

const here = dirname(fileURLToPath(import.meta.url));

export const FAKES = {
  "libcuda.so.1": "fake_cuda.c",
  "libnvrtc.so.13": "fake_nvrtc.c",
  "libcublasLt.so.13": "fake_cublaslt.c",
  "libcudnn.so.9": "fake_cudnn.c",
  "libcusparseLt.so.0": "fake_cusparselt.c",
} as const;

/** The first C compiler that answers (CC, cc, gcc, clang), or null. */
export function cCompiler(): string | null {
  for (const cc of [process.env.CC, "cc", "gcc", "clang"]) {
    if (!cc) continue;
    try {
      execFileSync(cc, ["--version"], { stdio: "ignore" });
      return cc;
    } catch {
      // next
    }
  }
  return null;
}

export function buildFakes(): string | null {
  const cc = cCompiler();
  if (cc === null) return null;
  const out = mkdtempSync(join(tmpdir(), "torchc-fakes-"));
  for (const [soname, source] of Object.entries(FAKES)) {
    execFileSync(cc, ["-O1", "-shared", "-fPIC", "-o", join(out, soname), join(here, source)], {
      stdio: "pipe",
    });
  }
  return out;
}

/**
 * The fakes for one test file: built now, found through TORCHC_LIBRARY_PATH before its tests run, removed after.
 * `suite` is describe, or describe.skip when no C compiler is available.
 */
export function useFakeLibraries(): { readonly suite: typeof describe | typeof describe.skip } {
  const fakes = buildFakes();
  beforeAll(() => {
    if (!fakes) return;
    process.env.TORCHC_LIBRARY_PATH = fakes;
    process.env.TORCHC_PYTHON = "none";
    clearDiscoveryCache();
  });
  afterAll(() => {
    if (fakes) rmSync(fakes, { recursive: true, force: true });
  });
  return { suite: fakes ? describe : describe.skip };
}
