/**
 * Runs a generated flash-attention kernel (src/backends/cuda/codegen/flash-attention.ts) on the CPU: its CUDA
 * source compiled with g++ behind a host shim. The threads of a block are OpenMP threads; shared memory is a
 * function-local static; the warp-level primitives (ldmatrix, mma.sync m16n8k16, quad shuffles) exchange the
 * lanes' registers through a block-wide buffer between two barriers of the warp's 32 threads (a warp that skips
 * a primitive, as a warp-uniform branch does on the GPU, holds up no other warp) and compute what the PTX ISA says
 * each lane receives, so the kernel's fragment bookkeeping, tiling, masking and online softmax run as written. fp16 is the
 * host's _Float16, bf16 a 16-bit word; products accumulate in fp32 as the tensor cores do.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GeneratedKernel } from "../../../src/backends/cuda/codegen/element.js";

const SHIM = `#include <cmath>
#include <cstdint>
#include <cstring>
#include <omp.h>
#include <atomic>
#include <thread>
struct tc_dim3 { unsigned x, y, z; };
static tc_dim3 blockIdx;
static thread_local tc_dim3 threadIdx;
#define __shared__ static
#define __syncthreads() _Pragma("omp barrier")
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
#define TC_INF __int_as_float(0x7f800000)
static inline float __int_as_float(unsigned int i) { float f; memcpy(&f, &i, 4); return f; }
typedef _Float16 __half;
static inline float __half2float(__half x) { return (float)x; }
static inline __half __float2half_rn(float x) { return (__half)x; }
struct __nv_bfloat16 { unsigned short x; };
static inline float tc_bf2f(unsigned short b) { unsigned u = (unsigned)b << 16; float f; memcpy(&f, &u, 4); return f; }
static inline unsigned short tc_f2bf(float f) {
  unsigned u; memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u); return (unsigned short)(u >> 16);
}
static inline float __bfloat162float(__nv_bfloat16 b) { return tc_bf2f(b.x); }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{tc_f2bf(f)}; }
template <typename A, typename B> static inline auto min(A a, B b) -> decltype(a + b) { return a < b ? a : b; }
template <typename A, typename B> static inline auto max(A a, B b) -> decltype(a + b) { return a > b ? a : b; }

#define TC_FLASH_HELPERS
// A barrier of the calling thread's warp (sense by generation), reset for each block by the runner.
static std::atomic<int> tc_warp_arrived[32];
static std::atomic<int> tc_warp_gen[32];
static inline void tc_warp_sync() {
  const int w = threadIdx.x >> 5;
  const int gen = tc_warp_gen[w].load();
  if (tc_warp_arrived[w].fetch_add(1) == 31) { tc_warp_arrived[w].store(0); tc_warp_gen[w].fetch_add(1); }
  else while (tc_warp_gen[w].load() == gen) std::this_thread::yield();
}
static const unsigned short* tc_addr[1024];
static unsigned tc_regs[1024][6];
static float tc_vals[1024];
static inline float tc_h2f(unsigned short h) { __half x; memcpy(&x, &h, 2); return (float)x; }
static inline unsigned short tc_f2h(float f) { __half x = (__half)f; unsigned short h; memcpy(&h, &x, 2); return h; }
static inline const unsigned short* tc_smem(const unsigned short* p) { return p; }
static inline void tc_cp_async16(const unsigned short* dst, const void* src, bool valid) {
  if (valid) memcpy((void*)dst, src, 16); else memset((void*)dst, 0, 16);
}
static inline void tc_cp_commit() {}
static inline void tc_cp_wait_all() {}
static inline unsigned tc_pair(const unsigned short* p0, const unsigned short* p1) { return (unsigned)*p0 | ((unsigned)*p1 << 16); }
static inline void tc_ldsm(unsigned (&r)[4], const unsigned short* a, bool trans) {
  const int t = threadIdx.x, w = t & ~31, lane = t & 31;
  tc_addr[t] = a;
  tc_warp_sync();
  for (int i = 0; i < 4; ++i) {
    if (!trans) { const unsigned short* row = tc_addr[w + i * 8 + (lane >> 2)]; r[i] = tc_pair(row + (lane & 3) * 2, row + (lane & 3) * 2 + 1); }
    else r[i] = tc_pair(tc_addr[w + i * 8 + (lane & 3) * 2] + (lane >> 2), tc_addr[w + i * 8 + (lane & 3) * 2 + 1] + (lane >> 2));
  }
  tc_warp_sync();
}
static inline void tc_ldsm_x4(unsigned (&r)[4], const unsigned short* a) { tc_ldsm(r, a, false); }
static inline void tc_ldsm_x4_t(unsigned (&r)[4], const unsigned short* a) { tc_ldsm(r, a, true); }
static inline unsigned short tc_half_bits(unsigned reg, int k) { return (unsigned short)(k & 1 ? reg >> 16 : reg & 0xffff); }
static std::atomic<long> tc_mma_lane_calls{0};
extern "C" long tc_mma_warp_calls() { return tc_mma_lane_calls.load() / 32; }
template <float (*DECODE)(unsigned short)>
static inline void tc_mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  tc_mma_lane_calls.fetch_add(1);
  const int t = threadIdx.x, w = t & ~31, lane = t & 31;
  for (int i = 0; i < 4; ++i) tc_regs[t][i] = a[i];
  tc_regs[t][4] = b0; tc_regs[t][5] = b1;
  tc_warp_sync();
  const int g = lane >> 2, tg = lane & 3;
  float acc[4];
  for (int c = 0; c < 4; ++c) {
    const int row = g + (c >> 1) * 8, col = tg * 2 + (c & 1);
    float s = 0.0f;
    for (int k = 0; k < 16; ++k) {
      // A (row, k): register (row >= 8) + 2 (k >= 8) of lane 4 (row % 8) + (k % 8) / 2
      const float av = DECODE(tc_half_bits(tc_regs[w + (row % 8) * 4 + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)], k));
      // B (k, col): register b0 (k < 8) or b1 of lane 4 col + (k % 8) / 2
      const float bv = DECODE(tc_half_bits(tc_regs[w + col * 4 + (k % 8) / 2][4 + (k >= 8)], k));
      s += av * bv;
    }
    acc[c] = s;
  }
  tc_warp_sync();
  for (int c = 0; c < 4; ++c) d[c] += acc[c];
}
static inline void tc_mma_f16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) { tc_mma<tc_h2f>(d, a, b0, b1); }
static inline void tc_mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) { tc_mma<tc_bf2f>(d, a, b0, b1); }
static inline unsigned tc_pack_f16(float lo, float hi) { return (unsigned)tc_f2h(lo) | ((unsigned)tc_f2h(hi) << 16); }
static inline unsigned tc_pack_bf16(float lo, float hi) { return (unsigned)tc_f2bf(lo) | ((unsigned)tc_f2bf(hi) << 16); }
static inline float tc_ex2(float x) { return exp2f(x); }
static inline float tc_shfl_xor(float v, int m) {
  const int t = threadIdx.x; tc_vals[t] = v;
  tc_warp_sync();
  const float o = tc_vals[t ^ m];
  tc_warp_sync();
  return o;
}
static inline float tc_quad_max(float v) { v = fmaxf(v, tc_shfl_xor(v, 1)); return fmaxf(v, tc_shfl_xor(v, 2)); }
static inline float tc_quad_sum(float v) { v += tc_shfl_xor(v, 1); return v + tc_shfl_xor(v, 2); }
`;

/** The host C type of a kernel parameter's storage dtype. */
/** A pointer parameter's element type, or "float value": a float scalar parameter, passed as a 1-element buffer. */
export type HostCType =
  | "__half"
  | "__nv_bfloat16"
  | "float"
  | "unsigned char"
  | "signed char"
  | "float value";

let counter = 0;

/**
 * Compiles `k` for the host and returns a launcher taking one buffer per parameter (fp16 as 16-bit words),
 * which walks the grid one block at a time with `block` OpenMP threads.
 */
export function compileFlashOnHost(
  k: GeneratedKernel,
  ctypes: readonly HostCType[],
): ((buffers: readonly ArrayBufferView[]) => void) & { readonly mmaWarpCalls: () => number } {
  const sig = ctypes.map((_, j) => `void* a${j}`).join(", ");
  const call = ctypes.map((ct, j) => (ct === "float value" ? `*(float*)a${j}` : `(${ct}*)a${j}`)).join(", ");
  const runner = `extern "C" void run_${k.name}(${sig}, int grid, int block) {
  omp_set_dynamic(0);
  for (int b = 0; b < grid; ++b) {
    blockIdx.x = b;
    #pragma omp parallel num_threads(block)
    { threadIdx.x = omp_get_thread_num(); if (omp_get_num_threads() == block) ${k.name}(${call}); }
  }
}`;
  const dir = mkdtempSync(join(tmpdir(), "torchc-flash-"));
  const src = join(dir, "flash.cpp");
  const so = join(dir, `flash${counter++}.so`);
  writeFileSync(src, `${SHIM}\n${k.source}\n${runner}\n`);
  execFileSync("g++", ["-std=c++17", "-O1", "-w", "-fopenmp", "-shared", "-fPIC", "-o", so, src], {
    stdio: "pipe",
  });
  process.env.OMP_WAIT_POLICY ??= "passive";
  const koffi = createRequire(import.meta.url)("koffi");
  const fn = koffi.load(so).func(`void run_${k.name}(${ctypes.map(() => "void*").join(", ")}, int, int)`) as (
    ...a: unknown[]
  ) => void;
  const lib = koffi.load(so);
  const count = lib.func("long tc_mma_warp_calls()") as () => number;
  return Object.assign((buffers: readonly ArrayBufferView[]) => fn(...buffers, k.grid[0], k.block[0]), {
    /** Warp-level mma.sync instructions executed so far (tensor-core work done). */
    mmaWarpCalls: () => Number(count()),
  });
}
