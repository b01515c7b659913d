import type { Arg } from "../../ir/graph.js";
import { numel, toFloat64Array } from "../../ir/tensor.js";
import type { ArgSpec, OpDef } from "../../ops/index.js";
import type { GraphState } from "./scope.js";
import { isNumber, MEMORY_FORMATS, numberOf, SCALAR_TYPES, type Val } from "./values.js";

/** How well a value fits a schema argument: undefined = not at all; 0 = exactly; higher = with a conversion. */
export function fitCost(v: Val, spec: ArgSpec): number | undefined {
  const t = spec.type;
  const optional = t.endsWith("?");
  if (v.k === "none") return optional || spec.default?.kind === "none" ? 0 : undefined;
  const base = optional ? t.slice(0, -1) : t;
  switch (base) {
    case "Tensor":
      if (v.k === "tensor" || v.k === "dyn") return 0;
      return isNumber(v) ? 1 : undefined;
    case "Tensor[]":
    case "Tensor?[]": {
      if (v.k !== "list" && v.k !== "tuple") return undefined;
      const ok = v.items.every(
        (x) => x.k === "tensor" || x.k === "dyn" || (base === "Tensor?[]" && x.k === "none"),
      );
      return ok ? 0 : undefined;
    }
    case "int":
      if (v.k === "int") return 0;
      return smallKnown(v, true) ? 2 : undefined;
    case "int[]":
      if (v.k === "int") return spec.size ? 0 : 1;
      if ((v.k === "list" || v.k === "tuple") && v.items.every((x) => x.k === "int")) return 0;
      return undefined;
    case "float":
      if (v.k === "float") return 0;
      if (v.k === "int") return 1;
      return smallKnown(v, false) ? 2 : undefined;
    case "float[]":
      if (v.k === "float" || v.k === "int") return 1;
      if ((v.k === "list" || v.k === "tuple") && v.items.every((x) => x.k === "float" || x.k === "int"))
        return 0;
      return undefined;
    case "bool":
      if (v.k === "bool") return 0;
      return undefined;
    case "bool[]":
      if ((v.k === "list" || v.k === "tuple") && v.items.every((x) => x.k === "bool")) return 0;
      return undefined;
    case "Scalar":
      if (isNumber(v)) return 0;
      return smallKnown(v, false) ? 2 : undefined;
    case "str":
      return v.k === "str" ? 0 : undefined;
    case "ScalarType":
      return v.k === "int" && SCALAR_TYPES[v.v] ? 0 : undefined;
    case "Layout":
      return v.k === "int" ? 0 : undefined;
    case "Device":
      return v.k === "device" || v.k === "str" ? 0 : undefined;
    case "MemoryFormat":
      return v.k === "int" && MEMORY_FORMATS[v.v] ? 0 : undefined;
  }
  return undefined;
}

/** A statically known one-element tensor (a number PyTorch turned into a tensor). */
function smallKnown(v: Val, integral: boolean): boolean {
  if (v.k !== "tensor" || !v.box.known || numel(v.box.known.shape) !== 1) return false;
  return !integral || !v.box.known.dtype.startsWith("float");
}

function knownNumber(v: Val): number {
  if (v.k === "tensor" && v.box.known) return toFloat64Array(v.box.known)[0];
  return numberOf(v);
}

function numberArg(v: Val): Arg {
  if (v.k === "bool") return { kind: "bool", value: v.v };
  if (v.k === "int") return { kind: "int", value: v.v };
  if (v.k === "float") return { kind: "float", value: v.v };
  const x = knownNumber(v);
  const d = v.k === "tensor" ? v.box.known?.dtype : undefined;
  if (d === "bool") return { kind: "bool", value: x !== 0 };
  return d && !d.startsWith("float") && d !== "bfloat16"
    ? { kind: "int", value: x }
    : { kind: "float", value: x };
}

/** Converts a value that fits `spec` into the IR's argument form (tensors become graph values). */
export function toArg(v: Val, spec: ArgSpec, g: GraphState): Arg {
  if (v.k === "none") return { kind: "none" };
  const base = spec.type.replace(/\?$/, "");
  switch (base) {
    case "Tensor":
      if (v.k === "tensor" || v.k === "dyn") return { kind: "tensor", name: g.valueOf(v.box) };
      return numberArg(v);
    case "Tensor[]":
    case "Tensor?[]": {
      const items = (v as { items: readonly Val[] }).items;
      return {
        kind: "tensors",
        names: items.map((x) => (x.k === "tensor" || x.k === "dyn" ? g.valueOf(x.box) : null)),
      };
    }
    case "int":
      return { kind: "int", value: knownNumber(v) };
    case "int[]":
      if (v.k === "int") return { kind: "ints", value: Array.from({ length: spec.size ?? 1 }, () => v.v) };
      return { kind: "ints", value: (v as { items: readonly Val[] }).items.map(numberOf) };
    case "float":
      return { kind: "float", value: knownNumber(v) };
    case "float[]":
      if (isNumber(v))
        return { kind: "floats", value: Array.from({ length: spec.size ?? 1 }, () => numberOf(v)) };
      return { kind: "floats", value: (v as { items: readonly Val[] }).items.map(numberOf) };
    case "bool":
      return { kind: "bool", value: (v as { v: boolean }).v };
    case "bool[]":
      return {
        kind: "bools",
        value: (v as { items: readonly Val[] }).items.map((x) => (x as { v: boolean }).v),
      };
    case "Scalar":
      return numberArg(v);
    case "str":
      return { kind: "string", value: (v as { v: string }).v };
    case "ScalarType":
      return { kind: "dtype", value: SCALAR_TYPES[(v as { v: number }).v] };
    case "Layout":
      return { kind: "layout", value: "strided" };
    case "Device":
      return { kind: "device", value: (v as { v: string }).v };
    case "MemoryFormat":
      return { kind: "memoryFormat", value: MEMORY_FORMATS[(v as { v: number }).v] };
  }
  throw new Error(`torchscript frontend: no conversion to schema type ${spec.type}`);
}

/** Binds call values to schema names: positional in schema order, then keywords. Undefined if they do not fit. */
export function bindValues(
  def: OpDef<unknown>,
  positional: readonly Val[],
  named: ReadonlyMap<string, Val>,
): { bound: Map<string, Val>; cost: number } | undefined {
  if (positional.length > def.schema.length) return undefined;
  const bound = new Map<string, Val>();
  positional.forEach((v, i) => {
    bound.set(def.schema[i].name, v);
  });
  for (const [k, v] of named) {
    if (bound.has(k) || !def.schema.some((s) => s.name === k)) return undefined;
    bound.set(k, v);
  }
  let cost = 0;
  for (const spec of def.schema) {
    const v = bound.get(spec.name);
    if (v === undefined) {
      if (spec.default === undefined) return undefined;
      continue;
    }
    const c = fitCost(v, spec);
    if (c === undefined) return undefined;
    cost += c;
  }
  return { bound, cost };
}
