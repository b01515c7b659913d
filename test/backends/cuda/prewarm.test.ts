// The library prewarm's choice of files (cuda/device/prewarm.ts): NVRTC, cuDNN and cuBLASLt where discovery would
// load them, then cuDNN's engine libraries next to cuDNN's shim; none when TORCHC_PREWARM=0. And on the fake
// libraries, the worker-thread dlopen leaves the JS thread's later load working.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CUDNN_ENGINE_LIBRARIES,
  prewarmCudaLibraries,
  prewarmPaths,
} from "../../../src/backends/cuda/device/prewarm.js";
import { CUDNN, clearDiscoveryCache } from "../../../src/ffi/index.js";
import { buildFakes } from "../../ffi/fakes/build.js";

const fakes = buildFakes();

const dir = mkdtempSync(join(tmpdir(), "torchc-prewarm-"));
for (const f of ["libnvrtc.so.13", "libcudnn.so.9", "libcublasLt.so.13", ...CUDNN_ENGINE_LIBRARIES])
  writeFileSync(join(dir, f), "");
const saved = { path: process.env.TORCHC_LIBRARY_PATH, python: process.env.TORCHC_PYTHON };

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  if (fakes) rmSync(fakes, { recursive: true, force: true });
  for (const [k, v] of [
    ["TORCHC_LIBRARY_PATH", saved.path],
    ["TORCHC_PYTHON", saved.python],
  ] as const)
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

describe("library prewarm", () => {
  it("loads NVRTC, cuDNN, cuBLASLt, then cuDNN's engine libraries, from where discovery finds them", () => {
    process.env.TORCHC_LIBRARY_PATH = dir;
    process.env.TORCHC_PYTHON = "none";
    expect(prewarmPaths({})).toEqual(
      ["libnvrtc.so.13", "libcudnn.so.9", "libcublasLt.so.13", ...CUDNN_ENGINE_LIBRARIES].map((f) =>
        join(dir, f),
      ),
    );
  });

  it("leaves out engine libraries that are not there, and everything when TORCHC_PREWARM=0", () => {
    process.env.TORCHC_LIBRARY_PATH = dir;
    process.env.TORCHC_PYTHON = "none";
    const paths = prewarmPaths({}, (p) => !p.endsWith("libcudnn_engines_precompiled.so.9"));
    expect(paths.some((p) => p.endsWith("precompiled.so.9"))).toBe(false);
    expect(paths.some((p) => p.endsWith("libcudnn_graph.so.9"))).toBe(true);
    expect(prewarmPaths({ TORCHC_PREWARM: "0" })).toEqual([]);
  });
});

describe.skipIf(!fakes)("library prewarm on the fake libraries", () => {
  it("dlopens them on worker threads, and the JS thread's own load then works", async () => {
    process.env.TORCHC_LIBRARY_PATH = fakes!;
    process.env.TORCHC_PYTHON = "none";
    clearDiscoveryCache();
    const w = prewarmCudaLibraries();
    expect(w.paths.map((p) => p.slice(fakes!.length + 1))).toEqual([
      "libnvrtc.so.13",
      "libcudnn.so.9",
      "libcublasLt.so.13",
    ]);
    expect(await w.done).toBe(3);
    expect(prewarmCudaLibraries()).toBe(w);
    expect(typeof CUDNN.fn.cudnnGetVersion()).toBe("number");
  });
});
