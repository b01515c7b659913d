// Regression tests of issue 9 for the command: every error from a hostile file is one line with the file's
// strings escaped (pickle global names, npy dtypes, TorchScript exception strings), --output into a missing
// folder is one line, and --max-memory sets the budget.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { makeArchive, moduleHeader } from "../frontends/torchscript/archive-builder.js";
import { MODELS, ROOT, tempDir } from "../helpers.js";

/** Runs the command in this process and returns its status and stderr. */
async function torchc(...args: string[]): Promise<{ code: number; err: string; out: string }> {
  let err = "";
  let out = "";
  const [o, e] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((c: string) => {
    out += c;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => {
    err += c;
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(args), err, out };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find raw control characters
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/;

function oneEscapedLine(r: { code: number; err: string }): void {
  expect(r.code).toBe(1);
  expect(r.err).toMatch(/^error: [^\n]+\n$/);
  expect(r.err.slice(0, -1)).not.toMatch(RAW_CONTROL);
}

function scripted(body: string, data?: Parameters<typeof makeArchive>[0]["data"]): string {
  const f = join(tempDir(), "m.pt");
  writeFileSync(
    f,
    makeArchive({
      code: {
        "__torch__.py": `${moduleHeader("Net")}\n  def forward(self: __torch__.Net,\n    x: Tensor) -> Tensor:\n${body}\n`,
      },
      data: data ?? { obj: "__torch__.Net", state: { training: false } },
    }),
  );
  return f;
}

describe("error lines from hostile files", () => {
  it("escapes a TorchScript exception string", async () => {
    // the code spells the escapes as Python does; the string the model raises holds the raw characters
    const f = scripted(
      '    ops.prim.RaiseException("\\x1b[2J\\x1b[31mowned\\nsecond line", "builtins.ValueError")',
    );
    const r = await torchc("inspect", f, "--input-shape", "1x2");
    oneEscapedLine(r);
    expect(r.err).toContain("\\x1b[2J\\x1b[31mowned\\nsecond line");
  });

  it("escapes a pickle global name", async () => {
    const f = scripted("    return x", { global: ["os\u001b[31m", "system\u0007"], args: ["ls"] });
    const r = await torchc("inspect", f, "--input-shape", "1x2");
    oneEscapedLine(r);
    expect(r.err).toContain("os\\x1b[31m");
  });

  it("escapes an npy dtype", async () => {
    const head = new TextEncoder().encode(
      "{'descr': '\u001b[31m<f4\n', 'fortran_order': False, 'shape': (4, 20), }\n",
    );
    const b = new Uint8Array(10 + head.length + 320);
    b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    new DataView(b.buffer).setUint16(8, head.length, true);
    b.set(head, 10);
    const x = join(tempDir(), "x.npy");
    writeFileSync(x, b);
    const r = await torchc("run", join(MODELS, "mlp.pt2"), "--input", x);
    oneEscapedLine(r);
    expect(r.err).toContain('dtype "\\u001b[31m<f4\\n" is not supported');
  });

  it("--max-memory sets the budget, and a bad size is one line", async () => {
    const small = await torchc("inspect", join(MODELS, "mlp.pt2"), "--max-memory", "10k");
    oneEscapedLine(small);
    expect(small.err).toMatch(/over the memory budget of 10\.0 KiB/);
    expect((await torchc("inspect", join(MODELS, "mlp.pt2"), "--max-memory=64m")).code).toBe(0);
    const bad = await torchc("inspect", join(MODELS, "mlp.pt2"), "--max-memory", "lots");
    oneEscapedLine(bad);
    expect(bad.err).toMatch(/--max-memory "lots": expected a size like 4g/);
  });

  it("/dev/zero as the model is refused at the budget", async () => {
    const r = await torchc("inspect", "/dev/zero", "--max-memory", "16m");
    oneEscapedLine(r);
    expect(r.err).toMatch(/\/dev\/zero: is more than 16\.0 MiB/);
  });
});

describe("--output into a missing folder", () => {
  it("is one line naming the folder, from the real command", () => {
    const out = join(tempDir(), "missing", "out.npy");
    const r = spawnSync(
      process.execPath,
      [
        join(ROOT, "bin", "torchc.js"),
        "run",
        join(MODELS, "mlp.pt2"),
        "--input",
        join(MODELS, "mlp.input.npy"),
        "--output",
        out,
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^error: .*out\.npy: cannot write the output \(the folder .*missing does not exist\)\n$/,
    );
  });
});
