import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TorchcError } from "../../../src/errors.js";
import { loadTorchScript } from "../../../src/frontends/torchscript/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";
import { interpret } from "../../../src/ops/index.js";
import { parseNpy } from "../../../src/util/npy.js";

const DIR = join(import.meta.dirname, "../../../fixtures/models");
const MANIFEST = join(DIR, "manifest.json");

interface Entry {
  name: string;
  input?: string;
  output?: string;
  archives: Record<string, string>;
  /** Per case: one input file, or several (`inputs`, in the model's input order). */
  cases?: { input?: string; inputs?: string[]; output: string; branch: string }[];
}

const manifest: { models: Entry[] } = existsSync(MANIFEST)
  ? JSON.parse(readFileSync(MANIFEST, "utf8"))
  : { models: [] };
const npy = (f: string): Tensor => parseNpy(new Uint8Array(readFileSync(join(DIR, f))), f);

/** max |got - ref| / max |ref| */
function relErr(got: Tensor, ref: Tensor): number {
  const a = toFloat64Array(got);
  const b = toFloat64Array(ref);
  expect(a.length).toBe(b.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / (scale || 1);
}

function allNodes(g: Graph): Graph["nodes"][number][] {
  return g.nodes.flatMap((n) => [n, ...(n.subgraphs ?? []).flatMap(allNodes)]);
}

const traced = manifest.models.filter((m) => m.archives.traced && m.input && m.output);
const scripted = manifest.models.filter((m) => m.archives.scripted);

describe.skipIf(traced.length === 0)("TorchScript fixtures: traced models match PyTorch", () => {
  for (const m of traced) {
    it(`${m.archives.traced} (input types from traced_inputs.pkl)`, async () => {
      const x = npy(m.input!);
      const model = await loadTorchScript(join(DIR, m.archives.traced));
      expect(model.format).toBe("torchscript");
      expect(model.graph.values[model.graph.inputs[0]]).toEqual({ dtype: x.dtype, shape: x.shape });
      const [y] = interpret(model.graph, [x]);
      expect(relErr(y, npy(m.output!))).toBeLessThan(1e-4);
      // every op is a dotted aten overload (TorchScript-only operators are lowered)
      for (const n of allNodes(model.graph)) expect(n.op).toMatch(/^(aten\.\w+\.\w+|prim\.(If|Loop))$/);
    });
  }
});

describe.skipIf(scripted.length === 0)("TorchScript fixtures: scripted models match PyTorch", () => {
  for (const m of scripted) {
    const cases = m.cases ?? [{ input: m.input!, output: m.output!, branch: "" }];
    for (const c of cases) {
      const files = c.inputs ?? [c.input!];
      it(`${m.archives.scripted} on ${files.join(", ")}${c.branch ? ` (takes the ${c.branch} branch)` : ""}`, async () => {
        const xs = files.map(npy);
        const model = await loadTorchScript(join(DIR, m.archives.scripted), {
          inputTypes: xs.map((x) => ({ dtype: x.dtype, shape: x.shape })),
        });
        const [y] = interpret(model.graph, xs);
        expect(relErr(y, npy(c.output))).toBeLessThan(1e-4);
      });
    }
  }

  it.skipIf(!scripted.some((m) => m.name === "gated"))(
    "the data-dependent branch becomes prim.If and the loop is unrolled",
    async () => {
      const model = await loadTorchScript(join(DIR, "gated.scripted.pt"), {
        inputTypes: [{ dtype: "float32", shape: [3, 8] }],
      });
      const ifs = model.graph.nodes.filter((n) => n.op === "prim.If");
      expect(ifs).toHaveLength(1);
      expect(ifs[0].subgraphs).toHaveLength(2);
      expect(ifs[0].args.cond.kind).toBe("tensor");
      expect(model.graph.nodes.filter((n) => n.op === "aten.tanh.default")).toHaveLength(3);
      expect(model.graph.nodes.some((n) => n.op === "prim.Loop")).toBe(false);
    },
  );

  it.skipIf(!scripted.some((m) => m.name === "gated"))(
    "a scripted archive without input types asks for --input-shape",
    async () => {
      const err = await loadTorchScript(join(DIR, "gated.scripted.pt")).catch((e) => e);
      expect(err).toBeInstanceOf(TorchcError);
      expect(err.code).toBe("input.shape-required");
      expect(err.message).toContain("--input-shape");
      expect(err.message).toContain("x: Tensor");
    },
  );
});

describe.skipIf(!existsSync(join(DIR, "tiny_resnet.traced.pt")))(
  "TorchScript fixtures: graph details",
  () => {
    it("names weights like export does, with kinds and fully qualified targets", async () => {
      const { graph } = await loadTorchScript(join(DIR, "tiny_resnet.traced.pt"));
      expect(graph.weights.p_conv1_weight).toMatchObject({ kind: "parameter", target: "conv1.weight" });
      expect(graph.weights.b_bn1_running_mean).toMatchObject({ kind: "buffer", target: "bn1.running_mean" });
      expect(graph.weights.p_layer3_downsample_0_weight).toMatchObject({
        kind: "parameter",
        target: "layer3.downsample.0.weight",
      });
      // num_batches_tracked is never read by forward, so it is not a graph weight
      expect(Object.values(graph.weights).some((w) => w.target.endsWith("num_batches_tracked"))).toBe(false);
      const ops = graph.nodes.map((n) => n.op);
      expect(ops.filter((o) => o === "aten.conv2d.default")).toHaveLength(10);
      expect(ops.filter((o) => o === "aten.batch_norm.default")).toHaveLength(10);
      expect(ops).not.toContain("aten.relu_.default");
      const conv = graph.nodes.find(
        (n) => n.op === "aten.conv2d.default" && n.meta.modulePath === "layer1.conv1",
      );
      expect(conv?.meta.sourceLocation).toMatch(/export\.py:\d+ in forward/);
    });
  },
);
