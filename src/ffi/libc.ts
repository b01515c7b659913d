/**
 * The C library, for one thing: memcpy called on koffi's worker threads, so large host copies into pinned
 * staging run in parallel and off the JS thread (backends/cuda/device/host-copy.ts). Addresses are passed as
 * integers; the caller checks every range before the call.
 */
import { defineLibrary } from "./library.js";

export interface LibcApi {
  memcpy(dst: bigint, src: bigint, bytes: number): bigint;
}

export const LIBC = defineLibrary<LibcApi>({
  id: "libc",
  title: "the C library",
  files: ["libc.so.6"],
  absolute: false,
  prototypes: {
    memcpy: "uintptr_t memcpy(uintptr_t dst, uintptr_t src, size_t bytes)",
  },
});
