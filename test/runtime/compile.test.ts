import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { compile, loadCompiled } from "../../src/runtime/compile.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS, manifest, tempDir } from "../helpers.js";

const pt2Archives = manifest().models.flatMap((m) =>
  (["export", "core"] as const).filter((k) => m.archives[k]).map((k) => ({ model: m, file: m.archives[k] })),
);

describe("compile() with the reference backend", () => {
  it.each(pt2Archives.map((a) => [a.file, a] as const))(
    "%s matches PyTorch within 1e-4",
    async (_f, { model, file }) => {
      const loaded = await loadModel(join(MODELS, file));
      const compiled = await compile(loaded, { backend: "reference" });
      expect(compiled.report.partition.totals.fallbackNodes).toBe(0);
      const [out] = await compiled.run([readNpy(join(MODELS, model.input!))]);
      const a = compareTensors(out, readNpy(join(MODELS, model.output!)));
      expect(a.shapeMatches).toBe(true);
      expect(a.relative).toBeLessThanOrEqual(1e-4);
    },
  );

  it("runs torchExecutedOps nodes in fallback segments and still matches PyTorch", async () => {
    const loaded = await loadModel(join(MODELS, "tiny_efficientnet.pt2"));
    const compiled = await compile(loaded, { torchExecutedOps: ["aten.silu.default"], minBlockSize: 1 });
    const report = compiled.report.partition;
    const silu = report.fallbackNodes.filter((n) => n.op === "aten.silu.default");
    expect(silu.length).toBe(loaded.graph.nodes.filter((n) => n.op === "aten.silu.default").length);
    expect(silu.every((n) => /torchExecutedOps/.test(n.reason))).toBe(true);
    expect(report.totals.engineSegments).toBeGreaterThan(1);
    const [out] = await compiled.run([readNpy(join(MODELS, "tiny_efficientnet.input.npy"))]);
    expect(
      compareTensors(out, readNpy(join(MODELS, "tiny_efficientnet.output.npy"))).relative,
    ).toBeLessThanOrEqual(1e-4);
  });

  it("lowers away every batch norm of the EfficientNet-family model and records which rules did it", async () => {
    const loaded = await loadModel(join(MODELS, "tiny_efficientnet.pt2"));
    const compiled = await compile(loaded);
    expect(compiled.graph.nodes.some((n) => /batch_norm/.test(n.op))).toBe(false);
    expect(compiled.report.nodesAfter).toBeLessThan(compiled.report.nodesBefore);
    const rules = new Set(compiled.report.trace.entries.map((e) => e.rule));
    expect([...rules].some((r) => /batch.?norm/i.test(r))).toBe(true);
  });

  it("refuses with requireFullCompilation when something would fall back", async () => {
    const loaded = await loadModel(join(MODELS, "mlp.pt2"));
    await expect(
      compile(loaded, { torchExecutedOps: ["aten.relu.default"], requireFullCompilation: true }),
    ).rejects.toThrow(/relu/);
  });

  it("fp16 stays within 1e-2 of PyTorch's fp32 output", async () => {
    const loaded = await loadModel(join(MODELS, "tiny_resnet.pt2"));
    const compiled = await compile(loaded, { enabledPrecisions: ["fp16"] });
    const [out] = await compiled.run([readNpy(join(MODELS, "tiny_resnet.input.npy"))]);
    expect(compareTensors(out, readNpy(join(MODELS, "tiny_resnet.output.npy"))).relative).toBeLessThanOrEqual(
      1e-2,
    );
  });

  it("saves and reloads a compiled module", async () => {
    const loaded = await loadModel(join(MODELS, "tiny_mobilenetv3.pt2"));
    const compiled = await compile(loaded);
    const file = join(tempDir(), "m.torchc");
    compiled.save(file);
    const again = await loadCompiled(file);
    const x = readNpy(join(MODELS, "tiny_mobilenetv3.input.npy"));
    const [a] = await compiled.run([x]);
    const [b] = await again.run([x]);
    expect(compareTensors(b, a).maxAbsError).toBe(0);
  });
});
