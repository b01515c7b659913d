/**
 * What the kernel sweeps (scripts/gpu/*-sweep.bench.ts) share: the device or the no-GPU compile-only mode, the log
 * that becomes <name>.md, NVRTC compiles of several kernels in one program with ptxas registers and spills, CUDA-event
 * timing (median µs per launch), random fp16 inputs, the tolerance checks, the PyTorch child process, markdown
 * tables, and the closing $OUT/<name>.md and <name>.json.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GeneratedKernel } from "../../src/backends/cuda/codegen/element.js";
import {
  CudaContext,
  CudaEvent,
  CudaModule,
  compileCuda,
  type Kernel,
  type KernelArgs,
  launch,
  Stream,
} from "../../src/backends/cuda/device/index.js";
import { assembleProgram } from "../../src/backends/cuda/kernels/generated.js";
import { xorshiftHalves } from "../../src/util/random-input.js";
import { float16BitsToNumber, numberToFloat16Bits } from "../../src/ir/half.js";

/** A variant's output against the default kernel's (max |diff| / max |default|): above this the run fails. */
export const VARIANT_TOLERANCE = 2e-3;
/** A kernel's output against a float64 CPU reference (max |diff| / max |ref|): above this the run fails. */
export const REFERENCE_TOLERANCE = 1e-2;

/** The first line of an error's message. */
export const firstLine = (e: unknown): string => (e as Error).message.split("\n")[0];

/** One generated kernel of a sweep; symbol, regs and spill are filled in by compileVariants. */
export interface SweepKernel {
  readonly label: string;
  readonly kernel: GeneratedKernel;
  /** The kernel's symbol in the program (identical kernels are emitted once). */
  symbol: string;
  regs?: number;
  spill?: string;
}

export interface Gpu {
  readonly ctx: CudaContext;
  readonly stream: Stream;
}

/** One sweep's run: the device (undefined without a GPU), its log, rows and failures. */
export class Sweep<Row> {
  readonly outDir = process.env.OUT ?? process.env.TORCHC_BENCH_OUT ?? ".";
  readonly log: string[] = [];
  readonly rows: Row[] = [];
  readonly failures: string[] = [];
  readonly gpu: Gpu | undefined;
  private started = performance.now();

  /** `name`: the files written, <name>.md and <name>.json. */
  constructor(readonly name: string) {
    try {
      const ctx = CudaContext.get(0);
      this.gpu = { ctx, stream: Stream.create() };
      this.say(`device: ${ctx.info.name} (${ctx.arch}), driver ${ctx.info.driverVersion}`);
    } catch (e) {
      this.say(`no GPU (${firstLine(e)}): compiling for sm_90 only`);
    }
  }

  /** Prints a line and keeps it for <name>.md. */
  readonly say = (line: string): void => {
    console.log(line);
    this.log.push(line);
  };

  /** The architecture compiled for: the device's, else sm_90. */
  get arch(): string {
    return this.gpu?.ctx.arch ?? "sm_90";
  }

  /** Records a failure of `label` on `shape`: said, and returned as the row's error. */
  failed(shape: string, label: string, e: unknown): string {
    const error = firstLine(e);
    this.failures.push(`${shape} ${label}: ${error}`);
    this.say(`  ${label}: FAILED ${error}`);
    return error;
  }

  /** The default kernel against the float64 reference: a failure above REFERENCE_TOLERANCE. */
  checkReference(shape: string, relErr: number): void {
    if (!(relErr <= REFERENCE_TOLERANCE)) this.failures.push(`${shape} default: ${relErr} from the float64 reference`);
  }

  /** A variant against the default kernel: a failure above VARIANT_TOLERANCE. */
  checkVariant(shape: string, label: string, relErr: number): void {
    if (!(relErr <= VARIANT_TOLERANCE))
      this.failures.push(`${shape} ${label}: differs from the default by ${relErr} of max |out|`);
  }

  /** Runs every shape, a failure of one recorded and the next run. */
  runShapes<S extends { readonly name: string }>(shapes: readonly S[], run: (s: S) => void): void {
    this.started = performance.now();
    for (const s of shapes) {
      try {
        run(s);
      } catch (e) {
        this.failures.push(`${s.name}: ${firstLine(e)}`);
        this.say(`  FAILED: ${(e as Error).stack ?? e}`);
      }
    }
    this.gpu?.stream.destroy();
  }

  /**
   * Closes the run: the table under `title`, the PyTorch lines (with a GPU), the verdict; then <name>.md (the whole
   * log) and <name>.json in outDir, and the exit code.
   */
  finish(title: string, table: string[], allGood: string, torch?: () => string[]): void {
    const md = ["", title, "", ...table];
    if (this.gpu && torch) {
      this.say("\nPyTorch reference (python child process)...");
      md.push("", ...torch());
    }
    const failures = this.failures.length ? `FAILURES:\n- ${this.failures.join("\n- ")}` : allGood;
    md.push("", `${failures} (${Math.round((performance.now() - this.started) / 1000)} s)`);
    for (const l of md) this.say(l);
    writeFileSync(join(this.outDir, `${this.name}.md`), `${this.log.join("\n")}\n`);
    const json = { device: this.gpu?.ctx.info, when: new Date().toISOString(), rows: this.rows, failures: this.failures };
    writeFileSync(join(this.outDir, `${this.name}.json`), JSON.stringify(json, null, 2));
    process.exitCode = this.failures.length ? 1 : 0;
  }
}

/** Registers and spills of each entry function, from the ptxas lines of an NVRTC log. */
export function ptxasStats(logText: string, variants: SweepKernel[]): void {
  let current: SweepKernel | undefined;
  for (const line of logText.split("\n")) {
    const entry = /Compiling entry function '(\w+)'/.exec(line);
    if (entry) current = variants.find((v) => v.symbol === entry[1]);
    const spill = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (spill && current) current.spill = spill[2] === "0" && spill[3] === "0" ? "0" : `${spill[2]}/${spill[3]}`;
    const regs = /Used (\d+) registers/.exec(line);
    if (regs && current) current.regs = Number(regs[1]);
  }
}

/**
 * All kernels in one fp16 NVRTC program for the sweep's architecture (symbols set), `select` keeping the ones to
 * time; then registers and spills from ptxas, one `line` said per kept kernel, and the module loaded (with a GPU).
 */
export function compileVariants<V extends SweepKernel>(
  sweep: Sweep<unknown>,
  all: V[],
  line: (v: V) => string,
  select: (all: V[]) => V[] = (a) => a,
): { module?: CudaModule; variants: V[] } {
  const arch = sweep.arch;
  const program = assembleProgram(
    all.map((v) => v.kernel),
    new Set(["float16"]),
  );
  for (const [i, v] of all.entries()) v.symbol = program.symbols[i];
  const variants = select(all);
  const t0 = performance.now();
  let compiled: ReturnType<typeof compileCuda>;
  try {
    compiled = compileCuda(program.source, { arch, options: ["--ptxas-options=-v"] });
  } catch (e) {
    // an NVRTC without the option: registers from the driver later, spills unknown
    sweep.say(`  NVRTC refused --ptxas-options=-v (${firstLine(e)}); compiling without`);
    compiled = compileCuda(program.source, { arch });
  }
  ptxasStats(compiled.log, variants);
  sweep.say(`  compiled ${variants.length} kernels for ${arch} in ${Math.round(performance.now() - t0)} ms`);
  for (const v of variants) sweep.say(line(v));
  return { module: sweep.gpu ? CudaModule.load(compiled.image) : undefined, variants };
}

/** "regs N  spill S" of a compiled kernel ("?" where ptxas did not say). */
export const regsAndSpill = (v: SweepKernel): string => `regs ${v.regs ?? "?"}  spill ${v.spill ?? "?"}`;

/** Median µs per call of `enqueue` (which queues one call on the stream): 10 warm-up, 60 samples of `inner`. */
export function medianMicros(stream: Stream, enqueue: () => void, inner: number): number {
  for (let i = 0; i < 10; i++) enqueue();
  const [start, end] = [CudaEvent.create(), CudaEvent.create()];
  const samples: number[] = [];
  try {
    for (let r = 0; r < 60; r++) {
      start.record(stream);
      for (let i = 0; i < inner; i++) enqueue();
      end.record(stream);
      end.synchronize();
      samples.push((end.elapsedSince(start) * 1000) / inner);
    }
  } finally {
    start.destroy();
    end.destroy();
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

/** One plain launch (no programmatic dependent launch) of a generated kernel on the stream. */
export function launchPlain(stream: Stream, kernel: Kernel, k: GeneratedKernel, args: KernelArgs): void {
  launch(kernel, { grid: k.grid, block: k.block, stream, programmatic: false }, args);
}

/** Median µs per plain launch: 10 warm-up launches, 60 samples of `inner` launches between two events. */
export function timeLaunches(stream: Stream, kernel: Kernel, k: GeneratedKernel, args: KernelArgs, inner: number) {
  const cfg = { grid: k.grid, block: k.block, stream, programmatic: false };
  return medianMicros(stream, () => launch(kernel, cfg, args), inner);
}

export { xorshiftHalves };

/** Random fp16 bits uniform on [lo, hi] (xorshift over a table of 4096 values). */
export function randomHalves(n: number, seed: number, lo: number, hi: number): Uint16Array {
  const table = Uint16Array.from({ length: 4096 }, (_, i) => numberToFloat16Bits(lo + ((hi - lo) * i) / 4095));
  return xorshiftHalves(n, seed, (x) => table[x & 4095]);
}

/** A Linear layer's operands as fp16 bits: X [M, K], W [N, K], the bias [N], the residual [M, N]. */
export interface LinearOperands {
  readonly x: Uint16Array;
  readonly w: Uint16Array;
  readonly bias: Uint16Array;
  readonly res: Uint16Array;
}

/** Operands for an M×N×K Linear layer: x uniform on ±1, W on ±1/√K, the bias on ±0.5, the residual on ±1. */
export function linearOperands(m: number, n: number, k: number): LinearOperands {
  const halves = (count: number, seed: number, scale: number) =>
    xorshiftHalves(count, seed, (x) => numberToFloat16Bits((x / 2 ** 31 - 1) * scale));
  return {
    x: halves(m * k, 11 + n, 1),
    w: halves(n * k, 12 + k, 1 / Math.sqrt(k)),
    bias: halves(n, 13, 0.5),
    res: halves(m * n, 14, 1),
  };
}

const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v ** 3)));

/**
 * Rows 0, M/2 and M−1 of a Linear layer's fp16 output `y` against float64: max |diff| / max |ref|; the epilogue
 * adds the bias, applies GELU in its tanh form (cuBLASLt's) and adds the residual, each where asked.
 */
export function linearReferenceError(
  s: { m: number; n: number; k: number; bias: boolean; gelu: boolean; residual: boolean },
  h: LinearOperands,
  y: Uint16Array,
): number {
  let err = 0;
  let max = 0;
  for (const i of new Set([0, s.m >> 1, s.m - 1]))
    for (let j = 0; j < s.n; j++) {
      let v = s.bias ? HALF[h.bias[j]] : 0;
      for (let t = 0; t < s.k; t++) v += HALF[h.x[i * s.k + t]] * HALF[h.w[j * s.k + t]];
      if (s.gelu) v = geluTanh(v);
      if (s.residual) v += HALF[h.res[i * s.n + j]];
      const got = HALF[y[i * s.n + j]];
      err = Math.max(err, Number.isFinite(got) ? Math.abs(got - v) : Number.POSITIVE_INFINITY);
      max = Math.max(max, Math.abs(v));
    }
  return err / max;
}

/** Every fp16 bit pattern's value. */
export const HALF = Float64Array.from({ length: 65536 }, (_, h) => float16BitsToNumber(h));

/** max |a − b| / max |a| over two fp16 outputs (infinite where b is not finite). */
export function relativeDiff(a: Uint16Array, b: Uint16Array): number {
  let err = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const x = HALF[a[i]];
    const y = HALF[b[i]];
    err = Math.max(err, Number.isFinite(y) ? Math.abs(x - y) : Number.POSITIVE_INFINITY);
    max = Math.max(max, Math.abs(x));
  }
  return err / max;
}

/** Python of the PyTorch references: med(fn, inner), the median µs per call (10 warm-up, 60 samples of inner). */
const PY_MEDIAN = `
import json, sys, torch
F = torch.nn.functional
def med(fn, inner):
    for _ in range(10): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(60):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(inner): fn()
        e.record(); e.synchronize()
        ts.append(s.elapsed_time(e) * 1000 / inner)
    ts.sort()
    return ts[len(ts) // 2]
`;

/**
 * Runs `script` (after PY_MEDIAN: json, sys, torch, F and med) in $TORCHC_PYTHON (else python3) with `arg` as JSON
 * in sys.argv[1]; the script prints `marker` and its results as JSON on one line. The results, or why there are none.
 */
export function runTorch<T>(
  script: string,
  arg: unknown,
  marker: string,
  timeoutMs: number,
): { results: T } | { unavailable: string } {
  const python = process.env.TORCHC_PYTHON ?? "python3";
  const r = spawnSync(python, ["-c", PY_MEDIAN + script, JSON.stringify(arg)], {
    encoding: "utf8",
    timeout: timeoutMs,
  });
  const line = (r.stdout ?? "").split("\n").find((l) => l.startsWith(`${marker} `));
  if (!line) {
    const why = r.error?.message ?? (r.stderr ?? "").trim().split("\n").slice(-2).join(" ");
    return { unavailable: `${python}: exit ${r.status}, ${why}` };
  }
  return { results: JSON.parse(line.slice(marker.length + 1)) as T };
}

/** A row of a variants-against-the-default sweep (with its own measures besides). */
export interface VariantRow {
  shape: string;
  variant: string;
  config: string;
  regs?: number;
  spill?: string;
  us?: number;
  speedup?: number;
  relErr?: number;
  error?: string;
}

/** A variant's row before it runs: what compiling it said. */
export function variantRow(shape: string, v: SweepKernel, config: string): VariantRow {
  return { shape, variant: v.label, config, regs: v.regs, spill: v.spill };
}

/** The table of a variants sweep: shape, variant, config, regs, spill, µs, `extra` columns, speedup, error. */
export function variantTable<R extends VariantRow>(rows: R[], extra: string[], cells: (r: R) => string[]): string[] {
  return markdownTable(
    ["shape", "variant", "config", "regs", "spill st/ld", "µs", ...extra, "vs default", "max rel err"],
    rows.map((r) => [
      r.shape,
      r.variant,
      r.config,
      r.regs,
      r.spill,
      r.error ? `FAILED: ${r.error}` : fixed(r.us, 2),
      ...cells(r),
      times(r.speedup),
      sci(r.relErr),
    ]),
  );
}

/** The shapes whose key is listed in $`envVar` (comma-separated), else all. */
export function shapesFrom<S>(all: readonly S[], envVar: string, key: (s: S) => string): S[] {
  const wanted = process.env[envVar]?.split(",");
  return all.filter((s) => !wanted || wanted.includes(key(s)));
}

/** A markdown table: the header row, its rule, then one row per cells (undefined cells empty). */
export function markdownTable(header: string[], cells: (string | number | undefined)[][]): string[] {
  const row = (c: (string | number | undefined)[]) => `| ${c.map((x) => x ?? "").join(" | ")} |`;
  return [row(header), row(header.map(() => "---")), ...cells.map(row)];
}

/** Cell formats: a number with `digits` decimals, a ratio ("1.23×"), an error ("1.23e-4"); "" when undefined. */
export const fixed = (v: number | undefined, digits: number): string => v?.toFixed(digits) ?? "";
export const times = (v: number | undefined): string => (v ? `${v.toFixed(2)}×` : "");
export const sci = (v: number | undefined): string => v?.toExponential(2) ?? "";
