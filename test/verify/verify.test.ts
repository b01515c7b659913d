import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { converter, SUPPORTED } from "../../src/converters/index.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { readNpy, writeNpy } from "../../src/util/npy.js";
import { verifyCompiled } from "../../src/verify/verify.js";
import { MODELS, tempDir } from "../helpers.js";

/** relu that lets a quarter of each negative value through: plausible numbers, wrong. */
const brokenRelu = converter("aten.relu.default", {
  name: "broken-relu",
  priority: 100,
  supports: () => SUPPORTED,
  convert: (_node, a, net) => [
    net.net.add(
      {
        type: "activation",
        inputs: [net.input(a.self)],
        fn: { kind: "leaky_relu", negativeSlope: 0.25 },
      },
      "broken-relu",
    ),
  ],
});

describe("verify", () => {
  it("passes a correct compile, checking every engine node", async () => {
    const model = await loadModel(join(MODELS, "mlp.pt2"));
    const c = await compile(model, { verify: true });
    expect(c.verification?.ok).toBe(true);
    expect(c.verification?.nodesChecked).toBeGreaterThan(5);
    expect(c.verification?.diverging).toEqual([]);
  });

  it("names the node, module path, source line and converter of an injected wrong converter", async () => {
    const model = await loadModel(join(MODELS, "mlp.pt2"));
    const relu = model.graph.nodes.find((n) => n.op === "aten.relu.default")!;
    expect(relu.meta.sourceLocation).toBeTruthy();
    const c = await compile(model, { converters: [[brokenRelu]] });
    const r = await verifyCompiled(c, [readNpy(join(MODELS, "mlp.input.npy"))]);
    expect(r.ok).toBe(false);
    const first = r.diverging[0];
    expect(first.op).toBe("aten.relu.default");
    expect(first.converter).toBe("broken-relu");
    expect(first.relative).toBeGreaterThan(1e-2);
    expect(first.source).toBe(relu.meta.sourceLocation);
    expect(r.text).toContain(`first divergence: node '${first.node}' (aten.relu.default)`);
    expect(r.text).toContain(String(relu.meta.sourceLocation));
    // Only the broken node diverges when each node is checked on reference inputs.
    expect(r.diverging.every((d) => d.op === "aten.relu.default")).toBe(true);
  });

  it("names the first node whose fp16 result overflows", async () => {
    const model = await loadModel(join(MODELS, "mlp.pt2"));
    const x = readNpy(join(MODELS, "mlp.input.npy"));
    const big: Tensor = { ...x, data: (x.data as Float32Array).map((v) => v * 1e6) };
    const c = await compile(model, { enabledPrecisions: ["fp16"] });
    const r = await verifyCompiled(c, [big]);
    expect(r.firstNonFinite).toBeDefined();
    expect(r.text).toMatch(/first non-finite value \(float16\): node '/);
    const r32 = await verifyCompiled(await compile(model), [big]);
    expect(r32.firstNonFinite).toBeUndefined();
  });

  it("torchc verify: exit 0 when it matches, with an input file", () => {
    const dir = tempDir();
    writeNpy(join(dir, "x.npy"), readNpy(join(MODELS, "mlp.input.npy")));
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "verify",
        join(MODELS, "mlp.pt2"),
        "--input",
        join(dir, "x.npy"),
      ],
      { encoding: "utf8" },
    );
    expect(r.stdout).toMatch(/^verify: ok/);
    expect(r.status).toBe(0);
  });
});
