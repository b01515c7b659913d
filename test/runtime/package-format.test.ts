// The .torchc format of issue 12: every entry listed with its size and SHA-256 and checked on load (truncated,
// edited and missing entries are one-line errors naming the entry), saved engine artifacts round-trip, version 1
// packages still load, and saved engines are refused on another GPU or library version unless a rebuild is allowed.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { unzipSync, zipSync } from "fflate";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { ArchiveError, TorchcError } from "../../src/errors.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { compile, loadCompiled } from "../../src/runtime/compile.js";
import { loadPackage, savePackage } from "../../src/runtime/package.js";
import {
  acceptArtifacts,
  type LoadedArtifacts,
  targetMismatch,
} from "../../src/runtime/package-artifacts.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS, tempDir } from "../helpers.js";
import { H100, plainMlpPackage } from "./package-fixtures.js";

const KERNEL = new Uint8Array(Array.from({ length: 300 }, (_, i) => (i * 7) % 256));

let plain: string;
let withEngines: string;
beforeAll(async () => {
  const { compiled, plain: saved } = await plainMlpPackage();
  plain = saved;
  withEngines = join(tempDir(), "mlp-engines.torchc");
  savePackage(withEngines, {
    graph: compiled.graph,
    options: { backend: "cuda" },
    source: "mlp.pt2",
    artifacts: {
      builtFor: H100,
      engines: { "0": { convs: {}, matmuls: { k: { algo: "AAAA", workspaceBytes: 0 } } } },
      blobs: { "kernels/abc.cubin": KERNEL },
    },
  });
});

// biome-ignore lint/suspicious/noExplicitAny: the tests edit the manifest freely
type Json = any;

/** A copy of `src` with its files (and manifest) edited. */
function edited(src: string, edit: (files: Record<string, Uint8Array>, m: Json) => void): string {
  const files = unzipSync(readFileSync(src));
  const m = JSON.parse(new TextDecoder().decode(files["manifest.json"]));
  edit(files, m);
  files["manifest.json"] = new TextEncoder().encode(JSON.stringify(m));
  const f = join(tempDir(), "edited.torchc");
  writeFileSync(f, zipSync(files, { level: 0 }));
  return f;
}

function refusal(load: () => unknown, code: string, ...fragments: RegExp[]): void {
  let caught: unknown;
  try {
    load();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected a TorchcError").toBeInstanceOf(TorchcError);
  const e = caught as TorchcError;
  expect(e.message).not.toContain("\n");
  expect(e.code).toBe(code);
  for (const x of fragments) expect(e.message).toMatch(x);
}

describe(".torchc format version 2", () => {
  it("lists every entry but the manifest with its size and SHA-256", () => {
    const files = unzipSync(readFileSync(plain));
    const m = JSON.parse(new TextDecoder().decode(files["manifest.json"]));
    expect(m.version).toBe(2);
    expect(m.builtFor).toBeNull();
    const names = Object.keys(files).filter((n) => n !== "manifest.json");
    expect(names.length).toBeGreaterThan(1);
    expect(Object.keys(m.entries).sort()).toEqual(names.sort());
    for (const n of names) {
      expect(m.entries[n].bytes).toBe(files[n].byteLength);
      expect(m.entries[n].sha256).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it("loads back to a module with the same outputs", async () => {
    const x = readNpy(join(MODELS, "mlp.input.npy"));
    const a = await (await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" })).run([
      x,
    ]);
    const b = await (await loadCompiled(plain)).run([x]);
    expect(Array.from(b[0].data as Float32Array)).toEqual(Array.from(a[0].data as Float32Array));
  });

  it("refuses a weight edited in place, naming the entry", () => {
    const f = edited(plain, (files) => {
      files["weights/0"] = files["weights/0"].slice();
      files["weights/0"][3] ^= 0x40;
    });
    refusal(() => loadPackage(f), "package.tampered", /edited\.torchc: /, /entry weights\/0 /, /SHA-256/);
  });

  it("refuses a truncated entry, naming it and both sizes", () => {
    const f = edited(plain, (files) => {
      files["weights/1"] = files["weights/1"].slice(0, 5);
    });
    refusal(
      () => loadPackage(f),
      "package.tampered",
      /entry weights\/1 has 5 bytes, the manifest records \d+/,
    );
  });

  it("refuses a missing entry", () => {
    const f = edited(plain, (files) => {
      delete files["weights/0"];
    });
    refusal(() => loadPackage(f), "package.tampered", /entry weights\/0 is missing/);
  });

  it("refuses a package cut short (the zip itself is truncated)", () => {
    const bytes = readFileSync(plain);
    const f = join(tempDir(), "cut.torchc");
    writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length / 2)));
    let caught: unknown;
    try {
      loadPackage(f);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ArchiveError);
    expect((caught as Error).message).toMatch(/cut\.torchc: /);
    expect((caught as Error).message).not.toContain("\n");
  });

  it("refuses a manifest without its table of entries", () => {
    const f = edited(plain, (_files, m) => {
      delete m.entries;
    });
    refusal(() => loadPackage(f), "package.invalid", /entries/);
  });

  it("still loads version 1 packages (no hashes, no engines)", () => {
    const f = edited(plain, (_files, m) => {
      m.version = 1;
      delete m.entries;
      delete m.builtFor;
      delete m.engines;
    });
    const pkg = loadPackage(f);
    expect(pkg.graph.nodes.length).toBeGreaterThan(3);
    expect(pkg.artifacts).toBeUndefined();
  });

  it("names the versions it reads when a package is newer", () => {
    const f = edited(plain, (_files, m) => {
      m.version = 4;
    });
    refusal(
      () => loadPackage(f),
      "package.version",
      /version 4 package; this torchc reads versions 1, 2 and 3/,
    );
  });
});

describe("saved engine artifacts", () => {
  it("round-trip: target, per-engine records and blobs", () => {
    const pkg = loadPackage(withEngines);
    expect(pkg.artifacts?.builtFor).toEqual(H100);
    expect(pkg.artifacts?.engines).toEqual({
      "0": { convs: {}, matmuls: { k: { algo: "AAAA", workspaceBytes: 0 } } },
    });
    expect(Array.from(pkg.artifacts?.blobs["kernels/abc.cubin"] ?? [])).toEqual(Array.from(KERNEL));
  });

  it("refuse a compiled kernel edited after saving", () => {
    const f = edited(withEngines, (files) => {
      files["engines/kernels/abc.cubin"] = files["engines/kernels/abc.cubin"].slice();
      files["engines/kernels/abc.cubin"][100] ^= 1;
    });
    refusal(() => loadPackage(f), "package.tampered", /entry engines\/kernels\/abc\.cubin does not match/);
  });

  it("refuse a target that is not a full record", () => {
    const f = edited(withEngines, (_files, m) => {
      m.builtFor.cudnn = "9.19";
    });
    refusal(() => loadPackage(f), "package.invalid", /builtFor\.cudnn/);
  });

  it("are never taken from the package's options", async () => {
    const f = edited(plain, (_files, m) => {
      m.options.artifacts = { builtFor: H100, engines: {}, blobs: {}, origin: "x", rebuild: "never" };
    });
    const compiled = await loadCompiled(f);
    expect(compiled.options.artifacts).toBeUndefined();
  });
});

describe("the target saved engines were built for", () => {
  const loaded = (rebuild: LoadedArtifacts["rebuild"]): LoadedArtifacts => ({
    builtFor: H100,
    engines: {},
    blobs: {},
    origin: "model.torchc",
    rebuild,
  });

  it("matches the same GPU and libraries, and a newer driver", () => {
    expect(targetMismatch(H100, H100)).toEqual([]);
    expect(targetMismatch(H100, { ...H100, driver: 13010, device: "NVIDIA H200" })).toEqual([]);
  });

  it("names every difference: architecture, CUDA, cuDNN, cuBLASLt, an older driver", () => {
    const here = { ...H100, arch: "sm_80", cuda: "12.8", cudnn: 91000, cublasLt: 120800, driver: 12080 };
    const diff = targetMismatch(H100, here);
    expect(diff).toEqual([
      "arch sm_90 (here sm_80)",
      "cuda 13.0 (here 12.8)",
      "cudnn 91900 (here 91000)",
      "cublasLt 130100 (here 120800)",
      "driver 13000 or newer (here 12080)",
    ]);
  });

  it("is a package.mismatch error by default, naming the package and the way out", () => {
    refusal(
      () => acceptArtifacts(loaded("never"), { ...H100, cudnn: 91000 }),
      "package.mismatch",
      /^model\.torchc: its engines were built for cudnn 91900 \(here 91000\)/,
      /rebuild: "if-needed"/,
    );
  });

  it('with rebuild "if-needed" says it rebuilds, and does', () => {
    const warn = vi.fn();
    expect(acceptArtifacts(loaded("if-needed"), { ...H100, arch: "sm_89" }, warn)).toBe(false);
    expect(warn).toHaveBeenCalledOnce();
    expect(warn.mock.calls[0][0]).toMatch(/arch sm_90 \(here sm_89\); rebuilding them/);
    expect(acceptArtifacts(loaded("never"), H100, warn)).toBe(true);
    expect(warn).toHaveBeenCalledOnce();
  });

  it("loadCompiled checks its rebuild option", async () => {
    await expect(loadCompiled(plain, { rebuild: "sometimes" as never })).rejects.toThrow(
      /rebuild must be never, if-needed or always/,
    );
  });
});
