/**
 * The one cuDNN operation graph for a convolution with a fused pointwise epilogue:
 * x ⊛ w → (+bias) → stage → … → y, fp32 compute, I/O in the spec's dtype, intermediates virtual fp32.
 * An int8 graph (`quant`, cudnn-frontend's run_conv_scale_bias_relu_int8) has int8 x and w, int32 compute
 * and a virtual int32 conv output, then a mandatory per-channel fp32 scale (MUL), the fp32 bias and the
 * epilogue, y in `quant.output` (int8, fp16 or fp32).
 * convGraphLayout is the pure part (which tensors, their ids, dims, strides and dtypes, which pointwise
 * modes, in what order); buildConvGraph makes the descriptors from it. Both device/conv.ts and the
 * engine's convolutions (kernels/conv-cudnn.ts) build their graphs here.
 */
import { ATTR, ATTR_TYPE, CONV_MODE, CUDNN_DATA, DESC, POINTWISE } from "../../../ffi/cudnn.js";
import type { ConvActivationKind, ConvDType, Dims4 } from "./conv-shape.js";
import { BackendDescriptor } from "./cudnn-backend.js";

/** cuDNN's pointwise mode for each fusable activation (the single table; fuse/ names the same kinds). */
export const ACTIVATION_MODE: Readonly<Record<ConvActivationKind, number>> = {
  relu: POINTWISE.RELU_FWD,
  silu: POINTWISE.SWISH_FWD,
  sigmoid: POINTWISE.SIGMOID_FWD,
  tanh: POINTWISE.TANH_FWD,
  gelu_erf: POINTWISE.GELU_FWD,
  gelu_tanh: POINTWISE.GELU_APPROX_TANH_FWD,
};

export const CUDNN_DTYPE: Readonly<Record<ConvDType, number>> = {
  float16: CUDNN_DATA.HALF,
  bfloat16: CUDNN_DATA.BFLOAT16,
  float32: CUDNN_DATA.FLOAT,
};

/** One epilogue stage: an activation, or add/mul by a y-shaped tensor or a per-channel vector. */
export type ConvGraphStage =
  | { readonly kind: "act"; readonly fn: ConvActivationKind }
  | { readonly kind: "tensor" | "channel"; readonly op: "add" | "mul" };

export interface StridedDims {
  readonly dims: Dims4;
  readonly strides: Dims4;
}

/** The output type of an int8 graph. */
export type Int8ConvOutput = "int8" | "float16" | "float32";

/**
 * What makes a graph quantized: x and w int8 (int32 accumulation), or FP8 E4M3 (`input: "fp8e4m3"`, fp32
 * accumulation, Hopper and later: cudnn-frontend's fp8 fprop sample), a per-channel scale, y in `output`.
 */
export interface ConvGraphQuant {
  readonly output: Int8ConvOutput;
  readonly input?: "int8" | "fp8e4m3";
}

interface ConvGraphCommon {
  readonly x: StridedDims;
  /** [K, C/groups, R, S]. */
  readonly w: StridedDims;
  readonly y: StridedDims;
  /** [1, K, 1, 1]: the bias's and channel operands' dims and strides. */
  readonly channel: StridedDims;
  readonly stride: readonly [number, number];
  readonly prePadding: readonly [number, number];
  readonly postPadding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly bias: boolean;
  readonly epilogue: readonly ConvGraphStage[];
}

/** x, w, y, bias and operands all of `dtype`. */
export interface FloatConvGraphSpec extends ConvGraphCommon {
  readonly dtype: ConvDType;
  readonly quant?: undefined;
}

/**
 * x and w int8; y of `quant.output`; the scale and bias float32; channel and tensor operands of y's type, or
 * float32 when y is int8 (an int8 operand would need its own scale).
 */
export interface Int8ConvGraphSpec extends ConvGraphCommon {
  readonly quant: ConvGraphQuant;
  readonly dtype?: undefined;
}

export type ConvGraphSpec = FloatConvGraphSpec | Int8ConvGraphSpec;

const INT8_OUTPUT: Readonly<Record<Int8ConvOutput, number>> = {
  int8: CUDNN_DATA.INT8,
  float16: CUDNN_DATA.HALF,
  float32: CUDNN_DATA.FLOAT,
};

/** The cuDNN data types of a graph's tensors, by role. */
interface GraphTypes {
  readonly xw: number;
  readonly bias: number;
  readonly y: number;
  readonly operand: number;
  readonly convOut: number;
  readonly compute: number;
}

function graphTypes(spec: ConvGraphSpec): GraphTypes {
  if (spec.quant === undefined) {
    const io = CUDNN_DTYPE[spec.dtype];
    return { xw: io, bias: io, y: io, operand: io, convOut: CUDNN_DATA.FLOAT, compute: CUDNN_DATA.FLOAT };
  }
  const y = INT8_OUTPUT[spec.quant.output];
  const fp8 = spec.quant.input === "fp8e4m3";
  return {
    xw: fp8 ? CUDNN_DATA.FP8_E4M3 : CUDNN_DATA.INT8,
    bias: CUDNN_DATA.FLOAT,
    y,
    operand: y === CUDNN_DATA.INT8 ? CUDNN_DATA.FLOAT : y,
    convOut: fp8 ? CUDNN_DATA.FLOAT : CUDNN_DATA.INT32,
    compute: fp8 ? CUDNN_DATA.FLOAT : CUDNN_DATA.INT32,
  };
}

export interface GraphTensor {
  readonly label: string;
  readonly uid: bigint;
  readonly dims: readonly number[];
  readonly strides: readonly number[];
  readonly dataType: number;
  readonly isVirtual: boolean;
}

export interface GraphPointwise {
  readonly label: string;
  readonly mode: number;
  /** Indices into ConvGraphLayout.tensors. */
  readonly input: number;
  readonly operand?: number;
  readonly output: number;
}

export interface ConvGraphLayout {
  /**
   * Real tensors first (ids 1… in variant-pack order: x, w, [scale,] bias, y, operands; the scale only in
   * int8 graphs), then virtual ones.
   */
  readonly tensors: readonly GraphTensor[];
  /** Indices of x, w and the convolution's output (y when there is no epilogue). */
  readonly x: number;
  readonly w: number;
  readonly convOut: number;
  readonly pointwise: readonly GraphPointwise[];
  /** Ids of the real tensors, in the order the variant pack takes pointers. */
  readonly uids: readonly bigint[];
}

/** Which tensors and pointwise ops the graph for `spec` has (pure: no cuDNN calls). */
export function convGraphLayout(spec: ConvGraphSpec): ConvGraphLayout {
  const tensors: GraphTensor[] = [];
  const add = (label: string, t: StridedDims, dataType: number, isVirtual: boolean): number => {
    const { dims, strides } = t;
    tensors.push({ label, uid: BigInt(tensors.length + 1), dims, strides, dataType, isVirtual });
    return tensors.length - 1;
  };
  const types = graphTypes(spec);
  const x = add("x", spec.x, types.xw, false);
  const w = add("w", spec.w, types.xw, false);
  const scale = spec.quant ? add("scale", spec.channel, CUDNN_DATA.FLOAT, false) : undefined;
  const bias = spec.bias ? add("bias", spec.channel, types.bias, false) : undefined;
  const y = add("y", spec.y, types.y, false);
  const operands = spec.epilogue.map((op, i) => {
    if (op.kind === "tensor") return add(`operand ${i}`, spec.y, types.operand, false);
    if (op.kind === "channel") return add(`channel ${i}`, spec.channel, types.operand, false);
    return undefined;
  });
  const uids = tensors.map((t) => t.uid);
  const stages = (scale !== undefined ? 1 : 0) + (spec.bias ? 1 : 0) + spec.epilogue.length;
  const virt = (label: string, dataType: number = CUDNN_DATA.FLOAT) => add(label, spec.y, dataType, true);
  const convOut = stages === 0 ? y : virt("conv out", types.convOut);
  const pointwise: GraphPointwise[] = [];
  const stage = (label: string, mode: number, operand?: number) => {
    const input = pointwise.length === 0 ? convOut : pointwise[pointwise.length - 1].output;
    const output = pointwise.length + 1 === stages ? y : virt(`${label} out`);
    pointwise.push({ label, mode, input, operand, output });
  };
  if (scale !== undefined) stage("scale", POINTWISE.MUL, scale);
  if (bias !== undefined) stage("bias", POINTWISE.ADD, bias);
  spec.epilogue.forEach((op, i) => {
    if (op.kind === "act") stage(op.fn, ACTIVATION_MODE[op.fn]);
    else stage(`${op.kind} ${op.op}`, op.op === "add" ? POINTWISE.ADD : POINTWISE.MUL, operands[i]);
  });
  return { tensors, x, w, convOut, pointwise, uids };
}

/** Creates a descriptor and records it in `owned` (destroyed by the caller, in reverse, with the plan). */
export type DescriptorMaker = (type: number, label: string) => BackendDescriptor;

export function ownedMaker(owned: BackendDescriptor[]): DescriptorMaker {
  return (type, label) => {
    const d = BackendDescriptor.create(type, label);
    owned.push(d);
    return d;
  };
}

function tensorDescriptor(make: DescriptorMaker, t: GraphTensor): BackendDescriptor {
  const d = make(DESC.TENSOR, `tensor ${t.label}`)
    .enum32(ATTR.TENSOR_DATA_TYPE, ATTR_TYPE.DATA_TYPE, t.dataType, "DATA_TYPE")
    .int64s(ATTR.TENSOR_DIMENSIONS, t.dims, "DIMENSIONS")
    .int64s(ATTR.TENSOR_STRIDES, t.strides, "STRIDES")
    .int64s(ATTR.TENSOR_UNIQUE_ID, [t.uid], "UNIQUE_ID")
    .int64s(ATTR.TENSOR_BYTE_ALIGNMENT, [16], "BYTE_ALIGNMENT");
  if (t.isVirtual) d.bool(ATTR.TENSOR_IS_VIRTUAL, true, "IS_VIRTUAL");
  return d.finalize();
}

function convolutionOp(
  make: DescriptorMaker,
  spec: ConvGraphSpec,
  x: BackendDescriptor,
  w: BackendDescriptor,
  y: BackendDescriptor,
): BackendDescriptor {
  const conv = make(DESC.CONVOLUTION, "convolution")
    .enum32(ATTR.CONVOLUTION_COMP_TYPE, ATTR_TYPE.DATA_TYPE, graphTypes(spec).compute, "COMP_TYPE")
    .enum32(ATTR.CONVOLUTION_CONV_MODE, ATTR_TYPE.CONVOLUTION_MODE, CONV_MODE.CROSS_CORRELATION, "CONV_MODE")
    .int64s(ATTR.CONVOLUTION_SPATIAL_DIMS, [2], "SPATIAL_DIMS")
    .int64s(ATTR.CONVOLUTION_DILATIONS, spec.dilation, "DILATIONS")
    .int64s(ATTR.CONVOLUTION_FILTER_STRIDES, spec.stride, "FILTER_STRIDES")
    .int64s(ATTR.CONVOLUTION_PRE_PADDINGS, spec.prePadding, "PRE_PADDINGS")
    .int64s(ATTR.CONVOLUTION_POST_PADDINGS, spec.postPadding, "POST_PADDINGS")
    .finalize();
  return make(DESC.OPERATION_CONVOLUTION_FORWARD, "conv op")
    .descriptors(ATTR.CONV_FWD_X, [x], "X")
    .descriptors(ATTR.CONV_FWD_W, [w], "W")
    .descriptors(ATTR.CONV_FWD_Y, [y], "Y")
    .descriptors(ATTR.CONV_FWD_CONV_DESC, [conv], "CONV_DESC")
    .float(ATTR.CONV_FWD_ALPHA, 1, "ALPHA")
    .float(ATTR.CONV_FWD_BETA, 0, "BETA")
    .finalize();
}

function pointwiseOp(
  make: DescriptorMaker,
  p: GraphPointwise,
  tensors: readonly BackendDescriptor[],
): BackendDescriptor {
  const pw = make(DESC.POINTWISE, `${p.label} mode`)
    .enum32(ATTR.POINTWISE_MODE, ATTR_TYPE.POINTWISE_MODE, p.mode, "MODE")
    .enum32(ATTR.POINTWISE_MATH_PREC, ATTR_TYPE.DATA_TYPE, CUDNN_DATA.FLOAT, "MATH_PREC")
    .finalize();
  const op = make(DESC.OPERATION_POINTWISE, `${p.label} op`)
    .descriptors(ATTR.POINTWISE_PW_DESCRIPTOR, [pw], "PW_DESCRIPTOR")
    .descriptors(ATTR.POINTWISE_XDESC, [tensors[p.input]], "XDESC");
  if (p.operand !== undefined) op.descriptors(ATTR.POINTWISE_BDESC, [tensors[p.operand]], "BDESC");
  return op.descriptors(ATTR.POINTWISE_YDESC, [tensors[p.output]], "YDESC").finalize();
}

/**
 * The finalized operation graph for `spec` on `handle`, and the real tensors' ids in variant-pack order.
 * Every descriptor goes through `make` (the caller owns them). Throws CudnnError when cuDNN refuses one.
 */
export function buildConvGraph(
  handle: bigint,
  spec: ConvGraphSpec,
  make: DescriptorMaker,
): { graph: BackendDescriptor; uids: readonly bigint[] } {
  const layout = convGraphLayout(spec);
  const tensors = layout.tensors.map((t) => tensorDescriptor(make, t));
  const ops = [convolutionOp(make, spec, tensors[layout.x], tensors[layout.w], tensors[layout.convOut])];
  for (const p of layout.pointwise) ops.push(pointwiseOp(make, p, tensors));
  const graph = make(DESC.OPERATIONGRAPH, "operation graph")
    .handleAttr(ATTR.OPERATIONGRAPH_HANDLE, handle, "HANDLE")
    .descriptors(ATTR.OPERATIONGRAPH_OPS, ops, "OPS")
    .finalize();
  return { graph, uids: layout.uids };
}
