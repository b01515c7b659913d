/**
 * The C library, for two things called on koffi's worker threads: memcpy, so large host copies into pinned
 * staging run in parallel and off the JS thread (backends/cuda/device/host-copy.ts), and dlopen, so the CUDA
 * libraries load while the JS thread makes the CUDA context (backends/cuda/device/prewarm.ts). Addresses are passed as
 * integers; the caller checks every range before the call.
 */
import { defineLibrary } from "./library.js";

export interface LibcApi {
  memcpy(dst: bigint, src: bigint, bytes: number): bigint;
  /** glibc 2.34+ (older ones keep it in libdl): the CUDA libraries loaded on a worker (cuda/device/prewarm.ts). */
  dlopen(file: string, mode: number): bigint;
}

export const LIBC = defineLibrary<LibcApi>({
  id: "libc",
  title: "the C library",
  files: ["libc.so.6"],
  absolute: false,
  prototypes: {
    memcpy: "uintptr_t memcpy(uintptr_t dst, uintptr_t src, size_t bytes)",
    dlopen: "uintptr_t dlopen(const char* file, int mode)",
  },
});
