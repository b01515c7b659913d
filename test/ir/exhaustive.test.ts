// A new argument kind or activation is a type error wherever it is dispatched on and unhandled: the compiler's
// switches return from every case, so one missing case fails `npm run typecheck` (TS2366), at no run-time
// cost. (ts-pattern's `match(…).exhaustive()` gave the same check at ~5 µs a call against ~8 ns; see
// ARCHITECTURE.md.) The functions below are never called; the typecheck of this file is the test.
import { describe, expect, it } from "vitest";
import type { Arg } from "../../src/ir/graph.js";
import { formatArg } from "../../src/ir/printer.js";
import type { ActivationFn } from "../../src/network/layers/activation.js";
import { activationFunction } from "../../src/network/reference/activation.js";

// @ts-expect-error TS2366: "tensors" and the other kinds are missing, so the function may end without a value
function printsOnlyTensors(arg: Arg): string {
  switch (arg.kind) {
    case "tensor":
      return arg.name;
  }
}

// @ts-expect-error TS2366: an activation dispatch without "hardshrink" does not compile
function missingOneActivation(fn: ActivationFn): number {
  switch (fn.kind) {
    case "relu":
    case "clip":
    case "leaky_relu":
    case "elu":
    case "selu":
    case "celu":
    case "silu":
    case "sigmoid":
    case "tanh":
    case "gelu_erf":
    case "gelu_tanh":
    case "hardswish":
    case "hardsigmoid":
    case "softplus":
    case "mish":
    case "softsign":
      return 1;
  }
}

describe("exhaustive dispatch", () => {
  it("keeps the unhandled-case examples as type errors only", () => {
    expect(typeof printsOnlyTensors).toBe("function");
    expect(typeof missingOneActivation).toBe("function");
  });

  it("formats every argument kind", () => {
    const args: Arg[] = [
      { kind: "tensor", name: "x" },
      { kind: "tensors", names: ["a", null] },
      { kind: "none" },
      { kind: "int", value: 3 },
      { kind: "float", value: 0.5 },
      { kind: "bool", value: true },
      { kind: "ints", value: [1, 2] },
      { kind: "floats", value: [0.5] },
      { kind: "bools", value: [false] },
      { kind: "string", value: "same" },
      { kind: "dtype", value: "float16" },
    ];
    expect(args.map(formatArg)).toEqual([
      "%x",
      "[%a, None]",
      "None",
      "3",
      "0.5",
      "True",
      "[1, 2]",
      "[0.5]",
      "[False]",
      '"same"',
      "torch.float16",
    ]);
  });

  it("has a formula for the activations it is given", () => {
    expect(activationFunction({ kind: "hardshrink", lambda: 0.5 })(0.25)).toBe(0);
    expect(activationFunction({ kind: "relu" })(-1)).toBe(0);
  });
});
