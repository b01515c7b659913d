// Segment is a contract between the partitioner, the converters and the backends: it lives in src/core.
export type { Segment, SegmentKind } from "../core/segment.js";
