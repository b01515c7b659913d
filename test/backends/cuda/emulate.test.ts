import { describe, expect, it } from "vitest";
import { familyCases } from "../../../src/backends/cuda/testing/families.js";
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { assertClose } from "../../converters/harness.js";
import { emulateEngine, hasGxx } from "./emulate.js";

describe.skipIf(!hasGxx())(
  "CUDA engine emulated on the CPU (generated element kernels compiled with g++)",
  () => {
    for (const c of familyCases()) {
      if (!c.precisions.includes("fp32")) continue;
      for (const channelsLast of [false, true]) {
        it(`${c.name}, channelsLast=${channelsLast}`, () => {
          const r = rng(3);
          const inputs = Object.fromEntries(
            c.net.inputs.map((n) => {
              const t = c.net.tensors[n];
              return [n, randomTensor(r, t.dtype, t.shape)];
            }),
          );
          const want = runNetworkReference(c.net, inputs);
          const { outputs } = emulateEngine(c.net, inputs, { channelsLast });
          for (const [i, o] of outputs.entries()) assertClose(o, want[i], `${c.name} output ${i}`, 1e-3);
          expect(outputs.length).toBe(want.length);
        }, 60_000);
      }
    }
  },
);
