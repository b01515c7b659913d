/** Element types a tensor can hold, named as PyTorch names them (without the `torch.` prefix). */
export type DType =
  | "float32"
  | "float16"
  | "bfloat16"
  | "float64"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

export const DTYPES: readonly DType[] = [
  "float32",
  "float16",
  "bfloat16",
  "float64",
  "int64",
  "int32",
  "int16",
  "int8",
  "uint8",
  "bool",
];

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export function isFloating(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float16" || dtype === "bfloat16" || dtype === "float64";
}

export function isIntegral(dtype: DType): boolean {
  return !isFloating(dtype) && dtype !== "bool";
}

/** PyTorch's type promotion for two tensor operands of the same category rank. */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  const order: DType[] = [
    "bool",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
  ];
  if ((a === "float16" && b === "bfloat16") || (a === "bfloat16" && b === "float16")) return "float32";
  return order.indexOf(a) > order.indexOf(b) ? a : b;
}

/** c10::ScalarType codes, as TorchScript code, aten defaults and the LibTorch C shim spell dtypes. */
export const C10_SCALAR_TYPES: Readonly<Record<number, DType>> = {
  0: "uint8",
  1: "int8",
  2: "int16",
  3: "int32",
  4: "int64",
  5: "float16",
  6: "float32",
  7: "float64",
  11: "bool",
  15: "bfloat16",
};
