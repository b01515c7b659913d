import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../../src/errors.js";
import { loadPt2 } from "../../../src/frontends/pt2/load.js";
import { editArchive, entryName, MODELS, tempDir } from "../../helpers.js";

const MLP = join(MODELS, "mlp.pt2");

function expectArchiveError(fn: () => unknown, code: string, ...fragments: (string | RegExp)[]) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ArchiveError);
    expect((e as ArchiveError).code).toBe(code);
    for (const f of fragments) expect((e as Error).message).toMatch(f);
    return;
  }
  throw new Error("expected an ArchiveError");
}

describe("pt2 archive errors", () => {
  it("names a missing file", () => {
    expectArchiveError(
      () => loadPt2("/nonexistent/model.pt2"),
      "archive.missing",
      "/nonexistent/model.pt2",
      "no such file",
    );
  });

  it("rejects a file that is not a zip", () => {
    const f = join(tempDir(), "model.pt2");
    writeFileSync(f, "definitely not a zip archive");
    expectArchiveError(() => loadPt2(f), "archive.not-zip", f, "not a zip");
  });

  it("rejects a truncated archive", () => {
    const bytes = readFileSync(MLP);
    const f = join(tempDir(), "cut.pt2");
    writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    expectArchiveError(() => loadPt2(f), "archive.truncated", f, "truncated");
  });

  it("reports a missing model.json", () => {
    const f = editArchive(MLP, (e) => {
      delete e[entryName(e, "models/model.json")];
    });
    expectArchiveError(() => loadPt2(f), "archive.no-model", "models/model.json");
  });

  it("reports a malformed model.json", () => {
    const f = editArchive(MLP, (e) => {
      e[entryName(e, "models/model.json")] = new TextEncoder().encode('{"graph_module": {');
    });
    expectArchiveError(() => loadPt2(f), "archive.bad-model", "not valid JSON");
  });

  it("reports a model.json that is JSON but not an ExportedProgram", () => {
    const f = editArchive(MLP, (e) => {
      e[entryName(e, "models/model.json")] = new TextEncoder().encode('{"hello": 1}');
    });
    expectArchiveError(() => loadPt2(f), "archive.bad-model", "ExportedProgram");
  });

  it("refuses an unsupported schema version", () => {
    const f = editArchive(MLP, (e) => {
      const name = entryName(e, "models/model.json");
      const json = JSON.parse(new TextDecoder().decode(e[name]));
      json.schema_version = { major: 99, minor: 0 };
      e[name] = new TextEncoder().encode(JSON.stringify(json));
    });
    expectArchiveError(() => loadPt2(f), "archive.version", "schema 99.0");
  });

  it("refuses an unsupported archive format", () => {
    const f = editArchive(MLP, (e) => {
      e[entryName(e, "/archive_format")] = new TextEncoder().encode("pt3");
    });
    expectArchiveError(() => loadPt2(f), "archive.version", "pt3");
  });

  it("names a weight file whose size disagrees with its metadata", () => {
    const f = editArchive(MLP, (e) => {
      const name = entryName(e, "data/weights/weight_0");
      e[name] = e[name].subarray(0, 100);
    });
    expectArchiveError(() => loadPt2(f), "archive.weight-size", "weight_0", "fc1.weight", "100 bytes");
  });

  it("reports a missing weight file", () => {
    const f = editArchive(MLP, (e) => {
      delete e[entryName(e, "data/weights/weight_2")];
    });
    expectArchiveError(() => loadPt2(f), "archive.truncated", "weight_2", "fc2.weight");
  });
});

describe("pt2 loading", () => {
  it("tells parameters, buffers and user inputs apart from the signature", () => {
    const m = loadPt2(join(MODELS, "tiny_resnet.pt2"));
    const kinds = Object.values(m.graph.weights).map((w) => w.kind);
    expect(kinds.filter((k) => k === "parameter").length).toBeGreaterThan(10);
    expect(kinds.filter((k) => k === "buffer").length).toBeGreaterThan(10);
    expect(m.graph.inputs).toEqual(["x"]);
    expect(m.graph.values.x).toEqual({ dtype: "float32", shape: [2, 3, 32, 32] });
    const fc = Object.values(m.graph.weights).find((w) => w.target === "fc.weight");
    expect(fc?.tensor.shape).toEqual([10, 48]);
  });

  it("keeps the user's source line and module path on nodes", () => {
    const m = loadPt2(join(MODELS, "mlp.pt2"));
    const first = m.graph.nodes[0];
    expect(first.op).toBe("aten.linear.default");
    expect(first.meta.modulePath).toBe("fc1");
    expect(first.meta.sourceLocation).toMatch(/export\.py:\d+ in forward: x = F\.relu\(self\.fc1\(x\)\)/);
  });

  it("reads core ATen IR with multi-output nodes", () => {
    const m = loadPt2(join(MODELS, "tiny_resnet.core.pt2"));
    const bn = m.graph.nodes.find((n) => n.op === "aten._native_batch_norm_legit_no_training.default");
    expect(bn?.outputs.length).toBe(3);
    expect(m.graph.nodes.some((n) => n.op === "aten.convolution.default")).toBe(true);
  });
});

describe("archive format detection", () => {
  it("does not mistake a TorchScript archive with a models/ package in its code for a .pt2", async () => {
    const { archiveRoot } = await import("../../../src/frontends/zip.js");
    const zip = { names: ["m/code/__torch__/timm/models/efficientnet.py", "m/data.pkl"] };
    expect(archiveRoot(zip, ["archive_format", "models/"])).toBeUndefined();
    expect(archiveRoot(zip, ["data.pkl"])).toBe("m/");
  });
});
