/**
 * planDispatch: one aten node → the argument stack of its `aoti_torch_call_dispatcher` call, built from the
 * op's schema (src/ops) with every defaulted argument filled in, in schema order. Pure: no native call, no
 * handle; the runner turns the plan into StableIValues. Anything the PyTorch 2.11 shim cannot carry comes back
 * as `{ unsupported: reason }` so that it is refused before any pointer reaches C:
 *
 * - `Scalar` arguments: the shim has no Scalar conversion. scalar-rewrites.ts rewrites those ops first; the one
 *   exception planned here is `aten.add.Tensor`, called through the generated `aoti_torch_cuda_add_Tensor`
 *   (double alpha) for floating results.
 * - numbers in `Tensor` slots (`add.Tensor(x, 3)`): scalar-rewrites.ts turns them into 0-d constants.
 * - `Device` arguments: a fallback segment runs on one GPU, so `Device?` is passed as None (the result follows
 *   its tensor inputs); ops with no tensor input are rewritten into constants or expand-of-constant first.
 */
import type { DType } from "../../ir/dtype.js";
import { C10_SCALAR_TYPES, isFloating } from "../../ir/dtype.js";
import type { Arg, Node, TensorType } from "../../ir/graph.js";
import type { ArgSpec } from "../../ops/types.js";
import type { DispatchPlan, EncodedArg, ShimName, Unsupported } from "./encoded-arg.js";
import { splitOpName } from "./encoded-arg.js";
import { callSchema, withSchemaDefaults } from "./op-schema.js";

/** Ops whose Scalar arguments go to a generated CUDA shim taking doubles, in schema order. */
export const SHIM_OPS: Readonly<Record<string, ShimName>> = {
  "aten.add.Tensor": "aoti_torch_cuda_add_Tensor",
};

const SCALAR_TYPE_CODES = C10_SCALAR_TYPES;

/** c10::MemoryFormat values (raw int32 in the StableIValue, per the stable ABI table). */
export const MEMORY_FORMAT_CODES: Readonly<Record<string, number>> = {
  contiguous_format: 0,
  preserve_format: 1,
  channels_last: 2,
  channels_last_3d: 3,
};

/** c10::Layout values; only dense tensors run here. */
export const LAYOUT_CODES: Readonly<Record<string, number>> = { strided: 0 };

class Refused extends Error {}

function refuse(reason: string): never {
  throw new Refused(reason);
}

function describeArg(a: Arg): string {
  return "value" in a ? `${a.kind} ${JSON.stringify(a.value)}` : a.kind;
}

function toNumber(a: Arg, what: string): number {
  if (a.kind === "int" || a.kind === "float") {
    const v = Number(a.value);
    if (Number.isNaN(v) && String(a.value) !== "NaN" && String(a.value) !== "nan")
      refuse(`${what}: ${describeArg(a)} is not a number`);
    return v;
  }
  if (a.kind === "bool") return a.value ? 1 : 0;
  return refuse(`${what}: expected a number, got ${describeArg(a)}`);
}

function toInt(a: Arg, what: string): number {
  if (a.kind === "ints" && a.value.length === 1) return a.value[0];
  if (a.kind === "float") refuse(`${what}: expected an int, got ${describeArg(a)}`);
  const v = toNumber(a, what);
  if (!Number.isSafeInteger(v)) refuse(`${what}: ${v} is not a safe integer`);
  return v;
}

function toList(spec: ArgSpec, a: Arg, what: string): number[] {
  if (a.kind === "ints" || a.kind === "floats") return a.value.map(Number);
  if (a.kind === "bools") return a.value.map((b) => (b ? 1 : 0));
  if (a.kind === "tensors" && a.names.length === 0) return [];
  if (a.kind === "int" || a.kind === "float" || a.kind === "bool")
    return Array.from({ length: spec.size ?? 1 }, () => toNumber(a, what));
  return refuse(`${what}: expected a list, got ${describeArg(a)}`);
}

function toDtype(a: Arg, what: string): DType {
  if (a.kind === "dtype") return a.value;
  if (a.kind === "int" && SCALAR_TYPE_CODES[a.value]) return SCALAR_TYPE_CODES[a.value];
  return refuse(`${what}: expected a dtype, got ${describeArg(a)}`);
}

interface EncodeContext {
  readonly op: string;
  readonly hasTensorInput: boolean;
  readonly shim: ShimName | undefined;
}

/** The encoding of one present (non-None) value of the schema type `base` (without `?`). */
function encodeValue(spec: ArgSpec, base: string, a: Arg, cx: EncodeContext): EncodedArg {
  const what = `argument '${spec.name}' (${spec.type})`;
  switch (base) {
    case "Tensor":
      if (a.kind === "tensor") return { kind: "tensor", value: a.name };
      if (a.kind === "int" || a.kind === "float" || a.kind === "bool")
        refuse(
          `${what} holds the number ${JSON.stringify(a.value)}; it must become a 0-d constant first (scalar-rewrites)`,
        );
      return refuse(`${what}: expected a tensor, got ${describeArg(a)}`);
    case "Tensor[]":
      if (a.kind === "tensor") return { kind: "tensorList", values: [a.name] };
      if (a.kind === "tensors") {
        if (a.names.some((n) => n === null)) refuse(`${what}: None in a Tensor[] list`);
        return { kind: "tensorList", values: a.names as string[] };
      }
      return refuse(`${what}: expected a tensor list, got ${describeArg(a)}`);
    case "Tensor?[]":
      if (a.kind === "tensors") return { kind: "optTensorList", values: [...a.names] };
      if (a.kind === "tensor") return { kind: "optTensorList", values: [a.name] };
      return refuse(`${what}: expected a list of optional tensors, got ${describeArg(a)}`);
    case "int":
      return { kind: "int", value: toInt(a, what) };
    case "float":
      return { kind: "float", value: toNumber(a, what) };
    case "bool":
      if (a.kind === "bool") return { kind: "bool", value: a.value };
      if (a.kind === "int" && (a.value === 0 || a.value === 1)) return { kind: "bool", value: a.value === 1 };
      return refuse(`${what}: expected a bool, got ${describeArg(a)}`);
    case "int[]": {
      const values = toList(spec, a, what);
      if (values.some((v) => !Number.isSafeInteger(v)))
        refuse(`${what}: ${JSON.stringify(values)} are not all integers`);
      return { kind: "intList", values };
    }
    case "float[]":
      return { kind: "floatList", values: toList(spec, a, what) };
    case "bool[]":
      return { kind: "boolList", values: toList(spec, a, what).map((v) => v !== 0) };
    case "str":
      if (a.kind === "string") return { kind: "str", value: a.value };
      return refuse(`${what}: expected a string, got ${describeArg(a)}`);
    case "ScalarType":
      return { kind: "dtype", value: toDtype(a, what) };
    case "Layout": {
      const v = a.kind === "layout" ? a.value : a.kind === "int" && a.value === 0 ? "strided" : undefined;
      const code = v === undefined ? undefined : LAYOUT_CODES[v];
      if (code === undefined)
        refuse(`${what}: only the strided layout runs on LibTorch here, got ${describeArg(a)}`);
      return { kind: "layout", value: v as string, code };
    }
    case "MemoryFormat": {
      const v = a.kind === "memoryFormat" ? a.value : undefined;
      const code = v === undefined ? undefined : MEMORY_FORMAT_CODES[v];
      if (code === undefined) refuse(`${what}: unknown memory format ${describeArg(a)}`);
      return { kind: "memoryFormat", value: v as string, code };
    }
    case "Scalar":
      if (!cx.shim)
        refuse(
          `${what}: PyTorch 2.11's aoti_torch_call_dispatcher cannot pass a Scalar and scalar-rewrites.ts has no rule for ${cx.op}`,
        );
      return { kind: "double", value: toNumber(a, what) };
    default:
      return refuse(`${what}: schema type ${spec.type} is not supported by the LibTorch fallback`);
  }
}

function encodeSpec(spec: ArgSpec, a: Arg, cx: EncodeContext): EncodedArg {
  const optional = spec.type.endsWith("?");
  const base = optional ? spec.type.slice(0, -1) : spec.type;
  if (base === "Device") {
    // One GPU: results follow their tensor inputs' device. A required Device is rewritten away earlier.
    if (!optional) refuse(`argument '${spec.name}' (Device) must be rewritten before dispatch (op-rewrites)`);
    if (!cx.hasTensorInput)
      refuse(
        `argument '${spec.name}': ${cx.op} creates a tensor without a tensor input to take its device from`,
      );
    return { kind: "none" };
  }
  if (spec.name === "pin_memory" && base === "bool") return { kind: "none" }; // GPU tensors are never pinned
  if (a.kind === "none") {
    if (!optional) refuse(`argument '${spec.name}' (${spec.type}) is None`);
    return { kind: "none" };
  }
  const value = encodeValue(spec, base, a, cx);
  if (!optional || value.kind === "double") return value;
  return { kind: "optional", value };
}

export interface PlanDispatchOptions {
  /** Value types, to refuse the add shim for integral results (its double alpha fails ATen's alpha check). */
  readonly typeOf?: (name: string) => TensorType | undefined;
}

/** The dispatcher plan for `node`, or why it cannot be called through the 2.11 shim as it stands. */
export function planDispatch(node: Node, opts: PlanDispatchOptions = {}): DispatchPlan | Unsupported {
  const def = callSchema(node.op);
  if ("unsupported" in def) return def;
  const qualified = splitOpName(node.op);
  if (!qualified?.[0].startsWith("aten::"))
    return { unsupported: `${node.op} is not an aten overload the dispatcher knows` };
  if (node.subgraphs?.length) return { unsupported: `${node.op} has nested blocks (control flow)` };
  let args: Record<string, Arg>;
  try {
    args = withSchemaDefaults(def, node.args);
  } catch (e) {
    return { unsupported: (e as Error).message };
  }
  const shim = SHIM_OPS[node.op];
  if (shim && opts.typeOf) {
    const out = opts.typeOf(node.outputs[0]);
    if (out && !isFloating(out.dtype))
      return { unsupported: `${shim} takes a double alpha, which ATen rejects for ${out.dtype} results` };
  }
  const cx: EncodeContext = {
    op: node.op,
    shim,
    hasTensorInput: def.schema.some((s) => s.type.startsWith("Tensor") && args[s.name]?.kind === "tensor"),
  };
  try {
    const encoded = def.schema.map((s) => encodeSpec(s, args[s.name], cx));
    return {
      op: qualified[0],
      overload: qualified[1],
      via: shim ?? "dispatcher",
      args: encoded,
      names: def.schema.map((s) => s.name),
      returns: def.returns,
    };
  } catch (e) {
    if (e instanceof Refused) return { unsupported: e.message };
    throw e;
  }
}
