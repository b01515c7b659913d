/**
 * A stand-in for a GPU so the pool's device handling runs on the CPU: the reference backend "on device d", with
 * execution contexts (so a replica takes `contexts` runs at once like a CUDA module) that wait `delayMs`, record
 * which device ran and how many ran there at once, and can be told to fail a build or a run.
 */
import { referenceBackend } from "../../src/backends/reference/index.js";
import type { Graph } from "../../src/ir/graph.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { isDeviceTensor } from "../../src/runtime/device-tensor.js";
import type { ExecutionContext } from "../../src/runtime/execution.js";
import type { Backend, SegmentRunner } from "../../src/runtime/segment-runner.js";

export interface DeviceLog {
  /** The device of each run, in the order runs started. */
  readonly runs: number[];
  /** Most runs in flight at once, per device. */
  readonly peak: Map<number, number>;
  readonly disposed: number[];
}

export function deviceLog(): DeviceLog {
  return { runs: [], peak: new Map(), disposed: [] };
}

export interface FakeDevice {
  readonly delayMs?: number;
  readonly failBuild?: boolean;
  readonly failRun?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function fakeDeviceBackend(device: number, log: DeviceLog, how: FakeDevice = {}): Backend {
  let running = 0;
  return {
    ...referenceBackend,
    name: `fake device ${device}`,
    async engine(segment, network) {
      if (how.failBuild) throw new Error("out of memory while building");
      return referenceBackend.engine(segment, network);
    },
    createContext(graph: Graph, runners: readonly SegmentRunner[]): ExecutionContext {
      return {
        async run(inputs) {
          log.runs.push(device);
          running++;
          log.peak.set(device, Math.max(log.peak.get(device) ?? 0, running));
          try {
            await sleep(how.delayMs ?? 5);
            if (how.failRun) throw new Error("injected failure");
            // Device tensors only test where a call is routed: nothing to compute from a fake pointer.
            if (inputs.some(isDeviceTensor)) return [];
            const values = new Map<string, Tensor>(graph.inputs.map((n, i) => [n, inputs[i] as Tensor]));
            for (const r of runners) for (const [k, v] of await r.run(values)) values.set(k, v);
            return graph.outputs.map((n) => values.get(n)!);
          } finally {
            running--;
          }
        },
        memory: { activations: 1000 * (device + 1), workspaces: 0, io: 0, pinnedHost: 0 },
        dispose() {},
      };
    },
    dispose() {
      log.disposed.push(device);
    },
  };
}
