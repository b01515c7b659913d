/**
 * Control-flow segments (runtime/control-runner.ts) on the CPU reference backend: the partition gives each
 * `prim.If` / `prim.Loop` a segment of its own, each block is compiled as a module of its own (its straight-line
 * part an engine), and the module runs the block its predicate picks. The scripted `gated` fixture is checked
 * against PyTorch's outputs for an input taking each branch; a hand-built graph of fixtures/export_control.py's
 * `Looped` (a `for` over a tensor-valued count, then a `while`) against the same arithmetic done here in float64.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { DeviceTensor } from "../../src/core/device-tensor.js";
import { TorchcError } from "../../src/errors.js";
import { loadTorchScript } from "../../src/frontends/torchscript/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { partitionGraph } from "../../src/partition/index.js";
import { type CompiledModule, compile } from "../../src/runtime/compile.js";
import { closeBlock } from "../../src/runtime/control-blocks.js";
import { type ControlDeviceHost, ControlRunner } from "../../src/runtime/control-runner.js";
import { changedBlockWeights, changedWeights } from "../../src/runtime/refit-compare.js";
import { parseNpy } from "../../src/util/npy.js";
import { B, BIAS, bool0, F, f38, I, i64, looped, T, W } from "./looped-fixture.js";

const DIR = join(import.meta.dirname, "../../fixtures/models");
const npy = (f: string): Tensor => parseNpy(new Uint8Array(readFileSync(join(DIR, f))), f);
const haveGated = existsSync(join(DIR, "gated.scripted.pt"));

function maxAbsDiff(a: Tensor, b: Tensor | Float64Array): number {
  const x = toFloat64Array(a);
  const y = b instanceof Float64Array ? b : toFloat64Array(b);
  expect(x.length).toBe(y.length);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
}

/** The module's control-flow runners (its runner list is private; tests read it). */
function controlRunners(m: object): ControlRunner[] {
  return ((m as { runners?: unknown[] }).runners ?? []).filter(
    (r): r is ControlRunner => r instanceof ControlRunner,
  );
}

describe.skipIf(!haveGated)("the scripted gated model (prim.If) on the reference backend", () => {
  const load = () => loadTorchScript(join(DIR, "gated.scripted.pt"), { inputTypes: [f38] });

  it("gives the if a segment of its own between the predicate's segment and the segment after it", async () => {
    const model = await load();
    const p = partitionGraph(model.graph);
    expect(p.segments.map((s) => s.kind)).toEqual(["fallback", "control", "engine"]);
    const control = p.segments[1];
    expect(control.nodes.map((n) => n.op)).toEqual(["prim.If"]);
    // what the branches read from outside: the predicate, the input, and both Linear layers' weights
    expect([...control.inputs].sort()).toEqual(["gt", "x"]);
    expect([...control.weights].sort()).toEqual(["p_a_bias", "p_a_weight", "p_b_bias", "p_b_weight"]);
    expect(p.report.totals.controlSegments).toBe(1);
  });

  it("matches PyTorch for an input taking each branch, each branch compiled to one engine", async () => {
    const m = await compile(await load(), { backend: "reference" });
    try {
      expect(m.report.text).toContain("control flow: 1 if, branches compiled separately");
      const [ifRunner] = controlRunners(m);
      expect(ifRunner.op).toBe("if");
      // then: linear + relu; else: linear + sigmoid + mul: each branch one engine segment, nothing falls back
      for (const branch of ifRunner.modules) {
        expect(branch.partition.segments.map((s) => s.kind)).toEqual(["engine"]);
      }
      for (const [tag, branch] of [
        ["pos", "then"],
        ["neg", "else"],
      ]) {
        const x = npy(`gated.${tag}.input.npy`);
        expect(Math.sign(toFloat64Array(x).reduce((a, v) => a + v, 0))).toBe(branch === "then" ? 1 : -1);
        const [y] = await m.run([x]);
        expect(maxAbsDiff(y, npy(`gated.${tag}.output.npy`))).toBeLessThan(1e-5);
      }
    } finally {
      await m.dispose();
    }
  });

  it("keeps branches in the fallback when the user asks for a larger minBlockSize", async () => {
    const m = await compile(await load(), { backend: "reference", minBlockSize: 5 });
    try {
      const [ifRunner] = controlRunners(m);
      for (const branch of ifRunner.modules)
        expect(branch.partition.segments.map((s) => s.kind)).toEqual(["fallback"]);
      const [y] = await m.run([npy("gated.neg.input.npy")]);
      expect(maxAbsDiff(y, npy("gated.neg.output.npy"))).toBeLessThan(1e-5);
    } finally {
      await m.dispose();
    }
  });
});

// ---------------------------------------------------------------- a hand-built `Looped`

/** The same arithmetic in float64, written out here (not through torchc): what Looped returns. */
function loopedByHand(x: Float64Array, n: number): { y: Float64Array; halvings: number } {
  let y = Float64Array.from(x);
  for (let k = 0; k < n; k++) {
    const next = new Float64Array(24);
    for (let r = 0; r < 3; r++)
      for (let o = 0; o < 8; o++) {
        let s = BIAS[o];
        for (let i = 0; i < 8; i++) s += y[r * 8 + i] * W[o * 8 + i];
        next[r * 8 + o] = y[r * 8 + o] + 0.5 * Math.tanh(s);
      }
    y = next;
  }
  let halvings = 0;
  while (y.reduce((m, v) => Math.max(m, Math.abs(v)), 0) > 2) {
    y = y.map((v) => v * 0.5);
    halvings++;
  }
  return { y, halvings };
}

const input = (scale: number) =>
  tensorFromNumbers(
    "float32",
    [3, 8],
    Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.9 + 0.3) * scale),
  );

describe("a data-dependent for and while (prim.Loop) on the reference backend", () => {
  const cases = [
    { n: 0, scale: 0.5, what: "no trips, no halving" },
    { n: 3, scale: 0.5, what: "three trips" },
    { n: 2, scale: 9, what: "two trips, then the while halves" },
  ];

  it("compiles each loop body once, as an engine, and says so in the report", async () => {
    const m = await compile(looped(), { backend: "reference" });
    try {
      // abs/max/gt between the loops: three nodes, under the module's minBlockSize (5), so a fallback
      expect(m.partition.segments.map((s) => s.kind)).toEqual(["control", "fallback", "control"]);
      expect(m.report.text).toContain("control flow: 2 loops, loop bodies compiled separately");
      const loops = controlRunners(m);
      expect(loops.map((r) => r.op)).toEqual(["loop", "loop"]);
      for (const r of loops) expect(r.modules).toHaveLength(1);
      // the for body's linear/tanh/mul/add is one engine; the weights it captures are its own constants
      expect(loops[0].modules[0].partition.segments.map((s) => s.kind)).toEqual(["engine"]);
      expect(Object.keys(loops[0].blocks[0].graph.weights).sort()).toEqual(["fc.bias", "fc.weight", "go"]);
      expect(loops[0].blocks[0].captured).toEqual([]);
    } finally {
      await m.dispose();
    }
  });

  for (const c of cases) {
    it(`matches the arithmetic done by hand and the interpreter: ${c.what}`, async () => {
      const m = await compile(looped(), { backend: "reference" });
      try {
        const x = input(c.scale);
        const n = tensorFromNumbers("int64", [], [c.n]);
        const want = loopedByHand(toFloat64Array(x), c.n);
        if (c.scale > 2) expect(want.halvings).toBeGreaterThan(0);
        else expect(want.halvings).toBe(0);
        const [y] = await m.run([x, n]);
        expect(maxAbsDiff(y, want.y)).toBeLessThan(1e-5);
        expect(maxAbsDiff(y, interpret(looped(), [x, n])[0])).toBeLessThan(1e-6);
      } finally {
        await m.dispose();
      }
    });
  }
});

describe("blocks that disagree on types", () => {
  function ifGraph(elseShape: number[]): Graph {
    const then = new GraphBuilder();
    then.addNode("aten.relu.default", { self: T("x") }, [{ name: "a", type: f38 }]);
    then.setOutputs(["a"]);
    const els = new GraphBuilder();
    els.addNode(
      "aten.sum.dim_IntList",
      { self: T("x"), dim: { kind: "ints", value: [0] }, keepdim: B(true) },
      [{ name: "b", type: { dtype: "float32", shape: elseShape } }],
    );
    els.setOutputs(["b"]);
    const g = new GraphBuilder();
    g.addInput("x", f38);
    g.addInput("c", bool0);
    g.addNode(
      "prim.If",
      { cond: T("c") },
      [{ name: "r", type: f38 }],
      { sourceLocation: "model.py:7: if c:" },
      "branchy",
      [then.build(), els.build()],
    );
    g.setOutputs(["r"]);
    return g.build();
  }

  it("refuses an if whose branches give different shapes, naming the node and its source line", async () => {
    const err = await compile(ifGraph([1, 8]), { backend: "reference" }).catch((e) => e);
    expect(err).toBeInstanceOf(TorchcError);
    expect(err.code).toBe("graph.control-flow");
    expect(err.message).toContain("node 'branchy' (prim.If)");
    expect(err.message).toContain("at model.py:7: if c:");
    expect(err.message).toContain("float32[3, 8] in the then-branch and float32[1, 8] in the else-branch");
  });

  it("refuses a loop whose body changes a carried value's type", async () => {
    const b = new GraphBuilder();
    b.addInput("i", i64);
    b.addInput("y0", f38);
    b.addNode(
      "aten.sum.dim_IntList",
      { self: T("y0"), dim: { kind: "ints", value: [0] }, keepdim: B(true) },
      [{ name: "s", type: { dtype: "float32", shape: [1, 8] } }],
    );
    b.setOutputs([b.addConstant("go", tensorFromNumbers("bool", [], [1])), "s"]);
    const g = new GraphBuilder();
    g.addInput("x", f38);
    g.addNode(
      "prim.Loop",
      { max_trip_count: I(2), cond: B(true), init: { kind: "tensors", names: ["x"] } },
      [{ name: "y", type: f38 }],
      {},
      "shrink",
      [b.build()],
    );
    g.setOutputs(["y"]);
    const err = await compile(g.build(), { backend: "reference" }).catch((e) => e);
    expect(err).toBeInstanceOf(TorchcError);
    expect(err.message).toContain("node 'shrink' (prim.Loop)");
    expect(err.message).toContain("enters the loop as float32[3, 8] and leaves the body as float32[1, 8]");
  });

  it("compiles the same if when the branches agree", async () => {
    const m = await compile(sameShapeIf(), { backend: "reference" });
    try {
      const x = input(1);
      const [yes] = await m.run([x, tensorFromNumbers("bool", [], [1])]);
      const [no] = await m.run([x, tensorFromNumbers("bool", [], [0])]);
      expect(
        maxAbsDiff(
          yes,
          Float64Array.from(toFloat64Array(x), (v) => Math.max(v, 0)),
        ),
      ).toBe(0);
      expect(
        maxAbsDiff(
          no,
          Float64Array.from(toFloat64Array(x), (v) => -v),
        ),
      ).toBe(0);
    } finally {
      await m.dispose();
    }
  });
});

function sameShapeIf(): Graph {
  const then = new GraphBuilder();
  then.addNode("aten.relu.default", { self: T("x") }, [{ name: "a", type: f38 }]);
  then.setOutputs(["a"]);
  const els = new GraphBuilder();
  els.addNode("aten.neg.default", { self: T("x") }, [{ name: "b", type: f38 }]);
  els.setOutputs(["b"]);
  const g = new GraphBuilder();
  g.addInput("x", f38);
  g.addInput("c", bool0);
  g.addNode("prim.If", { cond: T("c") }, [{ name: "r", type: f38 }], {}, "branchy", [
    then.build(),
    els.build(),
  ]);
  g.setOutputs(["r"]);
  return g.build();
}

describe("blocks that hand a value through unchanged", () => {
  it("an else-branch that returns the input, and a loop body that carries one of two values unchanged", async () => {
    const then = new GraphBuilder();
    then.addNode("aten.neg.default", { self: T("x") }, [{ name: "a", type: f38 }]);
    then.setOutputs(["a"]);
    const els = new GraphBuilder();
    els.setOutputs(["x"]);
    const body = new GraphBuilder();
    body.addInput("i", i64);
    body.addInput("y0", f38);
    body.addInput("k0", f38);
    body.addNode("aten.mul.Tensor", { self: T("y0"), other: F(2) }, [{ name: "y1", type: f38 }]);
    body.setOutputs([body.addConstant("go", tensorFromNumbers("bool", [], [1])), "y1", "k0"]);
    const g = new GraphBuilder();
    g.addInput("x", f38);
    g.addInput("c", bool0);
    g.addInput("n", i64);
    g.addNode("prim.If", { cond: T("c") }, [{ name: "r", type: f38 }], {}, "if", [then.build(), els.build()]);
    g.addNode(
      "prim.Loop",
      { max_trip_count: T("n"), cond: B(true), init: { kind: "tensors", names: ["r", "x"] } },
      [
        { name: "y", type: f38 },
        { name: "k", type: f38 },
      ],
      {},
      "loop",
      [body.build()],
    );
    g.setOutputs(["y", "k"]);
    const m = await compile(g.build(), { backend: "reference" });
    try {
      const x = input(1);
      const xs = toFloat64Array(x);
      for (const [c, n] of [
        [1, 3],
        [0, 2],
        [0, 0],
      ]) {
        const [y, k] = await m.run([
          x,
          tensorFromNumbers("bool", [], [c]),
          tensorFromNumbers("int64", [], [n]),
        ]);
        expect(
          maxAbsDiff(
            y,
            xs.map((v) => (c ? -v : v) * 2 ** n),
          ),
        ).toBe(0);
        expect(maxAbsDiff(k, xs)).toBe(0);
      }
    } finally {
      await m.dispose();
    }
  });
});

describe("refit's check of control-flow blocks", () => {
  const loopOf = (g: Graph) => g.nodes.find((n) => n.op === "prim.Loop")!;

  it("finds a changed outer weight that only a loop body reads, and nothing when the weights are the same", () => {
    const built = looped();
    const same = looped();
    expect(changedBlockWeights(built, same, loopOf(built), loopOf(same))).toEqual([]);
    const next = looped(W.map((v) => v * 2));
    expect(changedBlockWeights(built, next, loopOf(built), loopOf(next))).toEqual(["fc.weight"]);
    // The node's direct arguments do not show it: the body reads fc.weight by name.
    expect(changedWeights(built, next, new Set([loopOf(next).name]))).toEqual([]);
  });
});

/**
 * `runDevice` of a loop through a ControlDeviceHost that records what it is asked (no device: "device tensors"
 * hold numbers): its two output sets are made once per host (at `prepareDevice`, the context's build) and
 * reused by every run, the body's condition is read through the host, and a constant one is not read at all.
 */
describe("a loop's device run through a ControlDeviceHost", () => {
  type Fake = DeviceTensor & { value: number[] };
  let ptr = 0n;
  const fake = (dtype: "bool" | "float32", value: number[]): Fake => {
    const t = {
      kind: "device" as const,
      dtype,
      shape: dtype === "bool" ? [] : [3, 8],
      ptr: ++ptr,
      bytes: value.length * 4,
      device: 0,
      owner: "torchc" as const,
      alive: true,
      value,
      dispose: () => {
        t.alive = false;
      },
    };
    return t;
  };
  const boolTensor = (v: boolean) => tensorFromNumbers("bool", [], [v ? 1 : 0]);
  function harness(constantCondition: boolean) {
    // Looped's `for` node: (x, n) → y_for, its body's weights its own (nothing captured)
    const graph = looped();
    const node = graph.nodes[0];
    const made: Fake[][] = [];
    const body = {
      report: { runners: ["body"] },
      graph: constantCondition
        ? { outputs: ["go", "y1"], weights: { go: { tensor: boolTensor(true) } } }
        : undefined,
      allocateOutputs: () => {
        const set = [fake("bool", [0]), fake("float32", [])];
        made.push(set);
        return set;
      },
      async run(inputs: (Tensor | DeviceTensor)[], opts: { outputs: Fake[] }) {
        const i = Number((inputs[0] as Tensor).data[0]);
        opts.outputs[1].value = (inputs[1] as Fake).value.map((v) => v * 2);
        opts.outputs[0].value = [constantCondition || i < 1 ? 1 : 0];
        return opts.outputs;
      },
      async dispose() {},
    } as unknown as CompiledModule;
    const segment = {
      index: 0,
      kind: "control" as const,
      nodes: [node],
      inputs: [],
      weights: [],
      outputs: [],
      graph,
    };
    const runner = new ControlRunner(
      segment as never,
      node.subgraphs!.map((b) => closeBlock(graph, node, b)),
      [body],
    );
    const host = (n: number) => {
      const values = new Map<string, Fake>([
        ["x", fake("float32", [1, -2])],
        ["n", fake("float32", [n])],
        [node.outputs[0], fake("float32", [])],
      ]);
      const asked = { keep: 0, made: 0, readTensor: 0 };
      const kept = new Map<object, DeviceTensor[][]>();
      const h: ControlDeviceHost = {
        tensor: (name) => values.get(name)!,
        read: async (name) => tensorFromNumbers("int64", [], values.get(name)!.value),
        readTensor: async (t) => {
          asked.readTensor++;
          return boolTensor((t as Fake).value[0] !== 0);
        },
        settle: async () => {},
        copyInto: (name, src) => {
          values.get(name)!.value = [...(src as Fake).value];
        },
        keep: (owner, make) => {
          asked.keep++;
          if (!kept.has(owner)) {
            asked.made++;
            kept.set(owner, make());
          }
          return kept.get(owner)!;
        },
      };
      return {
        h,
        asked,
        y: () => values.get(node.outputs[0])!.value,
        setN: (k: number) => values.get("n")!.value.splice(0, 1, k),
      };
    };
    return { runner, made, host };
  }

  it("makes the two output sets once per host, at prepareDevice, and reads the condition through the host", async () => {
    const { runner, made, host } = harness(false);
    const a = host(3);
    runner.prepareDevice(a.h);
    expect(made).toHaveLength(2);
    await runner.runDevice(a.h);
    // the condition (i < 1) stops it after two trips, each condition read through the host
    expect(a.y()).toEqual([4, -8]);
    expect(a.asked.readTensor).toBe(2);
    a.setN(1);
    await runner.runDevice(a.h);
    expect(a.y()).toEqual([2, -4]);
    expect(a.asked.made).toBe(1);
    expect(made).toHaveLength(2);
    // another context (host) gets sets of its own
    const b = host(2);
    await runner.runDevice(b.h);
    expect(b.y()).toEqual([4, -8]);
    expect(b.asked.made).toBe(1);
    expect(made).toHaveLength(4);
  });

  it("reads nothing for a constant condition", async () => {
    const { runner, host } = harness(true);
    const a = host(3);
    await runner.runDevice(a.h);
    expect(a.y()).toEqual([8, -16]);
    expect(a.asked.readTensor).toBe(0);
  });

  it("finds the for body's condition constant in its compiled graph, and the while body's not", async () => {
    const m = await compile(looped(), { backend: "reference" });
    try {
      const [forLoop, whileLoop] = controlRunners(m).map((r) =>
        (r as unknown as { constantCondition(): boolean | undefined }).constantCondition(),
      );
      expect(forLoop).toBe(true);
      expect(whileLoop).toBeUndefined();
    } finally {
      await m.dispose();
    }
  });
});
