/**
 * 2:4 sparse weights without a GPU: the exact-zero 2:4 check along K, which matmuls are sparse-eligible and why
 * an eligible one cannot run sparse (shape, precision, layout), the availability rules (GPU generation, library,
 * true vs "prefer"), the report lines, the option checks and the CLI flag.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { matmulGeometry } from "../../../src/backends/cuda/kernels/matmul-cublaslt.js";
import { chooseSparseMatmuls } from "../../../src/backends/cuda/sparse-select.js";
import {
  first24Violation,
  formatSparseSummary,
  gpuSparseRefusal,
  is24Sparse,
  type SparseSummary,
  sparseCandidate,
  sparseConvCandidate,
  sparseConvEpilogue,
  sparseWeightsSetting,
} from "../../../src/backends/cuda/sparse-weights.js";
import { compileOptionsFrom, expandSparseWeightsFlag } from "../../../src/cli/compile-options.js";
import { TorchcError } from "../../../src/errors.js";
import { loadModel } from "../../../src/frontends/load-model.js";
import type { Network } from "../../../src/network/network.js";
import { compile } from "../../../src/runtime/compile.js";
import type { CompileOptions } from "../../../src/runtime/options.js";
import { MODELS, ROOT } from "../../helpers.js";
import { conv1x1Net, convNet, linearNet, planOf, prune24 } from "./sparse-nets.js";

describe("the 2:4 check along K", () => {
  it("accepts at most two non-zeros in each group of four, with exact zeros only", () => {
    expect(is24Sparse([1, 0, 2, 0, 0, 0, 0, 3], 1, 8)).toBe(true);
    expect(is24Sparse([1, -0, 0, 2], 1, 4)).toBe(true);
    // 1e-30 is not zero: a nearly pruned weight is dense
    expect(first24Violation([1, 1e-30, 2, 0, 0, 0, 0, 0], 2, 4)).toEqual({ row: 0, column: 0, nonzeros: 3 });
    expect(first24Violation([0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 0, 0], 3, 4)).toEqual({
      row: 1,
      column: 0,
      nonzeros: 3,
    });
    // groups run along each row: a row of 6 is not groups of four
    expect(first24Violation([1, 0, 0, 0, 0, 0], 1, 6)).toEqual({ row: 0, column: 4, nonzeros: -1 });
  });

  it("groups along K, not across rows", () => {
    // [2,8]: every column pair is dense, each row is 2:4
    const w = [1, 2, 0, 0, 3, 0, 4, 0, 5, 6, 0, 0, 0, 7, 0, 8];
    expect(is24Sparse(w, 2, 8)).toBe(true);
    expect(is24Sparse(w, 4, 4)).toBe(true);
    expect(is24Sparse([1, 2, 3, 0, 0, 0, 0, 0], 2, 4)).toBe(false);
  });
});

describe("which matmuls are sparse-eligible", () => {
  const candidate = (net: ReturnType<typeof linearNet>["net"], precision: "fp16" | "fp32" = "fp16") => {
    const { plan, matmuls } = planOf(net, precision);
    expect(matmuls).toHaveLength(1);
    const step = matmuls[0]!;
    return sparseCandidate(
      step,
      plan.network,
      plan.infos,
      matmulGeometry(step, (t) => plan.infos.get(t)!),
    );
  };

  it("a 2:4-pruned nn.Linear in fp16 with aligned dims runs sparse, its bias and ReLU in the epilogue", () => {
    const { net, weight, bias } = linearNet({ m: 32, n: 16, k: 64 });
    const c = candidate(net);
    expect(c?.runnable).toBe(true);
    if (!c?.runnable) return;
    expect(c.problem).toEqual({ dtype: "float16", m: 32, n: 16, k: 64, bias: true, activation: "relu" });
    expect(Array.from(c.weight.data as Float32Array)).toEqual(Array.from(weight.data as Float32Array));
    expect(Array.from(c.bias!.data as Float32Array)).toEqual(Array.from(bias!.data as Float32Array));
  });

  it("a fused tanh GELU is eligible but refused before any cuSPARSELt call: it has no fp16 GELU epilogue", () => {
    const c = candidate(linearNet({ m: 32, n: 16, k: 64, activation: "gelu" }).net);
    expect(c).toMatchObject({ runnable: false, shape: "M=32 N=16 K=64" });
    if (c?.runnable !== false) return;
    expect(c.reason).toBe("GELU epilogue: cuSPARSELt fuses GELU only for int8/fp8 inputs, not float16");
    // without an activation it runs sparse
    const plain = candidate(linearNet({ m: 32, n: 16, k: 64, activation: "none" }).net);
    expect(plain?.runnable && plain.problem.activation).toBe("none");
  });

  it("a dense weight is not eligible, and not reported", () => {
    expect(candidate(linearNet({ m: 32, n: 16, k: 64, sparse: false }).net)).toBeUndefined();
  });

  it("a 2:4 weight whose K is not a multiple of 16 is eligible but refused, naming the dimension", () => {
    const c = candidate(linearNet({ m: 32, n: 16, k: 36 }).net);
    expect(c).toMatchObject({ runnable: false, shape: "M=32 N=16 K=36" });
    if (c && !c.runnable) expect(c.reason).toMatch(/^shape not aligned: K=36 not a multiple of 16/);
    const rows = candidate(linearNet({ m: 20, n: 16, k: 64 }).net);
    if (rows && !rows.runnable) expect(rows.reason).toMatch(/^shape not aligned: M=20 not a multiple of 16/);
    else throw new Error("M=20 should be refused");
  });

  it("fp32 is refused: cuSPARSELt's fp32 kernels are 1:2, not 2:4", () => {
    const c = candidate(linearNet({ m: 32, n: 16, k: 64 }).net, "fp32");
    expect(c?.runnable).toBe(false);
    if (c && !c.runnable) expect(c.reason).toMatch(/^precision fp32: sparse needs fp16\/bf16\/int8/);
  });

  it("2:4 convolutions (along Cin at each kernel position): 1×1 ones are GEMM candidates, the rest dense with the reason", () => {
    const { plan } = planOf(convNet());
    const convs = plan.steps.filter((s) => s.kind === "conv");
    expect(convs).toHaveLength(3);
    const c1 = sparseConvCandidate(convs[0]!, plan.network, plan.infos);
    expect(c1?.runnable).toBe(true);
    if (!c1?.runnable) return;
    // [2, 16, 8, 8] channels-last: 128 pixels by 16 channels, times Wᵀ [16, 32]; the ReLU in the epilogue
    expect(c1.problem).toEqual({ dtype: "float16", m: 128, n: 32, k: 16, bias: false, activation: "relu" });
    expect(c1.residual).toBeUndefined();
    expect(c1.weight.shape).toEqual([32, 16, 1, 1]);
    // the dense 1×1 is not a candidate at all
    expect(sparseConvCandidate(convs[2]!, plan.network, plan.infos)).toBeUndefined();
    // without the build's cuDNN plans (a host-only plan), the 1×1 is eligible but cannot be timed
    const summary = chooseSparseMatmuls(plan, new Map(), { mode: true }, 1 << 20, () => {});
    expect(summary?.weightsChecked).toBe(3);
    expect(summary?.layers.map((l) => [l.shape, l.ran, l.reason])).toEqual([
      ["1×1 conv M=128 N=32 K=16", "dense", "no cuDNN plan to time against"],
      [
        "Cout=32 Cin=32 3×3",
        "dense",
        "3×3 convolution: runs on cuDNN (no sparse path for convolutions; im2col not attempted)",
      ],
    ]);
  });

  it("a 1×1 convolution that is not one fp16 channels-last GEMM is refused with the reason", () => {
    const reason = (net: Network, precision: "fp16" | "fp32" = "fp16") => {
      const { plan } = planOf(net, precision);
      const conv = plan.steps.filter((s) => s.kind === "conv").at(-1)!;
      const c = sparseConvCandidate(conv, plan.network, plan.infos);
      return c && !c.runnable ? c.reason : c?.runnable;
    };
    expect(reason(conv1x1Net({ stride: 2 }).net)).toBe(
      "stride 2×2: a strided 1×1 convolution is not one GEMM over the map",
    );
    expect(reason(conv1x1Net({}).net, "fp32")).toMatch(
      /^NCHW memory: the GEMM needs channels-last activations/,
    );
    // 2·3·3 = 18 pixels: not a multiple of 16
    expect(reason(conv1x1Net({ hw: 3 }).net)).toMatch(/^shape not aligned: M=18 not a multiple of 16/);
    expect(reason(conv1x1Net({ act: "silu" }).net)).toBe(
      "silu epilogue: cuSPARSELt fuses only ReLU for fp16",
    );
    expect(reason(conv1x1Net({ residual: true }).net)).toBe(true);
    const { plan } = planOf(conv1x1Net({ residual: true }).net);
    const [first, last] = plan.steps.filter((s) => s.kind === "conv");
    // the dense first convolution is not a candidate; the pruned one takes its output as C
    expect(sparseConvCandidate(first!, plan.network, plan.infos)).toBeUndefined();
    const c = sparseConvCandidate(last!, plan.network, plan.infos);
    expect(c?.runnable && c.residual).toBe(last!.x);
    expect(c?.runnable && c.problem).toEqual({
      dtype: "float16",
      m: 128,
      n: 16,
      k: 16,
      bias: true,
      activation: "relu",
      residual: true,
    });
  });

  it("maps a convolution's epilogue onto cuSPARSELt's: channel additions into the bias, one tensor as C, ReLU last", () => {
    const v = (...x: number[]) => Float64Array.from(x);
    expect(
      sparseConvEpilogue([
        { kind: "channel", op: "add", values: v(1, 2) },
        { kind: "tensor", op: "add", tensor: "r" },
        { kind: "channel", op: "add", values: v(3, 4) },
        { kind: "act", fn: "relu" },
      ]),
    ).toEqual({ channelAdds: [v(1, 2), v(3, 4)], residual: "r", activation: "relu" });
    expect(sparseConvEpilogue([])).toEqual({ channelAdds: [], activation: "none" });
    expect(sparseConvEpilogue([{ kind: "channel", op: "mul", values: v(2) }])).toBe(
      "a per-channel multiplication in the epilogue (cuSPARSELt only adds)",
    );
    expect(
      sparseConvEpilogue([
        { kind: "act", fn: "relu" },
        { kind: "tensor", op: "add", tensor: "r" },
      ]),
    ).toBe("a tensor addition after the activation (cuSPARSELt applies it last)");
    expect(
      sparseConvEpilogue([
        { kind: "tensor", op: "add", tensor: "r" },
        { kind: "tensor", op: "add", tensor: "s" },
      ]),
    ).toBe("two tensor additions in the epilogue (cuSPARSELt adds one C)");
  });

  it("prune24 keeps the two largest magnitudes of each group", () => {
    const w = prune24({
      dtype: "float32",
      shape: [1, 8],
      data: Float32Array.from([1, -4, 3, 2, 0.5, 0, -1, 0.25]),
    });
    expect(Array.from(w.data as Float32Array)).toEqual([0, -4, 3, 0, 0.5, 0, -1, 0]);
  });
});

describe("when sparse cannot run at all", () => {
  it("needs compute capability 8.0", () => {
    expect(gpuSparseRefusal("Tesla T4", [7, 5])).toBe(
      "GPU 'Tesla T4' (sm_75) has no sparse tensor cores: 2:4 sparsity needs compute capability 8.0 or newer",
    );
    expect(gpuSparseRefusal("NVIDIA H100", [9, 0])).toBeUndefined();
    expect(gpuSparseRefusal("A100", [8, 0])).toBeUndefined();
  });

  it("true fails in one line naming what is missing; prefer records it; off asks nothing", () => {
    const why = "cannot load cuSPARSELt (libcusparseLt.so.0): not found in 11 places";
    let asked = 0;
    const probe = () => {
      asked++;
      return why;
    };
    expect(sparseWeightsSetting(undefined, probe)).toBeUndefined();
    expect(sparseWeightsSetting(false, probe)).toBeUndefined();
    expect(asked).toBe(0);
    let err: unknown;
    try {
      sparseWeightsSetting(true, probe);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TorchcError);
    const msg = (err as TorchcError).message;
    expect(msg).not.toContain("\n");
    expect(msg).toBe(
      `sparseWeights: ${why}; pass sparseWeights: "prefer" (--sparse-weights=prefer) to compile dense instead`,
    );
    expect((err as TorchcError).code).toBe("sparse.unavailable");
    expect(sparseWeightsSetting("prefer", probe)).toEqual({ mode: "prefer", unavailable: why });
    expect(sparseWeightsSetting(true, () => undefined)).toEqual({ mode: true });
  });
});

describe("the compile report's sparse lines", () => {
  it("lists every sparse-eligible layer: sparse ones with both times, dense ones with the reason", () => {
    const s: SparseSummary = {
      mode: true,
      weightsChecked: 5,
      layers: [
        {
          layer: "fc1",
          shape: "M=1024 N=3072 K=768",
          ran: "sparse",
          sparseMs: 0.02,
          denseMs: 0.03,
          algorithm: "2 of 5",
        },
        {
          layer: "fc2",
          shape: "M=1024 N=768 K=3072",
          ran: "dense",
          reason: "timing lost: sparse 0.0400 ms vs dense cuBLASLt 0.0300 ms",
        },
      ],
    };
    expect(formatSparseSummary(s)).toEqual([
      "sparse weights (2:4, cuSPARSELt, required): 1 of 2 sparse-eligible layers ran sparse (5 linear and convolution weights checked)",
      "  sparse: 'fc1' M=1024 N=3072 K=768 (0.0200 ms vs dense 0.0300 ms, 1.50× faster), algorithm 2 of 5",
      "  dense:  'fc2' M=1024 N=768 K=3072: timing lost: sparse 0.0400 ms vs dense cuBLASLt 0.0300 ms",
    ]);
    expect(
      formatSparseSummary({ mode: "prefer", unavailable: "no cuSPARSELt", weightsChecked: 1, layers: [] })[0],
    ).toBe(
      "sparse weights (2:4, cuSPARSELt, preferred): 0 of 0 sparse-eligible layers ran sparse (1 linear and convolution weight checked); not available here: no cuSPARSELt",
    );
  });
});

describe("the sparseWeights option and --sparse-weights", () => {
  const mlp = () => loadModel(join(MODELS, "mlp.pt2"));

  it.each([
    [{ sparseWeights: "yes" }, /sparseWeights must be true, false or "prefer", got "yes"/],
    [{ sparseWeights: 1 }, /sparseWeights must be true, false or "prefer", got 1/],
    [{ sparseWeights: true }, /sparseWeights: the reference backend runs every layer dense/],
  ])("refuses %o", async (opts, msg) => {
    await expect(compile(await mlp(), opts as CompileOptions)).rejects.toThrow(msg);
  });

  it("changes nothing on the reference backend with prefer, and nothing without it", async () => {
    const model = await mlp();
    const a = await compile(model, { sparseWeights: "prefer" });
    const b = await compile(model, {});
    expect(a.report.runners).toEqual(b.report.runners);
    expect(a.report.text).not.toMatch(/sparse/);
  });

  it("parses --sparse-weights alone as true and =prefer as prefer, never taking the next argument", () => {
    expect(expandSparseWeightsFlag(["m.pt2", "--sparse-weights", "--precision", "fp16"])).toEqual([
      "m.pt2",
      "--sparse-weights=true",
      "--precision",
      "fp16",
    ]);
    expect(compileOptionsFrom({ "sparse-weights": "true" }).sparseWeights).toBe(true);
    expect(compileOptionsFrom({ "sparse-weights": "prefer" }).sparseWeights).toBe("prefer");
    expect(compileOptionsFrom({}).sparseWeights).toBeUndefined();
    expect(() => compileOptionsFrom({ "sparse-weights": "always" })).toThrow(
      "--sparse-weights=always: expected nothing, prefer or false",
    );
  });

  it("the torchc command: a bare --sparse-weights before another flag is true; =prefer compiles", () => {
    const torchc = (...args: string[]) =>
      spawnSync(process.execPath, [join(ROOT, "bin", "torchc.js"), ...args], {
        encoding: "utf8",
        timeout: 120_000,
      });
    const model = join(MODELS, "mlp.pt2");
    const strict = torchc("compile", model, "--sparse-weights", "--min-block-size", "1");
    expect(strict.status).toBe(1);
    expect(strict.stderr).toBe(
      `error: sparseWeights: the reference backend runs every layer dense; use backend "cuda", or sparseWeights: "prefer"\n`,
    );
    const prefer = torchc("compile", model, "--sparse-weights=prefer");
    expect(prefer.status, prefer.stderr).toBe(0);
    const bad = torchc("compile", model, "--sparse-weights=maybe");
    expect(bad.stderr).toMatch(/--sparse-weights=maybe: expected nothing, prefer or false/);
  });
});
