import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph } from "../../src/ir/graph.js";
import { nodeReads } from "../../src/ir/reads.js";
import { toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { partitionGraph } from "../../src/partition/index.js";
import { runProperty } from "../converters/fc-config.js";
import { f32, randomTensor, runPartition, T } from "./helpers.js";

const UNARY = ["aten.relu.default", "aten.neg.default", "aten.tanh.default", "aten.sigmoid.default"];
const BINARY = ["aten.add.Tensor", "aten.mul.Tensor", "aten.maximum.default"];
/** The op the fallback gets: torchExecutedOps names it, so any node can be made unsupported. */
const FALLBACK = "aten.abs.default";

interface Step {
  readonly binary: boolean;
  readonly op: number;
  readonly a: number;
  readonly b: number;
  readonly fallback: boolean;
  readonly inPlace: boolean;
}

/** A random DAG over [2, 3] floats: each node reads one or two earlier values; some run in the fallback. */
function build(inputs: number, steps: readonly Step[], outputs: readonly number[]): Graph {
  const b = new GraphBuilder();
  const values: string[] = [];
  for (let i = 0; i < inputs; i++) values.push(b.addInput(`x${i}`, f32([2, 3])));
  steps.forEach((s, i) => {
    const a = values[s.a % values.length];
    const other = values[s.b % values.length];
    const name = `v${i}`;
    if (s.fallback) b.addNode(FALLBACK, { self: T(a) }, [{ name, type: f32([2, 3]) }], {}, `n${i}`);
    else if (s.inPlace)
      b.addNode("aten.relu_.default", { self: T(a) }, [{ name, type: f32([2, 3]) }], {}, `n${i}`);
    else if (s.binary)
      b.addNode(
        BINARY[s.op % BINARY.length],
        { self: T(a), other: T(other) },
        [{ name, type: f32([2, 3]) }],
        {},
        `n${i}`,
      );
    else b.addNode(UNARY[s.op % UNARY.length], { self: T(a) }, [{ name, type: f32([2, 3]) }], {}, `n${i}`);
    values.push(name);
  });
  b.setOutputs([...new Set(outputs.map((o) => values[o % values.length]))]);
  return b.build();
}

const stepArb = fc.record({
  binary: fc.boolean(),
  op: fc.nat(10),
  a: fc.nat(40),
  b: fc.nat(40),
  fallback: fc.double({ min: 0, max: 1, noNaN: true }).map((p) => p < 0.25),
  inPlace: fc.double({ min: 0, max: 1, noNaN: true }).map((p) => p < 0.1),
});

const caseArb = fc.record({
  inputs: fc.integer({ min: 1, max: 3 }),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 25 }),
  outputs: fc.array(fc.nat(60), { minLength: 1, maxLength: 3 }),
  minBlockSize: fc.integer({ min: 1, max: 6 }),
});

describe("partition properties", () => {
  it("segments cover every node once, respect dependencies and minBlockSize, and compute what the graph does", () => {
    runProperty("partition of random graphs", caseArb, (c) => {
      const g = build(c.inputs, c.steps, c.outputs);
      const p = partitionGraph(g, { torchExecutedOps: [FALLBACK], minBlockSize: c.minBlockSize });
      const seen = p.segments.flatMap((s) => s.nodes.map((n) => n.name));
      expect([...seen].sort()).toEqual(p.graph.nodes.map((n) => n.name).sort());
      // Each segment reads only graph inputs and what earlier segments export.
      const available = new Set(p.graph.inputs);
      for (const s of p.segments) {
        for (const v of s.inputs)
          expect(available.has(v), `segment ${s.index} reads '${v}' before it exists`).toBe(true);
        const inside = new Set(s.nodes.flatMap((n) => n.outputs));
        for (const n of s.nodes)
          for (const v of nodeReads(n))
            expect(inside.has(v) || s.inputs.includes(v), `'${v}' missing from segment ${s.index}`).toBe(
              true,
            );
        for (const v of s.outputs) available.add(v);
        if (s.kind === "engine") expect(s.nodes.length).toBeGreaterThanOrEqual(c.minBlockSize);
      }
      for (const o of p.graph.outputs) expect(available.has(o)).toBe(true);
      // Segments alternate kinds; the report agrees with the segments.
      for (let i = 1; i < p.segments.length; i++) expect(p.segments[i].kind).not.toBe(p.segments[i - 1].kind);
      expect(p.report.totals.fallbackNodes).toBe(
        p.segments.filter((s) => s.kind === "fallback").reduce((a, s) => a + s.nodes.length, 0),
      );
      for (const f of p.report.fallbackNodes) expect(f.reason.length).toBeGreaterThan(0);
      // Running the segments in order gives the graph's results.
      const inputs = g.inputs.map((n, i) => randomTensor(g.values[n], i + 1));
      const want = interpret(g, inputs).map((t) => Array.from(toFloat64Array(t)));
      const got = runPartition(p, inputs).map((t) => Array.from(toFloat64Array(t)));
      expect(got).toEqual(want);
    });
  });
});
