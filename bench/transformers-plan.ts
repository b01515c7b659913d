/**
 * What the transformer benchmark (bench/transformers.bench.ts) works on and how it judges a row, without a GPU:
 * the record bench/transformers.py writes (transformers.peers.json), the selection (TRANSFORMERS_ONLY), the
 * accuracy bar, and the dry run's record (fixture models in the same format, for a CPU run of the harness).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";

/** Issue 13's accuracy bar: fp16 output within 1e-2 of PyTorch fp32, relative to max |reference|. */
export const FP16_TOLERANCE = 1e-2;

export const PEERS_JSON = "transformers.peers.json";

export interface PeerCase {
  /** File names relative to the run directory (or absolute). */
  readonly input: string;
  /** PyTorch eager fp32 output for this input (TF32 off): the oracle. */
  readonly output: string;
}

/** One model at one batch as bench/transformers.py records it (only the fields torchc's side reads). */
export interface PeerRun {
  readonly key: string;
  readonly model: string;
  readonly batch: number;
  readonly ok: boolean;
  readonly files?: { readonly pt2: string; readonly cases: readonly PeerCase[] };
  readonly input_sensitivity?: number | null;
  readonly skipped?: string;
  readonly failure?: { readonly stage: string; readonly error_class: string; readonly message: string };
}

export interface PeersDoc {
  readonly kind: "torchc-transformers-peers";
  readonly card?: string;
  readonly runs: readonly PeerRun[];
}

export function readPeers(dir: string): PeersDoc {
  const f = join(dir, PEERS_JSON);
  if (!existsSync(f))
    throw new Error(`${f} does not exist: run python3 bench/transformers.py --out ${dir} first`);
  const doc = JSON.parse(readFileSync(f, "utf8")) as PeersDoc;
  if (doc?.kind !== "torchc-transformers-peers" || !Array.isArray(doc.runs))
    throw new Error(`${f} is not a bench/transformers.py record (kind torchc-transformers-peers)`);
  return doc;
}

/**
 * The runs to compile: those PyTorch exported, narrowed to `only` (keys like vit_base_patch16_224_b64 or model
 * names, comma-separated). Names asked for that match nothing come back in `missing`; runs PyTorch could not
 * export come back in `notExported` with the reason.
 */
export function selectRuns(
  runs: readonly PeerRun[],
  only?: string,
): { selected: PeerRun[]; missing: string[]; notExported: { key: string; reason: string }[] } {
  const wanted = (only ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const picked = wanted.length ? runs.filter((r) => wanted.includes(r.key) || wanted.includes(r.model)) : [...runs];
  const missing = wanted.filter((w) => !runs.some((r) => r.key === w || r.model === w));
  const selected = picked.filter((r) => r.files && r.files.cases.length > 0);
  const notExported = picked
    .filter((r) => !(r.files && r.files.cases.length > 0))
    .map((r) => ({
      key: r.key,
      reason:
        r.skipped ??
        (r.failure ? `${r.failure.stage}: ${r.failure.error_class}: ${r.failure.message}` : "no files recorded"),
    }));
  return { selected, missing, notExported };
}

export function runPath(dir: string, file: string): string {
  return isAbsolute(file) ? file : resolve(dir, file);
}

/** Timed repetitions: at least 50 (issue 13), 100 at batch 1 where a pass is short. */
export function repsFor(batch: number, override?: number): number {
  if (override !== undefined && Number.isFinite(override)) return Math.max(50, Math.floor(override));
  return batch === 1 ? 100 : 50;
}

/** Whether a row's numbers pass: every case within the bar and no inf/NaN. */
export function withinTolerance(relErrPerCase: readonly number[], nonFinite: number): boolean {
  return relErrPerCase.length > 0 && nonFinite === 0 && relErrPerCase.every((e) => e <= FP16_TOLERANCE);
}

/** torchc's side of one row, as transformers.json holds it (bench/transformers_report.py reads these fields). */
export interface TorchcRow {
  readonly key: string;
  readonly model: string;
  readonly batch: number;
  readonly ok: boolean;
  /** The stage that failed and its message; a row still marked "started" means the process died there. */
  readonly failure?: { readonly stage: string; readonly message: string };
  readonly loadS?: number;
  /** compile() with an empty TORCHC_CACHE_DIR (kernel and plan caches). */
  readonly compileColdS?: number;
  /** The cold compile's engine build phases, one line per engine (describeEngine's second line). */
  readonly coldBuild?: readonly string[];
  /**
   * The cold compile's own phases in ms (the report's timings); compileColdS less their sum is what came after
   * the build: the execution context's warm-up and graph capture.
   */
  readonly coldPhasesMs?: Readonly<Record<string, number>>;
  /** compile() again with the same, now filled, cache dir. */
  readonly compileWarmS?: number;
  readonly nodes?: number;
  readonly fallbackNodes?: number;
  readonly segments?: { readonly engine: number; readonly fallback: number };
  readonly relErr?: number;
  readonly relErrPerCase?: readonly number[];
  readonly nonFinite?: number;
  readonly withinTolerance?: boolean;
  readonly latency?: { readonly medianMs: number; readonly p90Ms: number; readonly reps: number };
  /** CompiledModule.profile(): kernel count, time per step kind, and the slowest steps (TRANSFORMERS_PROFILE=0: none). */
  readonly profile?: {
    readonly kernels: number;
    readonly totalMs: number;
    readonly byKind: readonly { readonly kind: string; readonly steps: number; readonly ms: number }[];
    readonly slowest: readonly { readonly kind: string; readonly description: string; readonly medianMs: number }[];
  };
  readonly profileError?: string;
}

/**
 * The dry run's record: fixture models (fixtures/models, with PyTorch's outputs) in bench/transformers.py's format,
 * plus one run that failed its export and one whose file is not a model, so that a CPU run goes through a match
 * and failures alike. Returns the directory it wrote.
 */
export function writeDryPeers(fixtures: string, dir: string): string {
  const run = (model: string, fixture: string, pt2 = `${fixture}.pt2`): PeerRun => ({
    key: `${model}_b1`,
    model,
    batch: 1,
    ok: true,
    files: {
      pt2: join(fixtures, pt2),
      cases: [{ input: join(fixtures, `${fixture}.input.npy`), output: join(fixtures, `${fixture}.output.npy`) }],
    },
  });
  const doc: PeersDoc = {
    kind: "torchc-transformers-peers",
    card: "none (dry run)",
    runs: [
      run("dry_tiny_vit", "tiny_vit"),
      run("dry_not_a_model", "mlp", "mlp.input.npy"),
      {
        key: "dry_export_failed_b1",
        model: "dry_export_failed",
        batch: 1,
        ok: false,
        failure: { stage: "export", error_class: "Unsupported", message: "data-dependent control flow" },
      },
    ],
  };
  writeFileSync(join(dir, PEERS_JSON), JSON.stringify(doc, null, 1));
  return dir;
}
