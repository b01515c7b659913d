// The mutation fuzz harness: builds hostile variants of the fixtures in every input format, runs the torchc
// command on each in a worker process, and checks the promise of issue 9 for every case: success, or exit 1
// with exactly one line on stderr; never a stack trace, an internal error, a signal, more than 20 s or more
// than 2 GiB of memory; no control characters from a file on the terminal.
import { type ChildProcess, fork } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/frontends/load-model.js";
import { savePackage } from "../../src/runtime/package.js";
import { readNpy } from "../../src/util/npy.js";
import {
  BYTE_MUTATORS,
  codeEntry,
  flipBytes,
  graphAttack,
  jsonEntry,
  type Mutator,
  mutateEntry,
  npyHeader,
  pickleEntry,
  truncate,
  weightMetaAttack,
  zipEntries,
  zipHeader,
} from "./mutators.js";
import { Random } from "./random.js";

export type Format = "pt2" | "pt" | "npy" | "torchc";
export const FORMATS: readonly Format[] = ["pt2", "pt", "npy", "torchc"];

const MODELS = join(import.meta.dirname, "../../fixtures/models");
const WORKER = join(import.meta.dirname, "worker.ts");
export const CASE_TIMEOUT_MS = 20_000;
export const MEMORY_LIMIT = 2 * 1024 ** 3;
/** The worker's memory budget for reading files; its whole process must stay under MEMORY_LIMIT. */
const WORKER_BUDGET = "1g";

interface Seed {
  readonly format: Format;
  readonly name: string;
  readonly bytes: Uint8Array;
  /** The command line for a file at `path`. */
  readonly args: (path: string) => string[];
}

const named = (name: string, m: Mutator): [string, Mutator] => [name, m];

const MUTATORS: Record<Format, readonly [string, Mutator][]> = {
  pt2: [
    ...BYTE_MUTATORS.map((m) => named(`bytes.${m.name}`, m)),
    named("zip.header", zipHeader),
    named("zip.entries", zipEntries),
    named(
      "json",
      mutateEntry((n) => n.endsWith(".json"), jsonEntry),
    ),
    named(
      "json.model",
      mutateEntry((n) => n.endsWith("models/model.json"), jsonEntry),
    ),
    named(
      "graph",
      mutateEntry((n) => n.endsWith("models/model.json"), graphAttack),
    ),
    named(
      "weights.meta",
      mutateEntry((n) => n.endsWith("weights_config.json"), weightMetaAttack),
    ),
    named(
      "weights.data",
      mutateEntry(
        (n) => n.includes("/data/weights/weight_"),
        (_n, d, r) => truncate(d, r),
      ),
    ),
  ],
  pt: [
    ...BYTE_MUTATORS.map((m) => named(`bytes.${m.name}`, m)),
    named("zip.header", zipHeader),
    named("zip.entries", zipEntries),
    named(
      "pickle",
      mutateEntry((n) => n.endsWith(".pkl"), pickleEntry),
    ),
    named(
      "code",
      mutateEntry((n) => n.includes("/code/") && n.endsWith(".py"), codeEntry),
    ),
    named(
      "code.forward",
      mutateEntry((n) => /\/code\/__torch__\.py$|\/code\/__torch__\/[^/]*\.py$/.test(n), codeEntry),
    ),
    named(
      "storage",
      mutateEntry(
        (n) => /\/(data|constants)\/\d+$/.test(n),
        (_n, d, r) => truncate(d, r),
      ),
    ),
  ],
  npy: [
    ...BYTE_MUTATORS.map((m) => named(`bytes.${m.name}`, m)),
    named("header", npyHeader),
    named("header.2", npyHeader),
  ],
  torchc: [
    ...BYTE_MUTATORS.map((m) => named(`bytes.${m.name}`, m)),
    named("zip.header", zipHeader),
    named("zip.entries", zipEntries),
    named(
      "manifest",
      mutateEntry((n) => n === "manifest.json", jsonEntry),
    ),
    named(
      "weights",
      mutateEntry(
        (n) => n.startsWith("weights/"),
        (_n, d, r) => (r.chance(0.5) ? truncate(d, r) : flipBytes(d, r)),
      ),
    ),
  ],
};

async function seeds(dir: string): Promise<Seed[]> {
  const file = (n: string) => join(MODELS, n);
  const input = file("mlp.input.npy");
  const shapeOf = (npy: string) => {
    const t = readNpy(file(npy));
    return `${t.dtype}:${t.shape.join("x")}`;
  };
  const model = (format: Format, name: string, extra: string[] = []): Seed => ({
    format,
    name,
    bytes: new Uint8Array(readFileSync(file(name))),
    args: (p) => ["inspect", p, ...extra],
  });
  const pkg = join(dir, "mlp.torchc");
  savePackage(pkg, { graph: (await loadModel(file("mlp.pt2"))).graph, options: {}, source: "mlp.pt2" });
  copyFileSync(input, join(dir, "x.npy"));
  return [
    model("pt2", "mlp.pt2"),
    model("pt2", "mlp.core.pt2"),
    model("pt2", "tiny_resnet.pt2"),
    model("pt2", "tiny_vit.core.pt2"),
    { ...model("pt2", "mlp.pt2"), args: (p) => ["run", p, "--input", join(dir, "x.npy")] },
    model("pt", "mlp.traced.pt"),
    model("pt", "tiny_resnet.traced.pt"),
    model("pt", "mlp_scripted.scripted.pt", ["--input-shape", shapeOf("mlp_scripted.input.npy")]),
    model("pt", "gated.scripted.pt", ["--input-shape", shapeOf("gated.pos.input.npy")]),
    {
      format: "npy",
      name: "mlp.input.npy",
      bytes: new Uint8Array(readFileSync(input)),
      args: (p) => ["run", file("mlp.pt2"), "--input", p],
    },
    {
      format: "npy",
      name: "mlp.output.npy",
      bytes: new Uint8Array(readFileSync(file("mlp.output.npy"))),
      args: (p) => ["run", file("mlp.pt2"), "--input", join(dir, "x.npy"), "--expect", p],
    },
    {
      format: "torchc",
      name: "mlp.torchc",
      bytes: new Uint8Array(readFileSync(pkg)),
      args: (p) => ["run", p, "--input", join(dir, "x.npy")],
    },
  ];
}

export interface Failure {
  readonly format: Format;
  readonly seed: string;
  readonly mutator: string;
  readonly file: string;
  readonly reason: string;
}

export interface FuzzReport {
  readonly counts: Record<Format, { cases: number; success: number; userError: number; failed: number }>;
  readonly failures: Failure[];
  readonly slowestMs: number;
  readonly peakRssBytes: number;
}

interface Result {
  code: number;
  out: string;
  err: string;
  ms: number;
  maxRssBytes: number;
}

/** A worker process that runs command lines; restarted after a hang, a crash or a large peak. */
class Worker {
  private child: ChildProcess | undefined;
  private pending: ((r: Result | { crash: string }) => void) | undefined;

  private async start(): Promise<ChildProcess> {
    const child = fork(WORKER, [], {
      execArgv: ["--import", "tsx", "--max-old-space-size=1800"],
      env: { ...process.env, TORCHC_MAX_MEMORY: WORKER_BUDGET },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    let stderr = "";
    child.stderr?.on("data", (d) => {
      stderr = (stderr + d).slice(-4000);
    });
    child.on("exit", (code, signal) => {
      this.child = undefined;
      this.pending?.({
        crash: `worker exited (${signal ?? `status ${code}`}): ${stderr.trim().slice(-600)}`,
      });
      this.pending = undefined;
    });
    await new Promise<void>((resolve, reject) => {
      child.once("message", () => resolve());
      child.once("exit", () => reject(new Error(`fuzz worker did not start: ${stderr}`)));
    });
    child.on("message", (m: Result) => {
      const p = this.pending;
      this.pending = undefined;
      p?.(m);
    });
    return child;
  }

  async run(args: string[], timeoutMs: number): Promise<Result | { crash: string } | { hang: true }> {
    this.child ??= await this.start();
    const child = this.child;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        child.kill("SIGKILL");
        resolve({ hang: true });
      }, timeoutMs);
      this.pending = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      child.send({ id: 0, args });
    });
  }

  restart(): void {
    const c = this.child;
    this.child = undefined;
    if (c) {
      c.removeAllListeners("exit");
      c.kill("SIGKILL");
    }
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this looks for
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f\x9b]/;

/** Why a result breaks the promise, or undefined when it keeps it. */
export function judge(r: Result): string | undefined {
  if (r.ms > CASE_TIMEOUT_MS) return `took ${(r.ms / 1000).toFixed(1)} s`;
  if (r.maxRssBytes > MEMORY_LIMIT) return `peak memory ${(r.maxRssBytes / 1024 ** 3).toFixed(2)} GiB`;
  if (CONTROL.test(r.out) || CONTROL.test(r.err)) return "control characters reached the terminal";
  if (r.code === 0) return undefined;
  if (r.code !== 1) return `exit status ${r.code}: ${r.err.slice(0, 800)}`;
  if (r.err === "" && /FAILS \(tolerance/.test(r.out)) return undefined; // --expect ran and the values differ
  if (!/^error: [^\n]+\n$/.test(r.err)) return `not one error line: ${JSON.stringify(r.err.slice(0, 800))}`;
  if (/\n\s+at .*:\d+:\d+/.test(r.err) || /internal error/.test(r.err))
    return `stack trace: ${r.err.slice(0, 800)}`;
  return undefined;
}

export interface FuzzOptions {
  readonly cases: number;
  readonly seed: number;
  /** Where to keep the inputs that broke the promise (default: a temporary folder). */
  readonly keep?: string;
  readonly log?: (line: string) => void;
}

/** Runs `cases` mutated inputs spread evenly over the formats. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const dir = mkdtempSync(join(tmpdir(), "torchc-fuzz-"));
  const all = await seeds(dir);
  const r = new Random(opts.seed);
  const worker = new Worker();
  const counts = Object.fromEntries(
    FORMATS.map((f) => [f, { cases: 0, success: 0, userError: 0, failed: 0 }]),
  ) as FuzzReport["counts"];
  const failures: Failure[] = [];
  let slowest = 0;
  let peak = 0;
  try {
    for (let i = 0; i < opts.cases; i++) {
      const format = FORMATS[i % FORMATS.length];
      const seed = r.pick(all.filter((s) => s.format === format));
      const steps = r.chance(0.2) ? 2 : 1;
      let bytes = seed.bytes;
      const names: string[] = [];
      for (let s = 0; s < steps; s++) {
        const [name, m] = r.pick(MUTATORS[format]);
        names.push(name);
        try {
          bytes = m(bytes, r);
        } catch {
          bytes = flipBytes(bytes, r); // the mutator could not parse an already mutated input
          names.push("flip");
        }
      }
      const path = join(dir, `case-${i}.${format}`);
      writeFileSync(path, bytes);
      const res = await worker.run(seed.args(path), CASE_TIMEOUT_MS + 5000);
      const c = counts[format];
      c.cases++;
      let reason: string | undefined;
      if ("hang" in res) reason = `no answer within ${CASE_TIMEOUT_MS / 1000} s`;
      else if ("crash" in res) reason = res.crash;
      else {
        reason = judge(res);
        slowest = Math.max(slowest, res.ms);
        peak = Math.max(peak, res.maxRssBytes);
        if (res.maxRssBytes > 1024 ** 3) worker.restart();
      }
      if (reason) {
        c.failed++;
        let kept = path;
        if (opts.keep) {
          mkdirSync(opts.keep, { recursive: true });
          kept = join(opts.keep, `${seed.name}.${names.join("+")}.${i}.${format}`);
          copyFileSync(path, kept);
        }
        failures.push({ format, seed: seed.name, mutator: names.join("+"), file: kept, reason });
        opts.log?.(`FAIL ${format} ${seed.name} ${names.join("+")} (${kept}): ${reason.slice(0, 300)}`);
        if ("hang" in res || "crash" in res) worker.restart();
      } else if (!("hang" in res) && !("crash" in res)) {
        if (process.env.TORCHC_FUZZ_VERBOSE)
          opts.log?.(
            `${format} ${seed.name} ${names.join("+")}: ${res.code} ${res.err.trim().slice(0, 240)}`,
          );
        if (res.code === 0) c.success++;
        else c.userError++;
      }
      if (!opts.keep || !reason) rmSync(path, { force: true });
      if ((i + 1) % 200 === 0) opts.log?.(`${i + 1}/${opts.cases} cases, ${failures.length} failures`);
    }
  } finally {
    worker.restart();
    if (failures.length === 0 || opts.keep) rmSync(dir, { recursive: true, force: true });
  }
  return { counts, failures, slowestMs: slowest, peakRssBytes: peak };
}

export function formatReport(rep: FuzzReport, seed: number): string {
  const lines = [`mutation fuzz, seed ${seed} (replay: TORCHC_FUZZ_SEED=${seed})`];
  for (const f of FORMATS) {
    const c = rep.counts[f];
    lines.push(
      `  ${f.padEnd(7)} ${String(c.cases).padStart(5)} cases: ${c.success} loaded, ${c.userError} refused in one line, ${c.failed} broke the promise`,
    );
  }
  const total = FORMATS.reduce((a, f) => a + rep.counts[f].cases, 0);
  lines.push(
    `  total   ${String(total).padStart(5)} cases, ${rep.failures.length} failures; slowest case ${(rep.slowestMs / 1000).toFixed(2)} s, peak worker memory ${(rep.peakRssBytes / 1024 ** 2).toFixed(0)} MiB`,
  );
  return lines.join("\n");
}
