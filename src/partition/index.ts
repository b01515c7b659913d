export { classifyNodes, type Placement } from "./classify.js";
export { functionalize } from "./functionalize.js";
export { groupByKind } from "./group.js";
export {
  DEFAULT_MIN_BLOCK_SIZE,
  type Partition,
  type PartitionOptions,
  partitionGraph,
} from "./partition.js";
export {
  type FallbackNode,
  formatPartitionReport,
  type PartitionReport,
  type SegmentSummary,
} from "./report.js";
export type { Segment, SegmentKind } from "./segment.js";
