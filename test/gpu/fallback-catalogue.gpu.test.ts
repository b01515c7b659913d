/**
 * Issue 11's fallback property: every overload of the op catalogue runs through the LibTorch fallback alone
 * (one fallback segment, aoti_torch_call_dispatcher with its rewrites) and matches the aten CPU reference, on
 * valid operands (PyTorch's recorded golden calls, else a draw inside the converter's domain: see
 * test/backends/torch/catalogue-cases.ts). fp32 ≤ 1e-5 of max|ref| (TF32 off), integers and bools exact,
 * uninitialised results (empty*) by type only. The CPU-only flash attention kernel is the one expected refusal.
 * `bash scripts/gpu.sh test fallback-catalogue`
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createTorchFallbackRunner } from "../../src/backends/torch/index.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { evaluateNode } from "../../src/ops/index.js";
import { caseGraph } from "../backends/torch/cases.js";
import { catalogueCases, UNINITIALIZED } from "../backends/torch/catalogue-cases.js";
import { relMaxError } from "../backends/torch/compare.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";
import { torchEnv, wholeGraph } from "./torch-support.js";

const { skip } = openGpu();
const report = gpuReporter("fallback-catalogue");
recordTestStarts();

const EXPECTED_REFUSALS = new Set(["aten._scaled_dot_product_flash_attention_for_cpu.default"]);

const env = torchEnv;

describe("LibTorch fallback: every catalogue overload alone, against the aten reference", { skip }, () => {
  it("runs and matches", async () => {
    const failures: string[] = [];
    const errors: Record<string, number | string> = {};
    let ran = 0;
    for (const [op, c] of catalogueCases()) {
      if (!c?.values) {
        failures.push(`${op}: no case with valid operands`);
        continue;
      }
      if (EXPECTED_REFUSALS.has(op)) continue;
      try {
        const { graph, node } = caseGraph(c.case);
        const inputs = new Map<string, Tensor>(Object.entries(c.values));
        let want: Tensor[] | undefined;
        try {
          want = evaluateNode(node, (n) => inputs.get(n) as Tensor);
        } catch {
          want = undefined; // no deterministic reference (training-mode dropout): checked for running only
        }
        const runner = createTorchFallbackRunner(wholeGraph(graph), await env());
        try {
          const got = await runner.run(inputs);
          ran++;
          let worst = 0;
          graph.outputs.forEach((o, j) => {
            const g = got.get(o) as Tensor;
            if (!want) return;
            assert.equal(g.dtype, want[j].dtype, `${op}: dtype`);
            assert.deepEqual(g.shape, want[j].shape, `${op}: shape`);
            if (UNINITIALIZED.has(op)) return;
            const exact = !(g.dtype.startsWith("float") || g.dtype === "bfloat16");
            const err = relMaxError(g, want[j]);
            worst = Math.max(worst, err);
            if (!(err <= (exact ? 0 : 1e-5))) failures.push(`${op} (${c.source}): output ${j} error ${err}`);
          });
          errors[op] = worst;
        } finally {
          runner.dispose();
        }
      } catch (e) {
        failures.push(`${op} (${c.source}): ${(e as Error).message.split("\n")[0]}`);
        errors[op] = "threw";
      }
    }
    report("catalogue", { overloads: ran, failures, maxRelErr: errors });
    assert.deepEqual(failures, []);
  });
});
