/**
 * The dispatcher call plan for one aten node, as plain data: which op and overload to call, and each schema
 * argument (defaulted ones included, in schema order) in the form its StableIValue will take. Nothing here
 * holds a native handle; tensors are value names that the runner resolves when it builds the stack.
 */
import type { DType } from "../../ir/dtype.js";

export type EncodedArg =
  /** `Tensor`: a new handle to the named value (the callee takes ownership of it). */
  | { readonly kind: "tensor"; readonly value: string }
  /** `Tensor[]`: a StableListHandle of new tensor handles. */
  | { readonly kind: "tensorList"; readonly values: readonly string[] }
  /** `Tensor?[]`: a StableListHandle whose items are boxed handles or 0 for None. */
  | { readonly kind: "optTensorList"; readonly values: readonly (string | null)[] }
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "intList"; readonly values: readonly number[] }
  | { readonly kind: "floatList"; readonly values: readonly number[] }
  | { readonly kind: "boolList"; readonly values: readonly boolean[] }
  | { readonly kind: "str"; readonly value: string }
  /** `ScalarType`: the shim's dtype code, looked up at run time. */
  | { readonly kind: "dtype"; readonly value: DType }
  /** `Layout`: c10::Layout as int32 (strided = 0). */
  | { readonly kind: "layout"; readonly value: string; readonly code: number }
  /** `MemoryFormat`: c10::MemoryFormat as int32 (contiguous 0, preserve 1, channels_last 2, channels_last_3d 3). */
  | { readonly kind: "memoryFormat"; readonly value: string; readonly code: number }
  /** Any `T?` that is None: 0. */
  | { readonly kind: "none" }
  /** `T?` holding a value: a pointer to a heap cell (operator new) holding T's encoding; the callee frees it. */
  | { readonly kind: "optional"; readonly value: EncodedArg }
  /** A `Scalar` passed as a C double to a generated `aoti_torch_cuda_*` shim (never on a dispatcher stack). */
  | { readonly kind: "double"; readonly value: number };

/** Generated CUDA shims the runner can call instead of the dispatcher (their Scalar arguments are doubles). */
export type ShimName = "aoti_torch_cuda_add_Tensor";

export interface DispatchPlan {
  /** Qualified op name, `aten::add`. */
  readonly op: string;
  /** Overload name, "" for `.default`. */
  readonly overload: string;
  /** How the call is made: the boxed dispatcher, or a generated shim with the same argument order. */
  readonly via: "dispatcher" | ShimName;
  /** Every schema argument in order. */
  readonly args: readonly EncodedArg[];
  /** The schema name of each argument (for messages). */
  readonly names: readonly string[];
  /** Tensor results: a count, or "list" for one `Tensor[]` result. */
  readonly returns: number | "list";
}

export interface Unsupported {
  readonly unsupported: string;
}

export function isUnsupported(x: object): x is Unsupported {
  return "unsupported" in x;
}

/** `aten.add.Tensor` → `["aten::add", "Tensor"]`; `aten.relu.default` → `["aten::relu", ""]`. */
export function splitOpName(op: string): [string, string] | undefined {
  const first = op.indexOf(".");
  const last = op.lastIndexOf(".");
  if (first <= 0 || last === first || last === op.length - 1) return undefined;
  const overload = op.slice(last + 1);
  return [`${op.slice(0, first)}::${op.slice(first + 1, last)}`, overload === "default" ? "" : overload];
}

/** Value names an argument reads. */
export function argValues(a: EncodedArg): string[] {
  switch (a.kind) {
    case "tensor":
      return [a.value];
    case "tensorList":
      return [...a.values];
    case "optTensorList":
      return a.values.filter((v): v is string => v !== null);
    case "optional":
      return argValues(a.value);
    default:
      return [];
  }
}

/** One line per argument, for reports and test snapshots: `self=%x`, `dim=[1, 2]`, `dtype=float16`. */
export function formatArg(a: EncodedArg): string {
  switch (a.kind) {
    case "tensor":
      return `%${a.value}`;
    case "tensorList":
      return `[${a.values.map((v) => `%${v}`).join(", ")}]`;
    case "optTensorList":
      return `[${a.values.map((v) => (v === null ? "None" : `%${v}`)).join(", ")}]`;
    case "intList":
    case "floatList":
    case "boolList":
      return `[${a.values.join(", ")}]`;
    case "str":
      return JSON.stringify(a.value);
    case "dtype":
    case "layout":
    case "memoryFormat":
      return a.value;
    case "none":
      return "None";
    case "optional":
      return `Some(${formatArg(a.value)})`;
    case "double":
      return `${a.value} (double)`;
    default:
      return String(a.value);
  }
}

export function formatPlan(p: DispatchPlan): string {
  const args = p.args.map((a, i) => `${p.names[i]}=${formatArg(a)}`).join(", ");
  const via = p.via === "dispatcher" ? "" : ` via ${p.via}`;
  return `${p.op}${p.overload ? `.${p.overload}` : ""}(${args})${via}`;
}
