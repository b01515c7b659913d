/**
 * `torchc verify` / `compile(…, { verify: true })`: does the compiled model compute what the model says, and
 * if not, where does it first go wrong? Polygraphy's `--compare` in one step:
 *
 * 1. The aten reference interpreter runs the lowered graph on the input (every intermediate value kept).
 * 2. The compiled module runs on the same input; each output is compared with the reference.
 * 3. Every node of every engine segment is converted on its own and run through the layer reference on the
 *    reference values of its inputs; the first node whose converted output leaves the tolerance is named,
 *    with its module path, source line and converter. This finds a wrong converter wherever it sits, also one
 *    whose error a later layer hides.
 * 4. The first node whose reference output is not finite (inf/NaN, typically fp16 overflow) is named, and
 *    whether float32 would have kept it finite.
 */

import { SegmentConversion } from "../converters/conversion-net.js";
import { convertNodes } from "../converters/convert-segment.js";
import { type ConverterRegistry, selectConverter } from "../converters/registry.js";
import { isFloating } from "../ir/dtype.js";
import { formatLocation, type Graph, type Node, nodeInputs } from "../ir/graph.js";
import { castTensor, type Tensor, toFloat64Array } from "../ir/tensor.js";
import { runNetworkReference } from "../network/reference/index.js";
import { evaluateNode } from "../ops/index.js";
import { interpret } from "../ops/interpret.js";
import type { Partition } from "../partition/index.js";
import { formatInt8Choice, type Int8SpeedReport } from "../passes/int8-speed-report.js";
import { formatSensitivity, keptPrecisionName, type SensitivityReport } from "../passes/quantize-keep.js";
import { compareTensors } from "../util/compare.js";

/** What verification reads of a compiled module (the runtime's CompiledModule), named here so verify sits below it. */
export interface VerifiableModule {
  readonly graph: Graph;
  readonly partition: Pick<Partition, "segments">;
  readonly registry: ConverterRegistry;
  readonly options: { readonly enabledPrecisions?: readonly string[] };
  run(inputs: readonly Tensor[]): Promise<Tensor[]>;
}

export interface NodeFinding {
  readonly node: string;
  readonly op: string;
  readonly modulePath?: string;
  readonly source?: string;
  /** "node 'x' (aten.op) in module '…' at file.py:12" */
  readonly where: string;
  readonly converter?: string;
  readonly relative?: number;
  readonly detail?: string;
  /** A non-finite result that float32 keeps finite from the same inputs: an fp16 overflow. */
  readonly fixedByFloat32?: boolean;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly tolerance: number;
  readonly outputs: readonly { readonly name: string; readonly relative: number; readonly ok: boolean }[];
  /** Engine nodes checked one by one, and those that left the tolerance (first in graph order first). */
  readonly nodesChecked: number;
  readonly diverging: readonly NodeFinding[];
  readonly firstNonFinite?: NodeFinding;
  readonly text: string;
}

export interface VerifyOptions {
  /** max|err|/max|ref|; default 1e-4 for float32 models, 1e-2 when fp16/bf16 is enabled. */
  readonly tolerance?: number;
  /**
   * The mixed-precision decision of the compile (calibration.onSensitivity): the report then lists the layers
   * kept unquantized, with their scores, and checks that each is unquantized in the compiled graph.
   */
  readonly sensitivity?: SensitivityReport;
  /**
   * The int8 speed decision of the compile (report.int8Choice): the report lists the convolutions kept in float
   * because int8 timed slower, and checks that each is unquantized in the compiled graph.
   */
  readonly int8Choice?: Int8SpeedReport;
}

function finding(node: Node, extra: Partial<NodeFinding> = {}): NodeFinding {
  return {
    node: node.name,
    op: node.op,
    modulePath: node.meta.modulePath,
    source: node.meta.sourceLocation,
    where: formatLocation(node),
    ...extra,
  };
}

function allFinite(t: Tensor): boolean {
  if (!isFloating(t.dtype)) return true;
  for (const v of toFloat64Array(t)) if (!Number.isFinite(v)) return false;
  return true;
}

export const FP16_OVERFLOW_HINT =
  'float32 keeps this node finite from the same inputs: an fp16 overflow; compile with fp16Overflow: "keep-fp32" (--fp16-overflow=keep-fp32) to keep the overflowing layers in float32';

/**
 * Whether a node that gave inf/NaN gives a finite result computing in float32 from the same inputs (float16 inputs
 * widened exactly). A cast down to float16 of a finite value overflows only because of the float16 target.
 */
function finiteInFloat32(node: Node, values: ReadonlyMap<string, Tensor>): boolean {
  const to = node.args.dtype;
  if (node.op === "aten._to_copy.default" && to?.kind === "dtype" && to.value === "float16") return true;
  try {
    const outs = evaluateNode(node, (n) => {
      const t = values.get(n);
      if (!t) throw new Error(`no reference value for '${n}'`);
      return t.dtype === "float16" ? castTensor(t, "float32") : t;
    });
    return outs.every(allFinite);
  } catch {
    return false;
  }
}

/** Reference values of every value in the lowered graph (inputs, weights, node outputs). */
function referenceValues(
  graph: Graph,
  inputs: readonly Tensor[],
): { values: Map<string, Tensor>; order: Node[] } {
  const values = new Map<string, Tensor>();
  const order: Node[] = [];
  for (const [i, n] of graph.inputs.entries()) values.set(n, inputs[i]);
  for (const [n, w] of Object.entries(graph.weights)) values.set(n, w.tensor as Tensor);
  interpret(graph, inputs, {
    onNode(node, outs) {
      order.push(node);
      node.outputs.forEach((o, i) => {
        if (o && outs[i]) values.set(o, outs[i]);
      });
    },
  });
  return { values, order };
}

/** Converts one node alone and runs it on the reference values of its inputs. */
function checkNode(
  compiled: VerifiableModule,
  node: Node,
  values: ReadonlyMap<string, Tensor>,
  tolerance: number,
): NodeFinding | undefined {
  const graph = compiled.graph;
  const ins = [...new Set(nodeInputs(node))].filter((v) => !(v in graph.weights) && graph.values[v]);
  const outs = node.outputs.filter((o): o is string => o !== null && values.has(o));
  if (outs.length === 0) return undefined;
  const sel = selectConverter(compiled.registry, node, new SegmentConversion(graph));
  const converter = sel.ok ? sel.candidate.name : undefined;
  let got: Tensor[];
  try {
    const net = convertNodes(graph, [node], ins, outs, { registry: compiled.registry });
    got = runNetworkReference(
      net,
      ins.map((v) => values.get(v)!),
    );
  } catch (e) {
    return finding(node, { converter, detail: (e as Error).message.split("\n")[0] });
  }
  let worst = 0;
  for (const [i, o] of outs.entries()) {
    const a = compareTensors(got[i], values.get(o)!);
    worst = Math.max(worst, a.shapeMatches ? a.relative : Number.POSITIVE_INFINITY);
  }
  return worst > tolerance ? finding(node, { converter, relative: worst }) : undefined;
}

/** A node that computes quantized: a folded torchc.quantized_* layer, or one reading a dequantize's output. */
function computesQuantized(graph: Graph, node: Node): boolean {
  if (node.op.startsWith("torchc.quantized_")) return true;
  const producer = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n.op] as const)));
  return nodeInputs(node).some((v) => (producer.get(v) ?? "").startsWith("quantized_decomposed.dequantize"));
}

/**
 * The layers the sensitivity decision kept unquantized, with their scores, and those of them the compiled graph
 * computes quantized after all (which fails verification).
 */
function keptLayers(
  compiled: VerifiableModule,
  kept: readonly string[],
  text: string,
  what: string,
): { lines: string[]; quantized: string[] } {
  const byName = new Map(compiled.graph.nodes.map((n) => [n.name, n]));
  const quantized = kept.filter((k) => {
    const n = byName.get(k);
    return n !== undefined && computesQuantized(compiled.graph, n);
  });
  // A lowering pass may have renamed a kept layer; it is then not checked, and the report says so.
  const unseen = kept.filter((k) => !byName.has(k));
  const checked = kept.length - unseen.length;
  const status =
    kept.length === 0
      ? "none kept"
      : unseen.length === 0
        ? "yes"
        : `${checked} of ${kept.length} (not found by name: ${unseen.join(", ")})`;
  const check = quantized.length
    ? `  ${what} the compiled graph still quantizes: ${quantized.join(", ")} (FAILS)`
    : `  ${what} unquantized in the compiled graph: ${status}`;
  return { lines: [...text.split("\n").map((l) => `  ${l}`), check], quantized };
}

export async function verifyCompiled(
  compiled: VerifiableModule,
  inputs: readonly Tensor[],
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  const reduced = (compiled.options.enabledPrecisions ?? []).some((p) => p !== "fp32" && p !== "float32");
  const tolerance = opts.tolerance ?? (reduced ? 1e-2 : 1e-4);
  const graph = compiled.graph;
  const { values, order } = referenceValues(graph, inputs);

  const got = (await compiled.run(inputs)) as Tensor[];
  const outputs = graph.outputs.map((name, i) => {
    const a = compareTensors(got[i], values.get(name)!);
    return { name, relative: a.relative, ok: a.shapeMatches && a.relative <= tolerance };
  });

  const engineNodes = new Set<string>();
  for (const s of compiled.partition.segments)
    if (s.kind === "engine") for (const n of s.graph.nodes) engineNodes.add(n.name);
  const diverging: NodeFinding[] = [];
  let nodesChecked = 0;
  for (const node of order) {
    if (!engineNodes.has(node.name)) continue;
    nodesChecked++;
    const f = checkNode(compiled, node, values, tolerance);
    if (f) diverging.push(f);
  }

  let firstNonFinite: NodeFinding | undefined;
  for (const node of order) {
    const bad = node.outputs.some((o) => o !== null && values.has(o) && !allFinite(values.get(o)!));
    if (bad) {
      const inputsFinite = nodeInputs(node).every((v) => !values.has(v) || allFinite(values.get(v)!));
      if (inputsFinite) {
        firstNonFinite = finding(node, {
          detail: `first non-finite value (${node.outputs.map((o) => (o ? graph.values[o]?.dtype : "")).join(", ")})`,
          ...(finiteInFloat32(node, values) ? { fixedByFloat32: true } : {}),
        });
        break;
      }
    }
  }

  const floatName = keptPrecisionName(compiled.options.enabledPrecisions);
  const kept = opts.sensitivity
    ? keptLayers(
        compiled,
        opts.sensitivity.kept,
        formatSensitivity(opts.sensitivity, floatName),
        "kept layers",
      )
    : undefined;
  const fast = opts.int8Choice
    ? keptLayers(
        compiled,
        opts.int8Choice.kept,
        formatInt8Choice(opts.int8Choice),
        "convolutions kept for speed",
      )
    : undefined;
  const ok =
    outputs.every((o) => o.ok) &&
    diverging.length === 0 &&
    !kept?.quantized.length &&
    !fast?.quantized.length;
  const lines = [
    `verify: ${ok ? "ok" : "MISMATCH"} (tolerance ${tolerance} on max|err|/max|ref| against the aten reference of the lowered graph)`,
    ...outputs.map((o) => `  output '${o.name}': ${o.relative.toExponential(2)} ${o.ok ? "ok" : "FAILS"}`),
    `  ${nodesChecked} engine node(s) converted one by one and checked: ${diverging.length} diverge`,
    ...diverging
      .slice(0, 5)
      .map(
        (d, i) =>
          `  ${i === 0 ? "first divergence" : "then"}: ${d.where}${d.converter ? ` [converter '${d.converter}']` : ""}: ${d.relative !== undefined ? `error ${d.relative.toExponential(2)}` : d.detail}`,
      ),
    ...(firstNonFinite ? [`  ${firstNonFinite.detail}: ${firstNonFinite.where}`] : []),
    ...(firstNonFinite?.fixedByFloat32 ? [`  ${FP16_OVERFLOW_HINT}`] : []),
    ...(kept?.lines ?? []),
    ...(fast?.lines ?? []),
  ];
  return { ok, tolerance, outputs, nodesChecked, diverging, firstNonFinite, text: lines.join("\n") };
}
