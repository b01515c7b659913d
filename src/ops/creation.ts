import type { DType } from "../ir/dtype.js";
import { numel } from "../ir/tensor.js";
import { fromF64, scalarDtype, tt } from "./data.js";
import { type ArgReader, defineOp, OpArgError, opTable, type ScalarValue } from "./schema.js";

const OPTS = "ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None";

export interface FillArgs {
  readonly like: string | null;
  readonly size: number[] | null;
  readonly fill: ScalarValue;
  readonly dtype: DType | null;
}

/**
 * A factory: `size` (or the shape of `like`), filled with one value. Without a dtype, `*_like`/`new_*` keep
 * the model tensor's dtype, `full` takes the fill value's, and the rest use PyTorch's default float32.
 */
function fillOp<const N extends string>(
  name: N,
  schema: string,
  read: (r: ArgReader) => FillArgs,
  fromFill = false,
) {
  const resolve = (a: FillArgs, likeType: { dtype: DType; shape: readonly number[] } | null) => {
    const dtype = a.dtype ?? (fromFill ? scalarDtype(a.fill) : (likeType?.dtype ?? "float32"));
    const shape = a.size ?? [...(likeType?.shape ?? [])];
    if (shape.some((d) => d < 0)) throw new OpArgError(name, "size", `negative size [${shape.join(", ")}]`);
    return { dtype, shape };
  };
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf) => {
      const { dtype, shape } = resolve(a, a.like === null ? null : typeOf(a.like));
      return [tt(dtype, shape)];
    },
    evaluate: (a, valueAt) => {
      const { dtype, shape } = resolve(a, a.like === null ? null : valueAt(a.like));
      return [fromF64(dtype, shape, new Float64Array(numel(shape)).fill(a.fill.value))];
    },
  });
}

const num = (value: number): ScalarValue => ({ value, type: "float" });

export interface ArangeArgs {
  readonly start: ScalarValue;
  readonly end: ScalarValue;
  readonly step: ScalarValue;
  readonly dtype: DType | null;
}

function arangeLength(a: ArangeArgs): number {
  const { start, end, step } = { start: a.start.value, end: a.end.value, step: a.step.value };
  if (step === 0) throw new OpArgError("aten.arange", "step", "must be nonzero");
  if ((end - start) / step < 0)
    throw new OpArgError("aten.arange", "end", `range [${start}, ${end}) does not agree with step ${step}`);
  return Math.ceil((end - start) / step);
}

function arangeDtype(a: ArangeArgs): DType {
  return a.dtype ?? ([a.start, a.end, a.step].some((s) => s.type === "float") ? "float32" : "int64");
}

function arangeOp<const N extends string>(name: N, schema: string, read: (r: ArgReader) => ArangeArgs) {
  return defineOp({
    name,
    schema,
    read,
    infer: (a) => [tt(arangeDtype(a), [arangeLength(a)])],
    evaluate: (a) => {
      const n = arangeLength(a);
      const v = new Float64Array(n);
      for (let i = 0; i < n; i++) v[i] = a.start.value + i * a.step.value;
      return [fromF64(arangeDtype(a), [n], v)];
    },
  });
}

const one: ScalarValue = { value: 1, type: "int" };
const zero: ScalarValue = { value: 0, type: "int" };

export const CREATION_OPS = opTable(
  arangeOp("aten.arange.default", `Scalar end, *, ${OPTS}`, (r) => ({
    start: zero,
    end: r.scalar("end"),
    step: one,
    dtype: r.optDtype("dtype"),
  })),
  arangeOp("aten.arange.start", `Scalar start, Scalar end, *, ${OPTS}`, (r) => ({
    start: r.scalar("start"),
    end: r.scalar("end"),
    step: one,
    dtype: r.optDtype("dtype"),
  })),
  arangeOp("aten.arange.start_step", `Scalar start, Scalar end, Scalar step=1, *, ${OPTS}`, (r) => ({
    start: r.scalar("start"),
    end: r.scalar("end"),
    step: r.scalar("step"),
    dtype: r.optDtype("dtype"),
  })),
  fillOp(
    "aten.full.default",
    `SymInt[] size, Scalar fill_value, *, ${OPTS}`,
    (r) => ({ like: null, size: r.ints("size"), fill: r.scalar("fill_value"), dtype: r.optDtype("dtype") }),
    true,
  ),
  fillOp("aten.zeros.default", `SymInt[] size, *, ${OPTS}`, (r) => ({
    like: null,
    size: r.ints("size"),
    fill: num(0),
    dtype: r.optDtype("dtype"),
  })),
  fillOp("aten.ones.default", `SymInt[] size, *, ${OPTS}`, (r) => ({
    like: null,
    size: r.ints("size"),
    fill: num(1),
    dtype: r.optDtype("dtype"),
  })),
  // Uninitialized memory in PyTorch; zeros here so results are deterministic.
  fillOp("aten.empty.memory_format", `SymInt[] size, *, ${OPTS}, MemoryFormat? memory_format=None`, (r) => ({
    like: null,
    size: r.ints("size"),
    fill: num(0),
    dtype: r.optDtype("dtype"),
  })),
  fillOp("aten.scalar_tensor.default", `Scalar s, *, ${OPTS}`, (r) => ({
    like: null,
    size: [],
    fill: r.scalar("s"),
    dtype: r.optDtype("dtype"),
  })),
  fillOp(
    "aten.full_like.default",
    `Tensor self, Scalar fill_value, *, ${OPTS}, MemoryFormat? memory_format=None`,
    (r) => ({
      like: r.tensor("self"),
      size: null,
      fill: r.scalar("fill_value"),
      dtype: r.optDtype("dtype"),
    }),
  ),
  fillOp("aten.zeros_like.default", `Tensor self, *, ${OPTS}, MemoryFormat? memory_format=None`, (r) => ({
    like: r.tensor("self"),
    size: null,
    fill: num(0),
    dtype: r.optDtype("dtype"),
  })),
  fillOp("aten.ones_like.default", `Tensor self, *, ${OPTS}, MemoryFormat? memory_format=None`, (r) => ({
    like: r.tensor("self"),
    size: null,
    fill: num(1),
    dtype: r.optDtype("dtype"),
  })),
  fillOp("aten.empty_like.default", `Tensor self, *, ${OPTS}, MemoryFormat? memory_format=None`, (r) => ({
    like: r.tensor("self"),
    size: null,
    fill: num(0),
    dtype: r.optDtype("dtype"),
  })),
  fillOp("aten.new_zeros.default", `Tensor self, SymInt[] size, *, ${OPTS}`, (r) => ({
    like: r.tensor("self"),
    size: r.ints("size"),
    fill: num(0),
    dtype: r.optDtype("dtype"),
  })),
  fillOp("aten.new_ones.default", `Tensor self, SymInt[] size, *, ${OPTS}`, (r) => ({
    like: r.tensor("self"),
    size: r.ints("size"),
    fill: num(1),
    dtype: r.optDtype("dtype"),
  })),
  fillOp("aten.new_empty.default", `Tensor self, SymInt[] size, *, ${OPTS}`, (r) => ({
    like: r.tensor("self"),
    size: r.ints("size"),
    fill: num(0),
    dtype: r.optDtype("dtype"),
  })),
  fillOp("aten.new_full.default", `Tensor self, SymInt[] size, Scalar fill_value, *, ${OPTS}`, (r) => ({
    like: r.tensor("self"),
    size: r.ints("size"),
    fill: r.scalar("fill_value"),
    dtype: r.optDtype("dtype"),
  })),
);
