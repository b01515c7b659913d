// Inputs the fuzzer found that broke the promise before issue 9 (stack traces, raw control characters, hangs),
// kept as regressions. Each is stored as a small edit of a fixture (the bytes between a common prefix and
// suffix), rebuilt here and run through the torchc command in this process; it must now succeed or give one
// escaped error line.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { MODELS, tempDir } from "../helpers.js";
import { judge } from "./harness.js";

interface Regression {
  readonly seed: string;
  readonly format: string;
  readonly mutator: string;
  readonly prefix: number;
  readonly suffix: number;
  readonly middle: string;
}

const DIR = join(import.meta.dirname, "regressions");

function rebuild(r: Regression): Uint8Array {
  const seed = readFileSync(join(MODELS, r.seed));
  const middle = Buffer.from(r.middle, "base64");
  return Buffer.concat([seed.subarray(0, r.prefix), middle, seed.subarray(seed.length - r.suffix)]);
}

function command(r: Regression, path: string): string[] {
  if (r.seed === "mlp.input.npy") return ["run", join(MODELS, "mlp.pt2"), "--input", path];
  if (r.seed === "mlp.output.npy")
    return ["run", join(MODELS, "mlp.pt2"), "--input", join(MODELS, "mlp.input.npy"), "--expect", path];
  return ["inspect", path];
}

async function run(args: string[]) {
  let out = "";
  let err = "";
  const [o, e] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((c: string) => {
    out += c;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => {
    err += c;
    return true;
  }) as typeof process.stderr.write;
  const t0 = performance.now();
  try {
    const code = await main(args);
    return { code, out, err, ms: performance.now() - t0, maxRssBytes: 0 };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

const files = readdirSync(DIR).filter((f) => f.endsWith(".json"));

describe("fuzz regressions", () => {
  it("has kept cases", () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files)("%s", async (name) => {
    const r = JSON.parse(readFileSync(join(DIR, name), "utf8")) as Regression;
    const path = join(tempDir(), `case.${r.format}`);
    const bytes = rebuild(r);
    expect(bytes).not.toEqual(new Uint8Array(readFileSync(join(MODELS, r.seed))));
    writeFileSync(path, bytes);
    const res = await run(command(r, path));
    expect(judge(res), `${res.err}`).toBeUndefined();
  });
});
