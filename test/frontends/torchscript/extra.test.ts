// Real torchvision / timm networks and scripted control-flow models, written by extra/make_archives.py on a
// machine with PyTorch (too large to commit). Runs when $TORCHC_EXTRA_TORCHSCRIPT names the extracted folder.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadTorchScript } from "../../../src/frontends/torchscript/index.js";
import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";
import { interpret } from "../../../src/ops/index.js";
import { parseNpy } from "../../../src/util/npy.js";

const ROOT = process.env.TORCHC_EXTRA_TORCHSCRIPT ?? "";
interface Entry {
  name: string;
  archive: string;
  kind: string;
  cases: { input: string; output: string }[];
}
const groups =
  ROOT && existsSync(ROOT) ? readdirSync(ROOT).filter((g) => existsSync(join(ROOT, g, "manifest.json"))) : [];

function relErr(got: Tensor, ref: Tensor): number {
  const a = toFloat64Array(got);
  const b = toFloat64Array(ref);
  expect(a.length).toBe(b.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / (scale || 1);
}

describe.skipIf(groups.length === 0)(
  "TorchScript archives of real networks ($TORCHC_EXTRA_TORCHSCRIPT)",
  () => {
    for (const g of groups) {
      const entries: Entry[] = JSON.parse(readFileSync(join(ROOT, g, "manifest.json"), "utf8"));
      for (const e of entries) {
        it(`${e.archive} matches PyTorch on ${e.cases.length} input(s)`, async () => {
          for (const c of e.cases) {
            const x = parseNpy(new Uint8Array(readFileSync(join(ROOT, g, c.input))), c.input);
            const model = await loadTorchScript(join(ROOT, g, e.archive), {
              inputTypes: [{ dtype: x.dtype, shape: x.shape }],
            });
            const [y] = interpret(model.graph, [x]);
            const ref = parseNpy(new Uint8Array(readFileSync(join(ROOT, g, c.output))), c.output);
            expect(relErr(y, ref)).toBeLessThan(1e-4);
          }
        });
      }
    }
  },
);
