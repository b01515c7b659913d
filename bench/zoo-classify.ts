/**
 * The zoo's rules (issue 11), kept apart from the runner so that a CPU test can check them: which failure class
 * an error belongs to, whether one precision's run matches PyTorch, and the model's verdict.
 * fp32 must be within 1e-4 of PyTorch eager fp32 (TF32 off), relative to max |ref|; fp16 within 1e-2, or it is
 * "judged in fp32" where PyTorch's own fp16 misses that bar on the random weights: inf/NaN (overflow), or values
 * more than 1e-2 off (torchvision's mobilenet_v2 ends in logits of ~1e-9, which underflow fp16 to 0).
 */

export const FP32_TOLERANCE = 1e-4;
export const FP16_TOLERANCE = 1e-2;

/** Why a model did not match. "export" and "reference" are failures on PyTorch's side, not torchc's. */
export type FailureClass =
  | "export"
  | "reference"
  | "load"
  | "unsupported-op"
  | "compile"
  | "run"
  | "wrong-numbers"
  | "timeout"
  | "crash"
  | "not-run";

export const FAILURE_CLASSES: readonly FailureClass[] = [
  "export",
  "reference",
  "load",
  "unsupported-op",
  "compile",
  "run",
  "wrong-numbers",
  "timeout",
  "crash",
  "not-run",
];

/** Failures that say nothing about torchc: the model never reached it, or the run was cut short. */
export function isTorchcFailure(c: FailureClass): boolean {
  return c !== "export" && c !== "reference" && c !== "not-run";
}

/** Where in the child a run was when it stopped. */
export type Stage = "load" | "compile" | "run" | "benchmark";

/** An error as the child reports it (errors do not cross process boundaries). */
export interface ErrorInfo {
  readonly stage: Stage;
  readonly name: string;
  readonly code?: string;
  /** UnsupportedOpError's op. */
  readonly op?: string;
  readonly message: string;
}

export interface Failure {
  readonly class: FailureClass;
  readonly op?: string;
  readonly message: string;
  readonly stage?: Stage;
}

export function errorInfo(stage: Stage, e: unknown): ErrorInfo {
  if (!(e instanceof Error)) return { stage, name: typeof e, message: String(e) };
  const { code, op } = e as { code?: unknown; op?: unknown };
  return {
    stage,
    name: e.name,
    ...(typeof code === "string" ? { code } : {}),
    ...(typeof op === "string" ? { op } : {}),
    message: e.message.slice(0, 4000),
  };
}

// "aten.einsum.default" and the like inside a message that lists unconvertible or unrunnable nodes.
const OP_IN_MESSAGE = /\b((?:aten|prim|torchvision|quantized_decomposed)[.:][\w.:]+)/;

/** The failure class of an error: an op torchc cannot run, wherever it surfaced, else the stage it stopped in. */
export function classifyError(e: ErrorInfo): Failure {
  const unsupported =
    e.code === "op.unsupported" ||
    e.name === "UnsupportedOpError" ||
    /cannot run through PyTorch's stable C shim|is not in torchc's op (table|catalogue)/.test(e.message);
  if (unsupported) {
    const op = e.op ?? OP_IN_MESSAGE.exec(e.message)?.[1];
    return { class: "unsupported-op", ...(op ? { op } : {}), message: e.message, stage: e.stage };
  }
  const byStage: Record<Stage, FailureClass> = {
    load: "load",
    compile: "compile",
    run: "run",
    benchmark: "run",
  };
  return { class: byStage[e.stage], message: `${e.name}: ${e.message}`, stage: e.stage };
}

/** What one child reports for one model in one precision. */
export interface PrecisionRun {
  readonly precision: "fp32" | "fp16";
  readonly failure?: Failure;
  readonly loadS?: number;
  readonly compileS?: number;
  /** max over inputs and outputs of max |out − ref| / max |ref| against PyTorch eager fp32. */
  readonly relErr?: number;
  readonly relErrPerCase?: readonly number[];
  /** inf/NaN values in torchc's outputs. */
  readonly nonFinite?: number;
  readonly nodes?: number;
  readonly fallbackNodes?: number;
  readonly fallbackOps?: readonly { readonly op: string; readonly count: number; readonly reason: string }[];
  readonly segments?: { readonly engine: number; readonly fallback: number };
  /** compiled.benchmark(): GPU time of whole forward passes (absent on the reference backend). */
  readonly latency?: { readonly medianMs: number; readonly p90Ms: number; readonly reps: number };
}

/** PyTorch's side of a model, from zoo.py's reference phase. */
export interface PyTorchSide {
  /** PyTorch's own fp16 output has inf/NaN. */
  readonly fp16Overflow?: boolean;
  /** PyTorch's own fp16 output against its fp32 one. */
  readonly fp16RelErr?: number;
}

/** Why PyTorch's own fp16 cannot be held to the fp16 bar, or undefined when it can. */
export function pytorchFp16Excuse(p: PyTorchSide): string | undefined {
  if (p.fp16Overflow) return "PyTorch's own fp16 gives inf/NaN";
  if (p.fp16RelErr !== undefined && !(p.fp16RelErr <= FP16_TOLERANCE))
    return `PyTorch's own fp16 is ${p.fp16RelErr.toExponential(1)} off (over/underflow)`;
  return undefined;
}

export type Judgement =
  | { readonly status: "match"; readonly relErr: number }
  | { readonly status: "judged-in-fp32"; readonly relErr?: number; readonly reason: string }
  | { readonly status: "fail"; readonly failure: Failure }
  /** The run left this precision out (ZOO_PRECISIONS). */
  | { readonly status: "skipped" };

/** One precision's run against its bar. */
export function judge(run: PrecisionRun | undefined, pytorch: PyTorchSide): Judgement {
  if (!run) return { status: "fail", failure: { class: "not-run", message: "not run" } };
  if (run.failure) return { status: "fail", failure: run.failure };
  const fp16 = run.precision === "fp16";
  // PyTorch's own fp16 misses the bar on these random weights: fp16's numbers cannot be held to 1e-2, fp32
  // decides (a load, compile or run failure in fp16 still counts: only the numbers are excused).
  const excuse = fp16 ? pytorchFp16Excuse(pytorch) : undefined;
  if (excuse)
    return {
      status: "judged-in-fp32",
      ...(run.relErr !== undefined ? { relErr: run.relErr } : {}),
      reason: excuse,
    };
  const tol = fp16 ? FP16_TOLERANCE : FP32_TOLERANCE;
  const err = run.relErr ?? Number.POSITIVE_INFINITY;
  if (err <= tol) return { status: "match", relErr: err };
  const what = Number.isFinite(err) ? err.toExponential(2) : "inf/NaN in the output";
  return {
    status: "fail",
    failure: {
      class: "wrong-numbers",
      message: `${run.precision}: max|err|/max|ref| = ${what} > ${tol}${run.nonFinite ? ` (${run.nonFinite} inf/NaN values)` : ""}`,
    },
  };
}

export interface Verdict {
  readonly matched: boolean;
  /** The failure that decides the model's row: fp32's before fp16's. */
  readonly failure?: Failure;
  readonly fp32: Judgement;
  readonly fp16: Judgement;
}

/**
 * The model's verdict: matched when fp32 matches and fp16 matches or is judged in fp32. A precision the run left
 * out (ZOO_PRECISIONS) is "skipped" and decides nothing; one it asked for but has no result for is "not-run".
 */
export function verdictOf(
  runs: { readonly fp32?: PrecisionRun; readonly fp16?: PrecisionRun },
  pytorch: PyTorchSide,
  upstream?: Failure,
  requested: readonly ("fp32" | "fp16")[] = ["fp32", "fp16"],
): Verdict {
  const judged = (p: "fp32" | "fp16"): Judgement =>
    requested.includes(p) ? judge(runs[p], pytorch) : { status: "skipped" };
  const fp32 = judged("fp32");
  const fp16 = judged("fp16");
  if (upstream) return { matched: false, failure: upstream, fp32, fp16 };
  const fails = [fp32, fp16].flatMap((j) => (j.status === "fail" ? [j.failure] : []));
  // A timeout or failure in one precision and "not run" in the other: the real failure names the row.
  const first = fails.find((f) => f.class !== "not-run") ?? fails[0];
  return { matched: fails.length === 0, ...(first ? { failure: first } : {}), fp32, fp16 };
}

/** One line for a failure: "unsupported-op aten.einsum.default: …". */
export function describeFailure(f: Failure, width = 160): string {
  const firstLine = f.message.split("\n").find((l) => l.trim() !== "") ?? "";
  const text = `${f.class}${f.op ? ` ${f.op}` : ""}: ${firstLine}`;
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}
