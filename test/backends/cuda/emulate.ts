/**
 * A CPU emulator of a planned CUDA engine, for tests on machines without a GPU: the engine's own plan (tensor
 * layouts, views, the activation arena with its reused offsets, the schedule) is executed step by step. Element
 * steps run their generated CUDA C source, compiled as C++ with g++ behind a small host shim (one host thread
 * walks every block and thread in order; element kernels have no shared memory or barriers) and called through
 * koffi. Steps that run library calls or cooperative kernels (cuBLASLt, cuDNN, rows, attention) run the layer
 * reference on their operands read back from emulated memory, and write their result there in the output's
 * layout, so index arithmetic, layouts, views and arena reuse of everything around them are still exercised.
 * fp32 and fp16 plans (fp16 storage as the host compiler's _Float16, round-to-nearest-even like __float2half_rn);
 * bfloat16 storage is not emulated.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PRELUDE } from "../../../src/backends/cuda/codegen/ctypes.js";
import type { GeneratedKernel } from "../../../src/backends/cuda/codegen/element.js";
import { type ConvStep, stepWrites } from "../../../src/backends/cuda/fuse/steps.js";
import { elementStrides, storageRoot, type TensorInfo } from "../../../src/backends/cuda/plan/tensors.js";
import { type EnginePlan, planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { DTYPE_BYTES, type DType } from "../../../src/ir/dtype.js";
import { float16BitsToNumber, numberToFloat16Bits } from "../../../src/ir/half.js";
import {
  allocData,
  numel,
  type Tensor,
  type TensorData,
  toFloat64Array,
  typedDataView,
} from "../../../src/ir/tensor.js";
import type { Layer } from "../../../src/network/layers/index.js";
import type { Network } from "../../../src/network/network.js";
import { runLayerReference } from "../../../src/network/reference/index.js";

export function hasGxx(): boolean {
  try {
    execFileSync("g++", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const HOST_PRELUDE = `#include <cmath>
#include <cstdint>
#include <cstring>
#include <omp.h>
#include <atomic>
#include <sched.h>
struct tc_dim3 { unsigned x, y, z; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
struct alignas(8) uint2 { unsigned int x, y; };
static tc_dim3 blockIdx;
static thread_local tc_dim3 threadIdx;
// Cooperative kernels: the threads of a block are OpenMP threads; shared memory is a function-local static,
// a barrier is an OpenMP barrier, and a warp reduction goes through a shared buffer between two warp barriers.
#define __shared__ static
#define __syncthreads() _Pragma("omp barrier")
static float tc_warp_buf[1024];
static int tc_block_dim = 1;
// A warp's lanes meet at a barrier of their own (a generation counter), so warps whose loops run different trip
// counts (gemv rows past the end return as a whole warp; excite warps loop over their own hidden units) never wait
// for one another, as on the GPU.
struct tc_warp_bar { std::atomic<int> count; std::atomic<int> gen; };
static tc_warp_bar tc_warp_bars[32];
static inline int tc_warp_lanes() {
  const int rest = tc_block_dim - (threadIdx.x & ~31);
  return rest < 32 ? rest : 32;
}
static inline void tc_warp_sync() {
  tc_warp_bar& b = tc_warp_bars[threadIdx.x >> 5];
  const int g = b.gen.load();
  if (b.count.fetch_add(1) + 1 == tc_warp_lanes()) { b.count.store(0); b.gen.fetch_add(1); }
  else while (b.gen.load() == g) sched_yield();
}
static inline float tc_warp_sum(float v) {
  const int t = threadIdx.x; tc_warp_buf[t] = v;
  tc_warp_sync();
  float s = 0.0f; for (int i = 0; i < tc_warp_lanes(); ++i) s += tc_warp_buf[(t & ~31) + i];
  tc_warp_sync();
  return s;
}
static inline float tc_warp_max(float v) {
  const int t = threadIdx.x; tc_warp_buf[t] = v;
  tc_warp_sync();
  float m = tc_warp_buf[t & ~31]; for (int i = 1; i < tc_warp_lanes(); ++i) m = fmaxf(m, tc_warp_buf[(t & ~31) + i]);
  tc_warp_sync();
  return m;
}
// Segmented reductions over aligned groups of w lanes (rows kernels with fewer lanes than a warp per row).
static inline float tc_seg_sum(float v, int w) {
  const int t = threadIdx.x; tc_warp_buf[t] = v;
  tc_warp_sync();
  float s = 0.0f; for (int i = 0; i < w; ++i) s += tc_warp_buf[(t & ~(w - 1)) + i];
  tc_warp_sync();
  return s;
}
static inline float tc_seg_max(float v, int w) {
  const int t = threadIdx.x; tc_warp_buf[t] = v;
  tc_warp_sync();
  float m = tc_warp_buf[t & ~(w - 1)]; for (int i = 1; i < w; ++i) m = fmaxf(m, tc_warp_buf[(t & ~(w - 1)) + i]);
  tc_warp_sync();
  return m;
}
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) alignas(n)
static inline float __int_as_float(unsigned int i) { float f; memcpy(&f, &i, 4); return f; }
static inline double __longlong_as_double(unsigned long long i) { double d; memcpy(&d, &i, 8); return d; }
#define __expf(x) expf(x)
typedef _Float16 __half;
static inline float __half2float(__half x) { return (float)x; }
static inline __half __float2half_rn(float x) { return (__half)x; }
template <typename A, typename B> static inline auto min(A a, B b) -> decltype(a + b) { return a < b ? a : b; }
template <typename A, typename B> static inline auto max(A a, B b) -> decltype(a + b) { return a > b ? a : b; }
`;

/** The CUDA prelude's helpers that make sense on the host (no headers, no warp shuffles). */
function hostHelpers(prelude: string): string {
  return prelude
    .split("\n")
    .filter((l) => !l.startsWith("#include") && !l.includes("tc_warp_"))
    .join("\n");
}

const CTYPE: Partial<Record<DType, string>> = {
  float16: "__half",
  float32: "float",
  float64: "double",
  int64: "long long",
  int32: "int",
  int16: "short",
  int8: "signed char",
  uint8: "unsigned char",
  bool: "unsigned char",
};

function typedView(dtype: DType, buffer: ArrayBuffer, byteOffset: number, n: number): TensorData {
  if (dtype === "bfloat16") throw new Error("emulator: bfloat16 storage is not supported");
  return typedDataView(dtype, buffer, byteOffset, n);
}

export interface EmulatorOptions {
  readonly channelsLast?: boolean;
  /** The plan's precision (default fp32; fp16 stores float activations and constants in half precision). */
  readonly precision?: "fp32" | "fp16";
  /** fp16: float32 tensors stay float32 (the CUDA backend sets it for fp16Overflow: "keep-fp32"). */
  readonly keepFloat32?: boolean;
  /**
   * Run the generated row kernels (reduce, softmax, normalization) too, block by block with OpenMP threads
   * and the generated convolutions' kernels (gemv, merged SE pair, 1×1) too (default true); false runs their
   * layers' reference instead (faster). Attention kernels always run as their layers' reference.
   */
  readonly cooperative?: boolean;
  /** Convolutions read int8 inputs where they can (PlanOptions.int8Convs). */
  readonly int8Convs?: boolean;
  /** Which conv steps "cuDNN" accepts (default all). */
  readonly convSupported?: (step: ConvStep) => boolean;
  /** Called after every step with the tensors it wrote, read back as logical tensors. */
  readonly onStep?: (index: number, description: string, written: ReadonlyMap<string, Tensor>) => void;
}

export interface Emulation {
  readonly plan: EnginePlan;
  readonly outputs: Tensor[];
}

let libCounter = 0;

/** Runs `net` the way the CUDA engine would, on the CPU. */
export function emulateEngine(
  net: Network,
  inputs: Readonly<Record<string, Tensor>>,
  opts: EmulatorOptions = {},
): Emulation {
  const precision = opts.precision ?? "fp32";
  const plan = planCudaEngine(net, {
    precision,
    channelsLast: opts.channelsLast ?? precision === "fp16",
    keepFloat32: opts.keepFloat32,
    int8Convs: opts.int8Convs,
    ...(opts.convSupported ? { convSupported: opts.convSupported } : {}),
  });
  const infos = plan.infos;
  const info = (t: string): TensorInfo => {
    const i = infos.get(t);
    if (!i) throw new Error(`emulator: no info for ${t}`);
    return i;
  };
  // Memory: the arena (filled with NaN bytes, so reading what nobody wrote shows), and one buffer per
  // input, output and constant.
  const arena = new ArrayBuffer(Math.max(8, plan.memory.arenaBytes));
  new Uint8Array(arena).fill(0xff);
  const own = new Map<string, ArrayBuffer>();
  const location = (t: string): { buffer: ArrayBuffer; offset: number } => {
    const root = storageRoot(infos, t);
    const off = plan.memory.offsets.get(root);
    if (off !== undefined && info(root).role === "activation") return { buffer: arena, offset: off };
    let b = own.get(root);
    if (!b) {
      const r = info(root);
      b = new ArrayBuffer(Math.max(8, numel(r.shape) * DTYPE_BYTES[r.storage]));
      new Uint8Array(b).fill(0xff);
      own.set(root, b);
    }
    return { buffer: b, offset: 0 };
  };
  const storage = (t: string): TensorData => {
    const i = info(t);
    const { buffer, offset } = location(t);
    // a strided view addresses its root's memory (plan/strided-views.ts): the root's extent
    return typedView(i.storage, buffer, offset, numel(info(storageRoot(infos, t)).shape));
  };
  /** Logical (row-major) tensor ⇄ memory in the tensor's layout. */
  const offsets = (t: string): Int32Array => {
    const i = info(t);
    const strides = elementStrides(i);
    const n = numel(i.shape);
    const out = new Int32Array(n);
    const coord = new Array<number>(i.shape.length).fill(0);
    for (let k = 0; k < n; k++) {
      let o = i.offset ?? 0;
      for (let a = 0; a < coord.length; a++) o += coord[a] * strides[a];
      out[k] = o;
      for (let a = coord.length - 1; a >= 0; a--) {
        if (++coord[a] < i.shape[a]) break;
        coord[a] = 0;
      }
    }
    return out;
  };
  const read = (t: string): Tensor => {
    const i = info(t);
    const mem = storage(t) as unknown as number[];
    const data = allocData(i.logicalDType, numel(i.shape)) as unknown as number[];
    const off = offsets(t);
    const half = i.storage === "float16" && i.logicalDType !== "float16";
    for (let k = 0; k < off.length; k++) data[k] = half ? float16BitsToNumber(mem[off[k]]) : mem[off[k]];
    return { dtype: i.logicalDType, shape: i.shape, data: data as unknown as TensorData };
  };
  const write = (t: string, value: Tensor) => {
    const i = info(t);
    const mem = storage(t) as unknown as number[];
    const off = offsets(t);
    if (value.dtype === i.storage) {
      const v = value.data as unknown as number[];
      for (let k = 0; k < off.length; k++) mem[off[k]] = v[k];
    } else if (i.storage === "float16") {
      const v = toFloat64Array(value);
      for (let k = 0; k < off.length; k++) mem[off[k]] = numberToFloat16Bits(v[k]);
    } else throw new Error(`emulator: writing ${value.dtype} into ${t} stored as ${i.storage}`);
  };

  // The plan's network: constants folded, batch norm folded into convolutions.
  const pnet = plan.network;
  for (const name of pnet.inputs) write(name, inputs[name]);
  for (const l of pnet.layers) if (l.type === "constant") write(l.output, pnet.constants[l.weight]);

  // One shared library with every element kernel and a launcher for each.
  const elementKernels = new Map<number, GeneratedKernel>();
  plan.steps.forEach((s, i) => {
    const k = plan.kernels[i];
    // Cooperative kernels whose barriers are block-uniform (rows: reduce, softmax, normalization) run on
    // OpenMP threads, and so do the generated convolutions (gemv, the merged SE pair, 1×1), whose warp reductions
    // meet at per-warp barriers. Attention kernels, and 1×1 convolutions on the tensor-core GEMM (its mma and
    // ldmatrix run on the host only behind flash-host.ts: gemm-small.test.ts checks its numbers), run as their
    // layers' reference.
    const rows = s.kind === "reduce" || s.kind === "softmax" || s.kind === "normalization";
    const conv = s.kind === "conv" && s.engine !== "cudnn" && s.engine !== "gemm";
    if (k && (s.kind === "element" || ((rows || conv) && opts.cooperative !== false)))
      elementKernels.set(i, k);
  });
  const lib = compileKernels(
    [...elementKernels.entries()].map(([i, k]) => ({
      kernel: k,
      cooperative: plan.steps[i].kind !== "element" || hasChannelSums(plan.steps[i]),
    })),
    infos,
  );

  plan.steps.forEach((s, i) => {
    const k = elementKernels.get(i);
    let written: string[];
    if (k) {
      const args: unknown[] = k.params.map((p) => storage(p.tensor));
      lib.launch(k.name)(...args, k.grid[0], k.block[0]);
      written = k.params.filter((p) => p.written).map((p) => p.tensor);
    } else {
      written = runLibraryStep(s, read, write, pnet);
    }
    if (opts.onStep) opts.onStep(i, plan.summary[i], new Map(written.map((t) => [t, read(t)])));
  });
  return { plan, outputs: pnet.outputs.map(read) };
}

function hasChannelSums(s: EnginePlan["steps"][number]): boolean {
  return s.kind === "element" && s.group.channelSums !== undefined;
}

/** A spatial mean from its producer's tile sums (fuse/steps.ts SpatialMeanSource), as the gemv kernels read it. */
function meanFromTileSums(sums: Tensor, count: number): Tensor {
  const [n, tiles, c] = sums.shape;
  const src = toFloat64Array(sums);
  const data = new Float32Array(n * c);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let t = 0; t < tiles; t++) s = Math.fround(s + src[(b * tiles + t) * c + ch]);
      data[b * c + ch] = Math.fround(s / count);
    }
  return { dtype: "float32", shape: [n, c, 1, 1], data };
}

/** A non-generated step: the layer reference on operands read from memory. Returns the tensors written. */
function runLibraryStep(
  s: EnginePlan["steps"][number],
  read: (t: string) => Tensor,
  write: (t: string, v: Tensor) => void,
  net: Network,
): string[] {
  const compute = (
    first: Layer,
    operands: readonly Tensor[],
    fused: readonly Layer[],
    load: (t: string) => Tensor = read,
  ) => {
    let v = runLayerReference(first, [...operands], net);
    let prev = first.output;
    for (const f of fused) {
      const ins = f.inputs.map((t) => (t === prev ? v : load(t)));
      v = runLayerReference(f, ins, net);
      prev = f.output;
    }
    return v;
  };
  const chain = (first: Layer, operands: readonly string[], fused: readonly Layer[], final: string) => {
    write(final, compute(first, operands.map(read), fused));
    return [final];
  };
  switch (s.kind) {
    case "conv": {
      const mean = s.xMean;
      // an int8 convolution reads quantize's int8 output: the values its dequantize would have given
      const x = mean
        ? meanFromTileSums(read(mean.partials), mean.count)
        : s.int8
          ? runLayerReference(s.int8.dequantize, [read(s.x)], net)
          : read(s.x);
      const operands = [x, ...s.layer.inputs.slice(1).map(read)];
      if (!s.next) {
        write(s.output, compute(s.layer, operands, s.fused));
        return [s.output];
      }
      // A merged gemv pair: the hidden vector never reaches memory.
      const hidden = compute(s.layer, operands, s.fused);
      const n = s.next;
      const load = (t: string) => (t === s.output ? hidden : read(t));
      write(n.output, compute(n.layer, [n.x, ...n.layer.inputs.slice(1)].map(load), n.fused, load));
      return [n.output];
    }
    case "matmul":
      return chain(s.layer, [s.a, s.b, ...s.layer.inputs.slice(2)], s.fused, s.output);
    case "element":
      throw new Error("emulator: element step without a kernel");
    case "normalization":
    case "softmax": {
      // Fused layers around the norm or softmax: the prologue's values stay local except those the step stores.
      const local = new Map<string, Tensor>();
      const load = (t: string) => local.get(t) ?? read(t);
      for (const l of s.prologue ?? []) local.set(l.output, runLayerReference(l, l.inputs.map(load), net));
      for (const t of s.stores ?? []) write(t, local.get(t)!);
      for (const l of [s.layer, ...(s.epilogue ?? [])])
        local.set(l.output, runLayerReference(l, l.inputs.map(load), net));
      const final = stepWrites(s).at(-1)!;
      write(final, local.get(final)!);
      return [...(s.stores ?? []), final];
    }
    default: {
      const l = s.layer as Layer;
      write(l.output, runLayerReference(l, l.inputs.map(read), net));
      return [l.output];
    }
  }
}

interface KernelLibrary {
  launch(name: string): (...args: unknown[]) => void;
}

function compileKernels(
  kernels: readonly { kernel: GeneratedKernel; cooperative: boolean }[],
  infos: ReadonlyMap<string, TensorInfo>,
): KernelLibrary {
  if (kernels.length === 0) return { launch: () => () => undefined };
  // The CUDA prelude's helpers, kept in step with the generated code.
  const parts = [HOST_PRELUDE, hostHelpers(PRELUDE)];
  const protos = new Map<string, string>();
  for (const { kernel: k, cooperative } of kernels) {
    if (k.block[1] !== 1 || k.block[2] !== 1 || k.grid[1] !== 1 || k.grid[2] !== 1)
      throw new Error(`emulator: ${k.name} has a multi-dimensional launch`);
    if (k.sharedBytes !== 0) throw new Error(`emulator: ${k.name} uses dynamic shared memory`);
    parts.push(k.source);
    const params = k.params.map((p, j) => {
      const ct = CTYPE[infos.get(p.tensor)!.storage];
      if (!ct) throw new Error(`emulator: no host type for ${p.tensor}`);
      return { ct, j };
    });
    const sig = params.map(({ j }) => `void* a${j}`).join(", ");
    const call = params.map(({ ct, j }) => `(${ct}*)a${j}`).join(", ");
    const body = cooperative
      ? `omp_set_dynamic(0);
  tc_block_dim = block;
  for (int b = 0; b < grid; ++b) {
    blockIdx.x = b;
    #pragma omp parallel num_threads(block)
    { threadIdx.x = omp_get_thread_num(); if (omp_get_num_threads() == block) ${k.name}(${call}); }
  }`
      : `for (int b = 0; b < grid; ++b) { blockIdx.x = b; for (int t = 0; t < block; ++t) { threadIdx.x = t; ${k.name}(${call}); } }`;
    parts.push(`extern "C" void run_${k.name}(${sig}${sig ? ", " : ""}int grid, int block) {\n  ${body}\n}`);
    protos.set(
      k.name,
      `void run_${k.name}(${params.map(() => "void*").join(", ")}${params.length ? ", " : ""}int, int)`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "torchc-emu-"));
  const src = join(dir, "kernels.cpp");
  const so = join(dir, `kernels${libCounter++}.so`);
  writeFileSync(src, parts.join("\n"));
  execFileSync("g++", ["-std=c++17", "-O1", "-w", "-fopenmp", "-shared", "-fPIC", "-o", so, src], {
    stdio: "pipe",
  });
  // Threads of an emulated block wait at barriers by sleeping, not spinning (two cores, 256 threads).
  process.env.OMP_WAIT_POLICY ??= "passive";
  const require = createRequire(import.meta.url);
  const koffi = require("koffi");
  const lib = koffi.load(so);
  const fns = new Map<string, (...a: unknown[]) => void>();
  return {
    launch(name) {
      let f = fns.get(name);
      if (!f) {
        f = lib.func(protos.get(name)!) as (...a: unknown[]) => void;
        fns.set(name, f);
      }
      return f;
    },
  };
}
