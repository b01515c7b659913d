import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AnyCandidate,
  buildRegistry,
  DEFAULT_CAPABILITIES,
  DEFAULT_REGISTRY,
  graphContext,
  selectConverter,
} from "../../src/converters/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Arg, Graph } from "../../src/ir/graph.js";
import { partitionGraph } from "../../src/partition/index.js";
import { ALL_CASES } from "./cases/index.js";
import { FC_RUNS, runProperty } from "./fc-config.js";
import { candidate, oneNodeGraph } from "./harness.js";

const T = (name: string): Arg => ({ kind: "tensor", name });

function reasonFor(graph: Graph, caps = DEFAULT_CAPABILITIES): string {
  const sel = selectConverter(DEFAULT_REGISTRY, graph.nodes[0], graphContext(graph, caps));
  if (sel.ok) throw new Error(`expected a refusal, got converter '${sel.candidate.name}'`);
  return sel.reason;
}

function single(
  op: string,
  args: Record<string, Arg>,
  inputs: Record<string, { dtype: "float32" | "float64" | "int64" | "bool"; shape: number[] }>,
  outs: { dtype: "float32" | "int64" | "bool" | "float64"; shape: number[] }[],
): Graph {
  const b = new GraphBuilder();
  for (const [n, t] of Object.entries(inputs)) b.addInput(n, t);
  const names = b.addNode(
    op,
    args,
    outs.map((type, i) => ({ name: `o${i}`, type })),
    {},
    "n",
  );
  b.setOutputs(names);
  return b.build();
}

describe("refusals read well", () => {
  it("names a dtype the engine lacks, and the tensor", () => {
    const g = single("aten.relu.default", { self: T("x") }, { x: { dtype: "float64", shape: [2] } }, [
      { dtype: "float64", shape: [2] },
    ]);
    expect(reasonFor(g)).toBe("dtype float64 not supported by the engine (input 'x')");
    const ints = single("aten.neg.default", { self: T("x") }, { x: { dtype: "int64", shape: [2] } }, [
      { dtype: "int64", shape: [2] },
    ]);
    const caps = { name: "the engine", dtypes: new Set(["float32", "float16"] as const) };
    expect(reasonFor(ints, caps)).toBe("dtype int64 not supported by the engine (input 'x')");
  });

  it("explains training-mode batch norm, per candidate", () => {
    const g = single(
      "aten.batch_norm.default",
      {
        input: T("x"),
        weight: { kind: "none" },
        bias: { kind: "none" },
        running_mean: T("m"),
        running_var: T("v"),
        training: { kind: "bool", value: true },
        momentum: { kind: "float", value: 0.1 },
        eps: { kind: "float", value: 1e-5 },
        cudnn_enabled: { kind: "bool", value: true },
      },
      {
        x: { dtype: "float32", shape: [1, 2] },
        m: { dtype: "float32", shape: [2] },
        v: { dtype: "float32", shape: [2] },
      },
      [{ dtype: "float32", shape: [1, 2] }],
    );
    const r = reasonFor(g);
    expect(r).toContain(
      "batch-norm-folded-scale: batch norm in training mode uses batch statistics; export the model in eval mode (model.eval())",
    );
    expect(r).toContain(
      "batch-norm-batch-statistics: running statistics are given, so batch statistics are not used",
    );
  });

  it("refuses max_pool2d_with_indices when the indices are read", () => {
    const b = new GraphBuilder();
    b.addInput("x", { dtype: "float32", shape: [1, 1, 4, 4] });
    const [v, i] = b.addNode(
      "aten.max_pool2d_with_indices.default",
      { self: T("x"), kernel_size: { kind: "ints", value: [2, 2] } },
      [
        { name: "v", type: { dtype: "float32", shape: [1, 1, 2, 2] } },
        { name: "i", type: { dtype: "int64", shape: [1, 1, 2, 2] } },
      ],
    );
    b.setOutputs([v, i]);
    expect(reasonFor(b.build())).toBe(
      "the indices output of max_pool2d_with_indices is used; the engine computes pooled values only",
    );
  });

  it("refuses random dropout and attention dropout", () => {
    const d = single(
      "aten.dropout.default",
      { input: T("x"), p: { kind: "float", value: 0.5 }, train: { kind: "bool", value: true } },
      { x: { dtype: "float32", shape: [2] } },
      [{ dtype: "float32", shape: [2] }],
    );
    expect(reasonFor(d)).toBe("dropout with train=True and p=0.5 is random; export the model in eval mode");
  });

  it("says when an op is unknown or has no converter", () => {
    const g = single("aten.frobnicate.default", { self: T("x") }, { x: { dtype: "float32", shape: [2] } }, [
      { dtype: "float32", shape: [2] },
    ]);
    expect(reasonFor(g)).toBe("aten.frobnicate.default is not in torchc's op catalogue");
    const sel = selectConverter(
      buildRegistry(),
      single("aten.relu.default", { self: T("x") }, { x: { dtype: "float32", shape: [2] } }, [
        { dtype: "float32", shape: [2] },
      ]).nodes[0],
      graphContext(
        single("aten.relu.default", { self: T("x") }, { x: { dtype: "float32", shape: [2] } }, [
          { dtype: "float32", shape: [2] },
        ]),
      ),
    );
    expect(sel.ok ? "" : sel.reason).toBe("no converter for aten.relu.default");
  });

  it("reports arguments that do not fit the schema", () => {
    const g = single(
      "aten.relu.default",
      { self: T("x"), bogus: { kind: "int", value: 1 } },
      { x: { dtype: "float32", shape: [2] } },
      [{ dtype: "float32", shape: [2] }],
    );
    expect(reasonFor(g)).toMatch(/^its arguments do not fit the schema: .*bogus/);
  });
});

describe("a refused node is never converted", () => {
  it("falls back with the converter's reason, whatever the op", () => {
    runProperty(
      "refusal → fallback",
      fc.constantFrom(...ALL_CASES).chain((c) => c.arb.map((v) => ({ c, v }))),
      ({ c, v }) => {
        const { graph } = oneNodeGraph(v);
        const real = candidate(c.op, c.converter);
        let converted = 0;
        const refusing = {
          ...real,
          name: "refuser",
          supports: () => ({ ok: false, reason: `refused ${c.op}` }),
          convert: () => {
            converted++;
            throw new Error("convert called on a refused node");
          },
        } as AnyCandidate;
        const p = partitionGraph(graph, { registry: buildRegistry([refusing]), minBlockSize: 1 });
        expect(converted).toBe(0);
        expect(p.segments.every((s) => s.kind === "fallback")).toBe(true);
        expect(p.report.fallbackNodes.map((f) => f.reason)).toEqual([`refused ${c.op}`]);
        // A lower-priority candidate that accepts takes over.
        const q = partitionGraph(graph, {
          registry: buildRegistry([refusing, { ...real, priority: -1 } as AnyCandidate]),
          minBlockSize: 1,
        });
        expect(converted).toBe(0);
        expect(q.report.fallbackNodes).toEqual([]);
      },
      [],
      Math.min(FC_RUNS, 200),
    );
  });
});
