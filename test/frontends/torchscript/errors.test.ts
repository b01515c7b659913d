import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { zipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { TorchcError } from "../../../src/errors.js";
import { loadTorchScriptFromZip } from "../../../src/frontends/torchscript/index.js";
import { parseZip } from "../../../src/frontends/zip.js";
import type { TensorType } from "../../../src/ir/graph.js";
import { type ArchiveSpec, f32, loadArchive, makeArchive, moduleHeader, pickle } from "./archive-builder.js";

const T: TensorType = { dtype: "float32", shape: [1, 2] };

function code(body: string): string {
  return `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
${body}
`;
}

const ok = (body: string, extra: Partial<ArchiveSpec> = {}): ArchiveSpec => ({
  code: { "__torch__.py": code(body) },
  data: { obj: "__torch__.Net", state: { training: false } },
  ...extra,
});

/** The one TorchcError loading fails with. */
function failure(f: () => unknown): TorchcError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TorchcError);
    return e as TorchcError;
  }
  throw new Error("expected loading to fail");
}

describe("TorchScript frontend errors", () => {
  it("refuses a data.pkl naming a forbidden global, naming the global and the record", () => {
    const spec = ok("    return x", {
      data: {
        obj: "__torch__.Net",
        state: { training: false, hook: { global: ["posix", "system"], args: ["echo pwned"] } },
      },
    });
    const e = failure(() => loadArchive(spec, [T], "evil.pt"));
    expect(e.code).toBe("pickle.forbidden-global");
    expect(e.message).toContain("'posix.system'");
    expect(e.message).toContain("evil.pt:archive/data.pkl");
  });

  it("refuses a forbidden global in constants.pkl even when the code never reads the constant", () => {
    const spec = ok("    return x", { constants: [{ global: ["builtins", "eval"], args: ["1+1"] }] });
    const e = failure(() => loadArchive(spec, [T], "evil.pt"));
    expect(e.code).toBe("pickle.forbidden-global");
    expect(e.message).toContain("'builtins.eval'");
    expect(e.message).toContain("evil.pt:archive/constants.pkl");
  });

  it("reports a truncated archive", () => {
    const bytes = makeArchive(ok("    return torch.relu(x)"));
    for (const cut of [bytes.length - 10, bytes.length >> 1, 30]) {
      const e = failure(() => loadTorchScriptFromZip(parseZip(bytes.subarray(0, cut), "cut.pt")));
      expect(e.code).toBe("archive.truncated");
      expect(e.message).toMatch(/^cut\.pt: /);
    }
  });

  it.skipIf(!existsSync(join(import.meta.dirname, "../../../fixtures/models/mlp.traced.pt")))(
    "reports a truncated real archive",
    () => {
      const bytes = new Uint8Array(
        readFileSync(join(import.meta.dirname, "../../../fixtures/models/mlp.traced.pt")),
      );
      const e = failure(() =>
        loadTorchScriptFromZip(parseZip(bytes.subarray(0, bytes.length - 100), "mlp.traced.pt")),
      );
      expect(e.code).toBe("archive.truncated");
    },
  );

  it("reports a truncated pickle and a short storage record inside a sound zip", () => {
    const good = pickle({ obj: "__torch__.Net", state: { training: false } }, []);
    const e1 = failure(() =>
      loadArchive(
        ok("    return x", { records: { "data.pkl": good.subarray(0, good.length - 3) } }),
        [T],
        "m.pt",
      ),
    );
    expect(e1.code).toBe("archive.truncated");
    expect(e1.message).toContain("m.pt:archive/data.pkl");

    const spec = ok("    return torch.add(x, self.w)", {
      data: { obj: "__torch__.Net", state: { training: false, w: { tensor: f32([2], [1, 2]) } } },
      records: { "data/0": new Uint8Array(3) },
    });
    const e2 = failure(() => loadArchive(spec, [T], "m.pt"));
    expect(e2.code).toBe("archive.truncated");
    expect(e2.message).toContain("archive/data/0");
  });

  it("names the code file and line:col of unknown syntax", () => {
    const e = failure(() => loadArchive(ok("    y = torch.relu(x) $ 2\n    return y"), [T], "m.pt"));
    expect(e.code).toBe("torchscript.syntax");
    expect(e.message).toMatch(/^m\.pt: code\/__torch__\.py:8:23: unexpected character '\$'/);
  });

  it("names an unknown operator, the code file and the line", () => {
    const e = failure(() =>
      loadArchive(ok("    y = torch.relu(x)\n    return torch.frobnicate(y, 3)"), [T], "m.pt"),
    );
    expect(e.code).toBe("op.unsupported");
    expect(e.message).toContain("aten::frobnicate");
    expect(e.message).toMatch(/m\.pt: code\/__torch__\.py:9:18: /);
    const e2 = failure(() => loadArchive(ok("    return ops.quantized.linear(x)"), [T], "m.pt"));
    expect(e2.message).toContain("quantized::linear");
  });

  it("names arguments no overload accepts", () => {
    const e = failure(() => loadArchive(ok('    return torch.relu(x, "fast")'), [T], "m.pt"));
    expect(e.code).toBe("op.args");
    expect(e.message).toMatch(
      /code\/__torch__\.py:8:18: no overload of aten::relu accepts \(Tensor float32\[1, 2\], str "fast"\)/,
    );
  });

  it("reports shape errors of ops with the code location", () => {
    const e = failure(() => loadArchive(ok("    return torch.mm(x, x)"), [T], "m.pt"));
    expect(e.message).toMatch(/code\/__torch__\.py:8:18: .*mm/);
  });

  it("names a class whose code file is missing", () => {
    const e = failure(() =>
      loadArchive({ ...ok("    return x"), data: { obj: "__torch__.foo.Missing", state: {} } }, [T], "m.pt"),
    );
    expect(e.code).toBe("torchscript.missing-code");
    expect(e.message).toContain("__torch__.foo.Missing");
    expect(e.message).toContain("code/__torch__/foo.py");
  });

  it("refuses a zip that is not a TorchScript archive", () => {
    const zip = zipSync({ "a/b.txt": new Uint8Array(1) });
    const e = failure(() => loadTorchScriptFromZip(parseZip(zip, "x.pt")));
    expect(e.code).toBe("archive.not-torchscript");
  });

  it("checks the number of input types", () => {
    const e = failure(() => loadArchive(ok("    return x"), [T, T], "m.pt"));
    expect(e.code).toBe("input.count");
  });
});

describe("in-place updates through views", () => {
  it("refuses to read a tensor after an in-place op changed it through a view", () => {
    const e = failure(() =>
      loadArchive(
        ok("    y = torch.select(x, 0, 0)\n    _0 = torch.add_(y, 1.)\n    return torch.mul(x, 2.)"),
        [T],
        "m.pt",
      ),
    );
    expect(e.code).toBe("torchscript.inplace-view");
    expect(e.message).toMatch(
      /code\/__torch__\.py:10:18: this tensor shares data with one that aten::add_ modified in place/,
    );
  });

  it("accepts in-place ops whose aliases are not read again", () => {
    const m = loadArchive(
      ok("    y = torch.select(x, 0, 0)\n    _0 = torch.add_(y, 1.)\n    return torch.relu_(y)"),
      [T],
      "m.pt",
    );
    expect(m.graph.nodes.map((n) => n.op)).toEqual([
      "aten.select.int",
      "aten.add.Tensor",
      "aten.relu.default",
    ]);
  });
});
