/**
 * The progress line of a long compile: one line on stderr, redrawn in place as phases go by, erased when the
 * work is done, so the command's own output follows on a clean line. Only on a terminal: piped or redirected
 * stderr, `CI`, and `TERM=dumb` stay quiet. `TORCHC_PROGRESS=1` forces it on, `TORCHC_PROGRESS=0` off.
 *
 * Written here rather than taken from a library: the compile's phases run synchronously, so timer-driven
 * spinners (ora, nanospinner) would never redraw; what is needed is a line redrawn on each event, about forty
 * lines of code, where log-update or cli-progress would add five or more packages.
 */
import { onProgress, type ProgressEvent, reportProgress } from "../util/progress.js";

export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

/** Return to the line's start and erase it. */
const ERASE = "\r\x1b[2K";
/** Counting events of one phase redraw at most this often (tuning a hundred convolutions is a hundred events). */
const REDRAW_MS = 50;

export function progressWanted(stream: ProgressStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.TORCHC_PROGRESS === "1") return true;
  if (env.TORCHC_PROGRESS === "0") return false;
  return stream.isTTY === true && env.TERM !== "dumb" && !env.CI;
}

/** `compile kernels (14 kernels)`, `segment 2/5 (engine, 31 nodes)` */
export function describeStep(e: ProgressEvent): string {
  const count = e.total !== undefined ? ` ${e.done ?? 0}/${e.total}` : "";
  const detail = e.detail ? ` (${e.detail})` : "";
  return `${e.phase}${count}${detail}`;
}

/** `torchc: segment 2/5 (engine, 31 nodes) · tune convs 3/12 · 3.2 s` */
export function formatProgress(steps: readonly string[], seconds: number): string {
  return `torchc: ${steps.join(" · ")} · ${seconds.toFixed(1)} s`;
}

export class ProgressLine {
  private shown = false;
  /** The current phase, and the sub-step within it. */
  private top = "";
  private lastPhase = "";
  private lastDraw = -Infinity;
  private readonly t0: number;

  constructor(
    private readonly stream: ProgressStream,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.t0 = now();
  }

  update(e: ProgressEvent): void {
    const t = this.now();
    const finished = e.total !== undefined && e.done === e.total;
    if (e.phase === this.lastPhase && !finished && t - this.lastDraw < REDRAW_MS) return;
    this.lastPhase = e.phase;
    this.lastDraw = t;
    const step = describeStep(e);
    if (!e.sub) this.top = step;
    // A terminal of unknown size (a pseudo-terminal nobody sized) reports 0 columns.
    const width = Math.max(20, (this.stream.columns || 80) - 1);
    const text = formatProgress(e.sub && this.top ? [this.top, step] : [step], (t - this.t0) / 1000);
    this.stream.write(`${ERASE}${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
    this.shown = true;
  }

  /** Erases the line (if anything was drawn). */
  clear(): void {
    if (this.shown) this.stream.write(ERASE);
    this.shown = false;
  }
}

/**
 * Runs `work` with the progress line shown (when wanted) and erased afterwards, whether it succeeds or throws.
 * `phase` is reported first: the part of the work the caller does itself (loading the model).
 */
export async function withProgress<T>(
  phase: string,
  work: () => Promise<T>,
  stream: ProgressStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): Promise<T> {
  if (!progressWanted(stream, env)) return work();
  const line = new ProgressLine(stream);
  const stop = onProgress((e) => line.update(e));
  try {
    reportProgress({ phase });
    return await work();
  } finally {
    stop();
    line.clear();
  }
}
