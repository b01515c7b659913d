/**
 * The statement builder shared by every generated kernel: fresh variables, indentation, a memo of values
 * already computed (keyed by tensor and coordinate expressions) with block scoping, and loads from
 * materialized tensors through their layout's strides.
 */
import { DTYPE_BYTES, type DType } from "../../../ir/dtype.js";
import { elementStrides, type TensorInfo } from "../plan/tensors.js";
import { computeCType, fromStorage, storageCType, toStorage } from "./ctypes.js";

export interface KernelParam {
  readonly tensor: string;
  readonly written: boolean;
}

/** The widest word (16, 8 or 4 bytes) that moves `bytes` (a multiple of 4) at a time, and how many of them. */
export function wideWords(bytes: number): { type: "uint4" | "uint2" | "unsigned int"; count: number } {
  if (bytes % 16 === 0) return { type: "uint4", count: bytes / 16 };
  if (bytes % 8 === 0) return { type: "uint2", count: bytes / 8 };
  return { type: "unsigned int", count: bytes / 4 };
}

/** Vector mode: each thread computes V consecutive elements along one axis; lane j's coordinate is `${base}+${j}`. */
export interface VectorLanes {
  readonly base: string;
  readonly width: number;
}

export function laneCoord(base: string, j: number): string {
  return `${base}+${j}`;
}

export class Emitter {
  readonly lines: string[] = [];
  vec: VectorLanes | undefined;
  private depth = 1;
  private memo = new Map<string, string>();
  private next = 0;
  readonly params: KernelParam[] = [];
  private readonly paramIndex = new Map<string, number>();

  constructor(
    readonly info: (tensor: string) => TensorInfo,
    /** "int" or "long long": the type of every index computation. */
    readonly idx: string,
  ) {}

  fresh(prefix = "v"): string {
    return `${prefix}${this.next++}`;
  }

  line(s: string): void {
    this.lines.push(`${"  ".repeat(this.depth)}${s}`);
  }

  /** Emits `{ … }` (or `head { … }`) with its own memo scope. */
  block(head: string, body: () => void): void {
    this.line(`${head}{`.trim() === "{" ? "{" : `${head} {`);
    const saved = new Map(this.memo);
    this.depth++;
    try {
      body();
    } finally {
      this.depth--;
      this.memo = saved;
    }
    this.line("}");
  }

  memoGet(key: string): string | undefined {
    return this.memo.get(key);
  }

  memoSet(key: string, v: string): void {
    this.memo.set(key, v);
  }

  /** Declares `const T name = expr;` and returns the name. */
  let(ctype: string, expr: string, prefix = "v"): string {
    const v = this.fresh(prefix);
    this.line(`const ${ctype} ${v} = ${expr};`);
    return v;
  }

  /** The parameter name of a tensor's pointer; registers it on first use. */
  param(tensor: string, written = false): string {
    let i = this.paramIndex.get(tensor);
    if (i === undefined) {
      i = this.params.length;
      this.params.push({ tensor, written });
      this.paramIndex.set(tensor, i);
    } else if (written && !this.params[i].written) {
      this.params[i] = { tensor, written: true };
    }
    return `p${i}`;
  }

  /** Element offset of logical `coords` in `tensor` (an index expression). */
  offset(tensor: string, coords: readonly string[]): string {
    const t = this.info(tensor);
    const strides = elementStrides(t);
    const terms: string[] = [];
    coords.forEach((c, i) => {
      if (t.shape[i] === 1 || c === "0") return;
      terms.push(strides[i] === 1 ? `(${this.idx})(${c})` : `(${this.idx})(${c}) * ${strides[i]}`);
    });
    return terms.length === 0 ? "0" : terms.join(" + ");
  }

  /** Loads a materialized tensor at logical coords, converted to its logical dtype's compute type. */
  load(tensor: string, coords: readonly string[]): string {
    const key = `${tensor}@${coords.join(",")}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    const t = this.info(tensor);
    const p = this.param(tensor);
    const lane = this.laneOf(tensor, coords);
    let v: string;
    if (lane) {
      const arr = this.vectorLoad(tensor, lane.coords0);
      v = this.let(computeCType(t.logicalDType), fromStorage(`${arr}[${lane.j}]`, t.storage, t.logicalDType));
    } else {
      v = this.let(
        computeCType(t.logicalDType),
        fromStorage(`${p}[${this.offset(tensor, coords)}]`, t.storage, t.logicalDType),
      );
    }
    this.memo.set(key, v);
    return v;
  }

  /** Whether `tensor` can be moved V lanes at a time along axis `axis` (unit stride, aligned rows). */
  vectorizable(tensor: string, axis: number): boolean {
    const V = this.vec?.width ?? 1;
    const t = this.info(tensor);
    const size = DTYPE_BYTES[t.storage];
    // 1-byte tensors (int8 activations) move 8 lanes as one 8-byte word
    if (V === 1 || (size !== 1 && size !== 2 && size !== 4) || (V * size) % 4 !== 0) return false;
    const strides = elementStrides(t);
    if (strides[axis] !== 1 || t.shape[axis] % V !== 0) return false;
    // a strided view's first element must keep the wide loads aligned too
    if (((t.offset ?? 0) * size) % (V * size) !== 0) return false;
    return t.shape.every((d, i) => i === axis || d === 1 || strides[i] % V === 0);
  }

  /** For coords whose lane axis carries lane j, the lane and the lane-0 coords; else undefined. */
  laneOf(
    tensor: string,
    coords: readonly string[],
  ): { j: number; axis: number; coords0: string[] } | undefined {
    const vec = this.vec;
    if (!vec) return undefined;
    const prefix = `${vec.base}+`;
    const axis = coords.findIndex((c) => c.startsWith(prefix) && /^\d+$/.test(c.slice(prefix.length)));
    if (axis < 0 || !this.vectorizable(tensor, axis)) return undefined;
    const j = Number(coords[axis].slice(prefix.length));
    const coords0 = [...coords];
    coords0[axis] = vec.base;
    return { j, axis, coords0 };
  }

  /** One wide load of V lanes into a local array of the storage type; returns the array's name. */
  private vectorLoad(tensor: string, coords0: readonly string[]): string {
    const key = `vec:${tensor}@${coords0.join(",")}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    const arr = this.wideLoad(tensor, coords0);
    this.memo.set(key, arr);
    return arr;
  }

  /**
   * The V lanes (vec mode's width) of `tensor` from lane 0's `coords0` into a local array of its storage type, one
   * wide copy; with `guard` (a C condition), zeros where it is false and no load. Not memoized. The caller checked
   * `vectorizable`.
   */
  wideLoad(tensor: string, coords0: readonly string[], guard?: string): string {
    const t = this.info(tensor);
    const V = this.vec!.width;
    const arr = this.fresh("vl");
    const { type, count } = wideWords(V * DTYPE_BYTES[t.storage]);
    const src = `${this.param(tensor)} + (${this.offset(tensor, coords0)})`;
    this.line(`__align__(16) ${storageCType(t.storage)} ${arr}[${V}];`);
    if (guard === undefined) {
      this.line(
        `{ const ${type}* src = reinterpret_cast<const ${type}*>(${src}); ${type}* dst = reinterpret_cast<${type}*>(${arr});`,
      );
      this.line(`  #pragma unroll\n${"  ".repeat(2)}for (int q = 0; q < ${count}; ++q) dst[q] = src[q]; }`);
      return arr;
    }
    this.line(
      `{ ${type}* dst = reinterpret_cast<${type}*>(${arr}); if (${guard}) { const ${type}* src = reinterpret_cast<const ${type}*>(${src}); for (int q = 0; q < ${count}; ++q) dst[q] = src[q]; } else { for (int q = 0; q < ${count}; ++q) dst[q] = ${type}{}; } }`,
    );
    return arr;
  }

  /** Stores V lane values (compute type of `valueDType`) with one wide store. */
  storeVector(
    tensor: string,
    coords0: readonly string[],
    values: readonly string[],
    valueDType: DType,
  ): void {
    const t = this.info(tensor);
    const p = this.param(tensor, true);
    const V = values.length;
    const arr = this.fresh("vs");
    const { type, count } = wideWords(V * DTYPE_BYTES[t.storage]);
    this.line(`__align__(16) ${storageCType(t.storage)} ${arr}[${V}];`);
    for (const [j, v] of values.entries())
      this.line(`${arr}[${j}] = ${toStorage(v, t.storage, valueDType)};`);
    this.line(
      `{ const ${type}* src = reinterpret_cast<const ${type}*>(${arr}); ${type}* dst = reinterpret_cast<${type}*>(${p} + (${this.offset(tensor, coords0)}));`,
    );
    this.line(`  #pragma unroll\n${"  ".repeat(2)}for (int q = 0; q < ${count}; ++q) dst[q] = src[q]; }`);
  }

  store(tensor: string, coords: readonly string[], value: string, valueDType: DType): void {
    const t = this.info(tensor);
    const p = this.param(tensor, true);
    this.line(`${p}[${this.offset(tensor, coords)}] = ${toStorage(value, t.storage, valueDType)};`);
  }

  /** The kernel's parameter list in C. */
  signature(): string {
    return this.params
      .map((p, i) => {
        const t = this.info(p.tensor);
        const ct = storageCType(t.storage);
        return p.written ? `${ct}* __restrict__ p${i}` : `const ${ct}* __restrict__ p${i}`;
      })
      .join(", ");
  }

  /** The kernel body, behind the programmatic-dependent-launch prologue. */
  body(): string {
    return `${PDL_PROLOGUE}\n${this.lines.join("\n")}`;
  }
}

/**
 * Every generated kernel may be launched before the previous kernel on its stream has finished (device/launch.ts,
 * programmatic dependent launch): it waits here until that kernel's writes are visible, then lets the next kernel
 * be scheduled early. Without the launch attribute (or before sm_90) the wait returns at once.
 */
export const PDL_PROLOGUE = [
  "#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900",
  '  asm volatile("griddepcontrol.wait;" ::: "memory");',
  '  asm volatile("griddepcontrol.launch_dependents;");',
  "#endif",
].join("\n");

/** Statements decomposing linear index `linear` over `shape` walked in `layout` order into logical coords. */
export function decompose(
  e: Emitter,
  linear: string,
  shape: readonly number[],
  layout: readonly number[],
): string[] {
  const coords = new Array<string>(shape.length).fill("0");
  const axes = layout.filter((a) => shape[a] !== 1);
  if (axes.length === 0) return coords;
  let rest = linear;
  for (let k = axes.length - 1; k >= 0; k--) {
    const a = axes[k];
    if (k === 0) {
      coords[a] = e.let(e.idx, rest, "c");
    } else {
      coords[a] = e.let(e.idx, `${rest} % ${shape[a]}`, "c");
      const r = e.let(e.idx, `${rest} / ${shape[a]}`, "r");
      rest = r;
    }
  }
  return coords;
}

/** "int" when every element count involved fits in 31 bits, else "long long". */
export function indexType(counts: readonly number[]): string {
  return counts.every((n) => n < 2 ** 31 - 1) ? "int" : "long long";
}
