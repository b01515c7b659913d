import type { DType } from "../../ir/dtype.js";
import { C10_SCALAR_TYPES } from "../../ir/dtype.js";
import type { TensorType } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import type { PyObject } from "../pickle/values.js";
import type { ClassInfo } from "./program.js";

/**
 * A tensor during translation. `name` is the graph value holding it (absent while it is only known as data);
 * `known` is its data when the translator knows it statically (small constants, numbers turned into tensors).
 * Boxes are shared by every alias, so an in-place op rebinds all of them at once.
 */
export interface TensorBox {
  name?: string;
  known?: Tensor;
  type: TensorType;
  /** The tensor this one is a view of (select, slice, view, transpose …), and the views taken of this one. */
  viewOf?: TensorBox;
  views?: TensorBox[];
  /**
   * Set when an in-place op changed this tensor's data through an alias torchc does not track (a view or
   * its base): reading it again would be silently wrong, so it fails with this reason instead.
   */
  stale?: string;
}

/** A TorchScript module or class instance rebuilt from data.pkl. */
export interface ObjectVal {
  readonly cls: ClassInfo;
  readonly py: PyObject;
  /** The path from the root module (`layer1.0.conv1`), "" for the root. */
  readonly fqn: string;
  /** Attributes converted so far (and attributes the code assigned). */
  readonly attrs: Map<string, Val>;
}

/** Every value the translator handles: Python values known at compile time, tensors, and code references. */
export type Val =
  | { readonly k: "none" }
  | { readonly k: "bool"; readonly v: boolean }
  | { readonly k: "int"; readonly v: number }
  | { readonly k: "float"; readonly v: number }
  | { readonly k: "str"; readonly v: string }
  | { readonly k: "device"; readonly v: string }
  | { readonly k: "list"; readonly items: Val[] }
  | { readonly k: "tuple"; readonly items: readonly Val[] }
  | { readonly k: "dict"; readonly entries: [Val, Val][] }
  | { readonly k: "tensor"; readonly box: TensorBox }
  /** A Python number only known when the model runs, held as a 0-d tensor (`bool(x.sum() > 0)`). */
  | { readonly k: "dyn"; readonly type: "bool" | "int" | "float"; readonly box: TensorBox }
  | { readonly k: "object"; readonly obj: ObjectVal }
  | { readonly k: "method"; readonly self: ObjectVal; readonly name: string }
  | { readonly k: "func"; readonly qualname: string }
  | { readonly k: "class"; readonly qualname: string }
  /** A namespace: `torch`, `ops.prim`, `__torch__.torch.nn`, `CONSTANTS`. */
  | { readonly k: "ns"; readonly path: string }
  | { readonly k: "builtin"; readonly name: string }
  | { readonly k: "uninit" };

export const NONE: Val = { k: "none" };
export const TRUE: Val = { k: "bool", v: true };
export const FALSE: Val = { k: "bool", v: false };

export const int = (v: number): Val => ({ k: "int", v });
export const float = (v: number): Val => ({ k: "float", v });
export const bool = (v: boolean): Val => (v ? TRUE : FALSE);
export const str = (v: string): Val => ({ k: "str", v });
export const tensorVal = (box: TensorBox): Val => ({ k: "tensor", box });

/** TorchScript's ScalarType codes (dtype arguments are ints in serialized code). */
export const SCALAR_TYPES = C10_SCALAR_TYPES;

export function scalarTypeCode(d: DType): number {
  for (const [code, t] of Object.entries(SCALAR_TYPES)) if (t === d) return Number(code);
  throw new Error(`no ScalarType code for ${d}`);
}

export const MEMORY_FORMATS = ["contiguous_format", "preserve_format", "channels_last", "channels_last_3d"];

export function isNumber(
  v: Val,
): v is { k: "int"; v: number } | { k: "float"; v: number } | { k: "bool"; v: boolean } {
  return v.k === "int" || v.k === "float" || v.k === "bool";
}

export function numberOf(v: Val): number {
  if (v.k === "int" || v.k === "float") return v.v;
  if (v.k === "bool") return v.v ? 1 : 0;
  throw new Error(`not a number: ${describe(v)}`);
}

/** A short description for messages: `int 3`, `Tensor float32[1, 8]`, `list of 2`. */
export function describe(v: Val): string {
  switch (v.k) {
    case "none":
      return "None";
    case "bool":
      return v.v ? "True" : "False";
    case "int":
      return `int ${v.v}`;
    case "float":
      return `float ${v.v}`;
    case "str":
      return `str ${JSON.stringify(v.v)}`;
    case "device":
      return `device ${v.v}`;
    case "list":
      return `list of ${v.items.length}`;
    case "tuple":
      return `tuple of ${v.items.length}`;
    case "dict":
      return `dict of ${v.entries.length}`;
    case "tensor":
      return `Tensor ${v.box.type.dtype}[${v.box.type.shape.join(", ")}]`;
    case "dyn":
      return `${v.type} computed at run time`;
    case "object":
      return `object ${v.obj.cls.qualname}`;
    case "method":
      return `method ${v.self.cls.qualname}.${v.name}`;
    case "func":
      return `function ${v.qualname}`;
    case "class":
      return `class ${v.qualname}`;
    case "ns":
      return v.path;
    case "builtin":
      return `builtin ${v.name}`;
    case "uninit":
      return "an uninitialized value";
  }
}

/** Structural equality of compile-time values (tensors by identity of their box). */
export function sameVal(a: Val, b: Val): boolean {
  if (a === b) return true;
  if (a.k !== b.k) {
    if (isNumber(a) && isNumber(b) && a.k !== "bool" && b.k !== "bool") return numberOf(a) === numberOf(b);
    return false;
  }
  switch (a.k) {
    case "none":
    case "uninit":
      return true;
    case "bool":
    case "int":
    case "float":
    case "str":
    case "device":
      return a.v === (b as typeof a).v;
    case "list":
    case "tuple": {
      const bi = (b as typeof a).items;
      return a.items.length === bi.length && a.items.every((x, i) => sameVal(x, bi[i]));
    }
    case "tensor":
    case "dyn":
      return a.box === (b as typeof a).box;
    case "object":
      return a.obj === (b as typeof a).obj;
    case "method":
      return a.self === (b as typeof a).self && a.name === (b as typeof a).name;
    case "func":
    case "class":
      return a.qualname === (b as typeof a).qualname;
    case "ns":
      return a.path === (b as typeof a).path;
    case "builtin":
      return a.name === (b as typeof a).name;
    case "dict":
      return false;
  }
}
