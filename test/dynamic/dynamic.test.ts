import { describe, expect, it } from "vitest";
import { InputError, TorchcError } from "../../src/errors.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { inferSymbolicTypes } from "../../src/ir/symbolic.js";
import { compile } from "../../src/runtime/compile.js";
import type { DynamicModule } from "../../src/runtime/dynamic-module.js";
import { compareTensors } from "../../src/util/compare.js";
import { dynamicArchive } from "./make-dynamic.js";
import { golden, pickRows, rowPattern } from "./rows.js";

const MLP = { name: "mlp", batch: 4, min: 1, max: 16 };
const RESNET = { name: "tiny_resnet", batch: 2, min: 1, max: 8, symbolicView: true };

async function expectError(
  p: Promise<unknown> | (() => unknown),
  code: string,
  ...parts: (string | RegExp)[]
) {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ${code} error`).toBeInstanceOf(TorchcError);
  expect((err as TorchcError).code).toBe(code);
  for (const part of parts) expect((err as Error).message).toMatch(part);
  return err as TorchcError;
}

describe("a .pt2 exported with a dynamic batch", () => {
  it("loads with its symbol, the range torch.export recorded, and the program at any size", async () => {
    const model = await loadModel(dynamicArchive(RESNET));
    expect(model.dynamic?.symbols).toEqual([{ name: "s0", min: 1, max: 8 }]);
    expect(model.dynamic?.inputTypes.x.shape).toEqual([{ symbol: "s0", coeff: 1 }, 3, 32, 32]);
    expect(model.graph.values.x.shape).toEqual([2, 3, 32, 32]); // at the hint
    const g5 = model.dynamic!.specialize({ s0: 5 });
    expect(g5.values[g5.inputs[0]].shape).toEqual([5, 3, 32, 32]);
    expect(g5.values[g5.outputs[0]].shape).toEqual([5, 10]);
    // the symbolic size argument of the view was evaluated, and sym_size left no node behind
    const view = g5.nodes.find((n) => n.op === "aten.view.default");
    expect(view?.args.size).toEqual({ kind: "ints", value: [5, 48] }); // tiny_resnet has 48 features
    expect(g5.nodes.some((n) => n.op.startsWith("aten.sym_size"))).toBe(false);
  });

  it("gives every value a symbolic type read off its specializations", async () => {
    const model = await loadModel(dynamicArchive(RESNET));
    const at = [2, 3, 7];
    const sym = inferSymbolicTypes(
      at.map((v) => model.dynamic!.specialize({ s0: v })),
      "s0",
      at,
    );
    expect(sym.irregular).toEqual([]);
    expect(sym.types[model.graph.outputs[0]].shape).toEqual([{ symbol: "s0", coeff: 1 }, 10]);
    const weight = Object.keys(model.graph.weights)[0];
    expect(sym.types[weight].shape.every((d) => typeof d === "number")).toBe(true);
  });

  it("a static archive still refuses a size it cannot read as static", async () => {
    const model = await loadModel(dynamicArchive(MLP));
    expect(model.dynamic).toBeDefined();
    const plain = await loadModel(`${process.cwd()}/fixtures/models/mlp.pt2`);
    expect(plain.dynamic).toBeUndefined();
  });
});

describe("compile() with a batch range on the reference backend", () => {
  it("matches PyTorch's rows at every batch size, exact buckets and padded ones", async () => {
    const { input, output } = golden("mlp");
    // the check is only as good as the rows are different
    expect(compareTensors(pickRows(output, [0]), pickRows(output, [1])).relative).toBeGreaterThan(0.01);
    const m = (await compile(await loadModel(dynamicArchive(MLP)), {
      inputs: [{ minShape: [1, 20], optShape: [4, 20], maxShape: [12, 20] }],
    })) as DynamicModule;
    try {
      expect(m.range.buckets).toEqual([1, 2, 4, 8, 12]);
      expect(m.buckets.filter((b) => b.resident).map((b) => b.size)).toEqual([4]); // built when first needed
      for (const n of [1, 3, 4, 5, 9, 12]) {
        const rows = rowPattern(n, 4);
        const [y] = await m.run([pickRows(input, rows)]);
        const a = compareTensors(y, pickRows(output, rows));
        expect(a.shapeMatches, `batch ${n}`).toBe(true);
        expect(a.relative, `batch ${n}`).toBeLessThanOrEqual(1e-4);
      }
      expect(m.buckets.map((b) => [b.size, b.builds])).toEqual([
        [1, 1],
        [2, 0],
        [4, 1],
        [8, 1],
        [12, 1],
      ]);
      expect(m.report.text).toMatch(/dynamic: s0 in 1–12 \(opt 4\)/);
    } finally {
      await m.dispose();
    }
  });

  it("defaults to the archive's range and runs a symbolic view (sym_size → view) at each size", async () => {
    const { input, output } = golden("tiny_resnet");
    expect(compareTensors(pickRows(output, [0]), pickRows(output, [1])).relative).toBeGreaterThan(0.01);
    const m = (await compile(await loadModel(dynamicArchive(RESNET)))) as DynamicModule;
    try {
      expect([m.range.min, m.range.opt, m.range.max]).toEqual([1, 2, 8]); // opt: the example input's size
      for (const n of [1, 3, 2]) {
        const rows = rowPattern(n, 2);
        const [y] = await m.run([pickRows(input, rows)]);
        expect(compareTensors(y, pickRows(output, rows)).relative, `batch ${n}`).toBeLessThanOrEqual(1e-4);
      }
    } finally {
      await m.dispose();
    }
  });

  it("concurrent runs at different sizes each get their own rows", async () => {
    const { input, output } = golden("mlp");
    const m = await compile(await loadModel(dynamicArchive(MLP)), {
      inputs: [{ minShape: [1, 20], optShape: [2, 20], maxShape: [8, 20] }],
    });
    try {
      const sizes = [3, 1, 7, 2, 5, 3];
      const runs = sizes.map((n, k) => {
        const rows = rowPattern(n + k, 4).slice(k);
        return m.run([pickRows(input, rows)]).then(([y]) => ({ y, rows }));
      });
      for (const { y, rows } of await Promise.all(runs))
        expect(compareTensors(y, pickRows(output, rows)).relative).toBeLessThanOrEqual(1e-4);
    } finally {
      await m.dispose();
    }
  });

  it("takes inputs by name and returns outputs by name", async () => {
    const { input, output } = golden("mlp");
    const m = await compile(await loadModel(dynamicArchive(MLP)), {
      inputs: [{ name: "x", minShape: [1, 20], optShape: [2, 20], maxShape: [4, 20] }],
    });
    try {
      const out = await m.run({ x: pickRows(input, [2, 0, 3]) });
      const [name] = Object.keys(out);
      expect(compareTensors(out[name] as never, pickRows(output, [2, 0, 3])).relative).toBeLessThanOrEqual(
        1e-4,
      );
    } finally {
      await m.dispose();
    }
  });

  it("keeps at most maxResidentBuckets built, freeing the least recently used (never opt)", async () => {
    const { input } = golden("mlp");
    const m = (await compile(await loadModel(dynamicArchive(MLP)), {
      inputs: [{ minShape: [1, 20], optShape: [4, 20], maxShape: [8, 20] }],
      dynamic: { maxResidentBuckets: 2 },
    })) as DynamicModule;
    try {
      for (const n of [1, 2, 8, 1]) await m.run([pickRows(input, rowPattern(n, 4))]);
      const info = Object.fromEntries(m.buckets.map((b) => [b.size, b]));
      expect(info[4].resident).toBe(true);
      expect(m.buckets.filter((b) => b.resident).length).toBe(2);
      expect(info[1].builds).toBe(2); // freed for 2, then for 8, built again
      expect(info[8].resident).toBe(false);
    } finally {
      await m.dispose();
    }
  });

  it('builds every bucket at compile time with build: "all"', async () => {
    const m = (await compile(await loadModel(dynamicArchive(MLP)), {
      inputs: [{ minShape: [2, 20], optShape: [4, 20], maxShape: [6, 20] }],
      dynamic: { build: "all", buckets: [3, 6] },
    })) as DynamicModule;
    try {
      expect(m.buckets.map((b) => [b.size, b.resident])).toEqual([
        [3, true],
        [4, true],
        [6, true],
      ]);
    } finally {
      await m.dispose();
    }
  });

  it("refuses a batch outside the range, naming the input and the range", async () => {
    const { input } = golden("mlp");
    const m = await compile(await loadModel(dynamicArchive(MLP)), {
      inputs: [{ minShape: [2, 20], optShape: [2, 20], maxShape: [6, 20] }],
    });
    try {
      const err = await expectError(
        m.run([pickRows(input, rowPattern(7, 4))]),
        "input.range",
        "'x'",
        "2–6",
        "7",
      );
      expect(err).toBeInstanceOf(InputError);
      await expectError(m.run([pickRows(input, [1])]), "input.range", "outside the compiled range 2–6");
      await expectError(
        m.run([{ dtype: "float32", shape: [3, 21], data: new Float32Array(63) }]),
        "input.shape",
        "[s0, 20]",
      );
    } finally {
      await m.dispose();
    }
  });
});

describe("input specs are checked before anything is built", () => {
  const range = (min: number[], opt: number[], max: number[]) => ({
    minShape: min,
    optShape: opt,
    maxShape: max,
  });

  it("a range on a dimension that was exported static", async () => {
    const model = await loadModel(dynamicArchive(MLP));
    await expectError(
      compile(model, { inputs: [range([1, 20], [2, 20], [4, 24])] }),
      "options.inputs",
      "dimension 1 is static",
    );
  });

  it("a range on a model exported with static shapes", async () => {
    const model = await loadModel(`${process.cwd()}/fixtures/models/mlp.pt2`);
    await expectError(
      compile(model, { inputs: [range([1, 20], [4, 20], [8, 20])] }),
      "options.inputs",
      "Dim",
    );
    // a static spec must be the model's own
    await expectError(
      compile(model, { inputs: [{ dtype: "float32", shape: [2, 20] }] }),
      "options.inputs",
      "[4, 20]",
    );
    await expectError(
      compile(model, { inputs: [{ dtype: "int64", shape: [4, 20] }] }),
      "options.inputs",
      "int64",
    );
  });

  it("ranges outside the exported one, min > opt, missing shapes, names and counts", async () => {
    const model = await loadModel(dynamicArchive(MLP));
    await expectError(
      compile(model, { inputs: [range([1, 20], [4, 20], [32, 20])] }),
      "options.inputs",
      "1–16",
    );
    await expectError(
      compile(model, { inputs: [range([4, 20], [2, 20], [8, 20])] }),
      "options.inputs",
      "min ≤ opt ≤ max",
    );
    await expectError(
      compile(model, { inputs: [{ minShape: [1, 20], maxShape: [8, 20] }] }),
      "options.inputs",
      "all needed",
    );
    await expectError(
      compile(model, { inputs: [{ name: "y", shape: [2, 20] }] }),
      "options.inputs",
      "no input 'y'",
    );
    await expectError(compile(model, { inputs: [] }), "options.inputs", "1 input");
  });

  it("the dynamic option", async () => {
    const model = await loadModel(dynamicArchive(MLP));
    await expectError(
      compile(model, { dynamic: { build: "eager" as never } }),
      "options.inputs",
      "dynamic.build",
    );
    await expectError(
      compile(model, { dynamic: { maxResidentBuckets: 0 } }),
      "options.inputs",
      "maxResidentBuckets",
    );
    await expectError(compile(model, { dynamic: { buckets: [2, 4] } }), "options.inputs", "include 16");
  });

  it("one shape for the dynamic dimension compiles a static module at that size", async () => {
    const { input, output } = golden("mlp");
    const m = await compile(await loadModel(dynamicArchive(MLP)), { inputs: [{ shape: [3, 20] }] });
    try {
      expect(m.graph.values[m.graph.inputs[0]].shape).toEqual([3, 20]);
      const [y] = await m.run([pickRows(input, [3, 1, 0])]);
      expect(compareTensors(y, pickRows(output, [3, 1, 0])).relative).toBeLessThanOrEqual(1e-4);
    } finally {
      await m.dispose();
    }
  });
});

describe("the row check names the node that mixes batch rows", () => {
  // biome-ignore lint/suspicious/noExplicitAny: the archive JSON is edited field by field, whatever its schema
  type Json = Record<string, any>;
  const retarget = (target: string, dim: number) => (g: Json) => {
    const n = (g.nodes as Json[]).find((x) => x.target === "torch.ops.aten.softmax.int");
    if (!n) throw new Error("mlp has no softmax");
    n.target = target;
    n.inputs[1].arg = { as_int: dim };
  };

  it("a softmax over the batch", async () => {
    const model = await loadModel(
      dynamicArchive({ ...MLP, edit: retarget("torch.ops.aten.softmax.int", 0) }),
    );
    await expectError(compile(model), "dynamic.rows", "softmax", "dimension 0", "'s0'");
  });

  it("a reduction over the batch", async () => {
    const model = await loadModel(
      dynamicArchive({
        ...MLP,
        edit: (g) => {
          const n = (g.nodes as Json[]).find((x) => x.target === "torch.ops.aten.softmax.int") as Json;
          n.target = "torch.ops.aten.amax.default";
          n.inputs[1] = { name: "dim", arg: { as_ints: [0] }, kind: 1 };
          n.inputs.push({ name: "keepdim", arg: { as_bool: true }, kind: 1 });
          g.tensor_values[n.outputs[0].as_tensor.name].sizes[0] = { as_int: 1 };
        },
      }),
    );
    await expectError(compile(model), "dynamic.rows", "amax", "reduces or selects across the batch");
  });

  it("a static compile of the same program is still allowed", async () => {
    const model = await loadModel(
      dynamicArchive({ ...MLP, edit: retarget("torch.ops.aten.softmax.int", 0) }),
    );
    const m = await compile(model, { inputs: [{ shape: [4, 20] }] });
    await m.dispose();
  });
});
