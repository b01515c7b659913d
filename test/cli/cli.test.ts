import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tensorFromNumbers } from "../../src/ir/tensor.js";
import { readNpy, writeNpy } from "../../src/util/npy.js";
import { editArchive, entryName, MODELS, ROOT, tempDir } from "../helpers.js";

function torchc(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "torchc.js"), ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const noStackTrace = (s: string) => expect(s).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);

describe("torchc command", () => {
  it("inspect prints inputs, outputs, parameters and the op histogram", () => {
    const r = torchc("inspect", join(MODELS, "tiny_resnet.pt2"));
    expect(r.code).toBe(0);
    expect(r.out).toContain("x: float32[2, 3, 32, 32]");
    expect(r.out).toMatch(/parameters: [\d,]+ in \d+ tensors/);
    expect(r.out).toMatch(/aten\.conv2d\.default\s+\d+/);
  });

  it("inspect --json --graph is machine-readable", () => {
    const r = torchc("inspect", join(MODELS, "mlp.pt2"), "--json", "--graph");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.inputs[0].type.shape).toEqual([4, 20]);
    expect(j.graph).toContain("aten.linear.default");
  });

  it("run reproduces PyTorch and writes the output", () => {
    const out = join(tempDir(), "out.npy");
    const r = torchc(
      "run",
      join(MODELS, "tiny_vit.core.pt2"),
      "--input",
      join(MODELS, "tiny_vit.input.npy"),
      "--output",
      out,
      "--expect",
      join(MODELS, "tiny_vit.output.npy"),
    );
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(readNpy(out).shape).toEqual([2, 10]);
  });

  it("rejects an input of the wrong shape naming the file and the expected shape", () => {
    const bad = join(tempDir(), "bad.npy");
    writeNpy(bad, tensorFromNumbers("float32", [3, 20], new Array(60).fill(0.5)));
    const r = torchc("run", join(MODELS, "mlp.pt2"), "--input", bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^error: .*bad\.npy: shape \[3, 20\] does not match model input 'x' which expects \[4, 20\]\n$/,
    );
    noStackTrace(r.err);
  });

  it("rejects an input of the wrong dtype", () => {
    const bad = join(tempDir(), "bad.npy");
    writeNpy(bad, tensorFromNumbers("int64", [4, 20], new Array(80).fill(1)));
    const r = torchc("run", join(MODELS, "mlp.pt2"), "--input", bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/dtype int64 does not match model input 'x' which expects float32/);
  });

  it("names the op, the node and the user's source line for an op with no implementation", () => {
    const f = editArchive(join(MODELS, "mlp.pt2"), (e) => {
      const name = entryName(e, "models/model.json");
      const json = JSON.parse(new TextDecoder().decode(e[name]));
      const node = json.graph_module.graph.nodes.find(
        (n: { target: string }) => n.target === "torch.ops.aten.leaky_relu.default",
      );
      node.target = "torch.ops.aten.frobnicate.default";
      e[name] = new TextEncoder().encode(JSON.stringify(json));
    });
    const r = torchc("run", f, "--input", join(MODELS, "mlp.input.npy"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/aten\.frobnicate\.default/);
    expect(r.err).toMatch(/node 'leaky_relu'/);
    expect(r.err).toMatch(
      /export\.py:\d+ in forward: x = F\.leaky_relu\(self\.fc2\(self\.drop\(x\)\), 0\.1\)/,
    );
    noStackTrace(r.err);
  });

  it("reports a missing model file in one line", () => {
    const r = torchc("inspect", "/no/such/model.pt2");
    expect(r.code).toBe(1);
    expect(r.err).toBe("error: /no/such/model.pt2: no such file\n");
  });

  it("inspect --partition shows torchExecutedOps nodes in fallback segments with that reason", () => {
    const r = torchc(
      "inspect",
      join(MODELS, "tiny_efficientnet.pt2"),
      "--partition",
      "--torch-executed-ops",
      "aten.silu.default",
      "--min-block-size",
      "1",
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/fallback/);
    const siluLines = r.out
      .split("\n")
      .filter((l) => l.includes("aten.silu.default") && l.includes("torchExecutedOps"));
    expect(siluLines.length).toBeGreaterThan(5);
  });

  it("compile -o writes a package that run executes", () => {
    const pkg = join(tempDir(), "mlp.torchc");
    const c = torchc("compile", join(MODELS, "mlp.pt2"), "-o", pkg, "--trace-passes");
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/engine/);
    const r = torchc(
      "run",
      pkg,
      "--input",
      join(MODELS, "mlp.input.npy"),
      "--expect",
      join(MODELS, "mlp.output.npy"),
    );
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ok/);
  });
});
