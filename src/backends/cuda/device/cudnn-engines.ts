/**
 * Engine choice for a finalized cuDNN operation graph: heuristics (each mode in turn until one yields a
 * plan) → engine configs in the heuristic's order → execution plans that finalize. Up to `max` plans are
 * kept: the first that finalizes, then later ones without reduced-precision, FFT, Winograd or
 * nondeterministic notes and within a workspace cap. With fp32 and TF32 off, engines that use tensor cores
 * or down-convert inputs are skipped (as PyTorch does). When nothing is kept, the answer says why, with
 * cuDNN's own status and message.
 */
import { ATTR, ATTR_TYPE, CUDNN, DESC, HEUR_MODE, NUMERICAL_NOTE } from "../../../ffi/cudnn.js";
import { cudnnLastError, cudnnStatusName } from "../../../ffi/status.js";
import { BackendDescriptor } from "./cudnn-backend.js";

/** REDUCED_PRECISION_REDUCTION, FFT, NONDETERMINISTIC, WINOGRAD (and its tile sizes). */
const NOTES_EXTRA_CANDIDATE_SKIPS: readonly number[] = [2, 3, 4, 5, 6, 7, 8];
const NOTE_TYPE_COUNT = 16;

export type HeuristicMode = "A" | "B" | "instant" | "fallback";

const HEUR: Readonly<Record<HeuristicMode, number>> = {
  A: HEUR_MODE.A,
  B: HEUR_MODE.B,
  instant: HEUR_MODE.INSTANT,
  fallback: HEUR_MODE.FALLBACK,
};

export interface EngineCandidate {
  readonly plan: BackendDescriptor;
  readonly cfg: BackendDescriptor;
  /** cuDNN's global engine index, when it could be read. */
  readonly engine: number | undefined;
  readonly workspaceBytes: number;
  /** Engine configs of its heuristic tried up to and including this one. */
  readonly tried: number;
}

export interface EngineChoiceOptions {
  /** Heuristic modes, tried in order until one yields a plan. */
  readonly modes: readonly HeuristicMode[];
  /** fp32 with TF32 off: skip engines noted TENSOR_CORE or DOWN_CONVERT_INPUTS. */
  readonly strictFp32: boolean;
  /** Plans to keep (1: the first that finalizes). */
  readonly max: number;
  /** Extra plans needing more workspace than this are skipped (the first is always kept). */
  readonly workspaceCap: number;
}

export type EngineChoice =
  | { readonly ok: true; readonly candidates: readonly EngineCandidate[] }
  | { readonly ok: false; readonly reason: string };

/** How cuDNN's refusal reads in reports: "cuDNN refused: CUDNN_STATUS_NOT_SUPPORTED_3000 (engine 0 …)". */
export function cudnnRefusal(status: number, detail: string | undefined): string {
  return `cuDNN refused: ${cudnnStatusName(status)} (${detail ?? "no detail from cuDNN"})`;
}

/**
 * Whether an engine with these numerical notes is skipped. The first kept plan is only filtered in strict
 * fp32; later candidates also skip the notes that change results or timing stability.
 */
export function skipEngine(notes: readonly number[], strictFp32: boolean, keptSoFar: number): boolean {
  if (
    strictFp32 &&
    (notes.includes(NUMERICAL_NOTE.TENSOR_CORE) || notes.includes(NUMERICAL_NOTE.DOWN_CONVERT_INPUTS))
  )
    return true;
  return keptSoFar > 0 && notes.some((n) => NOTES_EXTRA_CANDIDATE_SKIPS.includes(n));
}

/** Records the last refusal while engine choice goes on (a later success makes it moot). */
class Refusals {
  last: string | undefined;
  status(status: number): void {
    this.last = cudnnRefusal(status, cudnnLastError());
  }
  error(e: unknown): void {
    this.last = `cuDNN refused: ${e instanceof Error ? e.message : String(e)}`;
  }
}

function engineOf(cfg: BackendDescriptor, why: Refusals): BackendDescriptor | undefined {
  const engine = BackendDescriptor.create(DESC.ENGINE, "engine");
  try {
    cfg.getDescriptors(ATTR.ENGINECFG_ENGINE, [engine], "ENGINE");
    return engine;
  } catch (e) {
    why.error(e);
    engine.destroy();
    return undefined;
  }
}

function numericalNotes(engine: BackendDescriptor): number[] {
  const count = new BigInt64Array(1);
  const values = new Int32Array(NOTE_TYPE_COUNT);
  const rc = CUDNN.fn.cudnnBackendGetAttribute(
    engine.handle,
    ATTR.ENGINE_NUMERICAL_NOTE,
    ATTR_TYPE.NUMERICAL_NOTE,
    NOTE_TYPE_COUNT,
    count,
    values,
  );
  if (rc !== 0) return [];
  return [...values.subarray(0, Number(count[0]))];
}

function globalIndex(engine: BackendDescriptor): number | undefined {
  try {
    return Number(engine.getInt64(ATTR.ENGINE_GLOBAL_INDEX, "GLOBAL_INDEX"));
  } catch {
    return undefined; // an index only labels the engine in reports
  }
}

/** Whether config `cfg` passes the note filter, and its engine's index. */
function screenConfig(
  cfg: BackendDescriptor,
  opts: EngineChoiceOptions,
  kept: number,
  why: Refusals,
): { skip: boolean; engine: number | undefined } {
  const engine = engineOf(cfg, why);
  if (!engine) return { skip: kept > 0, engine: undefined };
  try {
    const notes = opts.strictFp32 || kept > 0 ? numericalNotes(engine) : [];
    if (skipEngine(notes, opts.strictFp32, kept)) {
      why.last = `cuDNN offered only engines whose numerical notes [${notes}] are excluded (fp32 without TF32)`;
      return { skip: true, engine: undefined };
    }
    return { skip: false, engine: globalIndex(engine) };
  } finally {
    engine.destroy();
  }
}

/** The execution plan for `cfg` and its workspace, or undefined (with the reason) when it does not finalize. */
function finalizePlan(
  handle: bigint,
  cfg: BackendDescriptor,
  why: Refusals,
): { plan: BackendDescriptor; workspaceBytes: number } | undefined {
  const plan = BackendDescriptor.create(DESC.EXECUTION_PLAN, "execution plan");
  try {
    plan.handleAttr(ATTR.EXECUTION_PLAN_HANDLE, handle, "HANDLE");
    plan.descriptors(ATTR.EXECUTION_PLAN_ENGINE_CONFIG, [cfg], "ENGINE_CONFIG");
    const rc = plan.tryFinalize();
    if (rc !== 0) {
      why.status(rc);
      plan.destroy();
      return undefined;
    }
    const ws = Number(plan.getInt64(ATTR.EXECUTION_PLAN_WORKSPACE_SIZE, "WORKSPACE_SIZE"));
    return { plan, workspaceBytes: ws };
  } catch (e) {
    why.error(e);
    plan.destroy();
    return undefined;
  }
}

/** The engine configs heuristic `mode` proposes for `graph` (the heuristic descriptor goes to `owned`). */
function heuristicConfigs(
  graph: BackendDescriptor,
  mode: HeuristicMode,
  owned: BackendDescriptor[],
  why: Refusals,
): BackendDescriptor[] {
  const heur = BackendDescriptor.create(DESC.ENGINEHEUR, "engine heuristics");
  owned.push(heur);
  heur
    .descriptors(ATTR.ENGINEHEUR_OPERATION_GRAPH, [graph], "OPERATION_GRAPH")
    .enum32(ATTR.ENGINEHEUR_MODE, ATTR_TYPE.HEUR_MODE, HEUR[mode], "MODE");
  const rc = heur.tryFinalize();
  if (rc !== 0) {
    why.status(rc);
    return [];
  }
  const cfgs: BackendDescriptor[] = [];
  try {
    const n = heur.countDescriptors(ATTR.ENGINEHEUR_RESULTS, "RESULTS");
    for (let i = 0; i < n; i++) cfgs.push(BackendDescriptor.create(DESC.ENGINECFG, `engine config ${i}`));
    const filled = heur.getDescriptors(ATTR.ENGINEHEUR_RESULTS, cfgs, "RESULTS");
    for (const c of cfgs.splice(Math.min(filled, n))) c.destroy();
    if (cfgs.length === 0) why.last = "cuDNN's heuristics proposed no engine for this graph";
  } catch (e) {
    why.error(e);
    for (const c of cfgs.splice(0)) c.destroy();
  }
  return cfgs;
}

function chooseFromHeuristic(
  handle: bigint,
  graph: BackendDescriptor,
  mode: HeuristicMode,
  opts: EngineChoiceOptions,
  owned: BackendDescriptor[],
  why: Refusals,
): EngineCandidate[] {
  const cfgs = heuristicConfigs(graph, mode, owned, why);
  const kept: EngineCandidate[] = [];
  for (let i = 0; i < cfgs.length && kept.length < opts.max; i++) {
    const screened = screenConfig(cfgs[i], opts, kept.length, why);
    if (screened.skip) continue;
    const made = finalizePlan(handle, cfgs[i], why);
    if (!made) continue;
    if (kept.length > 0 && made.workspaceBytes > opts.workspaceCap) {
      made.plan.destroy();
      continue;
    }
    kept.push({ ...made, cfg: cfgs[i], engine: screened.engine, tried: i + 1 });
  }
  for (const c of cfgs) if (!kept.some((k) => k.cfg === c)) c.destroy();
  return kept;
}

/** Finalized execution plans for `graph`, best first, or the reason cuDNN gave for none. */
export function chooseEngines(
  handle: bigint,
  graph: BackendDescriptor,
  opts: EngineChoiceOptions,
  owned: BackendDescriptor[],
): EngineChoice {
  const why = new Refusals();
  for (const mode of opts.modes) {
    const candidates = chooseFromHeuristic(handle, graph, mode, opts, owned, why);
    if (candidates.length > 0) return { ok: true, candidates };
  }
  return { ok: false, reason: why.last ?? "cuDNN refused: no engine config finalized" };
}

/** Destroys a candidate's plan and config. */
export function destroyCandidate(c: EngineCandidate): void {
  c.plan.destroy();
  c.cfg.destroy();
}
