// Per-tensor statistics for calibration and the three ways TensorRT's calibrators turn them into a clipping
// range (amax): the largest |x| seen, a percentile of |x|, or the threshold that minimises the KL divergence
// between the fp32 histogram and its 8-bit quantization (TensorRT's entropy calibrator).

export type CalibrationAlgorithm = "minmax" | "percentile" | "entropy";

export const CALIBRATION_ALGORITHMS: readonly CalibrationAlgorithm[] = ["minmax", "percentile", "entropy"];

/** The percentile calibrator keeps the |x| below which this share of calibration values fall. */
export const PERCENTILE = 99.99;

/** Histogram bins (TensorRT's entropy calibrator uses 2048) and the quantized levels the KL search targets. */
const BINS = 2048;
const LEVELS = 128;

/**
 * A streaming histogram of |x| over [0, range). When a value beyond the range arrives the range doubles and
 * neighbouring bins merge, so one pass over the data suffices and the data need not be re-iterable.
 */
export class AbsHistogram {
  readonly counts = new Float64Array(BINS);
  range = 0;
  amax = 0;
  total = 0;

  add(values: ArrayLike<number>): void {
    let m = 0;
    for (let i = 0; i < values.length; i++) {
      const a = Math.abs(values[i]);
      if (a > m) m = a;
    }
    if (m > this.amax) this.amax = m;
    if (m === 0) {
      this.counts[0] += values.length;
      this.total += values.length;
      return;
    }
    if (this.range === 0) this.range = m * (1 + 1e-7);
    while (m >= this.range) this.grow();
    const perBin = BINS / this.range;
    for (let i = 0; i < values.length; i++) {
      const b = Math.min(Math.floor(Math.abs(values[i]) * perBin), BINS - 1);
      this.counts[b]++;
    }
    this.total += values.length;
  }

  private grow(): void {
    for (let i = 0; i < BINS / 2; i++) this.counts[i] = this.counts[2 * i] + this.counts[2 * i + 1];
    this.counts.fill(0, BINS / 2);
    this.range *= 2;
  }

  get binWidth(): number {
    return this.range / BINS;
  }
}

/** The clipping range of one tensor from its histogram. */
export function amaxOf(h: AbsHistogram, algorithm: CalibrationAlgorithm): number {
  if (h.amax === 0 || h.range === 0) return h.amax;
  switch (algorithm) {
    case "minmax":
      return h.amax;
    case "percentile":
      return Math.min(percentileAmax(h, PERCENTILE), h.amax);
    case "entropy":
      return Math.min(entropyAmax(h), h.amax);
  }
}

function percentileAmax(h: AbsHistogram, pct: number): number {
  const want = (h.total * pct) / 100;
  let seen = 0;
  for (let i = 0; i < BINS; i++) {
    seen += h.counts[i];
    if (seen >= want) return (i + 1) * h.binWidth;
  }
  return h.amax;
}

function klDivergence(p: Float64Array, q: Float64Array): number {
  let ps = 0;
  let qs = 0;
  for (let i = 0; i < p.length; i++) {
    ps += p[i];
    qs += q[i];
  }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    const pi = p[i] / ps;
    // An empty quantized bin under a non-empty reference bin: a large, finite penalty (MXNet smooths here).
    const qi = q[i] > 0 ? q[i] / qs : 1e-10;
    kl += pi * Math.log(pi / qi);
  }
  return kl;
}

/**
 * TensorRT's entropy calibration: for each candidate threshold i (in bins, LEVELS…BINS), P is the histogram
 * up to i with everything beyond folded into its last bin, Q is P's first i bins merged into LEVELS levels and
 * spread back evenly over the bins that were non-empty; the threshold with the smallest KL(P‖Q) wins.
 * The amax is the middle of the threshold bin.
 */
function entropyAmax(h: AbsHistogram): number {
  // The spike of exact zeros (ReLU outputs, padding) would pull the threshold towards 0: like NVIDIA's
  // pytorch-quantization, the first bin is counted as its neighbour.
  const counts = Float64Array.from(h.counts);
  counts[0] = counts[1];
  // Bins past the last non-empty one cannot be better thresholds than it.
  let last = BINS;
  while (last > LEVELS && counts[last - 1] === 0) last--;
  let best = last;
  let bestKl = Number.POSITIVE_INFINITY;
  const p = new Float64Array(BINS);
  const q = new Float64Array(BINS);
  let outliers = 0;
  for (let i = last; i < BINS; i++) outliers += counts[i];
  for (let i = last; i >= LEVELS; i--) {
    if (i < last) outliers += counts[i];
    const pv = p.subarray(0, i);
    const qv = q.subarray(0, i);
    pv.set(counts.subarray(0, i));
    pv[i - 1] += outliers;
    const merge = i / LEVELS;
    for (let j = 0; j < LEVELS; j++) {
      const start = Math.floor(j * merge);
      const end = j === LEVELS - 1 ? i : Math.floor((j + 1) * merge);
      let sum = 0;
      let nonzero = 0;
      for (let k = start; k < end; k++) {
        sum += counts[k];
        if (pv[k] !== 0) nonzero++;
      }
      const each = nonzero > 0 ? sum / nonzero : 0;
      for (let k = start; k < end; k++) qv[k] = pv[k] !== 0 ? each : 0;
    }
    const kl = klDivergence(pv, qv);
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return (best + 0.5) * h.binWidth;
}
