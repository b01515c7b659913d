/** How compiled.memory() is shown; the execution-context contracts themselves are in src/core/execution.ts. */
import type { ContextMemory, ModuleMemory } from "../core/execution.js";
import { formatBytes } from "../ir/summary.js";

// The contracts live in src/core (backends implement them without importing the runtime); re-exported here.
export type {
  ContextMemory,
  DeviceAllocator,
  ExecutionContext,
  HostRegistration,
  ModuleMemory,
  OutputRequest,
  RunOptions,
} from "../core/execution.js";

/**
 * A module's memory from its device weight bytes, the sum of each part over its contexts (or buckets), how many
 * contexts it holds and what one more costs (zeros where it holds none); the device total counts weights once.
 */
export function moduleMemory(
  weights: number,
  sum: (k: keyof ContextMemory) => number,
  contexts: number,
  perContext: ContextMemory | undefined,
): ModuleMemory {
  const activations = sum("activations");
  const workspaces = sum("workspaces");
  const io = sum("io");
  return {
    weights,
    activations,
    workspaces,
    io,
    pinnedHost: sum("pinnedHost"),
    deviceTotal: weights + activations + workspaces + io,
    contexts,
    perContext: perContext ?? { activations: 0, workspaces: 0, io: 0, pinnedHost: 0 },
  };
}

export function formatMemory(m: ModuleMemory): string {
  const f = formatBytes;
  return (
    `memory: weights ${f(m.weights)}, activations ${f(m.activations)}, workspaces ${f(m.workspaces)}, ` +
    `I/O buffers ${f(m.io)}, pinned host ${f(m.pinnedHost)} (device total ${f(m.deviceTotal)}; ` +
    `${m.contexts} execution context(s), each ${f(m.perContext.activations + m.perContext.workspaces + m.perContext.io)} device + ${f(m.perContext.pinnedHost)} pinned)`
  );
}
