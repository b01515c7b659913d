import { describe, expect, it } from "vitest";
import { compileOptionsFrom } from "../../src/cli/compile-options.js";
import { parseInputShapes } from "../../src/cli/options.js";
import { ArchiveError, TorchcError } from "../../src/errors.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { evalSymExpr, normalizeSymExpr } from "../../src/frontends/pt2/sym-expr.js";
import { compile } from "../../src/runtime/compile.js";
import { bucketFor, defaultBuckets, parseInputShape } from "../../src/runtime/shape-range.js";
import { dynamicArchive } from "./make-dynamic.js";

describe("size expressions as torch.export prints them", () => {
  it("evaluates products, sums, floor division, Max/Min and powers at a binding", () => {
    const b = { s0: 6, s1: 4 };
    expect(evalSymExpr("s0", b)).toBe(6);
    expect(evalSymExpr("49*s0", b)).toBe(294);
    expect(evalSymExpr("s0 + 1", b)).toBe(7);
    expect(evalSymExpr("(s0//4)", b)).toBe(1);
    expect(evalSymExpr("-s0 + 2*s1", b)).toBe(2);
    expect(evalSymExpr("Max(1, s0 - 7)", b)).toBe(1);
    expect(evalSymExpr("Min(s0, s1)*2**3", b)).toBe(32);
    expect(evalSymExpr("FloorDiv(s0, 4) + Mod(s0, 4)", b)).toBe(3);
    expect(evalSymExpr("s0*s1/2", b)).toBe(12);
  });

  it("reads sympy's srepr form (torch 2.11 wrote the batch of a timm model as Symbol('s77', …))", () => {
    expect(normalizeSymExpr("Symbol('s77', positive=True, integer=True)")).toBe("s77");
    const b = { s77: 3, s0: 6 };
    expect(
      evalSymExpr(normalizeSymExpr("Mul(Integer(49), Symbol('s77', integer=True, positive=True))"), b),
    ).toBe(147);
    expect(evalSymExpr(normalizeSymExpr("Add(Symbol('s0', positive=True), Integer(-1))"), b)).toBe(5);
    expect(evalSymExpr(normalizeSymExpr("Pow(Symbol('s77'), Integer(2))"), b)).toBe(9);
  });

  it("loads an archive whose input size is written in srepr form, with the same range", async () => {
    const plain = await loadModel(dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 8 }));
    const srepr = await loadModel(dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 8, srepr: true }));
    expect(JSON.stringify(srepr.dynamic)).toBe(JSON.stringify(plain.dynamic));
    expect(srepr.dynamic).toBeDefined();
  });

  it("refuses what it cannot evaluate, naming the expression", () => {
    expect(() => evalSymExpr("s0 + u3", { s0: 2 })).toThrow(/'s0 \+ u3'.*symbol 'u3' has no value/);
    expect(() => evalSymExpr("sqrt(s0)", { s0: 2 })).toThrow(/function 'sqrt'/);
    expect(() => evalSymExpr("s0/4", { s0: 6 })).toThrow(/not an integer/);
    expect(() => evalSymExpr("s0 +", { s0: 6 })).toThrow(/unexpected end/);
    expect(() => evalSymExpr("s0 s0", { s0: 6 })).toThrow(/unexpected 's0'/);
  });
});

describe("buckets", () => {
  it("powers of two in the range plus opt and max; the smallest bucket that holds a batch", () => {
    expect(defaultBuckets(1, 32, 128)).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
    expect(defaultBuckets(3, 20, 100)).toEqual([4, 8, 16, 20, 32, 64, 100]);
    expect(defaultBuckets(5, 5, 5)).toEqual([5]);
    expect(bucketFor([4, 8, 16, 20, 32, 64, 100], 3)).toBe(4);
    expect(bucketFor([4, 8, 16, 20, 32, 64, 100], 17)).toBe(20);
    expect(bucketFor([4, 8, 16, 20, 32, 64, 100], 65)).toBe(100);
    expect(bucketFor([4, 8], 9)).toBeUndefined();
  });
});

describe("--input-shape", () => {
  it("takes one shape or min:opt:max, with an optional dtype", () => {
    expect(parseInputShape("1x3x224x224:8x3x224x224:64x3x224x224")).toEqual({
      minShape: [1, 3, 224, 224],
      optShape: [8, 3, 224, 224],
      maxShape: [64, 3, 224, 224],
    });
    expect(parseInputShapes(["float16:1x4:2x4:8x4", "int64:2x12", "3x5"])).toEqual([
      { minShape: [1, 4], optShape: [2, 4], maxShape: [8, 4], dtype: "float16" },
      { dtype: "int64", shape: [2, 12] },
      { dtype: "float32", shape: [3, 5] },
    ]);
    expect(compileOptionsFrom({ "input-shape": ["1x20:4x20:16x20"] }).inputs).toEqual([
      { minShape: [1, 20], optShape: [4, 20], maxShape: [16, 20] },
    ]);
    expect(() => parseInputShape("1x3:2x3")).toThrow(/min:opt:max/);
    expect(() => parseInputShape("1x3:ax3:4x3")).toThrow(/sizes joined by x/);
  });

  it("a CLI range compiles a module with that range", async () => {
    const options = compileOptionsFrom({ "input-shape": ["2x20:4x20:8x20"] });
    const m = await compile(
      await loadModel(dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 16 })),
      options,
    );
    try {
      expect((m as unknown as { range: { min: number; max: number } }).range).toMatchObject({
        min: 2,
        max: 8,
      });
    } finally {
      await m.dispose();
    }
  });
});

describe("archives with symbolic sizes the reader refuses or needs help with", () => {
  // biome-ignore lint/suspicious/noExplicitAny: the archive JSON is edited field by field, whatever its schema
  type Json = Record<string, any>;
  it("an input size that is an expression, not one symbol", async () => {
    const f = dynamicArchive({
      name: "mlp",
      batch: 4,
      min: 1,
      max: 16,
      edit: (g: Json) => {
        g.tensor_values.x.sizes[0] = { as_expr: { expr_str: "2*s0", hint: { as_int: 4 } } };
      },
    });
    await expect(loadModel(f)).rejects.toThrow(ArchiveError);
    await expect(loadModel(f)).rejects.toThrow(/input 'x' has a size '2\*s0'/);
  });

  it("a symbol with no upper bound needs maxShape", async () => {
    const f = dynamicArchive({ name: "mlp", batch: 4, min: 2, max: 16 });
    const model = await loadModel(f);
    const unbounded = {
      ...model,
      dynamic: { ...model.dynamic!, symbols: [{ name: "s0", min: 2, max: undefined }] },
    };
    await expect(compile(unbounded)).rejects.toThrow(/no upper bound; give one with inputs/);
    const m = await compile(unbounded, {
      inputs: [{ minShape: [1, 20], optShape: [2, 20], maxShape: [64, 20] }],
    });
    try {
      expect((m as unknown as { range: { max: number } }).range.max).toBe(64);
    } finally {
      await m.dispose();
    }
  });

  it("a module with a range cannot be saved yet, and says so", async () => {
    const m = await compile(await loadModel(dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 4 })));
    try {
      expect(() => m.save("/tmp/never.torchc")).toThrow(TorchcError);
      expect(() => m.save("/tmp/never.torchc")).toThrow(/not supported yet/);
    } finally {
      await m.dispose();
    }
  });
});
