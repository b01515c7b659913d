/**
 * Prints what the native layer sees on this machine: where each library is searched and found (or the full
 * "searched, in order" message when it is not), and the versions each one reports. Never fails: it is the
 * diagnostic printed before GPU tests and benchmarks (`bash scripts/gpu.sh env`).
 */
import { CudaContext, Cudnn, LibTorch, deviceCount, nvrtcVersion } from "../../src/backends/cuda/device/index.js";
import { ALL_LIBRARIES, CUBLASLT, NVRTC, cudaIncludeDirs, koffi, pythonFor, searchPlaces, systemHost } from "../../src/ffi/index.js";

function line(label: string, value: unknown): void {
  console.log(`${label.padEnd(28)} ${typeof value === "string" ? value : JSON.stringify(value)}`);
}

function attempt(label: string, f: () => unknown): void {
  try {
    line(label, f());
  } catch (e) {
    line(label, `FAILED: ${(e as Error).message}`);
  }
}

// A library found nowhere: the full list of places searched, not only the one-line summary.
process.env.TORCHC_VERBOSE ??= "1";
const host = systemHost();
line("node", process.version);
attempt("koffi", () => koffi().version);
line("python for site-packages", pythonFor(host) ?? "(none)");
const { places, notes } = searchPlaces(host);
console.log("search places, in order:");
places.forEach((p, i) => console.log(`  ${String(i + 1).padStart(2)}. ${p.dir}  [${p.source}]`));
for (const n of notes) console.log(`  note: ${n}`);
console.log("  then the loader path (absolute-only libraries: LD_LIBRARY_PATH and ldconfig -p)");
console.log("libraries:");
for (const lib of ALL_LIBRARIES) {
  try {
    const { path, source } = lib.load();
    line(`  ${lib.id}`, `${path}  [${source}]`);
  } catch (e) {
    console.log(`  ${lib.id}: NOT FOUND\n${(e as Error).message.replace(/^/gm, "      ")}`);
  }
}
attempt("cuda include dirs", () => cudaIncludeDirs(host));
console.log("versions:");
attempt("  devices", () => {
  const n = deviceCount();
  const ctx = CudaContext.get(0);
  return { count: n, device0: ctx.info, arch: ctx.arch };
});
attempt("  nvrtc", () => nvrtcVersion().join("."));
attempt("  cublasLt", () => CUBLASLT.fn.cublasLtGetVersion());
attempt("  cudnn", () => Cudnn.version());
attempt("  nvrtc path", () => NVRTC.path ?? "(not loaded)");
attempt("  torch (stable ABI)", () => LibTorch.load().version);
