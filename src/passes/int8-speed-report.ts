/**
 * The int8 speed decision as the compile report and `torchc verify` show it (runtime/calibration-speed.ts makes
 * it): which quantizable convolutions run int8 and which stay float because int8 timed slower, with both times.
 */

/** One convolution the choice looked at, and what it runs as. */
export interface Int8SpeedLayer {
  readonly node: string;
  /** "node 'x' (aten.op) in module '…' at file.py:12" */
  readonly where: string;
  /** "128×64×56×56 → 64, 3×3 stride 1" */
  readonly shape: string;
  readonly ran: "int8" | "float";
  readonly int8Ms?: number;
  readonly floatMs?: number;
  /** Why it stays float, or a note on an int8 layer (untimed, the library's detail). */
  readonly reason?: string;
}

export interface Int8SpeedReport {
  readonly floatName: string;
  readonly describe: string;
  readonly margin: number;
  /** Distinct problems the probe timed. */
  readonly problems: number;
  /** Every quantizable convolution the choice looked at, in graph order. */
  readonly layers: readonly Int8SpeedLayer[];
  /** Node names left unquantized for speed. */
  readonly kept: readonly string[];
}

const ms = (v: number) => `${v.toFixed(4)} ms`;

/** The report's "timing lost" wording, with both times. */
export function int8TimingLost(int8Ms: number, floatMs: number, floatName: string): string {
  return `timing lost: int8 ${ms(int8Ms)} vs ${floatName} ${ms(floatMs)}`;
}

/** The compile report's lines: a headline, then every convolution with what it runs as and both times. */
export function formatInt8Choice(r: Int8SpeedReport): string {
  const n = r.layers.length;
  const head =
    `quantization: ${r.kept.length} of ${n} convolution${n === 1 ? "" : "s"} kept in ${r.floatName} for speed ` +
    `(int8 only where it times at least ${Math.round(r.margin * 100)}% faster; ${r.describe}, ` +
    `${r.problems} distinct problem${r.problems === 1 ? "" : "s"} timed; TORCHC_INT8_TIMED_CHOICE=0 turns this off)`;
  const lines = r.layers.map((l) => {
    const shape = l.shape ? ` [${l.shape}]` : "";
    if (l.ran === "float") return `  ${l.where}${shape}: kept in ${r.floatName}: ${l.reason}`;
    const timed =
      l.int8Ms !== undefined && l.floatMs !== undefined
        ? `: int8 ${ms(l.int8Ms)} vs ${r.floatName} ${ms(l.floatMs)}, ${(l.floatMs / l.int8Ms).toFixed(2)}× faster`
        : "";
    return `  ${l.where}${shape}: int8${timed}${l.reason ? ` (${l.reason})` : ""}`;
  });
  const timed = r.layers.filter((l) => l.int8Ms !== undefined && l.floatMs !== undefined);
  const sum = (pick: (l: Int8SpeedLayer) => number) => timed.reduce((a, l) => a + pick(l), 0);
  const int8 = (l: Int8SpeedLayer) => l.int8Ms as number;
  const float = (l: Int8SpeedLayer) => l.floatMs as number;
  const tail =
    timed.length > 0
      ? [
          `  the ${timed.length} timed convolutions sum to ${ms(sum((l) => (l.ran === "int8" ? int8(l) : float(l))))} as chosen, against ${ms(sum(int8))} all in int8 and ${ms(sum(float))} all in ${r.floatName}`,
        ]
      : [];
  return [head, ...lines, ...tail].join("\n");
}
