import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareTensors } from "../../src/cli/compare.js";
import { converter, SUPPORTED } from "../../src/converters/index.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { closest, editDistance } from "../../src/runtime/validate-options.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS } from "../helpers.js";

const mlp = () => loadModel(join(MODELS, "mlp.pt2"));

describe("compile options are checked before anything is built", () => {
  it("a misspelled torchExecutedOps name is an error with a suggestion", async () => {
    await expect(compile(await mlp(), { torchExecutedOps: ["aten.sillu.default"] })).rejects.toThrow(
      /unknown op 'aten\.sillu\.default' \(did you mean 'aten\.silu\.default'\?\)/,
    );
    await expect(compile(await mlp(), { torchExecutedOps: ["relu"] })).rejects.toThrow(/unknown op 'relu'/);
  });

  it("accepts catalogue names and the model's own ops", async () => {
    const c = await compile(await mlp(), { torchExecutedOps: ["aten.relu.default"], minBlockSize: 1 });
    expect(c.report.partition.fallbackNodes.some((n) => n.op === "aten.relu.default")).toBe(true);
  });

  it.each([
    [{ contexts: 0 }, /contexts must be an integer from 1 to 64/],
    [{ device: -1 }, /device must be an integer/],
    [{ minBlockSize: 0 }, /minBlockSize must be an integer/],
    [{ workspaceBytes: 1.5 }, /workspaceBytes must be an integer/],
    [{ completion: "spin" as never }, /completion must be poll, worker or hostfn/],
  ])("refuses %o", async (opts, msg) => {
    await expect(compile(await mlp(), opts)).rejects.toThrow(msg);
  });

  it("suggestions only when close", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(closest("aten.sillu.default", ["aten.silu.default", "aten.relu.default"])).toBe(
      "aten.silu.default",
    );
    expect(closest("something.else", ["aten.silu.default"])).toBeUndefined();
  });
});

describe("extra converters (compile({ converters }))", () => {
  it("ranks a user's converter by priority with the built-ins, and the model still matches PyTorch", async () => {
    let used = 0;
    const myRelu = converter("aten.relu.default", {
      name: "my-relu",
      priority: 100,
      supports: () => SUPPORTED,
      convert: (_node, a, net) => {
        used++;
        return [
          net.net.add({ type: "activation", inputs: [net.input(a.self)], fn: { kind: "relu" } }, "my-relu"),
        ];
      },
    });
    const c = await compile(await mlp(), { converters: [[myRelu]] });
    expect(used).toBeGreaterThan(0);
    const [out] = await c.run([readNpy(join(MODELS, "mlp.input.npy"))]);
    expect(compareTensors(out, readNpy(join(MODELS, "mlp.output.npy"))).relative).toBeLessThanOrEqual(1e-4);
  });

  it("a converter whose name clashes with a built-in one is a clear error", async () => {
    const clash = converter("aten.relu.default", {
      name: "relu",
      supports: () => SUPPORTED,
      convert: () => [null],
    });
    await expect(compile(await mlp(), { converters: [[clash]] })).rejects.toThrow(
      /converters: .*registered twice/,
    );
  });
});

describe("inputs and outputs by name", () => {
  it("run({ name: tensor }) returns { output: tensor } equal to the positional run", async () => {
    const c = await compile(await mlp(), { backend: "reference" });
    const x = readNpy(join(MODELS, "mlp.input.npy"));
    const [positional] = await c.run([x]);
    const named = await c.run({ [c.graph.inputs[0]]: x });
    expect(Object.keys(named)).toEqual(c.graph.outputs);
    expect(compareTensors(named[c.graph.outputs[0]] as Tensor, positional).relative).toBe(0);
  });

  it("missing and unknown names are one clear error listing the model's inputs", async () => {
    const c = await compile(await mlp(), { backend: "reference" });
    const x = readNpy(join(MODELS, "mlp.input.npy"));
    await expect(c.run({ nope: x })).rejects.toThrow(
      new RegExp(
        `missing '${c.graph.inputs[0]}'; unknown 'nope' \\(the model's inputs: ${c.graph.inputs[0]}\\)`,
      ),
    );
  });
});
