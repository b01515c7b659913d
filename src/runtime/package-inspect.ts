/**
 * `torchc inspect model.torchc`: what a package holds, read and checked like a load (hashes included) but
 * without building anything: the model's inputs and outputs, precision and options, what its engines were built
 * for, how many library plans and compiled kernels they carry, and the sizes of its parts; for a model with
 * control flow, its ifs and loops and what their blocks (saved lowered, with weights of their own) hold.
 */
import { statSync } from "node:fs";
import { formatBytes } from "../frontends/limits.js";
import type { Graph } from "../ir/graph.js";
import { loadPackage } from "./package.js";
import { type BuildTarget, formatTarget } from "./package-artifacts.js";

export interface PackageDescription {
  readonly path: string;
  readonly source: string;
  readonly bytes: number;
  readonly inputs: readonly { name: string; type: string }[];
  readonly outputs: readonly { name: string; type: string }[];
  readonly backend: string;
  readonly precision: readonly string[];
  readonly nodes: number;
  readonly weights: { readonly count: number; readonly bytes: number };
  /** Control-flow nodes (nested ones included) and their blocks; absent when the model has none. */
  readonly control?: {
    readonly ifs: number;
    readonly loops: number;
    readonly blocks: number;
    /** Nodes in the blocks, and the blocks' own weights (not the model's they read). */
    readonly nodes: number;
    readonly weights: number;
    readonly weightBytes: number;
  };
  /** Absent when the package carries no engines (they are built when it is loaded). */
  readonly engines?: {
    readonly builtFor: BuildTarget;
    readonly segments: number;
    readonly cudnnPlans: number;
    readonly cudnnSerialized: number;
    readonly cublasLtAlgos: number;
    readonly kernelPrograms: number;
    readonly activationBytes: number;
    readonly blobBytes: number;
  };
}

const typeText = (t: { dtype: string; shape: readonly number[] }) => `${t.dtype}[${t.shape.join(", ")}]`;
const count = (v: unknown) => (v && typeof v === "object" ? Object.keys(v).length : 0);

function controlOf(g: Graph): PackageDescription["control"] {
  const c = { ifs: 0, loops: 0, blocks: 0, nodes: 0, weights: 0, weightBytes: 0 };
  const visit = (graph: Graph) => {
    for (const n of graph.nodes) {
      if (!n.subgraphs?.length) continue;
      if (n.op === "prim.If") c.ifs++;
      else c.loops++;
      for (const b of n.subgraphs) {
        c.blocks++;
        c.nodes += b.nodes.length;
        for (const w of Object.values(b.weights)) {
          c.weights++;
          c.weightBytes += w.tensor.data.byteLength;
        }
        visit(b);
      }
    }
  };
  visit(g);
  return c.blocks > 0 ? c : undefined;
}

export function describePackage(path: string): PackageDescription {
  const pkg = loadPackage(path);
  const g = pkg.graph;
  let weightBytes = 0;
  for (const w of Object.values(g.weights)) weightBytes += w.tensor.data.byteLength;
  const a = pkg.artifacts;
  let engines: PackageDescription["engines"];
  if (a) {
    const records = Object.values(a.engines) as Record<string, unknown>[];
    const convs = records.flatMap((r) =>
      Object.values((r.convs ?? {}) as Record<string, { planBlob?: string }>),
    );
    engines = {
      builtFor: a.builtFor,
      segments: records.length,
      cudnnPlans: convs.length,
      cudnnSerialized: convs.filter((c) => c.planBlob !== undefined).length,
      cublasLtAlgos: records.reduce((n, r) => n + count(r.matmuls), 0),
      kernelPrograms: records.reduce((n, r) => n + count(r.kernels), 0),
      activationBytes: records.reduce(
        (n, r) => n + ((r.memory as { arenaBytes?: number })?.arenaBytes ?? 0),
        0,
      ),
      blobBytes: Object.values(a.blobs).reduce((n, b) => n + b.byteLength, 0),
    };
  }
  const backend = pkg.options.backend;
  const control = controlOf(g);
  return {
    path,
    source: pkg.source,
    bytes: statSync(path).size,
    inputs: g.inputs.map((n) => ({ name: n, type: typeText(g.values[n]) })),
    outputs: g.outputs.map((n) => ({
      name: n,
      type: typeText(
        g.values[n] ?? { dtype: g.weights[n]?.tensor.dtype ?? "?", shape: g.weights[n]?.tensor.shape ?? [] },
      ),
    })),
    backend: typeof backend === "string" ? backend : "reference",
    precision: (pkg.options.enabledPrecisions ?? ["fp32"]).map(String),
    nodes: g.nodes.length,
    weights: { count: Object.keys(g.weights).length, bytes: weightBytes },
    ...(control ? { control } : {}),
    ...(engines ? { engines } : {}),
  };
}

export function formatPackage(d: PackageDescription): string {
  const lines = [
    `${d.path} (torchc package, ${formatBytes(d.bytes)}) from ${d.source}`,
    `  inputs:    ${d.inputs.map((i) => `${i.name}: ${i.type}`).join(", ")}`,
    `  outputs:   ${d.outputs.map((o) => `${o.name}: ${o.type}`).join(", ")}`,
    `  backend:   ${d.backend}, precision ${d.precision.join(", ")}`,
    `  graph:     ${d.nodes} nodes after lowering, ${d.weights.count} weights (${formatBytes(d.weights.bytes)})`,
  ];
  const c = d.control;
  if (c) {
    const what = [
      c.ifs > 0 ? `${c.ifs} if${c.ifs === 1 ? "" : "s"}` : "",
      c.loops > 0 ? `${c.loops} loop${c.loops === 1 ? "" : "s"}` : "",
    ].filter(Boolean);
    lines.push(
      `  control:   ${what.join(", ")}: ${c.blocks} blocks, saved lowered (${c.nodes} nodes, ${c.weights} weight${c.weights === 1 ? "" : "s"} of their own, ${formatBytes(c.weightBytes)})`,
    );
  }
  const e = d.engines;
  if (!e) lines.push("  engines:   none saved (built when the package is loaded)");
  else
    lines.push(
      `  engines:   ${e.segments} engine segment(s): ${e.cudnnPlans} cuDNN plans (${e.cudnnSerialized} serialized), ${e.cublasLtAlgos} cuBLASLt algorithms, ${e.kernelPrograms} compiled kernel program(s); activations ${formatBytes(e.activationBytes)}; engine data ${formatBytes(e.blobBytes)}`,
      `  built for: ${formatTarget(e.builtFor)}`,
    );
  return lines.join("\n");
}
