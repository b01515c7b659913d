/**
 * The models a zoo run works on: the per-model records bench/zoo.py writes into its directory (<name>.json), the
 * selection (ZOO_SHARD i/n: the model at zoo position p belongs to shard p % n, zoo.py's rule; ZOO_ONLY a,b), and
 * the dry-run manifest (ZOO_DRY=1): a few fixture models written in zoo.py's format, for a CPU run of the harness.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";

export interface ZooCase {
  /** File names relative to the zoo directory (or absolute). */
  readonly input: string;
  /** PyTorch eager fp32 outputs for this input (TF32 off): the oracle. */
  readonly outputs: readonly string[];
  readonly outputs_fp16?: readonly string[];
}

/** A failed stage on PyTorch's side, as zoo.py records it. */
export interface StageFailure {
  readonly ok: false;
  readonly stage: string;
  readonly error_class: string;
  readonly message: string;
}

/** What zoo.py knows about one model (bench/zoo.py: export_one, reference_one). */
export interface ZooEntry {
  readonly name: string;
  readonly position: number;
  readonly source: string;
  readonly arch: string;
  readonly family: string;
  readonly input_shape?: readonly number[];
  readonly params?: number;
  readonly reinitialised?: readonly string[];
  /** compile() options for this model only (the dry run forces an op into the fallback with it). */
  readonly torchc_options?: { readonly torchExecutedOps?: readonly string[]; readonly minBlockSize?: number };
  readonly files?: { readonly pt2: string; readonly cases: readonly ZooCase[] } | null;
  readonly export?:
    | { readonly ok: true; readonly seconds?: number; readonly graph_nodes?: number }
    | StageFailure;
  readonly reference?:
    | {
        readonly ok: true;
        readonly card?: string;
        readonly eager_fp16?: { readonly median_ms: number; readonly p90_ms: number } | null;
        readonly fp16_rel_err?: number | null;
        readonly fp16_overflow?: boolean;
        readonly input_sensitivity?: number | null;
      }
    | StageFailure;
}

export function parseShard(s: string): { readonly index: number; readonly count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!(count >= 1 && index >= 0 && index < count))
    throw new Error(`ZOO_SHARD '${s}': expected i/n with 0 <= i < n (e.g. 0/3)`);
  return { index, count };
}

/** Every <name>.json zoo.py wrote into dir, in zoo order; `unreadable` names the files that are not records. */
export function readZooDir(dir: string): { entries: ZooEntry[]; unreadable: string[] } {
  if (!existsSync(dir))
    throw new Error(`the zoo directory ${dir} does not exist: run bench/zoo.py --out ${dir} first`);
  const entries: ZooEntry[] = [];
  const unreadable: string[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".json") || f.startsWith("zoo")) continue;
    try {
      const e = JSON.parse(readFileSync(join(dir, f), "utf8")) as ZooEntry;
      if (typeof e.name === "string" && typeof e.position === "number") entries.push(e);
      else unreadable.push(`${f}: no name and position`);
    } catch (err) {
      unreadable.push(`${f}: ${(err as Error).message}`);
    }
  }
  return { entries: entries.sort((a, b) => a.position - b.position), unreadable };
}

/** The whole zoo's names in order, from zoo-index.json (absent in a dry run). */
export function readZooIndex(dir: string): string[] | undefined {
  const f = join(dir, "zoo-index.json");
  if (!existsSync(f)) return undefined;
  return (JSON.parse(readFileSync(f, "utf8")) as { models: { name: string }[] }).models.map((m) => m.name);
}

export interface Selection {
  readonly shard?: string;
  readonly only?: string;
}

/** The entries of one shard and/or the named ones; names asked for but absent come back in `missing`. */
export function selectEntries(
  entries: readonly ZooEntry[],
  sel: Selection,
): { readonly selected: ZooEntry[]; readonly missing: string[] } {
  let selected = [...entries];
  if (sel.shard) {
    const { index, count } = parseShard(sel.shard);
    selected = selected.filter((e) => e.position % count === index);
  }
  let missing: string[] = [];
  if (sel.only) {
    const wanted = sel.only
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    missing = wanted.filter((w) => !entries.some((e) => e.name === w));
    selected = selected.filter((e) => wanted.includes(e.name));
  }
  return { selected, missing };
}

export function zooPath(dir: string, file: string): string {
  return isAbsolute(file) ? file : resolve(dir, file);
}

/**
 * The dry run's manifest: fixture models (fixtures/models, with PyTorch's outputs) in zoo.py's format, plus one
 * entry whose archive is not a model (a load failure) and one whose export failed, so that a CPU run goes
 * through matches and failures alike. Returns the directory it wrote.
 */
export function writeDryManifest(fixtures: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const model = (position: number, name: string, family: string, pt2: string, fixture: string): ZooEntry => ({
    name: `dry.${name}`,
    position,
    source: "fixtures",
    arch: name,
    family,
    files: {
      pt2: join(fixtures, pt2),
      cases: [
        { input: join(fixtures, `${fixture}.input.npy`), outputs: [join(fixtures, `${fixture}.output.npy`)] },
      ],
    },
    export: { ok: true },
    reference: { ok: true, card: "none (dry run)", eager_fp16: null, fp16_overflow: false },
  });
  const entries: ZooEntry[] = [
    model(0, "tiny_resnet", "cnn", "tiny_resnet.pt2", "tiny_resnet"),
    model(1, "tiny_vit", "transformer", "tiny_vit.pt2", "tiny_vit"),
    model(2, "mlp", "mlp", "mlp.pt2", "mlp"),
    // ReLU kept out of the engines: the fallback count must see it.
    {
      ...model(5, "mlp_relu_fallback", "mlp", "mlp.pt2", "mlp"),
      torchc_options: { torchExecutedOps: ["aten.relu.default"] },
    },
    // An archive that is no model: the runner must record a load failure and go on.
    model(3, "not_an_archive", "cnn", "mlp.input.npy", "mlp"),
    {
      name: "dry.export_failed",
      position: 4,
      source: "fixtures",
      arch: "export_failed",
      family: "cnn",
      files: null,
      export: {
        ok: false,
        stage: "export",
        error_class: "Unsupported",
        message: "data-dependent control flow",
      },
    },
  ];
  for (const e of entries) writeFileSync(join(dir, `${e.name}.json`), JSON.stringify(e, null, 1));
  return dir;
}
