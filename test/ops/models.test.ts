// The fixture models, exported by PyTorch in both IR flavours, run end to end through the reference interpreter.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPt2 } from "../../src/frontends/pt2/load.js";
import { toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { readNpy } from "../../src/util/npy.js";

const DIR = new URL("../../fixtures/models/", import.meta.url).pathname;
const MANIFEST = join(DIR, "manifest.json");

interface Entry {
  name: string;
  input: string;
  output: string;
  archives: Record<string, string>;
}

const entries: [string, Entry, string][] = existsSync(MANIFEST)
  ? (JSON.parse(readFileSync(MANIFEST, "utf8")).models as Entry[]).flatMap((m) =>
      (["export", "core"] as const)
        .filter((k) => m.archives?.[k] && existsSync(join(DIR, m.archives[k])))
        .map((k) => [`${m.name} (${k})`, m, m.archives[k]] as [string, Entry, string]),
    )
  : [];

describe("fixture models through the reference interpreter", () => {
  if (entries.length === 0) it.skip("fixtures/models has no .pt2 models", () => {});
  it.each(entries)("%s matches PyTorch within 1e-4", (_label, m, file) => {
    const model = loadPt2(join(DIR, file));
    const x = readNpy(join(DIR, m.input));
    const ref = toFloat64Array(readNpy(join(DIR, m.output)));
    const start = performance.now();
    const [out] = interpret(model.graph, [x]);
    const ms = performance.now() - start;
    const o = toFloat64Array(out);
    expect(o.length).toBe(ref.length);
    let maxErr = 0;
    let maxRef = 0;
    for (let i = 0; i < ref.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(o[i] - ref[i]));
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
    }
    expect(maxErr / maxRef).toBeLessThanOrEqual(1e-4);
    expect(ms).toBeLessThan(1000);
  });
});
