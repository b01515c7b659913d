/** How compiled.memory() is shown; the execution-context contracts themselves are in src/core/execution.ts. */
import type { ModuleMemory } from "../core/execution.js";
import { formatBytes } from "../ir/summary.js";

// The contracts live in src/core (backends implement them without importing the runtime); re-exported here.
export type {
  ContextMemory,
  DeviceAllocator,
  ExecutionContext,
  ModuleMemory,
  OutputRequest,
  RunOptions,
} from "../core/execution.js";

export function formatMemory(m: ModuleMemory): string {
  const f = formatBytes;
  return (
    `memory: weights ${f(m.weights)}, activations ${f(m.activations)}, workspaces ${f(m.workspaces)}, ` +
    `I/O buffers ${f(m.io)}, pinned host ${f(m.pinnedHost)} (device total ${f(m.deviceTotal)}; ` +
    `${m.contexts} execution context(s), each ${f(m.perContext.activations + m.perContext.workspaces + m.perContext.io)} device + ${f(m.perContext.pinnedHost)} pinned)`
  );
}
