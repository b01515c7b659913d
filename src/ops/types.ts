import type { Arg, TensorType } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";

/**
 * The argument types that appear in the aten schemas torchc knows, spelled as in PyTorch's schema strings.
 * `SymInt` is treated as `int` (torchc compiles static shapes); a fixed list length (`int[2]`) is kept in
 * `ArgSpec.size`.
 */
export type SchemaType =
  | "Tensor"
  | "Tensor?"
  | "Tensor[]"
  | "Tensor?[]"
  | "int"
  | "int?"
  | "int[]"
  | "int[]?"
  | "float"
  | "float?"
  | "float[]"
  | "float[]?"
  | "bool"
  | "bool?"
  | "bool[]"
  | "Scalar"
  | "Scalar?"
  | "str"
  | "str?"
  | "ScalarType"
  | "ScalarType?"
  | "Layout?"
  | "Device"
  | "Device?"
  | "MemoryFormat"
  | "MemoryFormat?";

export interface ArgSpec {
  readonly name: string;
  readonly type: SchemaType;
  /** The schema default; absent means the argument is required. */
  readonly default?: Arg;
  readonly kwargOnly?: boolean;
  /** Fixed list length (`int[2]`): a single int is repeated this many times, as PyTorch does. */
  readonly size?: number;
}

/** Looks up a value's static type (shape inference) or its data (reference evaluation). */
export type TypeOf = (valueName: string) => TensorType;
export type ValueOf = (valueName: string) => Tensor;

/**
 * One aten overload: its schema, a parser from the generic argument record to a typed one, shape and dtype
 * inference, and a CPU reference implementation (float32 data, float64 accumulation).
 * In the typed record, tensor arguments are value names (string), optional tensors `string | null`.
 */
export interface OpDef<A> {
  readonly name: string;
  readonly schema: readonly ArgSpec[];
  /**
   * Number of tensor results, or "list" for a `Tensor[]` return (split, chunk, unbind) whose length
   * depends on the arguments and input shapes: `infer(...).length` gives it.
   */
  readonly returns: number | "list";
  /** Throws a TorchcError naming the argument if the record does not fit the schema. Applies defaults. */
  parse(args: Readonly<Record<string, Arg>>): A;
  infer(args: A, typeOf: TypeOf): TensorType[];
  evaluate(args: A, valueAt: ValueOf): Tensor[];
}
