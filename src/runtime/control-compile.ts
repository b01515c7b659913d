/**
 * How compile() builds the blocks of control-flow segments (control-runner.ts) and reports them. Each block is
 * compiled as a model of its own with the enclosing module's options, so its straight-line parts become engines
 * of the same backend kind and the rest its fallback.
 */
import type { Graph } from "../ir/graph.js";
import type { CompiledModule } from "./compile.js";
import type { CompileBlock } from "./control-runner.js";
import { isControlRunner } from "./control-runner.js";
import type { CompileOptions } from "./options.js";
import type { Backend, SegmentRunner } from "./segment-runner.js";

type Compile = (graph: Graph, options: CompileOptions) => Promise<CompiledModule>;

/**
 * Options for a block: the module's, less what names the module's own inputs or saved engines (input shapes, a
 * batch range, package artifacts keyed by the module's segment indices), calibration and verification.
 */
export function blockOptions(options: CompileOptions): CompileOptions {
  const {
    inputs: _inputs,
    dynamic: _dynamic,
    artifacts: _artifacts,
    calibration: _calibration,
    verify: _verify,
    backend,
    ...rest
  } = options;
  return {
    ...rest,
    // A block is small (a branch is often two or three nodes); under the default minBlockSize a whole branch
    // that converts would run in the fallback. An explicit minBlockSize still holds.
    minBlockSize: options.minBlockSize ?? 1,
    // A backend object is shared; the block's module must not dispose it. A named one is opened per block, so
    // its engines' recorded choices never mix with the module's (they are keyed by segment index).
    ...(backend === undefined ? {} : { backend: typeof backend === "string" ? backend : borrowed(backend) }),
  };
}

function borrowed(backend: Backend): Backend {
  return Object.create(backend, { dispose: { value: undefined } }) as Backend;
}

export function blockCompiler(compile: Compile, options: CompileOptions): CompileBlock {
  const opts = blockOptions(options);
  return (graph) => compile(graph, opts);
}

/** The compile report's line on control flow, if the module has any. */
export function controlFlowSummary(runners: readonly SegmentRunner[]): string[] {
  const control = runners.filter(isControlRunner);
  if (control.length === 0) return [];
  const ifs = control.filter((r) => r.op === "if").length;
  const loops = control.length - ifs;
  const parts = [ifs > 0 ? `${ifs} if` : "", loops > 0 ? `${loops} loop${loops === 1 ? "" : "s"}` : ""];
  const what = [ifs > 0 ? "branches" : "", loops > 0 ? "loop bodies" : ""].filter(Boolean).join(" and ");
  return [
    `control flow: ${parts.filter(Boolean).join(", ")}, ${what} compiled separately (each engine keeps its own ` +
      "CUDA graph; the module is not one graph, and each predicate is read back to the host)",
    ...control.map((r) => `  segment ${r.segment.index}: ${r.description}`),
  ];
}
