// Refit (issue 12) on the reference backend: new weights of the same architecture give exactly the outputs of a
// fresh compile of the new model (from a loaded model, a graph or a .torchc package), engine and fallback segments
// alike; a different structure is refused naming the first difference; the module saves its new weights.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TorchcError } from "../../src/errors.js";
import { type LoadedModel, loadModel } from "../../src/frontends/load-model.js";
import type { Graph, Weight } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { compile, loadCompiled } from "../../src/runtime/compile.js";
import { firstDifference } from "../../src/runtime/refit-compare.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS, tempDir } from "../helpers.js";

/** The model with every float weight replaced by a seeded different value (same names, dtypes, shapes). */
function reweighted(m: LoadedModel, seed: number): LoadedModel {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  const weights: Record<string, Weight> = {};
  for (const [name, w] of Object.entries(m.graph.weights)) {
    const t = w.tensor;
    const floats = t.dtype === "float32" || t.dtype === "float16";
    const values = floats ? Array.from(toFloat64Array(t), (v) => v * 0.5 + next() * 0.2) : toFloat64Array(t);
    weights[name] = { ...w, tensor: tensorFromNumbers(t.dtype, t.shape, values) };
  }
  return { ...m, graph: { ...m.graph, weights } };
}

function same(a: Tensor, b: Tensor): void {
  expect(a.shape).toEqual(b.shape);
  expect(Array.from(a.data as Float32Array)).toEqual(Array.from(b.data as Float32Array));
}

function differs(a: Tensor, b: Tensor): boolean {
  return Array.from(a.data as Float32Array).some((v, i) => v !== (b.data as Float32Array)[i]);
}

async function refusal(p: Promise<unknown>, code: string, ...fragments: RegExp[]): Promise<void> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, "expected a TorchcError").toBeInstanceOf(TorchcError);
  expect((e as TorchcError).code).toBe(code);
  expect((e as Error).message).not.toContain("\n");
  for (const f of fragments) expect((e as Error).message).toMatch(f);
}

describe("refit on the reference backend", () => {
  it.each([
    ["mlp.pt2", "mlp.input.npy", {}],
    ["tiny_efficientnet.pt2", "tiny_efficientnet.input.npy", {}],
    [
      "tiny_efficientnet.pt2 (silu in fallback segments)",
      "tiny_efficientnet.input.npy",
      { torchExecutedOps: ["aten.silu.default"], minBlockSize: 1 },
    ],
  ] as const)("%s: outputs equal a fresh compile of the new weights", async (name, input, extra) => {
    const model = await loadModel(join(MODELS, name.split(" ")[0]));
    const x = readNpy(join(MODELS, input));
    const compiled = await compile(model, { backend: "reference", ...extra });
    const [before] = await compiled.run([x]);
    const next = reweighted(model, 7);
    const report = await compiled.refit(next);
    const [after] = await compiled.run([x]);
    const [fresh] = await (await compile(next, { backend: "reference", ...extra })).run([x]);
    same(after, fresh);
    expect(differs(after, before), "new weights change the output").toBe(true);
    expect(report.changedWeights).toBeGreaterThan(0);
    expect(report.rebuiltRunners).toBe(compiled.partition.segments.length);
  });

  it("takes a graph or a saved package, and save() writes the new weights", async () => {
    const model = await loadModel(join(MODELS, "mlp.pt2"));
    const x = readNpy(join(MODELS, "mlp.input.npy"));
    const next = reweighted(model, 3);
    const other = await compile(next, { backend: "reference" });
    const pkg = join(tempDir(), "next.torchc");
    other.save(pkg);
    const [want] = await other.run([x]);

    const a = await compile(model, { backend: "reference" });
    await a.refit(pkg);
    same((await a.run([x]))[0], want);

    const b = await compile(model, { backend: "reference" });
    await b.refit(next.graph as Graph);
    same((await b.run([x]))[0], want);
    const saved = join(tempDir(), "refitted.torchc");
    b.save(saved);
    same((await (await loadCompiled(saved)).run([x]))[0], want);
  });

  it("refuses another architecture, naming the first difference", async () => {
    const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
    await refusal(
      compiled.refit(join(MODELS, "tiny_resnet.pt2")),
      "refit.mismatch",
      /^refit: the new model's structure differs: /,
    );
  });

  it("refuses a weight of another shape, naming it and the node reading it", () => {
    const w = (shape: number[]) => ({
      kind: "parameter" as const,
      target: "fc.weight",
      tensor: tensorFromNumbers("float32", shape, new Array(shape.reduce((p, q) => p * q, 1)).fill(0)),
    });
    const graph = (shape: number[], name = "fc_weight"): Graph => ({
      inputs: ["x"],
      outputs: ["y"],
      nodes: [
        {
          name: "y",
          op: "aten.mm.default",
          args: { self: { kind: "tensor", name: "x" }, mat2: { kind: "tensor", name } },
          outputs: ["y"],
          meta: {},
        },
      ],
      values: {},
      weights: { [name]: w(shape) },
    });
    expect(firstDifference(graph([4, 3]), graph([4, 3]))).toBeUndefined();
    expect(firstDifference(graph([4, 3]), graph([4, 3], "folded_constant_7"))).toBeUndefined();
    expect(firstDifference(graph([4, 3]), graph([4, 2]))).toBe(
      "node 0 'y' (aten.mm.default): weight 'fc_weight' is float32[4, 2], the compiled one float32[4, 3]",
    );
  });

  it("names a node whose arguments differ", async () => {
    const model = await loadModel(join(MODELS, "tiny_resnet.pt2"));
    const conv = model.graph.nodes.findIndex((n) => n.args.stride?.kind === "ints");
    expect(conv).toBeGreaterThanOrEqual(0);
    const nodes = model.graph.nodes.map((n, i) =>
      i === conv ? { ...n, args: { ...n.args, padding: { kind: "ints" as const, value: [7, 7] } } } : n,
    );
    const d = firstDifference(model.graph, { ...model.graph, nodes });
    expect(d).toMatch(
      new RegExp(
        `^node ${conv} '${model.graph.nodes[conv].name}' \\(aten\\.[a-z0-9_]+\\.[a-z]+\\): argument 'padding' is`,
      ),
    );
  });

  it("refuses a disposed module", async () => {
    const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
    await compiled.dispose();
    await refusal(compiled.refit(join(MODELS, "mlp.pt2")), "runtime.disposed");
  });
});
