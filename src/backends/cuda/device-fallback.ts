/**
 * What the CUDA execution context needs of a fallback segment to run it between engines on device memory: the
 * segment's inputs and outputs with their types, and a launch that reads and writes device buffers on the
 * context's stream. The LibTorch runner (backends/torch) is one; the contract sits here, below it, so the
 * execution context never names the runner.
 */
import type { SegmentRunner } from "../../core/segment-runner.js";
import type { TensorType } from "../../ir/graph.js";
import type { Stream } from "./device/stream.js";
import type { DeviceMemory } from "./device/validate.js";

export interface DeviceFallbackRunner extends SegmentRunner {
  readonly plan: {
    readonly inputs: readonly { readonly name: string; readonly type: TensorType }[];
    readonly outputs: readonly { readonly name: string; readonly type: TensorType }[];
  };
  /** Queues the segment on `opts.stream`; outputs go to `opts.outputs` where given. */
  launchDevice(
    inputs: ReadonlyMap<string, DeviceMemory>,
    opts?: {
      readonly outputs?: ReadonlyMap<string, DeviceMemory>;
      readonly stream?: Stream;
    },
  ): ReadonlyMap<string, DeviceMemory>;
}
