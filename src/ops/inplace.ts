import type { Arg, TensorType } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { ACTIVATION_OPS } from "./activation.js";
import { COMPARE_OPS } from "./compare.js";
import { ELEMENTWISE_OPS } from "./elementwise.js";
import { MATMUL_OPS } from "./matmul.js";
import { castTo, MISC_OPS } from "./misc.js";
import { REDUCE_OPS } from "./reduce.js";
import { OpArgError } from "./schema.js";
import type { ArgSpec, OpDef } from "./types.js";
import { VIEW_OPS } from "./view.js";

// In-place overloads (`relu_`, `add_.Tensor`, …) appear in TorchScript graphs and in torch.export's default IR.
// Each computes what its functional op computes, in the mutated tensor's dtype; whoever runs the graph must
// also rebind the mutated argument (`self`) to the result (see MUTATED_ARG).

const FUNCTIONAL = {
  ...ACTIVATION_OPS,
  ...COMPARE_OPS,
  ...ELEMENTWISE_OPS,
  ...MATMUL_OPS,
  ...MISC_OPS,
  ...REDUCE_OPS,
  ...VIEW_OPS,
};
type FunctionalName = keyof typeof FUNCTIONAL;

/** The argument an in-place op writes to. */
export const MUTATED_ARG = "self";

export type InplaceOpDef<N extends string, F extends FunctionalName> = OpDef<
  Parameters<(typeof FUNCTIONAL)[F]["infer"]>[0]
> & {
  readonly name: N;
  /** The functional op this one stands for. */
  readonly functional: F;
};

function inplace<const N extends string, const F extends FunctionalName>(
  name: N,
  functional: F,
): InplaceOpDef<N, F> {
  const f = FUNCTIONAL[functional] as unknown as OpDef<unknown>;
  const first = f.schema[0].name;
  // dropout_ calls its tensor `self` where dropout says `input`.
  const schema: ArgSpec[] = [{ ...f.schema[0], name: MUTATED_ARG }, ...f.schema.slice(1)];
  const parse = (args: Readonly<Record<string, Arg>>) => {
    if (first === MUTATED_ARG) return f.parse(args);
    const { [MUTATED_ARG]: self, ...rest } = args;
    if (first in rest) throw new OpArgError(name, first, "not in the schema");
    return f.parse(self === undefined ? rest : { ...rest, [first]: self });
  };
  const selfName = (args: Readonly<Record<string, Arg>>) => {
    const a = args[MUTATED_ARG];
    if (a?.kind !== "tensor") throw new OpArgError(name, MUTATED_ARG, "must be a tensor");
    return a.name;
  };
  return Object.freeze({
    name,
    functional,
    schema: Object.freeze(schema),
    returns: 1,
    // The typed record is the functional op's; the tensor written to is its first argument.
    parse: (args: Readonly<Record<string, Arg>>) => {
      selfName(args);
      return parse(args);
    },
    infer: (a: unknown, typeOf: (n: string) => TensorType): TensorType[] => {
      const [out] = f.infer(a, typeOf);
      const self = (a as Record<string, unknown>)[first === MUTATED_ARG ? MUTATED_ARG : first];
      return [{ dtype: typeof self === "string" ? typeOf(self).dtype : out.dtype, shape: out.shape }];
    },
    evaluate: (a: unknown, valueAt: (n: string) => Tensor): Tensor[] => {
      const [out] = f.evaluate(a, valueAt);
      const self = (a as Record<string, unknown>)[first === MUTATED_ARG ? MUTATED_ARG : first];
      return [typeof self === "string" ? castTo(out, valueAt(self).dtype) : out];
    },
  }) as unknown as InplaceOpDef<N, F>;
}

export const INPLACE_OPS = {
  "aten.abs_.default": inplace("aten.abs_.default", "aten.abs.default"),
  "aten.add_.Scalar": inplace("aten.add_.Scalar", "aten.add.Scalar"),
  "aten.add_.Tensor": inplace("aten.add_.Tensor", "aten.add.Tensor"),
  "aten.addmm_.default": inplace("aten.addmm_.default", "aten.addmm.default"),
  "aten.alpha_dropout_.default": inplace("aten.alpha_dropout_.default", "aten.alpha_dropout.default"),
  "aten.atan_.default": inplace("aten.atan_.default", "aten.atan.default"),
  "aten.bitwise_not_.default": inplace("aten.bitwise_not_.default", "aten.bitwise_not.default"),
  "aten.ceil_.default": inplace("aten.ceil_.default", "aten.ceil.default"),
  "aten.clamp_.Tensor": inplace("aten.clamp_.Tensor", "aten.clamp.Tensor"),
  "aten.clamp_.default": inplace("aten.clamp_.default", "aten.clamp.default"),
  "aten.clamp_max_.Tensor": inplace("aten.clamp_max_.Tensor", "aten.clamp_max.Tensor"),
  "aten.clamp_max_.default": inplace("aten.clamp_max_.default", "aten.clamp_max.default"),
  "aten.clamp_min_.Tensor": inplace("aten.clamp_min_.Tensor", "aten.clamp_min.Tensor"),
  "aten.clamp_min_.default": inplace("aten.clamp_min_.default", "aten.clamp_min.default"),
  "aten.copy_.default": inplace("aten.copy_.default", "aten.copy.default"),
  "aten.cos_.default": inplace("aten.cos_.default", "aten.cos.default"),
  "aten.cumsum_.default": inplace("aten.cumsum_.default", "aten.cumsum.default"),
  "aten.detach_.default": inplace("aten.detach_.default", "aten.detach.default"),
  "aten.div_.Scalar": inplace("aten.div_.Scalar", "aten.div.Scalar"),
  "aten.div_.Scalar_mode": inplace("aten.div_.Scalar_mode", "aten.div.Scalar_mode"),
  "aten.div_.Tensor": inplace("aten.div_.Tensor", "aten.div.Tensor"),
  "aten.div_.Tensor_mode": inplace("aten.div_.Tensor_mode", "aten.div.Tensor_mode"),
  "aten.dropout_.default": inplace("aten.dropout_.default", "aten.dropout.default"),
  "aten.elu_.default": inplace("aten.elu_.default", "aten.elu.default"),
  "aten.eq_.Scalar": inplace("aten.eq_.Scalar", "aten.eq.Scalar"),
  "aten.eq_.Tensor": inplace("aten.eq_.Tensor", "aten.eq.Tensor"),
  "aten.erf_.default": inplace("aten.erf_.default", "aten.erf.default"),
  "aten.exp2_.default": inplace("aten.exp2_.default", "aten.exp2.default"),
  "aten.exp_.default": inplace("aten.exp_.default", "aten.exp.default"),
  "aten.expm1_.default": inplace("aten.expm1_.default", "aten.expm1.default"),
  "aten.feature_alpha_dropout_.default": inplace(
    "aten.feature_alpha_dropout_.default",
    "aten.feature_alpha_dropout.default",
  ),
  "aten.feature_dropout_.default": inplace("aten.feature_dropout_.default", "aten.feature_dropout.default"),
  "aten.floor_.default": inplace("aten.floor_.default", "aten.floor.default"),
  "aten.floor_divide_.Tensor": inplace("aten.floor_divide_.Tensor", "aten.floor_divide.default"),
  "aten.fmod_.Scalar": inplace("aten.fmod_.Scalar", "aten.fmod.Scalar"),
  "aten.fmod_.Tensor": inplace("aten.fmod_.Tensor", "aten.fmod.Tensor"),
  "aten.ge_.Scalar": inplace("aten.ge_.Scalar", "aten.ge.Scalar"),
  "aten.ge_.Tensor": inplace("aten.ge_.Tensor", "aten.ge.Tensor"),
  "aten.gelu_.default": inplace("aten.gelu_.default", "aten.gelu.default"),
  "aten.gt_.Scalar": inplace("aten.gt_.Scalar", "aten.gt.Scalar"),
  "aten.gt_.Tensor": inplace("aten.gt_.Tensor", "aten.gt.Tensor"),
  "aten.hardsigmoid_.default": inplace("aten.hardsigmoid_.default", "aten.hardsigmoid.default"),
  "aten.hardswish_.default": inplace("aten.hardswish_.default", "aten.hardswish.default"),
  "aten.hardtanh_.default": inplace("aten.hardtanh_.default", "aten.hardtanh.default"),
  "aten.le_.Scalar": inplace("aten.le_.Scalar", "aten.le.Scalar"),
  "aten.le_.Tensor": inplace("aten.le_.Tensor", "aten.le.Tensor"),
  "aten.leaky_relu_.default": inplace("aten.leaky_relu_.default", "aten.leaky_relu.default"),
  "aten.log10_.default": inplace("aten.log10_.default", "aten.log10.default"),
  "aten.log1p_.default": inplace("aten.log1p_.default", "aten.log1p.default"),
  "aten.log2_.default": inplace("aten.log2_.default", "aten.log2.default"),
  "aten.log_.default": inplace("aten.log_.default", "aten.log.default"),
  "aten.logical_and_.default": inplace("aten.logical_and_.default", "aten.logical_and.default"),
  "aten.logical_not_.default": inplace("aten.logical_not_.default", "aten.logical_not.default"),
  "aten.logical_or_.default": inplace("aten.logical_or_.default", "aten.logical_or.default"),
  "aten.logical_xor_.default": inplace("aten.logical_xor_.default", "aten.logical_xor.default"),
  "aten.lt_.Scalar": inplace("aten.lt_.Scalar", "aten.lt.Scalar"),
  "aten.lt_.Tensor": inplace("aten.lt_.Tensor", "aten.lt.Tensor"),
  "aten.fill_.Scalar": inplace("aten.fill_.Scalar", "aten.fill.Scalar"),
  "aten.fill_.Tensor": inplace("aten.fill_.Tensor", "aten.fill.Tensor"),
  "aten.zero_.default": inplace("aten.zero_.default", "aten.zero.default"),
  "aten.masked_fill_.Scalar": inplace("aten.masked_fill_.Scalar", "aten.masked_fill.Scalar"),
  "aten.masked_fill_.Tensor": inplace("aten.masked_fill_.Tensor", "aten.masked_fill.Tensor"),
  "aten.mish_.default": inplace("aten.mish_.default", "aten.mish.default"),
  "aten.mul_.Scalar": inplace("aten.mul_.Scalar", "aten.mul.Scalar"),
  "aten.mul_.Tensor": inplace("aten.mul_.Tensor", "aten.mul.Tensor"),
  "aten.ne_.Scalar": inplace("aten.ne_.Scalar", "aten.ne.Scalar"),
  "aten.ne_.Tensor": inplace("aten.ne_.Tensor", "aten.ne.Tensor"),
  "aten.neg_.default": inplace("aten.neg_.default", "aten.neg.default"),
  "aten.pow_.Scalar": inplace("aten.pow_.Scalar", "aten.pow.Tensor_Scalar"),
  "aten.pow_.Tensor": inplace("aten.pow_.Tensor", "aten.pow.Tensor_Tensor"),
  "aten.reciprocal_.default": inplace("aten.reciprocal_.default", "aten.reciprocal.default"),
  "aten.relu6_.default": inplace("aten.relu6_.default", "aten.relu6.default"),
  "aten.relu_.default": inplace("aten.relu_.default", "aten.relu.default"),
  "aten.remainder_.Scalar": inplace("aten.remainder_.Scalar", "aten.remainder.Scalar"),
  "aten.remainder_.Tensor": inplace("aten.remainder_.Tensor", "aten.remainder.Tensor"),
  "aten.round_.default": inplace("aten.round_.default", "aten.round.default"),
  "aten.rsqrt_.default": inplace("aten.rsqrt_.default", "aten.rsqrt.default"),
  "aten.sigmoid_.default": inplace("aten.sigmoid_.default", "aten.sigmoid.default"),
  "aten.sign_.default": inplace("aten.sign_.default", "aten.sign.default"),
  "aten.silu_.default": inplace("aten.silu_.default", "aten.silu.default"),
  "aten.sin_.default": inplace("aten.sin_.default", "aten.sin.default"),
  "aten.sqrt_.default": inplace("aten.sqrt_.default", "aten.sqrt.default"),
  "aten.squeeze_.default": inplace("aten.squeeze_.default", "aten.squeeze.default"),
  "aten.squeeze_.dim": inplace("aten.squeeze_.dim", "aten.squeeze.dim"),
  "aten.squeeze_.dims": inplace("aten.squeeze_.dims", "aten.squeeze.dims"),
  "aten.sub_.Scalar": inplace("aten.sub_.Scalar", "aten.sub.Scalar"),
  "aten.sub_.Tensor": inplace("aten.sub_.Tensor", "aten.sub.Tensor"),
  "aten.t_.default": inplace("aten.t_.default", "aten.t.default"),
  "aten.tan_.default": inplace("aten.tan_.default", "aten.tan.default"),
  "aten.tanh_.default": inplace("aten.tanh_.default", "aten.tanh.default"),
  "aten.transpose_.default": inplace("aten.transpose_.default", "aten.transpose.int"),
  "aten.tril_.default": inplace("aten.tril_.default", "aten.tril.default"),
  "aten.triu_.default": inplace("aten.triu_.default", "aten.triu.default"),
  "aten.trunc_.default": inplace("aten.trunc_.default", "aten.trunc.default"),
  "aten.unsqueeze_.default": inplace("aten.unsqueeze_.default", "aten.unsqueeze.default"),
} as const;

export function isInplaceOp(op: OpDef<unknown>): op is InplaceOpDef<string, FunctionalName> {
  return "functional" in op;
}
