/**
 * The statement builder shared by every generated kernel: fresh variables, indentation, a memo of values
 * already computed (keyed by tensor and coordinate expressions) with block scoping, and loads from
 * materialized tensors through their layout's strides.
 */
import type { DType } from "../../../ir/dtype.js";
import type { TensorInfo } from "../plan/tensors.js";
import { layoutStrides } from "../plan/layout.js";
import { computeCType, fromStorage, storageCType, toStorage } from "./ctypes.js";

export interface KernelParam {
  readonly tensor: string;
  readonly written: boolean;
}

export class Emitter {
  readonly lines: string[] = [];
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
    const strides = layoutStrides(t.shape, t.layout);
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
    const v = this.let(computeCType(t.logicalDType), fromStorage(`${p}[${this.offset(tensor, coords)}]`, t.storage, t.logicalDType));
    this.memo.set(key, v);
    return v;
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

  body(): string {
    return this.lines.join("\n");
  }
}

/** Statements decomposing linear index `linear` over `shape` walked in `layout` order into logical coords. */
export function decompose(e: Emitter, linear: string, shape: readonly number[], layout: readonly number[]): string[] {
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
