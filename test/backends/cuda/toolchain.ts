import { execFileSync } from "node:child_process";

/** Whether the CUDA toolkit's nvcc is on PATH (tests that compile generated CUDA for sm_90 skip without it). */
export function hasNvcc(): boolean {
  try {
    execFileSync("nvcc", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
