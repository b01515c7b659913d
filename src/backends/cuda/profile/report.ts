/**
 * The profile table: per-step medians of repeated event timings, shares of the total, totals per kind, and the
 * text table `torchc bench --profile` prints. Pure (no device), so it is tested on any machine.
 */
import type { ProfiledKind, ProfiledStep, ProfileReport } from "../../../core/profile.js";

/** One measured step: its label and the GPU ms of each repetition. */
export interface StepSamples {
  readonly kind: ProfiledKind;
  readonly description: string;
  readonly nodes: readonly string[];
  readonly ms: readonly number[];
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function buildProfileReport(samples: readonly StepSamples[], reps: number): ProfileReport {
  const medians = samples.map((s) => median(s.ms));
  const totalMs = medians.reduce((a, b) => a + b, 0);
  const share = (ms: number) => (totalMs > 0 ? ms / totalMs : 0);
  const steps: ProfiledStep[] = samples.map((s, index) => ({
    index,
    kind: s.kind,
    description: s.description,
    nodes: s.nodes,
    medianMs: medians[index],
    share: share(medians[index]),
  }));
  const kinds = new Map<ProfiledKind, { steps: number; ms: number }>();
  for (const s of steps) {
    const k = kinds.get(s.kind) ?? { steps: 0, ms: 0 };
    kinds.set(s.kind, { steps: k.steps + 1, ms: k.ms + s.medianMs });
  }
  const byKind = [...kinds.entries()]
    .map(([kind, k]) => ({ kind, steps: k.steps, ms: k.ms, share: share(k.ms) }))
    .sort((a, b) => b.ms - a.ms);
  const kernels = steps.filter((s) => s.kind !== "libtorch").length;
  return { steps, totalMs, byKind, kernels, reps };
}

const KIND_NAMES: Readonly<Record<ProfiledKind, string>> = {
  element: "element kernel",
  rows: "rows kernel",
  attention: "attention",
  gemv: "gemv kernel",
  pointwise: "1×1 conv kernel",
  cublaslt: "cuBLASLt",
  gemm: "generated GEMM",
  "conv-gemm": "1×1 conv on the tensor-core GEMM",
  "conv-int8": "int8 conv on the generated implicit GEMM",
  cudnn: "cuDNN",
  cusparselt: "cuSPARSELt",
  libtorch: "LibTorch segment",
  copy: "copy",
};

/** The nodes of a step in at most `width` characters: the first ones, then how many more. */
export function shortNodes(nodes: readonly string[], width = 48): string {
  let out = "";
  for (const [i, n] of nodes.entries()) {
    const next = out ? `${out}, ${n}` : n;
    const rest = nodes.length - i - 1;
    const tail = rest > 0 ? ` (+${rest})` : "";
    if (next.length + tail.length > width && out) return `${out} (+${nodes.length - i})`;
    out = next;
  }
  return out.length > width ? `${out.slice(0, width - 1)}…` : out;
}

const us = (ms: number) => (ms * 1000).toFixed(1);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The table: one line per step, then one per kind, then the totals. */
export function formatProfileReport(r: ProfileReport): string {
  const lines: string[] = [];
  const row = (cols: string[]) =>
    lines.push(
      `${cols[0].padStart(4)}  ${cols[1].padEnd(16)}  ${cols[2].padStart(9)}  ${cols[3].padStart(6)}  ${cols[4]}`,
    );
  row(["step", "kind", "median µs", "share", "nodes"]);
  for (const s of r.steps)
    row([String(s.index), KIND_NAMES[s.kind], us(s.medianMs), pct(s.share), shortNodes(s.nodes)]);
  lines.push("");
  lines.push(`${"kind".padEnd(16)}  ${"steps".padStart(5)}  ${"µs".padStart(9)}  ${"share".padStart(6)}`);
  for (const k of r.byKind)
    lines.push(
      `${KIND_NAMES[k.kind].padEnd(16)}  ${String(k.steps).padStart(5)}  ${us(k.ms).padStart(9)}  ${pct(k.share).padStart(6)}`,
    );
  lines.push(
    `total: ${us(r.totalMs)} µs over ${r.steps.length} steps, ${r.kernels} kernels and library calls (medians of ${r.reps} runs, each step alone between CUDA events)`,
  );
  return lines.join("\n");
}
