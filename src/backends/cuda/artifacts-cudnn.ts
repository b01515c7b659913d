/**
 * A conv's cuDNN execution plan as a package keeps it, and the plan rebuilt from that record without heuristics
 * or timing. Two forms are saved: cuDNN's own serialization of the plan (CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION,
 * cuDNN 9; it carries runtime-compiled kernels, so restoring it compiles nothing), and the engine's global index
 * with its knob choices (rebuilds the same engine config on the operation graph; used when the JSON form is
 * missing or cuDNN refuses it).
 */
import { ATTR, CUDNN, DESC } from "../../ffi/cudnn.js";
import type { Cudnn } from "./device/conv.js";
import { buildConvGraph, convGraphLayout, ownedMaker } from "./device/conv-graph.js";
import { BackendDescriptor } from "./device/cudnn-backend.js";
import { destroyCandidate, type EngineCandidate } from "./device/cudnn-engines.js";
import {
  type CudnnConvBuild,
  CudnnConvPlan,
  type CudnnConvSpec,
  convGraphSpec,
} from "./kernels/conv-cudnn.js";

/** cuDNN 9 values this file needs beyond src/ffi/cudnn.ts (cudnn_backend.h). */
const PLAN_JSON_REPRESENTATION = 405;
const ENGINECFG_KNOB_CHOICES = 302;
const KNOB_CHOICE_KNOB_TYPE = 1200;
const KNOB_CHOICE_KNOB_VALUE = 1201;
const ENGINE_OPERATION_GRAPH = 1300;
const DESC_KNOB_CHOICE = 7;
const TYPE_KNOB_TYPE = 9;
const TYPE_CHAR = 24;

export interface ConvChoice {
  /** cuDNN's global engine index. */
  readonly engine?: number;
  /** [knob type, value] pairs of the engine config. */
  readonly knobs?: readonly (readonly [number, number])[];
  /** cuDNN's JSON serialization of the execution plan. */
  readonly plan?: string;
  readonly workspaceBytes: number;
}

/** What to save of the candidate a conv plan executes. Parts cuDNN cannot report are left out. */
export function describeConvCandidate(c: EngineCandidate, withPlan = true): ConvChoice {
  const plan = withPlan ? readPlanJson(c.plan) : undefined;
  const knobs = readKnobs(c.cfg);
  return {
    ...(c.engine !== undefined ? { engine: c.engine } : {}),
    ...(knobs ? { knobs } : {}),
    ...(plan ? { plan } : {}),
    workspaceBytes: c.workspaceBytes,
  };
}

/** The conv plan for `spec` from a saved choice: one candidate, nothing to time. */
export function restoreConv(cudnn: Cudnn, spec: CudnnConvSpec, choice: ConvChoice): CudnnConvBuild {
  const owned: BackendDescriptor[] = [];
  const cleanup = () => {
    for (const d of owned.reverse()) d.destroy();
  };
  try {
    const graphSpec = convGraphSpec(spec);
    // A serialized plan needs only the variant pack's ids, not the operation graph's ~15 descriptors.
    const fromJson = choice.plan !== undefined ? planFromJson(cudnn.handle, choice) : undefined;
    const fromEngine = () => {
      const { graph } = buildConvGraph(cudnn.handle, graphSpec, ownedMaker(owned));
      return planFromEngine(cudnn.handle, graph, choice, owned);
    };
    const c = fromJson ?? (choice.engine !== undefined ? fromEngine() : undefined);
    const uids = convGraphLayout(graphSpec).uids;
    if (!c) {
      cleanup();
      return { ok: false, reason: "cuDNN refused the saved execution plan" };
    }
    const plan = new CudnnConvPlan(cudnn, spec, [c], owned, uids);
    return { ok: true, plan, restoredFrom: fromJson ? "json" : "engine" };
  } catch (e) {
    cleanup();
    return {
      ok: false,
      reason: `cuDNN refused the saved plan: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

function readPlanJson(plan: BackendDescriptor): string | undefined {
  const count = new BigInt64Array(1);
  const get = CUDNN.fn.cudnnBackendGetAttribute;
  try {
    if (get(plan.handle, PLAN_JSON_REPRESENTATION, TYPE_CHAR, 0, count, null) !== 0 || count[0] <= 0n)
      return undefined;
    const buf = new Uint8Array(Number(count[0]));
    if (get(plan.handle, PLAN_JSON_REPRESENTATION, TYPE_CHAR, buf.length, count, buf) !== 0) return undefined;
    const end = buf.indexOf(0);
    return new TextDecoder().decode(end < 0 ? buf : buf.subarray(0, end));
  } catch {
    return undefined;
  }
}

function readKnobs(cfg: BackendDescriptor): [number, number][] | undefined {
  let descs: BackendDescriptor[] = [];
  try {
    const n = cfg.countDescriptors(ENGINECFG_KNOB_CHOICES, "KNOB_CHOICES");
    descs = Array.from({ length: n }, () => BackendDescriptor.create(DESC_KNOB_CHOICE, "knob choice"));
    const filled = n > 0 ? cfg.getDescriptors(ENGINECFG_KNOB_CHOICES, descs, "KNOB_CHOICES") : 0;
    return descs.slice(0, filled).map((d) => {
      const count = new BigInt64Array(1);
      const type = new Int32Array(1);
      const rc = CUDNN.fn.cudnnBackendGetAttribute(
        d.handle,
        KNOB_CHOICE_KNOB_TYPE,
        TYPE_KNOB_TYPE,
        1,
        count,
        type,
      );
      if (rc !== 0) throw new Error("knob type");
      return [type[0], Number(d.getInt64(KNOB_CHOICE_KNOB_VALUE, "KNOB_VALUE"))];
    });
  } catch {
    return undefined;
  } finally {
    for (const d of descs) d.destroy();
  }
}

function finalizedPlan(
  plan: BackendDescriptor,
  cfg: BackendDescriptor,
  choice: ConvChoice,
): EngineCandidate | undefined {
  if (plan.tryFinalize() !== 0) {
    plan.destroy();
    cfg.destroy();
    return undefined;
  }
  const workspaceBytes = Number(plan.getInt64(ATTR.EXECUTION_PLAN_WORKSPACE_SIZE, "WORKSPACE_SIZE"));
  return { plan, cfg, engine: choice.engine, workspaceBytes, tried: 0 };
}

/** The plan from cuDNN's serialization; its config is an empty placeholder (destroyed with it). */
function planFromJson(handle: bigint, choice: ConvChoice): EngineCandidate | undefined {
  const plan = BackendDescriptor.create(DESC.EXECUTION_PLAN, "execution plan (saved)");
  const cfg = BackendDescriptor.create(DESC.ENGINECFG, "engine config (saved plan)");
  try {
    plan.handleAttr(ATTR.EXECUTION_PLAN_HANDLE, handle, "HANDLE");
    const text = new TextEncoder().encode(choice.plan);
    const rc = CUDNN.fn.cudnnBackendSetAttribute(
      plan.handle,
      PLAN_JSON_REPRESENTATION,
      TYPE_CHAR,
      text.length,
      text,
    );
    if (rc !== 0) {
      destroyCandidate({ plan, cfg, engine: undefined, workspaceBytes: 0, tried: 0 });
      return undefined;
    }
    return finalizedPlan(plan, cfg, choice);
  } catch {
    destroyCandidate({ plan, cfg, engine: undefined, workspaceBytes: 0, tried: 0 });
    return undefined;
  }
}

/** The plan from the engine index and knob choices, on this conv's operation graph. */
function planFromEngine(
  handle: bigint,
  graph: BackendDescriptor,
  choice: ConvChoice,
  owned: BackendDescriptor[],
): EngineCandidate | undefined {
  const make = ownedMaker(owned);
  const engine = make(DESC.ENGINE, "engine (saved)")
    .descriptors(ENGINE_OPERATION_GRAPH, [graph], "OPERATION_GRAPH")
    .int64s(ATTR.ENGINE_GLOBAL_INDEX, [choice.engine ?? 0], "GLOBAL_INDEX");
  if (engine.tryFinalize() !== 0) return undefined;
  const knobs = (choice.knobs ?? []).map(([type, value]) => {
    const k = make(DESC_KNOB_CHOICE, "knob choice (saved)");
    const rc = CUDNN.fn.cudnnBackendSetAttribute(
      k.handle,
      KNOB_CHOICE_KNOB_TYPE,
      TYPE_KNOB_TYPE,
      1,
      new Int32Array([type]),
    );
    if (rc !== 0) throw new Error(`knob type ${type} refused`);
    return k.int64s(KNOB_CHOICE_KNOB_VALUE, [value], "KNOB_VALUE").finalize();
  });
  const cfg = BackendDescriptor.create(DESC.ENGINECFG, "engine config (saved)");
  const plan = BackendDescriptor.create(DESC.EXECUTION_PLAN, "execution plan (saved engine)");
  try {
    cfg.descriptors(ATTR.ENGINECFG_ENGINE, [engine], "ENGINE");
    if (knobs.length > 0) cfg.descriptors(ENGINECFG_KNOB_CHOICES, knobs, "KNOB_CHOICES");
    if (cfg.tryFinalize() !== 0) throw new Error("engine config refused");
    plan.handleAttr(ATTR.EXECUTION_PLAN_HANDLE, handle, "HANDLE");
    plan.descriptors(ATTR.EXECUTION_PLAN_ENGINE_CONFIG, [cfg], "ENGINE_CONFIG");
    return finalizedPlan(plan, cfg, choice);
  } catch {
    destroyCandidate({ plan, cfg, engine: undefined, workspaceBytes: 0, tried: 0 });
    return undefined;
  }
}
