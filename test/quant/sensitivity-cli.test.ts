// `torchc compile` / `torchc verify` with --keep-sensitive on a real exported model (the fixtures' MLP): the
// report lists the kept layer with its score and rank, and bad flags are one line with status 1.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { encodeNpy } from "../../src/util/npy.js";
import { MODELS, tempDir, torchc } from "../helpers.js";
import { seeded } from "./tiny-cnn.js";

const MLP = join(MODELS, "mlp.pt2");

/** A folder with one .npy of 12 samples shaped like the MLP's input [4, 20]: three calibration batches. */
function dataDir(): string {
  const dir = tempDir();
  const r = seeded(77);
  const data = Float32Array.from({ length: 12 * 20 }, () => r() * 2);
  writeFileSync(join(dir, "x.npy"), encodeNpy({ dtype: "float32", shape: [12, 20], data }));
  return dir;
}

const KEPT =
  /^ +node '[^']+' \(aten\.linear\.default\).*: kept in fp32: sensitivity \d\.\de[-+]\d+, rank 1 of 4$/m;

describe("torchc with --keep-sensitive", () => {
  const dir = dataDir();

  it("compile prints the decision: one layer kept, its score and rank among the 4 linear layers", () => {
    const r = torchc(
      "compile",
      MLP,
      "--precision",
      "int8",
      "--calibration-data",
      dir,
      "--keep-sensitive",
      "1",
    );
    expect(r.err).not.toMatch(/at .*\.ts:\d+/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/quantization: int8 with 1 of 4 layers kept in fp32 by sensitivity \(keep 1;/);
    expect(r.out).toMatch(KEPT);
    expect(r.out).toMatch(/3 calibration batches/);
  });

  it("verify lists the kept layer and checks the compiled graph leaves it unquantized", () => {
    const cache = join(tempDir(), "scales.json");
    const args = ["--precision", "int8", "--calibration-cache", cache, "--keep-sensitive", "1"];
    const first = torchc("verify", MLP, ...args, "--calibration-data", dir, "--tolerance", "1");
    expect(first.code, first.out + first.err).toBe(0);
    expect(first.out).toMatch(KEPT);
    expect(first.out).toMatch(/kept layers unquantized in the compiled graph: yes/);
    // From the cache alone: the same decision, said to come from the cache.
    const second = torchc("verify", MLP, ...args, "--tolerance", "1");
    expect(second.code, second.out + second.err).toBe(0);
    expect(second.out).toMatch(/scores from the cache/);
    const keptLine = (s: string) => s.match(KEPT)?.[0];
    expect(keptLine(second.out)).toBe(keptLine(first.out));
  });

  it.each([
    [["--keep-sensitive", "two"], /--keep-sensitive two: expected a whole number of layers or auto/],
    [
      ["--keep-sensitive", "1", "--sensitivity-metric", "l1"],
      /--sensitivity-metric l1: expected cosine, relative-max/,
    ],
    [["--sensitivity-target", "1e-3"], /--sensitivity-target needs --keep-sensitive N\|auto/],
    [
      ["--keep-sensitive", "auto", "--sensitivity-target", "0"],
      /--sensitivity-target 0: expected a positive number/,
    ],
    [
      ["--keep-sensitive", "1", "--sensitivity-batches", "100"],
      /sensitivity: batches must be an integer from 1 to 64/,
    ],
  ])("%o is one clear error", (flags, msg) => {
    const r = torchc("compile", MLP, "--precision", "int8", "--calibration-data", dir, ...flags);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split("\n")).toHaveLength(1);
  });

  it("--keep-sensitive without int8 or fp8 is one clear error", () => {
    const r = torchc("compile", MLP, "--calibration-data", dir, "--keep-sensitive", "1");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/sensitivity: needs int8 or fp8 in enabledPrecisions/);
  });
});
