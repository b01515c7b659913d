// compile({ enabledPrecisions: ["fp16"], fp16Overflow }) on the reference backend: the report lists the nodes kept
// in float32, the output is finite and within fp16 tolerance of the float32 reference; verify names the overflow.
import { describe, expect, it } from "vitest";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/interpret.js";
import { compile } from "../../src/runtime/compile.js";
import { compareTensors } from "../../src/util/compare.js";
import { verifyCompiled } from "../../src/verify/verify.js";
import { randomTensor } from "../passes/graphs.js";
import { overflowingGraph, tameGraph } from "../passes/overflow-graphs.js";

const values = (t: Tensor) => Array.from(toFloat64Array(t));
const allFinite = (t: Tensor) => values(t).every(Number.isFinite);
const x = (seed: number) => randomTensor([1, 256], seed, 0, 1);

describe("compile with fp16Overflow", () => {
  it("without the option the fp16 compile returns inf, and verify names the layer and the option", async () => {
    const graph = overflowingGraph();
    const c = await compile(graph, { enabledPrecisions: ["fp16"] });
    const [out] = await c.run([x(3)]);
    expect(allFinite(out)).toBe(false);
    const r = await verifyCompiled(c, [x(3)]);
    expect(r.firstNonFinite?.node).toBe("proj");
    expect(r.firstNonFinite?.fixedByFloat32).toBe(true);
    expect(r.text).toContain("--fp16-overflow=keep-fp32");
    expect(c.report.fp32Islands).toBeUndefined();
  });

  it("keep-fp32: finite, within 1e-2 of the float32 reference, the report names the kept nodes", async () => {
    const graph = overflowingGraph();
    // The sample: verify.inputs (uniform in [0, 1), so every hidden value is large).
    const c = await compile(graph, {
      enabledPrecisions: ["fp16"],
      fp16Overflow: "keep-fp32",
      verify: { inputs: [x(3)] },
    });
    expect(c.report.fp32Islands?.map((k) => k.node)).toEqual(["proj", "norm", "total", "scale_down"]);
    expect(c.report.text).toMatch(/kept in float32 because fp16 overflows on verify\.inputs/);
    expect(c.report.text).toMatch(/ {2}proj \(aten\.mm\.default\) max \|x\| \d\.\d\de\+\d at model\.py/);
    for (const seed of [3, 11]) {
      const [got] = await c.run([x(seed)]);
      const [want] = interpret(graph, [x(seed)]);
      expect(allFinite(got)).toBe(true);
      expect(compareTensors(got, want).relative).toBeLessThan(1e-2); // max |got − want| / max |want|
    }
    const r = await verifyCompiled(c, [x(3)]);
    expect(r.firstNonFinite).toBeUndefined();
  });

  it("takes seeded random inputs of the declared shapes without user data, else calibration data", async () => {
    const graph = overflowingGraph();
    // Normal random x: the hidden values have mean 0 and stay below 65504, their row sums do not.
    const random = await compile(graph, { enabledPrecisions: ["fp16"], fp16Overflow: "keep-fp32" });
    expect(random.report.text).toMatch(/kept in float32 because fp16 overflows on seeded random inputs/);
    expect(random.report.fp32Islands?.map((k) => k.node)).toContain("total");
    const tiny = randomTensor([1, 256], 4, 0, 1e-4);
    const quiet = await compile(graph, {
      enabledPrecisions: ["fp16"],
      fp16Overflow: "keep-fp32",
      calibration: { data: [tiny] },
    });
    expect(quiet.report.fp32Islands).toEqual([]);
    expect(quiet.report.text).toContain("fp16 overflow: none on 1 calibration batch(es)");
    // Batches of another shape (a batch range's other buckets): random inputs, and the report says why.
    const other = await compile(graph, {
      enabledPrecisions: ["fp16"],
      fp16Overflow: "keep-fp32",
      calibration: { data: [randomTensor([1, 128], 4)] },
    });
    expect(other.report.text).toContain("(the calibration batches do not fit this input shape)");
  });

  it("error: fails naming the first overflowing node; a model that fits compiles as without the option", async () => {
    await expect(
      compile(overflowingGraph(), {
        enabledPrecisions: ["fp16"],
        fp16Overflow: "error",
        verify: { inputs: [x(3)] },
      }),
    ).rejects.toThrow(/node 'proj' \(aten\.mm\.default\).*keep-fp32/);
    const tame = tameGraph();
    const plain = await compile(tame, { enabledPrecisions: ["fp16"] });
    const kept = await compile(tame, { enabledPrecisions: ["fp16"], fp16Overflow: "keep-fp32" });
    expect(kept.graph).toEqual(plain.graph);
    expect(kept.report.fp32Islands).toEqual([]);
  });

  it("does nothing without fp16 (fp32 and bf16 hold the range)", async () => {
    const graph = overflowingGraph();
    const c = await compile(graph, { enabledPrecisions: ["bf16"], fp16Overflow: "error" });
    expect(c.report.fp32Islands).toBeUndefined();
  });
});
