import { describe, expect, it } from "vitest";
import { DEFAULT_REGISTRY, describeCoverage, formatCoverage } from "../../src/converters/index.js";
import { OP_NAMES } from "../../src/ops/index.js";
import { ALL_CASES } from "./cases/index.js";

describe("converter coverage", () => {
  it("every op of the catalogue has a converter", () => {
    const missing = OP_NAMES.filter((op) => (DEFAULT_REGISTRY.byOp.get(op) ?? []).length === 0);
    expect(missing).toEqual([]);
  });

  it("every converter candidate has property cases", () => {
    const candidates = [...DEFAULT_REGISTRY.byOp.values()].flat().map((c) => `${c.op} [${c.name}]`);
    const tested = new Set(ALL_CASES.map((c) => `${c.op} [${c.converter}]`));
    expect(candidates.filter((c) => !tested.has(c))).toEqual([]);
  });

  it("every property case names a real candidate", () => {
    const candidates = new Set([...DEFAULT_REGISTRY.byOp.values()].flat().map((c) => `${c.op} [${c.name}]`));
    expect(ALL_CASES.map((c) => `${c.op} [${c.converter}]`).filter((c) => !candidates.has(c))).toEqual([]);
  });

  it("candidates are ordered by priority and describe themselves", () => {
    const rows = describeCoverage(DEFAULT_REGISTRY);
    expect(rows.length).toBeGreaterThanOrEqual(OP_NAMES.length);
    const bn = rows.find((r) => r.op === "aten.batch_norm.default");
    expect(bn?.candidates.map((c) => c.name)).toEqual([
      "batch-norm-folded-scale",
      "batch-norm-elementwise",
      "batch-norm-batch-statistics",
    ]);
    expect(bn?.candidates[0].priority).toBeGreaterThan(bn?.candidates[1].priority ?? 0);
    const text = formatCoverage(rows);
    expect(text).toContain("aten.convolution.default");
    expect(text).toMatch(/\d+ of \d+ ops have a converter/);
  });
});
