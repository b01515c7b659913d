import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { endQuietlyOnClosedPipe } from "../../src/cli/main.js";
import { parseTolerance } from "../../src/cli/options.js";
import { MODELS, ROOT, torchc } from "../helpers.js";

const BIN = join(ROOT, "bin", "torchc.js");

describe("a reader that closes the pipe early", () => {
  it("ends `torchc inspect --graph | head -1` quietly, with status 0", () => {
    // The core-IR ViT prints ~13 KB in several writes. `head -1` closes the pipe after the first line (whether
    // torchc is still writing then is a race); `true` closes it before torchc writes at all, every time.
    const model = join(MODELS, "tiny_vit.core.pt2");
    const cmd = `"${process.execPath}" "${BIN}" inspect "${model}" --graph`;
    for (const reader of ["head -1", "true"]) {
      const r = spawnSync("bash", ["-o", "pipefail", "-c", `${cmd} | ${reader}`], {
        encoding: "utf8",
        timeout: 120_000,
      });
      if (reader === "head -1") expect(r.stdout).toMatch(/tiny_vit\.core\.pt2.*\n$/);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    }
  });

  it("exits 0 on EPIPE and lets any other stream error through", () => {
    const handlers: ((e: NodeJS.ErrnoException) => void)[] = [];
    const stream = { on: (_: string, h: (e: NodeJS.ErrnoException) => void) => handlers.push(h) };
    const exits: number[] = [];
    endQuietlyOnClosedPipe(stream as unknown as NodeJS.WritableStream, (c) => exits.push(c));
    handlers[0](Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    expect(exits).toEqual([0]);
    expect(() => handlers[0](Object.assign(new Error("write EIO"), { code: "EIO" }))).toThrow("EIO");
  });
});

describe("--tolerance", () => {
  it("is a non-negative number, defaulting by precision", () => {
    expect(parseTolerance(undefined, false)).toBe(1e-4);
    expect(parseTolerance(undefined, true)).toBe(1e-2);
    expect(parseTolerance("3e-3", false)).toBe(3e-3);
    expect(parseTolerance("0", false)).toBe(0);
    for (const bad of ["abc", "", "-1", "NaN", "Infinity", "1e-4x"])
      expect(() => parseTolerance(bad, false)).toThrow(`--tolerance ${bad}: expected a non-negative number`);
  });

  it("rejects `--tolerance abc` in one line with status 1, before any work", () => {
    const r = torchc(
      "run",
      join(MODELS, "mlp.pt2"),
      "--input",
      join(MODELS, "mlp.input.npy"),
      "--expect",
      join(MODELS, "mlp.output.npy"),
      "--tolerance",
      "abc",
    );
    expect(r.err).toBe("error: --tolerance abc: expected a non-negative number, e.g. 1e-4\n");
    expect(r.out).toBe("");
    expect(r.code).toBe(1);
    const b = torchc("bench", join(MODELS, "mlp.pt2"), "--tolerance", "abc");
    expect(b.err).toBe("error: --tolerance abc: expected a non-negative number, e.g. 1e-4\n");
    expect(b.code).toBe(1);
  });
});

describe("help", () => {
  it("bench --help states its own default backend (cuda), run --help the reference one", () => {
    const bench = torchc("bench", "--help");
    expect(bench.code).toBe(0);
    expect(bench.out).toMatch(/--backend reference\|cuda\s+.*\(default cuda\)/);
    expect(bench.out).not.toContain("default reference");
    const run = torchc("run", "--help");
    expect(run.out).toMatch(/--backend reference\|cuda\s+.*\(default reference\)/);
    expect(run.out).toContain("--tolerance");
  });
});
