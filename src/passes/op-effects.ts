// Which ops a pass may merge, drop or evaluate at compile time. torchc graphs are functional (no in-place
// ops), so only randomness and uninitialised memory make two identical calls differ.

const RANDOM_OPS: ReadonlySet<string> = new Set([
  "aten.rand.default",
  "aten.rand_like.default",
  "aten.randn.default",
  "aten.randn_like.default",
  "aten.randint.default",
  "aten.randint.low",
  "aten.randint_like.default",
  "aten.randperm.default",
  "aten.bernoulli.default",
  "aten.bernoulli.p",
  "aten.normal.Tensor_float",
  "aten.normal.float_Tensor",
  "aten.normal.Tensor_Tensor",
  "aten.uniform.default",
  "aten.multinomial.default",
  "aten.exponential.default",
  "aten.poisson.default",
  "aten.native_dropout.default",
  "aten.rrelu.default",
  "aten.empty.memory_format",
  "aten.empty_like.default",
  "aten.empty_strided.default",
]);

/** Two calls with equal arguments give equal results (false for random ops and uninitialised memory). */
export function isDeterministic(
  op: string,
  args: Readonly<Record<string, { kind: string; value?: unknown }>>,
): boolean {
  if (RANDOM_OPS.has(op)) return false;
  // Dropout in training mode draws a mask.
  if (op.includes("dropout") && args.train?.kind === "bool" && args.train.value === true) return false;
  return true;
}
