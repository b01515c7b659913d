/**
 * Cold NVRTC compile time of a planned engine's generated kernels (issue 13: "compile all of a model's kernels in
 * one NVRTC program, or in parallel worker threads; measure which is faster"). Needs NVRTC and the CUDA headers,
 * not a GPU: planning runs on the CPU (the synthetic EfficientNet-B0 of src/backends/cuda/testing/nets.ts), and
 * NVRTC compiles for sm_90 without a device.
 *
 *   TORCHC_LIBRARY_PATH=<folder with libnvrtc.so.13> TORCHC_CUDA_INCLUDE_PATH=<cuda include> \
 *     npx tsx bench/nvrtc-compile.bench.ts [batch ...]
 *
 * Variants, each from an empty cache: one program (what the builder does today); the same kernels split into P
 * programs compiled one after another (the per-program overhead); P programs compiled at once on libuv's worker
 * threads (koffi async calls). Prints a table; JSON on stdout's last line.
 */
import { cpus } from "node:os";
import { PRELUDE } from "../src/backends/cuda/codegen/ctypes.js";
import type { GeneratedKernel } from "../src/backends/cuda/codegen/element.js";
import { compileWithOptions, resolveOptions } from "../src/backends/cuda/device/compile.js";
import { planCudaEngine } from "../src/backends/cuda/plan.js";
import { efficientNetB0 } from "../src/backends/cuda/testing/nets.js";
import { callAsync } from "../src/ffi/library.js";
import { NVRTC } from "../src/ffi/nvrtc.js";
import type { OutPtr } from "../src/ffi/types.js";

function uniqueKernels(kernels: readonly (GeneratedKernel | undefined)[]): GeneratedKernel[] {
  const seen = new Set<string>();
  return kernels.filter((k): k is GeneratedKernel => {
    if (!k || seen.has(k.source)) return false;
    seen.add(k.source);
    return true;
  });
}

function splitPrograms(kernels: readonly GeneratedKernel[], parts: number): string[] {
  const groups: string[][] = Array.from({ length: parts }, () => []);
  // Largest first, each to the lightest group: compile time grows with source length.
  const bySize = [...kernels].sort((a, b) => b.source.length - a.source.length);
  const load = new Array(parts).fill(0);
  for (const k of bySize) {
    const g = load.indexOf(Math.min(...load));
    groups[g].push(k.source);
    load[g] += k.source.length;
  }
  return groups.filter((g) => g.length > 0).map((g) => `${PRELUDE}\n${g.join("\n")}`);
}

async function compileParallel(sources: readonly string[], options: readonly string[]): Promise<void> {
  const f = NVRTC.fn;
  await Promise.all(
    sources.map(async (src, i) => {
      const out: OutPtr = [null];
      f.nvrtcCreateProgram(out, src, `part${i}.cu`, 0, null, null);
      const rc = await callAsync(f.nvrtcCompileProgram, out[0], options.length, [...options]);
      f.nvrtcDestroyProgram([out[0]]);
      if (rc !== 0) throw new Error(`part ${i}: nvrtcCompileProgram returned ${rc}`);
    }),
  );
}

const time = async (fn: () => unknown): Promise<number> => {
  const t = performance.now();
  await fn();
  return Math.round(performance.now() - t);
};

const batches = process.argv.slice(2).map(Number);
const rows: Record<string, unknown>[] = [];
const options = resolveOptions({}, "sm_90");
const P = Math.max(2, Math.min(8, cpus().length));
for (const batch of batches.length ? batches : [1]) {
  const plan = planCudaEngine(efficientNetB0(batch), { precision: "fp16" });
  const kernels = uniqueKernels(plan.kernels);
  const one = await time(() => compileWithOptions(plan.program.source, options));
  const parts = splitPrograms(kernels, P);
  const sequential = await time(() => {
    for (const s of parts) compileWithOptions(s, options);
  });
  const parallel = await time(() => compileParallel(parts, options));
  rows.push({ batch, kernels: kernels.length, cpus: cpus().length, parts: parts.length, one, sequential, parallel });
}
console.log("| batch | unique kernels | one program ms | P programs in turn ms | P programs at once ms | P | cpus |");
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows)
  console.log(`| ${r.batch} | ${r.kernels} | ${r.one} | ${r.sequential} | ${r.parallel} | ${r.parts} | ${r.cpus} |`);
console.log(JSON.stringify(rows));
