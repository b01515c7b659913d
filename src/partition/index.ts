export { partitionGraph, DEFAULT_MIN_BLOCK_SIZE, type Partition, type PartitionOptions } from "./partition.js";
export { formatPartitionReport, type PartitionReport, type SegmentSummary, type FallbackNode } from "./report.js";
export type { Segment, SegmentKind } from "./segment.js";
export { classifyNodes, type Placement } from "./classify.js";
export { groupByKind } from "./group.js";
