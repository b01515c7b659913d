import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareTensors } from "../../src/cli/compare.js";
import { converter, SUPPORTED } from "../../src/converters/index.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import type { CompileOptions } from "../../src/runtime/options.js";
import { closest, editDistance } from "../../src/runtime/validate-options.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS } from "../helpers.js";

const mlp = () => loadModel(join(MODELS, "mlp.pt2"));

describe("compile options are checked before anything is built", () => {
  it("a misspelled torchExecutedOps name is a type error, and at run time an error with a suggestion", async () => {
    // @ts-expect-error: op names are the catalogue's OpName union (TypeScript suggests 'aten.silu.default')
    const misspelled: CompileOptions = { torchExecutedOps: ["aten.sillu.default"] };
    await expect(compile(await mlp(), misspelled)).rejects.toThrow(
      /unknown op 'aten\.sillu\.default' \(did you mean 'aten\.silu\.default'\?\)/,
    );
    // @ts-expect-error: not an overload name
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
    [{ completion: "spin" }, /completion must be poll, worker or hostfn/],
    [{ minBlocksize: 3 }, /unknown option 'minBlocksize' \(did you mean 'minBlockSize'\?\)/],
    [{ truncate_double: true }, /unknown option 'truncate_double' \(did you mean 'truncateDouble'\?\)/],
    [{ truncateDouble: "yes" }, /truncateDouble must be true or false/],
    [{ tf32: 1 }, /tf32 must be true or false/],
    [{ tune: "fast" }, /tune must be true or false/],
    [{ requireFullCompilation: null }, /requireFullCompilation must be true or false/],
    [{ enabledPrecisions: "fp16" }, /enabledPrecisions must be a list/],
    [{ enabledPrecisions: ["fp17"] }, /unknown precision 'fp17'/],
    [
      { backend: "tensorrt" },
      /backend must be "reference", "cuda" or an object with engine\(\) and fallback\(\)/,
    ],
    [{ backend: { engine: () => 0 } }, /backend must be/],
    [{ passes: "none" }, /passes must be a list of passes or a function/],
    [{ passes: [{ name: "x" }] }, /passes: .* is not a pass/],
    [{ converters: [{}] }, /converters must be a list of converter tables/],
    [{ verify: "yes" }, /verify must be true, false or \{ inputs\?, tolerance\? \}/],
    [{ verify: { tolerance: -1 } }, /verify\.tolerance must be a positive number/],
    [{ verify: { inputs: 3 } }, /verify\.inputs must be a list of tensors/],
    [{ inputs: { shape: [1] } }, /inputs must be a list of input specs/],
    [{ dynamic: 3 }, /dynamic must be an object/],
    [{ calibration: "cache.json" }, /calibration must be an object/],
    [{ torchExecutedOps: "aten.relu.default" }, /torchExecutedOps must be a list of op names/],
    [{ fp16Overflow: "keep" }, /fp16Overflow must be ignore, error, keep-fp32/],
  ])("refuses %o", async (opts, msg) => {
    await expect(compile(await mlp(), opts as CompileOptions)).rejects.toThrow(msg);
  });

  it("names every CompileOptions key it checks (a new option must be added to the checks)", async () => {
    const all: Required<Record<keyof CompileOptions, unknown>> = {
      inputs: undefined,
      dynamic: undefined,
      enabledPrecisions: undefined,
      calibration: undefined,
      minBlockSize: undefined,
      torchExecutedOps: undefined,
      requireFullCompilation: undefined,
      backend: undefined,
      passes: undefined,
      tf32: undefined,
      tune: undefined,
      contexts: undefined,
      completion: undefined,
      device: undefined,
      workspaceBytes: undefined,
      sparseWeights: undefined,
      converters: undefined,
      verify: undefined,
      truncateDouble: undefined,
      fp16Overflow: undefined,
      artifacts: undefined,
    };
    const c = await compile(await mlp(), all as CompileOptions);
    expect(c.graph.nodes.length).toBeGreaterThan(0);
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
