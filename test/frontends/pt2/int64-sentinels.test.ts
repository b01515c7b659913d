// PyTorch writes int64's extremes as "to the end" sentinels (a slice's end of INT64_MAX in timm's and torchvision's
// Swin, LeViT, PiT, XCiT…); JSON.parse reads them as ±2^63, beyond JavaScript's safe integers. The reader keeps them
// as ±Number.MAX_SAFE_INTEGER, which every size-clamping op treats the same way.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { int, intOrSentinel } from "../../../src/frontends/decode.js";
import { loadModel } from "../../../src/frontends/load-model.js";
import { toFloat64Array } from "../../../src/ir/tensor.js";
import { compile } from "../../../src/runtime/compile.js";
import { readNpy } from "../../../src/util/npy.js";
import { editArchive, entryName, MODELS } from "../../helpers.js";

describe("int64 sentinels in .pt2 arguments", () => {
  it("reads ±2^63 as ±MAX_SAFE_INTEGER and still refuses other unsafe numbers", () => {
    expect(intOrSentinel(JSON.parse("9223372036854775807"))).toBe(Number.MAX_SAFE_INTEGER);
    expect(intOrSentinel(JSON.parse("-9223372036854775808"))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(intOrSentinel(2 ** 60)).toBeUndefined();
    expect(intOrSentinel(1.5)).toBeUndefined();
    expect(() => int(2 ** 60, "$.x")).toThrow();
  });

  it("a slice whose start is INT64_MIN loads and computes PyTorch's output", async () => {
    const archive = editArchive(join(MODELS, "mlp.pt2"), (entries) => {
      const name = entryName(entries, "models/model.json");
      const text = new TextDecoder().decode(entries[name]);
      // The one slice of mlp.pt2: dim 1, start 0, end 32 over 48 features; INT64_MIN clamps to the same start 0.
      const edited = text.replace(/("name": "start", "arg": \{"as_int": )0(\})/, "$1-9223372036854775808$2");
      expect(edited).not.toBe(text);
      entries[name] = new TextEncoder().encode(edited);
    });
    const model = await loadModel(archive);
    const compiled = await compile(model);
    const [y] = await compiled.run([readNpy(join(MODELS, "mlp.input.npy"))]);
    const want = toFloat64Array(readNpy(join(MODELS, "mlp.output.npy")));
    const got = toFloat64Array(y as never);
    const scale = Math.max(...want.map(Math.abs));
    expect(Math.max(...got.map((v, i) => Math.abs(v - want[i]))) / scale).toBeLessThan(1e-4);
    await compiled.dispose();
  });
});
