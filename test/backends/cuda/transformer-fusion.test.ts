// Pre-norm transformer blocks through the CUDA plan, emulated on the CPU (emulate.ts): the residual add before
// each LayerNorm and the casts around it run inside the norm's rows kernel (no step is a lone cast or a lone
// residual add), and the emulated engine still computes what the aten reference interpreter computes.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { approximations, type Step } from "../../../src/backends/cuda/fuse/steps.js";
import { storageRoot } from "../../../src/backends/cuda/plan/tensors.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { convertGraph } from "../../../src/converters/index.js";
import { loadModel } from "../../../src/frontends/load-model.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import { interpret } from "../../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { compareTensors } from "../../../src/util/compare.js";
import { MODELS } from "../../helpers.js";
import { inputsFor } from "../../passes/graphs.js";
import { emulateEngine, hasGxx } from "./emulate.js";
import { preNormBlocksGraph } from "./transformer-graphs.js";

/** max |got − want| / max |want| (infinite where the shapes differ). */
const relMax = (got: Tensor, want: Tensor): number => compareTensors(got, want).relative;

const isLoneCast = (s: Step) => s.kind === "element" && s.group.layers.every((l) => l.type === "cast");
const elementAdds = (steps: readonly Step[]) =>
  steps.filter((s) => s.kind === "element" && s.group.layers.some((l) => l.type === "elementwise")).length;

function lower(graph: Graph, precision: "fp32" | "fp16") {
  const enabledPrecisions = precision === "fp16" ? (["float16"] as const) : (["float32"] as const);
  return runPipeline(graph, defaultPipeline({ enabledPrecisions: [...enabledPrecisions] })).graph;
}

afterEach(() => {
  delete process.env.TORCHC_FUSE_ROWS;
  delete process.env.TORCHC_FUSE_SIBLINGS;
  delete process.env.TORCHC_ATTENTION_LAYOUT;
  delete process.env.TORCHC_STRIDED_QKV;
  delete process.env.TORCHC_GELU_EPILOGUE;
});

describe("PyTorch-exported transformers: the CUDA plan's fused kernels", () => {
  // tiny_vit: 2 pre-norm blocks (patch conv, class token, position embedding); tiny_text_encoder: token and
  // position embeddings, 1 block with tanh-GELU. Their numbers on the emulator: emulate-models.test.ts.
  for (const [name, depth] of [
    ["tiny_vit", 2],
    ["tiny_text_encoder", 1],
  ] as const) {
    it(`${name} fp16: every norm takes in the element layers before it; q/k/v read in place; no head-merge copy`, async () => {
      const model = await loadModel(join(MODELS, `${name}.pt2`));
      const plan = planCudaEngine(convertGraph(lower(model.graph, "fp16")), { precision: "fp16" });
      const summary = plan.summary.join("\n");
      const norms = plan.steps.filter((s) => s.kind === "normalization");
      expect(norms).toHaveLength(2 * depth + 1);
      // the first norm computes the embeddings' sum (concat + position, or gather + position)
      expect(
        norms.every((s) => s.prologue?.length),
        summary,
      ).toBe(true);
      // q, k and v are strided views of the qkv projection: no slice kernel (plan/strided-views.ts)
      const slices = plan.steps.filter(
        (s) => s.kind === "element" && s.group.layers.every((l) => l.type === "slice"),
      );
      expect(
        slices.filter((s) => s.kind === "element" && s.group.outputs.length === 3),
        summary,
      ).toHaveLength(0);
      const attention = plan.steps.filter((s) => s.kind === "attention");
      expect(attention).toHaveLength(depth);
      for (const a of attention) {
        const operands = a.kind === "attention" ? a.layer.inputs.slice(0, 3) : [];
        expect(operands.map((t) => plan.infos.get(t)?.strides !== undefined)).toEqual([true, true, true]);
        expect(new Set(operands.map((t) => storageRoot(plan.infos, t))).size).toBe(1);
      }
      expect(
        plan.steps.filter((s) => s.kind === "element" && s.group.layers.every((l) => l.type === "shuffle"))
          .length,
      ).toBeLessThanOrEqual(1);
      expect(plan.steps.filter(isLoneCast).length, summary).toBeLessThanOrEqual(2);
      expect(elementAdds(plan.steps)).toBe(0);
    });
  }
});

describe.skipIf(!hasGxx())("pre-norm transformer blocks: fused norm kernels, emulated", () => {
  const depth = 2;
  const graph = preNormBlocksGraph({ B: 2, N: 9, C: 32, heads: 2, depth });
  for (const precision of ["fp32", "fp16"] as const) {
    it(`${precision}: each residual add runs in the next norm's kernel; numbers match the aten reference`, () => {
      const lowered = lower(graph, precision);
      const net = convertGraph(lowered);
      process.env.TORCHC_FUSE_ROWS = "0";
      const apart = planCudaEngine(net, { precision }).steps;
      delete process.env.TORCHC_FUSE_ROWS;
      const inputs = inputsFor(graph, 7);
      const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
      const { plan, outputs } = emulateEngine(net, named, { precision });
      const norms = plan.steps.filter((s) => s.kind === "normalization");
      // 2 norms per block and the final one; every norm but the first (which reads the input) takes in the
      // residual add before it, and stores the sum where the next residual add reads it.
      expect(norms).toHaveLength(2 * depth + 1);
      expect(norms.filter((s) => s.prologue?.length)).toHaveLength(2 * depth);
      expect(norms.filter((s) => s.stores?.length)).toHaveLength(2 * depth - 1);
      expect(plan.steps.length).toBe(apart.length - 2 * depth);
      expect(elementAdds(apart)).toBe(2 * depth);
      expect(elementAdds(plan.steps)).toBe(0);
      expect(plan.steps.filter(isLoneCast), plan.summary.join("\n")).toHaveLength(0);
      // the q, k and v slices of each block are strided views of its qkv projection (no kernel); without
      // them, one kernel with three outputs
      const qkv = (steps: readonly Step[]) =>
        steps.filter((st) => st.kind === "element" && st.group.layers.every((l) => l.type === "slice"));
      expect(qkv(plan.steps)).toHaveLength(0);
      process.env.TORCHC_STRIDED_QKV = "0";
      const copied = planCudaEngine(net, { precision }).steps;
      expect(qkv(copied).map((st) => (st.kind === "element" ? st.group.outputs.length : 0))).toEqual(
        Array(depth).fill(3),
      );
      expect(copied.length - plan.steps.length).toBe(depth);
      delete process.env.TORCHC_STRIDED_QKV;
      process.env.TORCHC_FUSE_SIBLINGS = "0";
      process.env.TORCHC_FUSE_ROWS = "0";
      process.env.TORCHC_ATTENTION_LAYOUT = "0";
      expect(planCudaEngine(net, { precision }).steps.length - plan.steps.length).toBe(3 * depth);
      // The first norm, then per block: qkv, attention (reading q, k and v in place, writing tokens-major, so the
      // head merge is a view), proj, add+norm2, fc1 (+ its GELU in fp16: cuBLASLt's tanh form stands in for the
      // exact one, fuse/schedule.ts geluEpilogue), gelu (fp32 only), fc2, and the add+norm that starts the next
      // block (or the last).
      expect(plan.steps.length, plan.summary.join("\n")).toBe(1 + (precision === "fp16" ? 7 : 8) * depth);
      const geluFused = plan.summary.filter((l) => l.includes("+gelu(tanh for erf)"));
      expect(geluFused).toHaveLength(precision === "fp16" ? depth : 0);
      // ... and the compile report says so, with the count
      expect(approximations(plan.steps)).toEqual(
        precision === "fp16"
          ? [
              `exact GELU as cuBLASLt's tanh form in ${depth} matmul epilogues (they differ by at most 4.7e-4; TORCHC_GELU_EPILOGUE=0 keeps exact GELU)`,
            ]
          : [],
      );
      for (const k of ["TORCHC_FUSE_SIBLINGS", "TORCHC_FUSE_ROWS", "TORCHC_ATTENTION_LAYOUT"])
        delete process.env[k];
      process.env.TORCHC_GELU_EPILOGUE = "0";
      expect(planCudaEngine(net, { precision }).steps.length).toBe(1 + 8 * depth);
      delete process.env.TORCHC_GELU_EPILOGUE;
      // with sparse weights on, fc1 keeps GELU apart (cuSPARSELt fuses no GELU in fp16/bf16)
      expect(planCudaEngine(net, { precision, exactGeluApart: true }).steps.length).toBe(1 + 8 * depth);
      delete process.env.TORCHC_GELU_EPILOGUE;
      const [want] = interpret(graph, inputs);
      expect(relMax(outputs[0], want)).toBeLessThan(precision === "fp32" ? 1e-4 : 1e-2);
    }, 120_000);
  }

  it("fp16: the same numbers with the norms' fused layers on the layer reference", () => {
    const lowered = lower(graph, "fp16");
    const net = convertGraph(lowered);
    const inputs = inputsFor(graph, 8);
    const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
    const { outputs } = emulateEngine(net, named, { precision: "fp16", cooperative: false });
    const [want] = interpret(graph, inputs);
    expect(relMax(outputs[0], want)).toBeLessThan(1e-2);
  }, 120_000);

  it("fp32 plan: a cast after the norm is stored by the norm kernel, computed in float32 first", () => {
    // y = layer_norm(x + r).to(float16); z = (x + r) * 2 reads the sum after the norm
    const b = new GraphBuilder();
    const x = b.addInput("x", { dtype: "float32", shape: [3, 40] });
    const r = b.addInput("r", { dtype: "float32", shape: [3, 40] });
    const t = (name: string, shape: number[], dtype: "float32" | "float16" = "float32") => [
      { name, type: { dtype, shape } },
    ];
    const w = (name: string, v: number) =>
      b.addWeight(name, {
        kind: "parameter",
        target: name,
        tensor: { dtype: "float32", shape: [40], data: new Float32Array(40).map((_, i) => v + i / 80) },
      });
    const tensor = (name: string) => ({ kind: "tensor" as const, name });
    const [s] = b.addNode("aten.add.Tensor", { self: tensor(x), other: tensor(r) }, t("s", [3, 40]), {});
    const [n] = b.addNode(
      "aten.layer_norm.default",
      {
        input: tensor(s),
        normalized_shape: { kind: "ints", value: [40] },
        weight: tensor(w("g", 0.5)),
        bias: tensor(w("h", -0.2)),
        eps: { kind: "float", value: 1e-5 },
      },
      t("n", [3, 40]),
      {},
    );
    const [y] = b.addNode(
      "aten._to_copy.default",
      { self: tensor(n), dtype: { kind: "dtype", value: "float16" } },
      t("y", [3, 40], "float16"),
      {},
    );
    const [z] = b.addNode(
      "aten.mul.Tensor",
      { self: tensor(s), other: { kind: "float", value: 2 } },
      t("z", [3, 40]),
      {},
    );
    b.setOutputs([y, z]);
    const graph1 = b.build();
    const lowered = lower(graph1, "fp32");
    const net = convertGraph(lowered);
    const inputs = inputsFor(graph1, 3);
    const named = Object.fromEntries(lowered.inputs.map((k, i) => [k, inputs[i]]));
    const { plan, outputs } = emulateEngine(net, named, { precision: "fp32" });
    expect(plan.summary).toHaveLength(2);
    const norm = plan.steps.find((st) => st.kind === "normalization");
    expect(norm?.prologue?.map((l) => l.type)).toEqual(["elementwise"]);
    expect(norm?.epilogue?.map((l) => l.type)).toEqual(["cast"]);
    const want = interpret(graph1, inputs);
    expect(outputs[0].dtype).toBe("float16");
    expect(relMax(outputs[0], want[0])).toBeLessThan(1e-3);
    expect(relMax(outputs[1], want[1])).toBeLessThan(1e-6);
  }, 60_000);

  it("fp32 plan: softmax(x·0.5 + mask).to(float16) is one rows kernel", () => {
    const b = new GraphBuilder();
    const x = b.addInput("x", { dtype: "float32", shape: [2, 3, 50] });
    const m = b.addInput("m", { dtype: "float32", shape: [1, 3, 50] });
    const t = (name: string, dtype: "float32" | "float16" = "float32") => [
      { name, type: { dtype, shape: [2, 3, 50] } },
    ];
    const tensor = (name: string) => ({ kind: "tensor" as const, name });
    const [h] = b.addNode(
      "aten.mul.Tensor",
      { self: tensor(x), other: { kind: "float", value: 0.5 } },
      t("h"),
      {},
    );
    const [s] = b.addNode("aten.add.Tensor", { self: tensor(h), other: tensor(m) }, t("s"), {});
    const [p] = b.addNode(
      "aten._softmax.default",
      { self: tensor(s), dim: { kind: "int", value: -1 }, half_to_float: { kind: "bool", value: false } },
      t("p"),
      {},
    );
    const [y] = b.addNode(
      "aten._to_copy.default",
      { self: tensor(p), dtype: { kind: "dtype", value: "float16" } },
      t("y", "float16"),
      {},
    );
    b.setOutputs([y]);
    const graph1 = b.build();
    const lowered = lower(graph1, "fp32");
    const inputs = inputsFor(graph1, 4);
    const named = Object.fromEntries(lowered.inputs.map((k, i) => [k, inputs[i]]));
    for (const cooperative of [true, false]) {
      const { plan, outputs } = emulateEngine(convertGraph(lowered), named, {
        precision: "fp32",
        cooperative,
      });
      expect(plan.summary).toEqual(["softmax [elementwise+elementwise]+softmax+[cast] → y"]);
      expect(relMax(outputs[0], interpret(graph1, inputs)[0])).toBeLessThan(1e-3);
    }
  }, 60_000);
});
