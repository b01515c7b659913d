/**
 * cuBLASLt's heuristic answers against split-K variants of them (src/backends/cuda/device/blaslt-splitk.ts) on the
 * batch-1 transformer Linear layers: `bash scripts/gpu.sh bench lt-splitk-sweep` (about 15 s on an H100; no NVRTC).
 *
 * Shapes as gemm-sweep.bench.ts: the four Linear layers of a DeiT-tiny, ViT-B/16 (M = 197 tokens) and BERT-base
 * (M = 128) block at batch 1: qkv (+bias), proj (+bias), fc1 (+bias, GELU), fc2 (+bias, + residual). Each is planned
 * as the engine plans it (ltProblemOf, buildLtPlan: fp16, fp32 accumulation, cuBLASLt's bias/GELU epilogue, 32 MiB
 * of workspace at most); the residual is beta = 1 with C a buffer of its own, as LtMatmul.bind passes it.
 *
 * Candidates per shape: the heuristic's top 32 answers, and split-K variants of its first four distinct answers that
 * can split K (every split splitKFactors gives, up to 6, with every reduction scheme the algorithm allows); those the
 * engine makes with TORCHC_LT_SPLITK=1 (ENGINE_SPLITK, from its top 16) are marked "engine". Each is listed with its
 * algo id, tile id, stages id, split, reduction scheme and workspace. A variant cuBLASLt refuses at
 * cublasLtMatmulAlgoCheck, or any candidate it refuses at its first run, is listed with the status name, never run
 * again. Each candidate that runs: once with the output pre-filled with NaN and the workspace with 0x5a bytes (the
 * engine's workspace is shared with other library calls, so no algorithm may count on it zeroed), its output
 * compared with the heuristic's first (max |diff| / max |ref| above 1e-2: "wrong", and the run fails); the
 * heuristic's first itself against a float64 CPU reference on rows 0, M/2 and M−1. Then each is timed against the
 * heuristic's first the way the engine times them (device/graph-timing.ts: 20 calls captured per CUDA graph, 3
 * replays, 5 rounds alternating the two, median per call). A markdown table per shape lists every candidate; the
 * closing table gives, per shape, the heuristic's first, the best of its top 8 and top 32, the best split-K variant
 * and the best of the engine's variants, in µs per call.
 *
 * Without a GPU it says so in one line and exits 0. Writes lt-splitk-sweep.json and lt-splitk-sweep.md into $OUT
 * (else $TORCHC_BENCH_OUT, else the current folder). LT_SPLITK_SHAPES=deit,vit,bert runs some models only.
 *
 * Prediction, written before any measurement (H100 SXM, cuBLASLt 13.1, in a graph): ViT-B/16 b1 fc2 (197×768×3072,
 * +bias, +residual) goes from 10.3 µs (the heuristic's first) to about 4.5 µs (3.5–6) with the best split-K variant
 * (6–8 parts of a 128×128 or 128×64 tile, 70–150 CTAs, in-place reduction), which would take ViT-B/16 b1 from 0.486
 * to about 0.42 ms alone; BERT-base b1 fc2 6.6 → about 4 µs; qkv, proj and fc1 (K = 768: 2–3 parts at most) within
 * ±10% of the heuristic's first, the tournament keeping it; DeiT-tiny's fc2 a little better (−10 to −25%), its qkv
 * (K = 192) no variants. The risk: on Hopper the heuristic's first answers may be kernels that report no split-K
 * support (~30%); then the variants come from lower answers only, and the gain is smaller.
 */
import {
  buildLtPlan,
  createLtHandle,
  destroyLtHandle,
  destroyLtPlan,
  type LtActivation,
  type LtAlgo,
  type LtHandle,
  type LtPlan,
  ltAlgoCandidates,
  runLtPlan,
  setLtBias,
} from "../../src/backends/cuda/device/blaslt-plan.js";
import {
  ENGINE_SPLITK,
  type LtAlgoConfig,
  ltSplitKCandidates,
  readLtAlgoConfig,
} from "../../src/backends/cuda/device/blaslt-splitk.js";
import { timePairOnStream } from "../../src/backends/cuda/device/graph-timing.js";
import { CudaContext, DeviceBuffer } from "../../src/backends/cuda/device/index.js";
import { ltProblemOf, type MatmulGeometry } from "../../src/backends/cuda/kernels/matmul-cublaslt.js";
import { LT_SPLITK_HEURISTIC_ALGOS } from "../../src/backends/cuda/lt-timed-choice.js";
import { REDUCTION_SCHEME } from "../../src/ffi/cublaslt.js";
import { NativeCallError } from "../../src/ffi/status.js";
import {
  firstLine,
  fixed,
  markdownTable,
  REFERENCE_TOLERANCE,
  relativeDiff,
  Sweep,
  sci,
  shapesFrom,
  type LinearOperands,
  linearOperands,
  linearReferenceError,
} from "./sweep-support.js";

interface Shape {
  readonly model: string;
  readonly name: string;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly gelu: boolean;
  readonly residual: boolean;
}

function block(model: string, label: string, m: number, c: number, h: number): Shape[] {
  const g = (name: string, n: number, k: number, extra: Partial<Shape> = {}): Shape => ({
    model,
    name: `${label} ${name} ${m}×${n}×${k}`,
    m,
    n,
    k,
    gelu: false,
    residual: false,
    ...extra,
  });
  return [
    g("qkv", 3 * c, c),
    g("proj", c, c),
    g("fc1", h, c, { gelu: true }),
    g("fc2", c, h, { residual: true }),
  ];
}

const SHAPES: Shape[] = [
  ...block("deit", "DeiT-tiny b1", 197, 192, 768),
  ...block("vit", "ViT-B/16 b1", 197, 768, 3072),
  ...block("bert", "BERT-base b1", 128, 768, 3072),
];

/** The engine's most cuBLASLt workspace (builder.ts's LT_WORKSPACE). */
const WORKSPACE = 32 << 20;
/** Heuristic answers asked for. */
const TOP = 32;
/** The variants explored besides the engine's. */
const WIDE = { bases: 4, splits: 6, schemes: 3, max: 48 };
const TIMING = { perGraph: 20, replays: 3, rounds: 5 };

interface Row {
  shape: string;
  /** "heuristic #i" or "split-K of #i". */
  source: string;
  rank: number;
  engine?: boolean;
  algoId?: number;
  tileId?: number;
  stagesId?: number;
  splitK?: number;
  scheme?: string;
  workspace?: number;
  us?: number;
  /** The heuristic's first, timed in the same pair. */
  firstUs?: number;
  graph?: boolean;
  relErr?: number;
  /** Why it did not run, or "wrong". */
  status?: string;
}

interface Candidate extends LtAlgo {
  readonly row: Row;
}

try {
  CudaContext.get(0);
} catch (e) {
  console.log(`lt-splitk-sweep: no GPU (${firstLine(e)}): nothing to measure`);
  process.exit(0);
}

const schemeName = (v: number) =>
  (Object.entries(REDUCTION_SCHEME).find(([, x]) => x === v)?.[0] ?? String(v)).toLowerCase();

function configCells(c: LtAlgoConfig, workspace: number): Partial<Row> {
  const split = c.SPLITK_NUM;
  return {
    algoId: c.ID,
    tileId: c.TILE_ID,
    stagesId: c.STAGES_ID,
    splitK: split,
    scheme: split > 1 ? schemeName(c.REDUCTION_SCHEME) : "",
    workspace,
  };
}

const geometryOf = (s: Shape): MatmulGeometry => ({
  m: s.m,
  n: s.n,
  k: s.k,
  aT: false,
  bT: true,
  batch: 1,
  strideA: 0,
  strideB: 0,
  strideD: 0,
  dtype: "float16",
});

/** Heuristic top 32, then the split-K variants (wide ∪ the engine's), each with its row. */
function candidatesOf(
  s: Shape,
  handle: LtHandle,
  plan: LtPlan,
  sms: number,
  say: (l: string) => void,
  refused: Row[],
): Candidate[] {
  const what = `${s.m}x${s.n}x${s.k}`;
  const top = ltAlgoCandidates(handle, plan.desc, plan.layouts, WORKSPACE, what, TOP);
  const out: Candidate[] = top.map((a, i) => ({
    ...a,
    row: {
      shape: s.name,
      source: `heuristic #${i}`,
      rank: i,
      ...configCells(readLtAlgoConfig(a.algo), a.workspaceBytes),
    },
  }));
  const p = { m: s.m, n: s.n, k: s.k, batch: 1, sms };
  const engine = ltSplitKCandidates(
    handle,
    plan,
    top.slice(0, LT_SPLITK_HEURISTIC_ALGOS),
    p,
    WORKSPACE,
    ENGINE_SPLITK,
  );
  const wide = ltSplitKCandidates(handle, plan, top, p, WORKSPACE, WIDE);
  const key = (a: LtAlgo) => Buffer.from(a.algo).toString("hex");
  const engineKeys = new Set(engine.candidates.map(key));
  const seen = new Set<string>();
  for (const v of [...engine.candidates, ...wide.candidates]) {
    if (seen.has(key(v))) continue;
    seen.add(key(v));
    const row = {
      shape: s.name,
      source: `split-K of #${v.base}`,
      rank: out.length,
      ...configCells(v.config, v.workspaceBytes),
    };
    out.push({ ...v, row: { ...row, engine: engineKeys.has(key(v)) } });
  }
  for (const d of new Set([...engine.dropped, ...wide.dropped])) {
    say(`  refused: ${d}`);
    refused.push({ shape: s.name, source: "split-K, refused", rank: -1, status: d });
  }
  say(`  ${top.length} heuristic answers, ${seen.size} split-K variants (${engineKeys.size} the engine's)`);
  return out;
}

const referenceError = (s: Shape, h: LinearOperands, y: Uint16Array): number =>
  linearReferenceError({ ...s, bias: true }, h, y);

type Buffers = Record<"x" | "w" | "bias" | "res" | "y" | "workspace", DeviceBuffer>;

const describe = (r: Row) =>
  `algo ${r.algoId} tile ${r.tileId} stages ${r.stagesId}${r.splitK && r.splitK > 1 ? ` split ${r.splitK} ${r.scheme}` : ""}`;

const sweep = new Sweep<Row>("lt-splitk-sweep");
const { say, rows, failures } = sweep;

/** Runs each candidate once (NaN output, dirty workspace) and checks it; false when it could not run. */
function checkOnce(
  s: Shape,
  c: Candidate,
  run: () => void,
  b: Buffers,
  ref: { y?: Uint16Array },
  h: LinearOperands,
): boolean {
  const { stream } = sweep.gpu!;
  b.y.fill(0xff, { stream });
  b.workspace.fill(0x5a, { stream });
  try {
    run();
    stream.synchronize();
  } catch (e) {
    c.row.status =
      e instanceof NativeCallError ? `refused at run: ${e.statusName}` : `failed: ${firstLine(e)}`;
    return false;
  }
  const y = b.y.download(new Uint16Array(s.m * s.n));
  if (!ref.y) {
    ref.y = y;
    c.row.relErr = referenceError(s, h, y);
    if (!(c.row.relErr <= REFERENCE_TOLERANCE))
      failures.push(`${s.name}: heuristic's first off the float64 reference`);
    return true;
  }
  c.row.relErr = relativeDiff(ref.y, y);
  if (c.row.relErr <= REFERENCE_TOLERANCE) return true;
  c.row.status = "wrong";
  failures.push(
    `${s.name} ${c.row.source} (${describe(c.row)}): differs from the heuristic's first by ${c.row.relErr}`,
  );
  return false;
}

function runShape(s: Shape): void {
  const gpu = sweep.gpu!;
  say(`\n== ${s.name}${s.gelu ? " +GELU" : ""}${s.residual ? " +residual" : ""}, bias`);
  const h = linearOperands(s.m, s.n, s.k);
  const b: Buffers = {
    x: DeviceBuffer.from(h.x),
    w: DeviceBuffer.from(h.w),
    bias: DeviceBuffer.from(h.bias),
    res: DeviceBuffer.from(h.res),
    y: DeviceBuffer.alloc(s.m * s.n * 2),
    workspace: DeviceBuffer.alloc(WORKSPACE),
  };
  const handle = createLtHandle();
  let plan: LtPlan | undefined;
  try {
    const activation: LtActivation = s.gelu ? "gelu" : "none";
    const epilogue = s.residual
      ? { bias: true, activation, residual: true as const }
      : { bias: true, activation };
    plan = buildLtPlan(handle, ltProblemOf(geometryOf(s), epilogue, false), WORKSPACE, s.name);
    const refused: Row[] = [];
    const candidates = candidatesOf(s, handle, plan, gpu.ctx.info.multiprocessors, say, refused);
    setLtBias(plan, b.bias.ptr);
    measure(s, handle, plan, candidates, b, h);
    rows.push(...refused);
  } finally {
    if (plan) destroyLtPlan(plan);
    destroyLtHandle(handle);
    for (const buf of Object.values(b)) buf.free();
  }
}

function measure(
  s: Shape,
  handle: LtHandle,
  plan: LtPlan,
  candidates: Candidate[],
  b: Buffers,
  h: LinearOperands,
): void {
  const { stream } = sweep.gpu!;
  const alpha = new Float32Array([1]);
  const beta = new Float32Array([s.residual ? 1 : 0]);
  const run = (a: LtAlgo) => () =>
    runLtPlan(
      handle,
      { ...plan, algo: a.algo, workspaceBytes: a.workspaceBytes },
      {
        a: b.x.ptr,
        b: b.w.ptr,
        d: b.y.ptr,
        c: b.res.ptr,
        alpha,
        beta,
        workspace: a.workspaceBytes > 0 ? b.workspace.ptr : null,
      },
      stream,
    );
  const ref: { y?: Uint16Array } = {};
  const first = candidates[0];
  if (!checkOnce(s, first, run(first), b, ref, h)) {
    failures.push(`${s.name}: the heuristic's first did not run (${first.row.status})`);
    rows.push(...candidates.map((c) => c.row));
    return;
  }
  const ok = [first, ...candidates.slice(1).filter((c) => checkOnce(s, c, run(c), b, ref, h))];
  const firstTimes: number[] = [];
  for (const c of ok.slice(1)) {
    try {
      const t = timePairOnStream(stream, [run(first), run(c)], TIMING);
      firstTimes.push(t.ms[0] * 1000);
      Object.assign(c.row, { us: t.ms[1] * 1000, firstUs: t.ms[0] * 1000, graph: t.graph });
    } catch (e) {
      c.row.status = `timing failed: ${firstLine(e)}`;
    }
  }
  firstTimes.sort((x, y) => x - y);
  first.row.us = firstTimes[firstTimes.length >> 1];
  first.row.firstUs = first.row.us;
  rows.push(...candidates.map((c) => c.row));
  for (const l of candidateTable(candidates.map((c) => c.row))) say(l);
}

const f2 = (v: number | undefined) => fixed(v, 2);

function candidateTable(r: Row[]): string[] {
  return markdownTable(
    [
      "candidate",
      "engine",
      "algo",
      "tile",
      "stages",
      "split-K",
      "scheme",
      "workspace",
      "µs",
      "first µs (pair)",
      "rel diff",
      "note",
    ],
    r.map((x) => [
      x.source,
      x.engine ? "yes" : "",
      x.algoId,
      x.tileId,
      x.stagesId,
      x.splitK,
      x.scheme,
      x.workspace,
      f2(x.us),
      f2(x.firstUs),
      sci(x.relErr),
      [x.status, x.graph === false ? "eager (no graph)" : undefined].filter(Boolean).join("; "),
    ]),
  );
}

/** The fastest timed, correct row among `r` (undefined when none). */
function best(r: Row[]): Row | undefined {
  return r.filter((x) => x.us !== undefined && !x.status).sort((a, b) => a.us! - b.us!)[0];
}

const cell = (r: Row | undefined, first: Row | undefined) =>
  r?.us === undefined
    ? "-"
    : `${f2(r.us)} (${describe(r)}${first?.us ? `, ${(first.us / r.us).toFixed(2)}×` : ""})`;

function summary(): string[] {
  const shapes = [...new Set(rows.map((r) => r.shape))];
  return markdownTable(
    [
      "shape",
      "heuristic's first µs",
      "best of top 8",
      "best of top 32",
      "best split-K",
      "best engine split-K",
    ],
    shapes.map((name) => {
      const r = rows.filter((x) => x.shape === name);
      const heur = r.filter((x) => x.source.startsWith("heuristic"));
      const split = r.filter((x) => x.source.startsWith("split-K"));
      const first = heur[0];
      return [
        name,
        f2(first?.us),
        cell(best(heur.filter((x) => x.rank < 8)), first),
        cell(best(heur), first),
        cell(best(split), first),
        cell(best(split.filter((x) => x.engine)), first),
      ];
    }),
  );
}

sweep.runShapes(
  shapesFrom(SHAPES, "LT_SPLITK_SHAPES", (s) => s.model),
  runShape,
);
sweep.finish(
  "## cuBLASLt: heuristic vs split-K (µs per call in a CUDA graph of 20, paired with the heuristic's first)",
  summary(),
  "every candidate that ran matches the heuristic's first",
);
