// `torchc inspect model.torchc` (issue 12): the package described without building it, from a plain package and
// from one with saved engines; the CLI routes .torchc files here and prints text or JSON.
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import { savePackage } from "../../src/runtime/package.js";
import { describePackage, formatPackage } from "../../src/runtime/package-inspect.js";
import { tempDir } from "../helpers.js";
import { H100, plainMlpPackage } from "./package-fixtures.js";

let plain: string;
let built: string;
beforeAll(async () => {
  const { compiled, plain: saved } = await plainMlpPackage();
  plain = saved;
  built = join(tempDir(), "mlp-built.torchc");
  savePackage(built, {
    graph: compiled.graph,
    options: { backend: "cuda", enabledPrecisions: ["fp16"] },
    source: "mlp.pt2",
    artifacts: {
      builtFor: H100,
      engines: {
        "0": {
          convs: {
            a: { engine: 3, workspaceBytes: 0, planBlob: "cudnn/a.json" },
            b: { engine: 5, workspaceBytes: 0 },
          },
          matmuls: { m: { algo: "AAAA", workspaceBytes: 0 } },
          kernels: { k: { blob: "kernels/k.cubin", kind: "cubin", loweredNames: {} } },
          memory: { arenaBytes: 4096, offsets: {} },
        },
      },
      blobs: { "cudnn/a.json": new Uint8Array(100), "kernels/k.cubin": new Uint8Array(1000) },
    },
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("describing a .torchc package", () => {
  it("names the model's inputs, outputs, precision and weights, and says it carries no engines", () => {
    const d = describePackage(plain);
    expect(d.source).toMatch(/mlp\.pt2$/);
    expect(d.inputs).toEqual([{ name: expect.any(String), type: "float32[4, 20]" }]);
    expect(d.outputs.length).toBe(1);
    expect(d.precision).toEqual(["fp32"]);
    expect(d.weights.count).toBeGreaterThan(0);
    expect(d.engines).toBeUndefined();
    expect(formatPackage(d)).toMatch(/engines: {3}none saved \(built when the package is loaded\)/);
  });

  it("counts saved plans, algorithms and kernels and names the target", () => {
    const d = describePackage(built);
    expect(d.backend).toBe("cuda");
    expect(d.precision).toEqual(["fp16"]);
    expect(d.engines).toMatchObject({
      segments: 1,
      cudnnPlans: 2,
      cudnnSerialized: 1,
      cublasLtAlgos: 1,
      kernelPrograms: 1,
      activationBytes: 4096,
      blobBytes: 1100,
    });
    const text = formatPackage(d);
    expect(text).toMatch(/2 cuDNN plans \(1 serialized\), 1 cuBLASLt algorithms, 1 compiled kernel program/);
    expect(text).toMatch(
      /built for: cuda sm_90 \(NVIDIA H100 80GB HBM3\), driver 13000, CUDA 13\.0, cuDNN 91900/,
    );
  });

  it("torchc inspect prints it, as text or JSON", async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((s) => {
      out.push(String(s));
      return true;
    });
    expect(await main(["inspect", built])).toBe(0);
    expect(out.join("")).toMatch(/torchc package/);
    out.length = 0;
    expect(await main(["inspect", built, "--json"])).toBe(0);
    expect(JSON.parse(out.join("")).engines.builtFor.arch).toBe("sm_90");
  });
});
