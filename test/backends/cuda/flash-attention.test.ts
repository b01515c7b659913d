// The flash-attention kernel (src/backends/cuda/codegen/flash-attention.ts) without a GPU: which attention
// layers get it, its launch geometry and shared memory against sm_90's limits, and its numerics with the
// generated source run on the CPU behind a host shim of the warp-level primitives (flash-host.ts).
import { afterEach, describe, expect, it } from "vitest";
import type { GeneratedKernel } from "../../../src/backends/cuda/codegen/element.js";
import {
  chooseWarps,
  describeAttentionChoice,
  type FlashAttentionConfig,
  flashConfigProblem,
  flashSharedBytes,
  generateFlashAttentionKernel,
} from "../../../src/backends/cuda/codegen/flash-attention.js";
import type { Step } from "../../../src/backends/cuda/fuse/steps.js";
import { storageRoot } from "../../../src/backends/cuda/plan/tensors.js";
import { type EnginePlan, planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import type { DType } from "../../../src/ir/dtype.js";
import {
  numel,
  type Tensor,
  tensorBytes,
  tensorFromBytes,
  tensorFromNumbers,
  toFloat64Array,
} from "../../../src/ir/tensor.js";
import { NetworkBuilder } from "../../../src/network/builder.js";
import type { Network } from "../../../src/network/network.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { hasGxx } from "./emulate.js";
import { compileFlashOnHost, type HostCType } from "./flash-host.js";
import { type QkvNet, qkvInputShape, qkvNet, qkvProjectionNet } from "./qkv-nets.js";

interface Case {
  readonly name: string;
  readonly dtype: "float16" | "bfloat16" | "float32";
  readonly b: number;
  readonly h: number;
  readonly L: number;
  readonly S?: number;
  readonly E: number;
  readonly Ev?: number;
  readonly causal?: boolean;
  readonly scale?: number;
  /** A boolean key-padding mask [b, 1, 1, S] or an additive mask [1, h, L, S] (with -inf entries). */
  readonly mask?: "padding" | "additive" | "additive-dead-row";
  /** q arrives as [b, L, h, E] transposed to [b, h, L, E] (a strided view). */
  readonly stridedQ?: boolean;
}

/** A network of one attention layer over inputs of the case's dtype (their storage in either precision). */
function attentionNet(c: Case): Network {
  const S = c.S ?? c.L;
  const Ev = c.Ev ?? c.E;
  const b = new NetworkBuilder();
  let q: string;
  if (c.stridedQ) {
    const x = b.addInput("x", { dtype: c.dtype, shape: [c.b, c.L, c.h, c.E] });
    q = b.add({
      type: "shuffle",
      inputs: [x],
      firstTranspose: [0, 2, 1, 3],
      reshape: null,
      secondTranspose: null,
    });
  } else q = b.addInput("q", { dtype: c.dtype, shape: [c.b, c.h, c.L, c.E] });
  const k = b.addInput("k", { dtype: c.dtype, shape: [c.b, c.h, S, c.E] });
  const v = b.addInput("v", { dtype: c.dtype, shape: [c.b, c.h, S, Ev] });
  const scale = c.scale ?? 1 / Math.sqrt(c.E);
  let y: string;
  if (c.mask === "padding") {
    const m = b.addInput("mask", { dtype: "bool", shape: [c.b, 1, 1, S] });
    y = b.add({ type: "attention", inputs: [q, k, v, m], scale, causal: c.causal ?? false });
  } else if (c.mask) {
    const m = b.addInput("mask", { dtype: c.dtype, shape: [1, c.h, c.L, S] });
    y = b.add({ type: "attention", inputs: [q, k, v, m], scale, causal: c.causal ?? false });
  } else y = b.add({ type: "attention", inputs: [q, k, v], scale, causal: c.causal ?? false });
  return b.build([{ tensor: y, as: "out" }]);
}

function attentionStep(plan: EnginePlan): { step: Extract<Step, { kind: "attention" }>; index: number } {
  const index = plan.steps.findIndex((s) => s.kind === "attention");
  const step = plan.steps[index];
  if (step?.kind !== "attention") throw new Error("no attention step");
  return { step, index };
}

function inputsFor(net: Network, c: Case, seed: number): Record<string, Tensor> {
  const r = rng(seed);
  const out: Record<string, Tensor> = {};
  for (const name of net.inputs) {
    const t = net.tensors[name];
    if (name !== "mask") {
      out[name] = randomTensor(r, t.dtype, t.shape, 1.5);
      continue;
    }
    const n = numel(t.shape);
    const S = t.shape[3];
    const vals = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (c.mask === "padding") {
        // batch item j keeps its first S - 3j keys
        const batch = Math.floor(i / S);
        vals[i] = i % S < S - 3 * batch ? 1 : 0;
      } else {
        vals[i] = r() < 0.15 ? Number.NEGATIVE_INFINITY : (r() * 2 - 1) * 2;
        // a query row with every key masked (row 1 of head 0) must give zeros
        if (c.mask === "additive-dead-row" && Math.floor(i / S) === 1) vals[i] = Number.NEGATIVE_INFINITY;
      }
    }
    out[name] = tensorFromNumbers(t.dtype, t.shape, vals);
  }
  return out;
}

const HOST_CTYPE: Partial<Record<DType, HostCType>> = {
  float16: "__half",
  bfloat16: "__nv_bfloat16",
  float32: "float",
  bool: "unsigned char",
};

/** Runs kernel `k` of `plan` on the host with `inputs`; returns the network output. */
function runOnHost(
  plan: EnginePlan,
  k: GeneratedKernel,
  inputs: Record<string, Tensor>,
  stats: { mmaWarpCalls?: number } = {},
): Tensor {
  const buffers = new Map<string, Uint8Array>();
  const bufferOf = (t: string) => {
    const root = storageRoot(plan.infos, t);
    let buf = buffers.get(root);
    if (!buf) {
      const info = plan.infos.get(root)!;
      const given = inputs[root];
      buf = given ? new Uint8Array(tensorBytes(given)) : new Uint8Array(numel(info.shape) * 4).fill(0xff);
      buffers.set(root, buf);
    }
    return buf;
  };
  const run = compileFlashOnHost(
    k,
    k.params.map((p) => HOST_CTYPE[plan.infos.get(p.tensor)!.storage]!),
  );
  // a strided view starts `offset` elements into its root (plan/strided-views.ts)
  const at = (t: string) => {
    const info = plan.infos.get(t)!;
    return bufferOf(t).subarray((info.offset ?? 0) * (info.storage === "float32" ? 4 : 2));
  };
  run(k.params.map((p) => at(p.tensor)));
  stats.mmaWarpCalls = run.mmaWarpCalls();
  const out = plan.network.outputs[0];
  const info = plan.infos.get(out)!;
  const bytes = bufferOf(out).subarray(0, numel(info.shape) * (info.storage === "float32" ? 4 : 2));
  return tensorFromBytes(info.storage, info.shape, bytes);
}

const FLASH_ENV = [
  "TORCHC_FLASH_ATTENTION",
  "TORCHC_FLASH_WARPS",
  "TORCHC_FLASH_BLOCK_N",
  "TORCHC_FLASH_KV_STAGES",
  "TORCHC_FLASH_SKIP_PADDING",
  "TORCHC_FLASH_MIN_BLOCKS",
];
afterEach(() => {
  for (const k of FLASH_ENV) delete process.env[k];
});

describe("attention kernel selection", () => {
  const choose = (c: Case, precision: "fp32" | "fp16" = "fp16") => {
    const plan = planCudaEngine(attentionNet(c), { precision, channelsLast: false });
    return { plan, ...attentionStep(plan) };
  };
  const vit: Case = { name: "vit", dtype: "float16", b: 2, h: 12, L: 197, E: 64 };

  it("takes the flash kernel for fp16 and bf16 storage with head dims 16…128", () => {
    for (const [dtype, E] of [
      ["float16", 64],
      ["float16", 32],
      ["float16", 128],
      ["bfloat16", 64],
      ["float16", 16],
    ] as const) {
      const { step, plan, index } = choose({ ...vit, dtype, E });
      expect(step.choice.kernel, `${dtype} d${E}`).toBe("flash");
      if (step.choice.kernel !== "flash") continue;
      // padding skipped; 128-key tiles where their shared memory fits (d ≤ 64), else 64
      const blockN = E <= 64 ? 128 : 64;
      expect(step.choice.config).toMatchObject({ dtype, headDim: E, valueDim: E, blockN, skipPadding: true });
      expect(plan.summary[index]).toMatch(
        new RegExp(
          `^attention\\(flash ${dtype === "float16" ? "fp16" : "bf16"} d${E} \\d+×${blockN} skip-padding\\) → `,
        ),
      );
    }
  });

  it("keeps the row-wise kernel for fp32 storage, odd head dims and non-contiguous features", () => {
    const cases: [Case, "fp32" | "fp16", RegExp][] = [
      [{ ...vit, dtype: "float32" }, "fp32", /float32 storage/],
      [{ ...vit, E: 40 }, "fp16", /head dim 40 is not a multiple of 16/],
      [{ ...vit, E: 256 }, "fp16", /head dim 256/],
      [{ ...vit, Ev: 8 }, "fp16", /value dim 8/],
    ];
    for (const [c, precision, why] of cases) {
      const { step, plan, index } = choose(c, precision);
      expect(step.choice.kernel).toBe("rowwise");
      if (step.choice.kernel === "rowwise") expect(step.choice.reason).toMatch(why);
      expect(plan.summary[index]).toMatch(/^attention\(rowwise: /);
      expect(plan.kernels[index]?.source).not.toContain("mma.sync");
    }
    // q read through a transpose of its last two axes: features strided
    const b = new NetworkBuilder();
    const qt = b.addInput("qt", { dtype: "float16", shape: [1, 2, 64, 40] });
    const q = b.add({
      type: "shuffle",
      inputs: [qt],
      firstTranspose: [0, 1, 3, 2],
      reshape: null,
      secondTranspose: null,
    });
    const k = b.addInput("k", { dtype: "float16", shape: [1, 2, 40, 64] });
    const v = b.addInput("v", { dtype: "float16", shape: [1, 2, 40, 64] });
    const y = b.add({ type: "attention", inputs: [q, k, v], scale: 0.125, causal: false });
    const plan = planCudaEngine(b.build([{ tensor: y, as: "out" }]), { precision: "fp16" });
    const { step } = attentionStep(plan);
    expect(step.choice).toEqual({ kernel: "rowwise", reason: "query features are not contiguous" });
  });

  it("a strided (permuted) q with contiguous features still takes the flash kernel", () => {
    expect(choose({ ...vit, stridedQ: true }).step.choice.kernel).toBe("flash");
  });

  it("TORCHC_FLASH_ATTENTION=0 turns it off", () => {
    process.env.TORCHC_FLASH_ATTENTION = "0";
    const { step } = choose(vit);
    expect(step.choice).toEqual({ kernel: "rowwise", reason: "TORCHC_FLASH_ATTENTION=0" });
  });

  it("the TORCHC_FLASH_* knobs pick a variant, and one that does not fit falls back to the default", () => {
    const base = choose(vit).step.choice;
    expect(base).toEqual({
      kernel: "flash",
      config: { warps: 4, blockN: 128, dtype: "float16", headDim: 64, valueDim: 64, skipPadding: true },
    });
    Object.assign(process.env, {
      TORCHC_FLASH_WARPS: "8",
      TORCHC_FLASH_BLOCK_N: "32",
      TORCHC_FLASH_KV_STAGES: "2",
      TORCHC_FLASH_SKIP_PADDING: "1",
      TORCHC_FLASH_MIN_BLOCKS: "2",
    });
    const { step, plan, index } = choose(vit);
    expect(step.choice).toEqual({
      kernel: "flash",
      config: {
        warps: 8,
        blockN: 32,
        dtype: "float16",
        headDim: 64,
        valueDim: 64,
        skipPadding: true,
        kvStages: 2,
        minBlocks: 2,
      },
    });
    expect(plan.summary[index]).toMatch(/^attention\(flash fp16 d64 128×32 skip-padding 2-stage 2\/SM\) → /);
    // 8 warps at d128 with one stage: a 128-row Q tile and a K tile, 52 KiB of static shared memory
    for (const k of FLASH_ENV) delete process.env[k];
    process.env.TORCHC_FLASH_WARPS = "8";
    const big = choose({ ...vit, E: 128 }).step.choice;
    expect(big.kernel === "flash" && big.config.warps).toBe(4); // chooseWarps(2 × 12, 197)
    expect(big.kernel === "flash" && big.config.blockN).toBe(64); // 128 keys at d128: 68 KiB
    process.env.TORCHC_FLASH_WARPS = "17";
    expect(choose(vit).step.choice).toEqual(base);
    // the session-11 kernel, for A/B timing
    for (const k of FLASH_ENV) delete process.env[k];
    Object.assign(process.env, { TORCHC_FLASH_SKIP_PADDING: "0", TORCHC_FLASH_BLOCK_N: "64" });
    const before = choose(vit).step.choice;
    expect(before.kernel === "flash" && [before.config.blockN, before.config.skipPadding]).toEqual([
      64,
      false,
    ]);
  });

  it("fp16 precision of an fp32 network: activations are stored in fp16, so the flash kernel", () => {
    // q, k, v made inside the network (network inputs keep their fp32 storage)
    const b = new NetworkBuilder();
    const x = b.addInput("x", { dtype: "float32", shape: [2, 4, 50, 32] });
    const q = b.add({ type: "unary", inputs: [x], op: "neg" });
    const y = b.add({ type: "attention", inputs: [q, q, q], scale: 0.2, causal: false });
    const z = b.add({ type: "unary", inputs: [y], op: "neg" });
    const net = b.build([{ tensor: z, as: "out" }]);
    expect(attentionStep(planCudaEngine(net, { precision: "fp16" })).step.choice.kernel).toBe("flash");
    expect(attentionStep(planCudaEngine(net, { precision: "fp32" })).step.choice.kernel).toBe("rowwise");
  });

  it("takes 64-row query tiles at every batch (measured faster at batch 1 too), fewer rows only for short L", () => {
    expect(chooseWarps(64 * 12, 197)).toBe(4); // ViT-B b64
    expect(chooseWarps(8 * 12, 128)).toBe(4); // BERT-base 8×128
    expect(chooseWarps(64 * 3, 49)).toBe(4); // Swin-T stage 1 windows
    expect(chooseWarps(12, 197)).toBe(4); // ViT-B b1
    expect(chooseWarps(3, 197)).toBe(4); // DeiT-tiny b1
    expect(chooseWarps(3, 20)).toBe(2);
    expect(chooseWarps(3, 1)).toBe(1);
  });
});

describe("flash kernel geometry within sm_90 limits", () => {
  const dims = [
    [16, 16],
    [32, 32],
    [64, 64],
    [128, 128],
    [32, 128],
    [128, 32],
  ];
  const configs: FlashAttentionConfig[] = [];
  for (const warps of [1, 2, 3, 4, 8, 13, 16])
    for (const [headDim, valueDim] of dims)
      for (const blockN of [16, 32, 64, 128])
        for (const kvStages of [1, 2] as const)
          for (const dtype of ["float16", "bfloat16"] as const)
            configs.push({ warps, blockN, dtype, headDim, valueDim, kvStages, skipPadding: kvStages === 2 });
  const valid = configs.filter((c) => flashConfigProblem(c) === undefined);

  it("today's variants (1, 2, 4 warps, 64 keys, one stage) all fit 48 KiB of static shared memory", () => {
    for (const warps of [1, 2, 4])
      for (const [headDim, valueDim] of dims)
        for (const dtype of ["float16", "bfloat16"] as const) {
          const cfg: FlashAttentionConfig = { warps, blockN: 64, dtype, headDim, valueDim };
          expect(flashConfigProblem(cfg), JSON.stringify(cfg)).toBeUndefined();
          expect(flashSharedBytes(cfg)).toBeLessThanOrEqual(48 * 1024);
        }
    expect(flashSharedBytes({ warps: 4, blockN: 64, dtype: "float16", headDim: 128, valueDim: 128 })).toBe(
      2 * (64 * 136 + 64 * 136),
    );
    // two stages of K and V, the Q tile in the second
    const staged = {
      warps: 4,
      blockN: 64,
      dtype: "float16",
      headDim: 64,
      valueDim: 64,
      kvStages: 2,
    } as const;
    expect(flashSharedBytes(staged)).toBe(2 * 2 * (64 * 72 + 64 * 72));
    // 8 warps of 32 keys: the 128-row Q tile does not fit a stage and comes after both
    expect(flashSharedBytes({ ...staged, warps: 8, blockN: 32 })).toBe(2 * (2 * 32 * 144 + 128 * 72));
  });

  it("flashConfigProblem says why a configuration cannot be generated", () => {
    const ok: FlashAttentionConfig = { warps: 4, blockN: 64, dtype: "float16", headDim: 64, valueDim: 64 };
    expect(flashConfigProblem({ ...ok, warps: 0 })).toMatch(/warps 0/);
    expect(flashConfigProblem({ ...ok, warps: 17 })).toMatch(/warps 17/);
    expect(flashConfigProblem({ ...ok, blockN: 48 + 8 })).toMatch(/blockN 56/);
    expect(flashConfigProblem({ ...ok, blockN: 256 })).toMatch(/blockN 256/);
    expect(flashConfigProblem({ ...ok, headDim: 136 })).toMatch(/head dim 136/);
    expect(flashConfigProblem({ ...ok, minBlocks: 17 })).toMatch(/minBlocks 17/);
    expect(flashConfigProblem({ ...ok, warps: 8, headDim: 128, valueDim: 128 })).toMatch(/52224 bytes/);
    expect(flashConfigProblem({ ...ok, kvStages: 2, headDim: 128, valueDim: 128 })).toMatch(/bytes/);
    expect(
      flashConfigProblem({ ...ok, kvStages: 2, blockN: 32, headDim: 128, valueDim: 128 }),
    ).toBeUndefined();
    // every rejected configuration is rejected for shared memory alone
    for (const c of configs) {
      const why = flashConfigProblem(c);
      if (why) expect(why, JSON.stringify(c)).toMatch(/bytes of shared memory/);
      expect(why === undefined).toBe(flashSharedBytes(c) <= 48 * 1024);
    }
    expect(valid.length).toBeGreaterThan(configs.length / 2);
  });

  it("emits the declared shared arrays, launch bounds and grid for each variant; refuses the rest", () => {
    for (const cfg of configs) {
      const c: Case = {
        name: "g",
        dtype: cfg.dtype,
        b: 3,
        h: 5,
        L: 197,
        S: 77,
        E: cfg.headDim,
        Ev: cfg.valueDim,
      };
      const plan = planCudaEngine(attentionNet(c), { precision: "fp16", channelsLast: false });
      const { step } = attentionStep(plan);
      const generate = () => generateFlashAttentionKernel("k_flash", step.layer, ctxOf(plan), cfg);
      if (flashConfigProblem(cfg)) {
        expect(generate).toThrow(/bytes of shared memory/);
        continue;
      }
      const k = generate();
      const threads = 32 * cfg.warps;
      expect(k.block).toEqual([threads, 1, 1]);
      expect(k.grid).toEqual([15 * Math.ceil(197 / (16 * cfg.warps)), 1, 1]);
      expect(k.grid[0]).toBeLessThan(2 ** 31);
      expect(k.sharedBytes).toBe(0);
      expect(k.source).toContain(`__launch_bounds__(${threads})`);
      const arrays = [...k.source.matchAll(/__shared__ __align__\(16\) unsigned short \w+\[(\d+)\];/g)];
      expect(arrays.reduce((a, m) => a + 2 * Number(m[1]), 0)).toBe(flashSharedBytes(cfg));
      expect(k.source).toContain(cfg.dtype === "float16" ? "tc_mma_f16(s[2 * nn]" : "tc_mma_bf16(s[2 * nn]");
      // identical helper blocks are guarded, so several flash kernels share one program
      expect(k.source.startsWith("#ifndef TC_FLASH_HELPERS")).toBe(true);
    }
    const plan = planCudaEngine(attentionNet({ name: "g", dtype: "float16", b: 1, h: 1, L: 20, E: 64 }), {
      precision: "fp16",
    });
    const cfg: FlashAttentionConfig = { warps: 8, blockN: 64, dtype: "float16", headDim: 64, valueDim: 64 };
    const k = generateFlashAttentionKernel("k", attentionStep(plan).step.layer, ctxOf(plan), {
      ...cfg,
      minBlocks: 2,
    });
    expect(k.source).toContain("__launch_bounds__(256, 2)");
    expect(describeAttentionChoice({ kernel: "flash", config: { ...cfg, minBlocks: 2 } })).toBe(
      "flash fp16 d64 128×64 2/SM",
    );
  });
});

function ctxOf(plan: EnginePlan) {
  return { info: (t: string) => plan.infos.get(t)!, scalarConstant: () => undefined };
}

describe.skipIf(!hasGxx())("flash kernel numerics on the host (warp primitives emulated)", () => {
  /** A case, the warps of its CTAs, and variants to run besides the four below (blockN, warps, …). */
  const cases: (Case & { warps: number; extra?: Partial<FlashAttentionConfig>[] })[] = [
    {
      name: "ViT: 197 tokens, 3 whole key tiles and a ragged one",
      dtype: "float16",
      b: 1,
      h: 1,
      L: 197,
      E: 64,
      warps: 4,
      extra: [
        { warps: 8, skipPadding: true, minBlocks: 2 },
        { warps: 8, skipPadding: true, kvStages: 2 },
        { warps: 13, skipPadding: true, minBlocks: 1 },
        { blockN: 128, skipPadding: true },
        { blockN: 32, skipPadding: true, kvStages: 2 },
      ],
    },
    {
      name: "ragged single tile",
      dtype: "float16",
      b: 1,
      h: 2,
      L: 37,
      E: 32,
      warps: 2,
      extra: [{ blockN: 16, skipPadding: true }, { warps: 3 }],
    },
    {
      name: "head dim 128, causal, 150 tokens",
      dtype: "float16",
      b: 1,
      h: 1,
      L: 150,
      E: 128,
      causal: true,
      warps: 2,
      extra: [{ blockN: 32, kvStages: 2, skipPadding: true, warps: 3 }],
    },
    {
      name: "whole tiles only (S = 128), 5 warps",
      dtype: "bfloat16",
      b: 1,
      h: 1,
      L: 70,
      S: 128,
      E: 48,
      warps: 5,
    },
    {
      name: "3 key tiles, ragged, Ev ≠ E",
      dtype: "float16",
      b: 1,
      h: 1,
      L: 20,
      S: 130,
      E: 32,
      Ev: 64,
      warps: 1,
    },
    { name: "causal 80×80", dtype: "float16", b: 1, h: 2, L: 80, E: 16, causal: true, warps: 4 },
    {
      name: "causal, more queries than keys",
      dtype: "float16",
      b: 1,
      h: 1,
      L: 40,
      S: 20,
      E: 16,
      causal: true,
      warps: 1,
    },
    { name: "padding mask", dtype: "float16", b: 2, h: 1, L: 17, S: 70, E: 16, mask: "padding", warps: 1 },
    {
      name: "additive mask with -inf",
      dtype: "float16",
      b: 1,
      h: 2,
      L: 33,
      S: 65,
      E: 16,
      mask: "additive",
      warps: 2,
    },
    {
      name: "fully masked row → zeros",
      dtype: "float16",
      b: 1,
      h: 1,
      L: 9,
      S: 20,
      E: 16,
      mask: "additive-dead-row",
      warps: 1,
    },
    { name: "bf16, strided q", dtype: "bfloat16", b: 1, h: 2, L: 30, S: 66, E: 32, stridedQ: true, warps: 1 },
    {
      name: "negative scale (scores scaled before the max)",
      dtype: "float16",
      b: 1,
      h: 1,
      L: 16,
      S: 24,
      E: 16,
      scale: -0.3,
      warps: 1,
    },
  ];
  it("q, k and v read in place from one qkv projection (strided views at element offsets)", () => {
    const [B, L, H, E] = [2, 21, 2, 32];
    const shape: QkvNet = { B, T: L, H, D: E, dtype: "float16", scale: 1 / Math.sqrt(E) };
    const {
      net,
      operands: [q, k, v],
    } = qkvNet(shape);
    const plan = planCudaEngine(net, { precision: "fp16", channelsLast: false });
    // no slice kernel: the attention step reads the projection's memory at offsets 0, H·E and 2·H·E
    expect(plan.steps.map((st) => st.kind)).toEqual(["element", "attention"]);
    const root = storageRoot(plan.infos, q);
    expect([q, k, v].map((t) => storageRoot(plan.infos, t))).toEqual([root, root, root]);
    expect([q, k, v].map((t) => plan.infos.get(t)?.offset)).toEqual([0, H * E, 2 * H * E]);
    expect(plan.infos.get(k)?.strides).toEqual([L * 3 * H * E, E, 3 * H * E, 1]);
    const { step } = attentionStep(plan);
    expect(step.choice.kernel).toBe("flash");
    if (step.choice.kernel !== "flash") return;
    const kernel = generateFlashAttentionKernel("k_flash", step.layer, ctxOf(plan), step.choice.config);
    const inputs = { x: randomTensor(rng(11), "float16", qkvInputShape(shape), 1.5) };
    const projected = runNetworkReference(qkvProjectionNet(shape), inputs)[0];
    const got = runOnHost(plan, kernel, { [root]: projected });
    const want = runNetworkReference(net, inputs)[0];
    expect(compareTensors(got, want).relative).toBeLessThan(1e-2);
  }, 60_000);

  it("nn.MultiheadAttention's chain: sequence-first slices through a batch·heads merge, read in place", () => {
    const [T, B, H, D] = [19, 2, 2, 32];
    const E = H * D;
    const b = new NetworkBuilder();
    const x = b.addInput("x", { dtype: "float16", shape: [T, B, 3 * E] });
    const qkv = b.add({ type: "activation", inputs: [x], fn: { kind: "tanh" } });
    const shuffle = (t: string, first: number[] | null, reshape: number[] | null, second: number[] | null) =>
      b.add({ type: "shuffle", inputs: [t], firstTranspose: first, reshape, secondTranspose: second });
    // view [1, T, B, 3, E] → permute [3, 1, 2, 0, 4] → view [3, T, B, E]
    const split = shuffle(shuffle(qkv, null, [1, T, B, 3, E], [3, 1, 2, 0, 4]), null, [3, T, B, E], null);
    const [q, k, v] = [0, 1, 2].map((i) => {
      const s = b.add({
        type: "slice",
        inputs: [split],
        starts: [i, 0, 0, 0],
        ends: [i + 1, T, B, E],
        steps: [1, 1, 1, 1],
      });
      // view [T, B·H, D] (no single stride for B·H) → transpose → view [B, H, T, D]
      const merged = shuffle(s, null, [T, B * H, D], null);
      return shuffle(shuffle(merged, [1, 0, 2], null, null), null, [B, H, T, D], null);
    });
    const y = b.add({ type: "attention", inputs: [q, k, v], scale: 1 / Math.sqrt(D), causal: false });
    const net = b.build([{ tensor: y, as: "out" }]);
    const plan = planCudaEngine(net, { precision: "fp16", channelsLast: false });
    expect(plan.steps.map((st) => st.kind)).toEqual(["element", "attention"]);
    const root = storageRoot(plan.infos, q);
    expect([q, k, v].map((t) => plan.infos.get(t)?.offset)).toEqual([0, E, 2 * E]);
    // [B, H, T, D] of a [T, B, 3E] projection
    expect(plan.infos.get(v)?.strides).toEqual([3 * E, D, B * 3 * E, 1]);
    expect([...plan.infos.values()].filter((i) => i.unaddressable).length).toBeGreaterThan(0);
    const { step } = attentionStep(plan);
    if (step.choice.kernel !== "flash") throw new Error(`flash expected: ${JSON.stringify(step.choice)}`);
    const kernel = generateFlashAttentionKernel("k_flash", step.layer, ctxOf(plan), step.choice.config);
    const inputs = { x: randomTensor(rng(12), "float16", [T, B, 3 * E], 1.5) };
    const pb = new NetworkBuilder();
    const px = pb.addInput("x", { dtype: "float16", shape: [T, B, 3 * E] });
    const projected = runNetworkReference(
      pb.build([{ tensor: pb.add({ type: "activation", inputs: [px], fn: { kind: "tanh" } }), as: "qkv" }]),
      inputs,
    )[0];
    const got = runOnHost(plan, kernel, { [root]: projected });
    expect(compareTensors(got, runNetworkReference(net, inputs)[0]).relative).toBeLessThan(1e-2);
  }, 60_000);

  // Each case as today's default kernel (padding skipped, 128-key tiles where they fit), and from session 11's
  // (64-key tiles, the ragged tail tested at run time) with padding skipped (peeled ragged key tile, warps past
  // L), double-buffered, both, and 128-key tiles without skipping; a variant that does not fit 48 KiB of shared
  // memory takes 32-key (then 16-key) tiles.
  const variants: Partial<FlashAttentionConfig>[] = [
    {},
    { skipPadding: false, blockN: 64 },
    { skipPadding: true, blockN: 64 },
    { skipPadding: false, blockN: 64, kvStages: 2 },
    { skipPadding: true, blockN: 64, kvStages: 2 },
    { skipPadding: false, blockN: 128 },
  ];
  for (const c of cases)
    for (const v of [...variants, ...(c.extra ?? [])]) {
      it(`${c.name}: ${c.b}×${c.h} L${c.L} S${c.S ?? c.L} d${c.E}${c.Ev ? `/${c.Ev}` : ""} ${c.dtype}, ${JSON.stringify(v)}`, () => {
        const net = attentionNet(c);
        const plan = planCudaEngine(net, { precision: "fp16", channelsLast: false });
        const { step } = attentionStep(plan);
        expect(step.choice.kernel).toBe("flash");
        if (step.choice.kernel !== "flash") return;
        let cfg: FlashAttentionConfig = { ...step.choice.config, warps: c.warps, ...v };
        for (const blockN of [32, 16]) if (flashConfigProblem(cfg)) cfg = { ...cfg, blockN };
        expect(flashConfigProblem(cfg)).toBeUndefined();
        const k = generateFlashAttentionKernel("k_flash", step.layer, ctxOf(plan), cfg);
        const S = c.S ?? c.L;
        // skipping padding: no runtime tail test (the ragged tile is peeled), a warp gate where warps idle
        if (cfg.skipPadding) {
          expect(k.source).not.toContain("t == nt - 1");
          const lastRows = c.L - (Math.ceil(c.L / (16 * cfg.warps)) - 1) * 16 * cfg.warps;
          expect(k.source.includes("if (active)")).toBe(Math.ceil(lastRows / 16) < cfg.warps);
        } else if (!c.mask && !c.causal && (c.scale ?? 1) > 0)
          expect(k.source.includes("t == nt - 1")).toBe(S % cfg.blockN !== 0);
        const inputs = inputsFor(net, c, 7);
        const got = runOnHost(plan, k, inputs);
        const want = runNetworkReference(net, inputs)[0];
        expect(compareTensors(got, want).relative).toBeLessThan(1e-2); // max |got − want| / max |want|
        if (c.mask || c.causal) {
          // the mask (or causality) must move the reference well past the tolerance, or a kernel ignoring it passes
          const unmasked = runNetworkReference(
            attentionNet({ ...c, mask: undefined, causal: false }),
            inputs,
          )[0];
          expect(compareTensors(unmasked, want).relative).toBeGreaterThan(5e-2); // measured 0.19 (padding) to 1.1
        }
        if (c.mask === "additive-dead-row") {
          const g = toFloat64Array(got);
          const Ev = c.Ev ?? c.E;
          expect([...g.subarray(Ev, 2 * Ev)].every((x) => x === 0)).toBe(true);
        }
      }, 60_000);
    }

  it("skipping padding does only the tensor-core work real rows and keys need, with the same result", () => {
    const run = (c: Case, cfg: Partial<FlashAttentionConfig>) => {
      const net = attentionNet(c);
      const plan = planCudaEngine(net, { precision: "fp16", channelsLast: false });
      const { step } = attentionStep(plan);
      if (step.choice.kernel !== "flash") throw new Error("expected the flash kernel");
      // from the 64-key tile without skipping (the default skips): `cfg` says what is switched on
      const k = generateFlashAttentionKernel("k_flash", step.layer, ctxOf(plan), {
        ...step.choice.config,
        blockN: 64,
        skipPadding: false,
        ...cfg,
      });
      const stats: { mmaWarpCalls?: number } = {};
      return { out: runOnHost(plan, k, inputsFor(net, c, 11), stats), mma: stats.mmaWarpCalls! };
    };
    // Per warp and key tile: Q·Kᵀ takes (E/16)·(keys/16)·2 mma and P·V (keys/16)·(Ev/16)·2.
    const perWarp = (E: number, keys: number) => (E / 16) * (keys / 16) * 2 + (keys / 16) * (E / 16) * 2;
    // L = S = 37 in 32-row query tiles (2 warps) and one 64-key tile: CTA 0 has both warps' rows, CTA 1 rows
    // 32…47 and 48…63, of which only the first warp's hold a real row; keys 37…63 are padding. All: 4 warps ×
    // 64 keys; skipping: 3 warps × 48 keys (chunks 0…2 hold keys 0…47).
    const small: Case = { name: "padding", dtype: "float16", b: 1, h: 1, L: 37, E: 16 };
    const all = run(small, { warps: 2 });
    expect(all.mma).toBe(4 * perWarp(16, 64));
    for (const kvStages of [1, 2] as const) {
      const skipped = run(small, { warps: 2, skipPadding: true, kvStages });
      expect(skipped.mma).toBe(3 * perWarp(16, 48));
      expect(compareTensors(skipped.out, all.out).relative).toBeLessThan(1e-6);
    }
    // ViT's 197 tokens at 4 warps: 4 CTAs of 4 warps × 4 tiles of 64 keys, against 13 warps with rows (the last
    // CTA's rows 192…196 are one warp's) × 3 tiles of 64 keys and one chunk of 16 (keys 192…207).
    const vit: Case = { name: "vit", dtype: "float16", b: 1, h: 1, L: 197, E: 64 };
    const vitAll = run(vit, { warps: 4 });
    expect(vitAll.mma).toBe(16 * perWarp(64, 256));
    const vitSkipped = run(vit, { warps: 4, skipPadding: true });
    expect(vitSkipped.mma).toBe(13 * perWarp(64, 208));
    expect(vitAll.mma / vitSkipped.mma).toBeCloseTo(1.515, 3);
    expect(compareTensors(vitSkipped.out, vitAll.out).relative).toBeLessThan(1e-6);
  }, 60_000);
});
