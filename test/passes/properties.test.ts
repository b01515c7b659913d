// Properties over random small graphs: lowering preserves the reference output, ends in core ops, and
// canonicalisation (and the whole pipeline) are idempotent. Failing recipes print as plain data: add them
// to REGRESSIONS to replay them forever.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { printGraph } from "../../src/ir/printer.js";
import { canonicalizeViews } from "../../src/passes/canonicalize-views.js";
import { nonCoreOps } from "../../src/passes/core-ops.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { expectSameResults, lower } from "./graphs.js";
import { buildRandomGraph, type Recipe, recipes } from "./random-graphs.js";

const RUNS = Number(process.env.TORCHC_PROPERTY_RUNS ?? 60);
const REGRESSIONS: Recipe[] = [
  {
    batch: 1,
    channels: 2,
    height: 3,
    width: 3,
    steps: [
      { kind: 0, a: 0, b: 0, size: 3, flag: true },
      { kind: 3, a: 1, b: 0, size: 1, flag: false },
      { kind: 4, a: 2, b: 1, size: 1, flag: true },
    ],
    extraOutput: 1,
  },
];

describe("pipeline properties on random graphs", () => {
  it("preserves the reference output (fp32, 1e-4 relative) and ends in core ops", () => {
    fc.assert(
      fc.property(recipes, (recipe) => {
        const graph = buildRandomGraph(recipe);
        const { graph: out } = runPipeline(graph, defaultPipeline());
        expectSameResults(graph, out, 1e-4);
        expect([...nonCoreOps(out).keys()]).toEqual([]);
      }),
      { numRuns: RUNS, examples: REGRESSIONS.map((r) => [r]) },
    );
  });

  it("canonicalize-views is idempotent, and so is the whole pipeline", () => {
    fc.assert(
      fc.property(recipes, (recipe) => {
        const graph = buildRandomGraph(recipe);
        const once = lower(graph, canonicalizeViews).graph;
        const twice = lower(once, canonicalizeViews);
        expect(printGraph(twice.graph)).toBe(printGraph(once));
        expect(twice.trace.entries).toEqual([]);
        const lowered = runPipeline(graph, defaultPipeline()).graph;
        const again = runPipeline(lowered, defaultPipeline());
        expect(printGraph(again.graph)).toBe(printGraph(lowered));
      }),
      { numRuns: RUNS, examples: REGRESSIONS.map((r) => [r]) },
    );
  });

  it("float16 lowering stays within half-precision error", () => {
    fc.assert(
      fc.property(recipes, (recipe) => {
        const graph = buildRandomGraph(recipe);
        const { graph: out } = runPipeline(graph, defaultPipeline({ enabledPrecisions: ["float16"] }));
        expectSameResults(graph, out, 3e-2);
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  });
});
