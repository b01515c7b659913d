import type { NetworkBuilder } from "../../network/builder.js";
import { normalizeDim, reshape } from "./tensors.js";

/** Python slice bounds clamped as PyTorch's `slice.Tensor` clamps them (start/end may be None). */
export function resolveSlice(size: number, start: number | null, end: number | null): [number, number] {
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
  const s = start === null ? 0 : clamp(start);
  const e = end === null ? size : clamp(end);
  return [s, Math.max(e, s)];
}

/** x[..., start:end:step, ...] on one axis (positive step; bounds already absolute and clamped). */
export function sliceAxis(
  net: NetworkBuilder,
  x: string,
  dim: number,
  start: number,
  end: number,
  step: number,
): string {
  const shape = net.typeOf(x).shape;
  const d = normalizeDim(dim, shape.length);
  if (start === 0 && end === shape[d] && step === 1) return x;
  const starts = shape.map(() => 0);
  const ends = [...shape];
  const steps = shape.map(() => 1);
  starts[d] = start;
  ends[d] = end;
  steps[d] = step;
  return net.add({ type: "slice", inputs: [x], starts, ends, steps });
}

/** x.select(dim, index): a one-wide slice, then the axis is dropped. */
export function selectIndex(net: NetworkBuilder, x: string, dim: number, index: number): string {
  const shape = net.typeOf(x).shape;
  const d = normalizeDim(dim, shape.length);
  const i = index < 0 ? index + shape[d] : index;
  const s = sliceAxis(net, x, d, i, i + 1, 1);
  return reshape(
    net,
    s,
    shape.filter((_, k) => k !== d),
  );
}

/** Reverses the given axes with negative-step slices. */
export function flip(net: NetworkBuilder, x: string, dims: readonly number[]): string {
  const shape = net.typeOf(x).shape;
  const axes = new Set(dims.map((d) => normalizeDim(d, shape.length)));
  if (axes.size === 0) return x;
  return net.add({
    type: "slice",
    inputs: [x],
    starts: shape.map((s, i) => (axes.has(i) ? s - 1 : 0)),
    ends: shape.map((s, i) => (axes.has(i) ? -1 : s)),
    steps: shape.map((_, i) => (axes.has(i) ? -1 : 1)),
  });
}
