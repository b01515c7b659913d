// Regression tests of issue 9 for TorchScript archives: the parser's nesting limit, the interpreter's budgets
// (statements, loop iterations, list length, int64), range() with step 0, big pickle integers and stride-0
// pickled tensors; each is one TorchcError line with the code location, in bounded time.
import { describe, expect, it } from "vitest";
import { TorchcError } from "../../../src/errors.js";
import { MemoryBudget, setLimits } from "../../../src/frontends/limits.js";
import { PickledStorage, PickledTensor } from "../../../src/frontends/pickle/torch.js";
import { type UnpickleOptions, unpickle } from "../../../src/frontends/pickle/vm.js";
import type { TensorType } from "../../../src/ir/graph.js";
import { type ArchiveSpec, loadArchive, moduleHeader } from "./archive-builder.js";

const T: TensorType = { dtype: "float32", shape: [1, 2] };

const spec = (body: string): ArchiveSpec => ({
  code: {
    "__torch__.py": `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
${body}
`,
  },
  data: { obj: "__torch__.Net", state: { training: false } },
});

/** Loads `body` as forward's code and returns the one-line error, checking it came quickly. */
function refusal(body: string, ms = 5000): TorchcError {
  const t0 = performance.now();
  let caught: unknown;
  try {
    loadArchive(spec(body), [T], "m.pt");
  } catch (e) {
    caught = e;
  }
  expect(performance.now() - t0).toBeLessThan(ms);
  expect(caught, "expected a TorchcError").toBeInstanceOf(TorchcError);
  const e = caught as TorchcError;
  expect(e.message).not.toContain("\n");
  expect(e.message).toMatch(/^m\.pt: /);
  return e;
}

describe("TorchScript parser depth", () => {
  it("refuses 2,000 nested parentheses", () => {
    const e = refusal(`    _z = ${"(".repeat(2000)}1${")".repeat(2000)}\n    return x`);
    expect(e.message).toMatch(/code\/__torch__\.py:8:\d+: the code nests deeper than 200 levels/);
  });

  it("refuses 3,000 nested ifs", () => {
    let body = "";
    for (let i = 0; i < 3000; i++) body += `${" ".repeat(4 + i)}if True:\n`;
    body += `${" ".repeat(3004)}_z = 1\n    return x`;
    expect(refusal(body).message).toMatch(/nests deeper than 200 levels/);
  });

  it("refuses 5,000 unary minus signs", () => {
    expect(refusal(`    _z = ${"-".repeat(5000)}1\n    return x`).message).toMatch(/nests deeper/);
  });

  it("still reads code nested a sensible depth", () => {
    const m = loadArchive(spec(`    _z = ${"(".repeat(50)}1${")".repeat(50)}\n    return x`), [T]);
    expect(m.graph.outputs.length).toBe(1);
  });
});

describe("TorchScript interpreter budgets", () => {
  it("range(1e10) is refused before the list is built", () => {
    const e = refusal("    for _i in range(10000000000):\n      pass\n    return x", 2000);
    expect(e.message).toMatch(
      /code\/__torch__\.py:8:5: a list of 10000000000 items is longer than the budget/,
    );
  });

  it("range(10, 0, 0) is an error, not an endless loop", () => {
    expect(refusal("    for _i in range(10, 0, 0):\n      pass\n    return x", 2000).message).toMatch(
      /range\(\) arg 3 must not be zero/,
    );
    expect(refusal("    _l = range(10, 0, 0)\n    return x", 2000).message).toMatch(/must not be zero/);
  });

  it("nested loops each under the unroll cap are bounded in total", () => {
    const e = refusal(
      "    for _i in range(900):\n      for _j in range(900):\n        for _k in range(900):\n          _q = _i\n    return x",
      10000,
    );
    expect(e.code).toBe("torchscript.budget");
    expect(e.message).toMatch(/loops ran more than 1000000 iterations in all/);
  });

  it("[0] * 1000000000 is refused, not an abort", () => {
    expect(refusal("    _z = [0] * 1000000000\n    return x", 2000).message).toMatch(
      /a list of 1000000000 items is longer than the budget of 10000000/,
    );
  });

  it("integers past int64 are refused, not rounded", () => {
    expect(refusal("    _z = 9223372036854775807 * 4\n    return x").message).toMatch(/overflows int64/);
    expect(refusal("    _z = 2 ** 200\n    return x").message).toMatch(/overflows int64/);
  });

  it("the statement budget stops a long computation", () => {
    setLimits({ maxScriptSteps: 1000 });
    try {
      const e = refusal("    for _i in range(5000):\n      _q = _i\n    return x");
      expect(e.message).toMatch(/ran more than 1000 statements/);
    } finally {
      setLimits({ maxScriptSteps: undefined });
    }
  });
});

describe("pickles", () => {
  const opts: UnpickleOptions = { file: "p.pkl", globals: new Map() };

  it("refuses a 256 KiB integer at once instead of decoding it for half a minute", () => {
    const n = 256 * 1024;
    const bytes = new Uint8Array(2 + 5 + n + 1);
    bytes.set([0x80, 2, 0x8b, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, 0]);
    bytes.fill(0x7f, 7, 7 + n);
    bytes[bytes.length - 1] = 0x2e;
    const t0 = performance.now();
    expect(() => unpickle(bytes, opts)).toThrow(/an integer of 262144 bytes is larger than torchc reads/);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it("decodes a LONG1 of 255 bytes exactly", () => {
    const b = new Uint8Array([0x80, 2, 0x8a, 255, ...new Array(254).fill(0), 0x01, 0x2e]);
    expect(unpickle(b, opts)).toBe(1n << BigInt(8 * 254));
  });

  it("refuses a stride-0 pickled tensor beyond the budget instead of densifying it", () => {
    const source = {
      file: "m.pt",
      recordPath: (k: string) => `m/data/${k}`,
      read: () => new Uint8Array(4),
      budget: new MemoryBudget((d) => {
        throw new TorchcError(`m.pt: ${d}`, "archive.too-large");
      }, 256 << 20),
    };
    const storage = new PickledStorage("FloatStorage", "float32", "0", "cpu", 1, source);
    const t = new PickledTensor(storage, 0, [24000, 24000], [0, 0], false);
    const t0 = performance.now();
    expect(() => t.toTensor()).toThrow(/needs 2\.1 GiB, over the memory budget of 256\.0 MiB/);
    expect(performance.now() - t0).toBeLessThan(500);
    const small = new PickledTensor(storage, 0, [3, 4], [0, 0], false).toTensor();
    expect(small.shape).toEqual([3, 4]);
  });
});
