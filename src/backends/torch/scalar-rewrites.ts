/**
 * PyTorch 2.11's `aoti_torch_call_dispatcher` cannot convert a `Scalar` argument ("Not yet supported
 * conversion … Scalar"), even a defaulted one. This table rewrites every op of torchc's op table that takes a
 * Scalar into ops that do not, each with the reason it is exact. The usual move is the op's Tensor overload
 * with a 0-d GPU constant: PyTorch wraps a Python number into a 0-d tensor and casts it to the common dtype
 * anyway, and `wrappedDtype` keeps the result type of a wrapped number. The one Scalar that stays is `alpha`
 * of a floating `aten.add.Tensor`, which goes to the generated `aoti_torch_cuda_add_Tensor` (double alpha).
 * Every rewrite is checked against the aten reference interpreter in test/backends/torch (and on the GPU in
 * test/gpu/torch-fallback.gpu.test.ts).
 *
 * Known difference: for float16/bfloat16 tensors PyTorch keeps a Python scalar in float (opmath) inside the
 * kernel, while a 0-d GPU constant is rounded to the tensor's dtype first — at most half an ulp of the
 * scalar itself. fp32 results are unaffected.
 */
import type { DType } from "../../ir/dtype.js";
import { isFloating } from "../../ir/dtype.js";
import type { Arg, Node } from "../../ir/graph.js";
import { allocData, type Tensor } from "../../ir/tensor.js";
import { evaluateNode, withDefaults } from "../../ops/index.js";
import { type Rule, ruleSet } from "../../passes/rewrite/rule.js";
import { COMPOSITE_RULES } from "./composite-rewrites.js";
import { emitFilled } from "./filled.js";
import { type LoweringContext, loweringRule } from "./lowering-rule.js";
import { referenceDtype } from "./number-operands.js";
import { refuse, type ScalarLiteral, scalarOf, tensorArg, wrappedDtype } from "./rewrite-context.js";

// ------------------------------------------------------------------------------------------------ helpers

function all(node: Node): Record<string, Arg> {
  return withDefaults(node.op, node.args);
}

function tensor(args: Record<string, Arg>, name: string): string {
  const a = args[name];
  if (a?.kind !== "tensor") refuse(`argument '${name}' must be a tensor`);
  return a.name;
}

function scalar(args: Record<string, Arg>, name: string): ScalarLiteral {
  const s = scalarOf(args[name]);
  if (!s) refuse(`argument '${name}' must be a number, got ${args[name]?.kind}`);
  return s;
}

function optScalar(args: Record<string, Arg>, name: string): ScalarLiteral | undefined {
  return args[name]?.kind === "none" ? undefined : scalar(args, name);
}

/** A 0-d constant for `s` next to a tensor of dtype `ref` (wrapped-number promotion). */
function wrapped(cx: LoweringContext, s: ScalarLiteral, ref: DType): string {
  return cx.scalarConstant(s.value, wrappedDtype(s.kind, ref));
}

function literal(s: ScalarLiteral): Arg {
  return s.kind === "float" ? { kind: "float", value: s.value } : { kind: "int", value: s.value };
}

function neg(s: ScalarLiteral): ScalarLiteral {
  return { value: -s.value, kind: s.kind === "bool" ? "int" : s.kind };
}

const t = tensorArg;

/**
 * `self + alpha·other` into `outputs`. Floating results keep `aten.add.Tensor` for the generated shim. Integral
 * ones cannot (ATen's alpha check rejects the shim's double alpha), so they become
 * `sum(stack([self, alpha·other]), 0, dtype)`, exact in integer arithmetic; bool ones `logical_or`.
 */
function addScaled(
  cx: LoweringContext,
  self: string,
  other: string,
  alpha: ScalarLiteral,
  outputs: readonly string[],
): void {
  const out = cx.typeOf(outputs[0]);
  if (isFloating(out.dtype)) {
    // the add.Tensor rule leaves floating adds alone: they go to the generated shim
    cx.emit("aten.add.Tensor", { self: t(self), other: t(other), alpha: literal(alpha) }, outputs);
    return;
  }
  if (alpha.kind === "float" && !Number.isInteger(alpha.value))
    refuse(`alpha ${alpha.value} is not an integer for a ${out.dtype} result`);
  if (out.dtype === "bool") {
    if (alpha.value !== 1) refuse("a bool add needs alpha = True");
    cx.emit("aten.logical_or.default", { self: t(self), other: t(other) }, outputs);
    return;
  }
  let b = other;
  if (alpha.value !== 1) {
    [b] = cx.emit("aten.mul.Tensor", {
      self: t(other),
      other: t(cx.scalarConstant(alpha.value, out.dtype)),
    });
  }
  const parts = [self, b].map((v) => {
    let x = v;
    if (cx.typeOf(x).dtype !== out.dtype)
      [x] = cx.emit("aten.to.dtype", { self: t(x), dtype: { kind: "dtype", value: out.dtype } });
    const shape = cx.typeOf(x).shape;
    if (shape.length !== out.shape.length || shape.some((d, i) => d !== out.shape[i]))
      [x] = cx.emit("aten.expand.default", {
        self: t(x),
        size: { kind: "ints", value: [...out.shape] },
      });
    return x;
  });
  const [s] = cx.emit("aten.stack.default", {
    tensors: { kind: "tensors", names: parts },
    dim: { kind: "int", value: 0 },
  });
  cx.emit(
    "aten.sum.dim_IntList",
    {
      self: t(s),
      dim: { kind: "ints", value: [0] },
      keepdim: { kind: "bool", value: false },
      dtype: { kind: "dtype", value: out.dtype },
    },
    outputs,
  );
}

/** `op.Scalar(self, other)` → `target(self, c(other))`, other arguments passed through. */
function tensorOverload(op: string, target: string, scalarArg = "other"): Rule {
  return loweringRule({
    name: `${op.slice(5)}→${target.slice(5)}`,
    doc: `→ ${target} with a 0-d constant in '${scalarArg}' (wrapped-number dtype)`,
    ops: op,
    lower: (node, cx) => {
      const args = all(node);
      const c = wrapped(cx, scalar(args, scalarArg), referenceDtype(node, cx, scalarArg));
      cx.emit(target, { ...args, [scalarArg]: t(c) }, node.outputs);
    },
  });
}

/** `var/std/var_mean.correction` → `.dim` with `unbiased`, which covers corrections 0 and 1. */
function correctionToDim(op: string, target: string): Rule {
  return loweringRule({
    name: `${op.slice(5)}→${target.slice(5)}`,
    doc: `→ ${target}(unbiased = correction ≠ 0): same estimator for correction None, 0 or 1`,
    ops: op,
    lower: (node, cx) => {
      const args = all(node);
      const c = optScalar(args, "correction");
      if (c && c.value !== 0 && c.value !== 1)
        refuse(`correction ${c.value} has no unbiased=True/False equivalent`);
      cx.emit(
        target,
        {
          self: args.self,
          dim: args.dim,
          unbiased: { kind: "bool", value: c?.value !== 0 },
          keepdim: args.keepdim,
        },
        node.outputs,
      );
    },
  });
}

/** Creation ops with a Scalar fill: a filled tensor of the node's static output type. */
const FILLED = loweringRule({
  name: "full→filled",
  doc: "→ clone(expand(0-d constant, shape)): the output type is static, so only the fill value matters",
  ops: ["aten.full.default", "aten.full_like.default", "aten.new_full.default", "aten.scalar_tensor.default"],
  lower: (node, cx) => {
    const args = all(node);
    const v = scalar(args, node.op === "aten.scalar_tensor.default" ? "s" : "fill_value");
    emitFilled(cx, v.value, cx.typeOf(node.outputs[0]), node.outputs);
  },
});

/** Ops with no tensor input at all: evaluated once by the reference op, uploaded as a constant. */
const FOLDED = loweringRule({
  name: "arange→constant",
  doc: "no tensor data flows in: computed once by the reference op on the CPU and uploaded as a constant",
  ops: ["aten.arange.default", "aten.arange.start", "aten.arange.start_step"],
  lower: (node, cx) => {
    const placeholder = (n: string): Tensor => {
      const ty = cx.typeOf(n);
      return {
        dtype: ty.dtype,
        shape: ty.shape,
        data: allocData(
          ty.dtype,
          ty.shape.reduce((a, b) => a * b, 1),
        ),
      };
    };
    const outs = evaluateNode(node, placeholder);
    outs.forEach((o, i) => {
      if (node.outputs[i]) cx.bindConstant(node.outputs[i], o);
    });
  },
});

// -------------------------------------------------------------------------------------------------- table

export const SCALAR_RULES: readonly Rule[] = ruleSet(
  loweringRule({
    name: "add.Tensor (integral)",
    doc: "alpha is a Scalar: floating results call the generated aoti_torch_cuda_add_Tensor (double alpha); integral ones become sum(stack([self, alpha·other]), 0, dtype), bool ones logical_or",
    ops: "aten.add.Tensor",
    lower: (node, cx) => {
      // floating adds already are what the shim takes (and what addScaled makes)
      if (isFloating(cx.typeOf(node.outputs[0]).dtype)) return false;
      const a = all(node);
      addScaled(cx, tensor(a, "self"), tensor(a, "other"), scalar(a, "alpha"), node.outputs);
    },
  }),
  loweringRule({
    name: "add.Scalar→add.Tensor",
    doc: "→ add.Tensor(self, c(other), alpha): the same kernel with a wrapped 0-d operand",
    ops: "aten.add.Scalar",
    lower: (node, cx) => {
      const a = all(node);
      const self = tensor(a, "self");
      addScaled(
        cx,
        self,
        wrapped(cx, scalar(a, "other"), cx.typeOf(self).dtype),
        scalar(a, "alpha"),
        node.outputs,
      );
    },
  }),
  loweringRule({
    name: "sub.Tensor→add.Tensor",
    doc: "→ add.Tensor(self, other, −alpha): ATen's sub is add_stub with −alpha",
    ops: "aten.sub.Tensor",
    lower: (node, cx) => {
      const a = all(node);
      if (cx.typeOf(node.outputs[0]).dtype === "bool")
        refuse("subtraction of bool tensors is not supported by PyTorch");
      addScaled(cx, tensor(a, "self"), tensor(a, "other"), neg(scalar(a, "alpha")), node.outputs);
    },
  }),
  loweringRule({
    name: "sub.Scalar→add.Tensor",
    doc: "→ add.Tensor(self, c(other), −alpha)",
    ops: "aten.sub.Scalar",
    lower: (node, cx) => {
      const a = all(node);
      const self = tensor(a, "self");
      if (cx.typeOf(node.outputs[0]).dtype === "bool")
        refuse("subtraction of bool tensors is not supported by PyTorch");
      addScaled(
        cx,
        self,
        wrapped(cx, scalar(a, "other"), cx.typeOf(self).dtype),
        neg(scalar(a, "alpha")),
        node.outputs,
      );
    },
  }),
  loweringRule({
    name: "rsub.Tensor→add.Tensor",
    doc: "→ add.Tensor(other, self, −alpha): rsub(self, other) is sub(other, self)",
    ops: "aten.rsub.Tensor",
    lower: (node, cx) => {
      const a = all(node);
      addScaled(cx, tensor(a, "other"), tensor(a, "self"), neg(scalar(a, "alpha")), node.outputs);
    },
  }),
  loweringRule({
    name: "rsub.Scalar→add.Tensor",
    doc: "→ add.Tensor(c(other), self, −alpha)",
    ops: "aten.rsub.Scalar",
    lower: (node, cx) => {
      const a = all(node);
      const self = tensor(a, "self");
      addScaled(
        cx,
        wrapped(cx, scalar(a, "other"), cx.typeOf(self).dtype),
        self,
        neg(scalar(a, "alpha")),
        node.outputs,
      );
    },
  }),
  tensorOverload("aten.mul.Scalar", "aten.mul.Tensor"),
  tensorOverload("aten.div.Scalar", "aten.div.Tensor"),
  tensorOverload("aten.div.Scalar_mode", "aten.div.Tensor_mode"),
  tensorOverload("aten.remainder.Scalar", "aten.remainder.Tensor"),
  tensorOverload("aten.fmod.Scalar", "aten.fmod.Tensor"),
  tensorOverload("aten.eq.Scalar", "aten.eq.Tensor"),
  tensorOverload("aten.ne.Scalar", "aten.ne.Tensor"),
  tensorOverload("aten.lt.Scalar", "aten.lt.Tensor"),
  tensorOverload("aten.gt.Scalar", "aten.gt.Tensor"),
  tensorOverload("aten.le.Scalar", "aten.le.Tensor"),
  tensorOverload("aten.ge.Scalar", "aten.ge.Tensor"),
  tensorOverload("aten.clamp_min.default", "aten.clamp_min.Tensor", "min"),
  tensorOverload("aten.clamp_max.default", "aten.clamp_max.Tensor", "max"),
  loweringRule({
    name: "pow.Tensor_Scalar→pow.Tensor_Tensor",
    doc: "→ pow.Tensor_Tensor(self, c(exponent)); a GPU 0-d exponent skips ATen's x*x / sqrt fast paths, so results may differ by an ulp",
    ops: "aten.pow.Tensor_Scalar",
    lower: (node, cx) => {
      const a = all(node);
      const self = tensor(a, "self");
      const c = wrapped(cx, scalar(a, "exponent"), cx.typeOf(self).dtype);
      cx.emit("aten.pow.Tensor_Tensor", { self: t(self), exponent: t(c) }, node.outputs);
    },
  }),
  loweringRule({
    name: "pow.Scalar→pow.Tensor_Tensor",
    doc: "→ pow.Tensor_Tensor(c(self), exponent)",
    ops: "aten.pow.Scalar",
    lower: (node, cx) => {
      const a = all(node);
      const e = tensor(a, "exponent");
      const c = wrapped(cx, scalar(a, "self"), cx.typeOf(e).dtype);
      cx.emit("aten.pow.Tensor_Tensor", { self: t(c), exponent: t(e) }, node.outputs);
    },
  }),
  loweringRule({
    name: "clamp→clamp.Tensor",
    doc: "→ clamp.Tensor(self, c(min)?, c(max)?): the same clamp kernel with 0-d bounds",
    ops: "aten.clamp.default",
    lower: (node, cx) => {
      const a = all(node);
      const self = tensor(a, "self");
      const lo = optScalar(a, "min");
      const hi = optScalar(a, "max");
      if (!lo && !hi) refuse("clamp needs min or max");
      const ref = cx.typeOf(self).dtype;
      cx.emit(
        "aten.clamp.Tensor",
        {
          self: t(self),
          min: lo ? t(wrapped(cx, lo, ref)) : { kind: "none" },
          max: hi ? t(wrapped(cx, hi, ref)) : { kind: "none" },
        },
        node.outputs,
      );
    },
  }),
  loweringRule({
    name: "hardtanh→clamp.Tensor",
    doc: "→ clamp.Tensor(self, c(min_val), c(max_val)): ATen's hardtanh is clamp",
    ops: "aten.hardtanh.default",
    lower: (node, cx) => {
      const a = all(node);
      const self = tensor(a, "self");
      const ref = cx.typeOf(self).dtype;
      cx.emit(
        "aten.clamp.Tensor",
        {
          self: t(self),
          min: t(wrapped(cx, scalar(a, "min_val"), ref)),
          max: t(wrapped(cx, scalar(a, "max_val"), ref)),
        },
        node.outputs,
      );
    },
  }),
  loweringRule({
    name: "where.ScalarOther→where.self",
    doc: "→ where.self(condition, self, c(other))",
    ops: "aten.where.ScalarOther",
    lower: (node, cx) => {
      const a = all(node);
      const self = tensor(a, "self");
      const c = wrapped(cx, scalar(a, "other"), cx.typeOf(self).dtype);
      cx.emit("aten.where.self", { condition: a.condition, self: t(self), other: t(c) }, node.outputs);
    },
  }),
  loweringRule({
    name: "where.ScalarSelf→where.self",
    doc: "→ where.self(condition, c(self), other)",
    ops: "aten.where.ScalarSelf",
    lower: (node, cx) => {
      const a = all(node);
      const other = tensor(a, "other");
      const c = wrapped(cx, scalar(a, "self"), cx.typeOf(other).dtype);
      cx.emit("aten.where.self", { condition: a.condition, self: t(c), other: t(other) }, node.outputs);
    },
  }),
  loweringRule({
    name: "where.Scalar→where.self",
    doc: "→ where.self(condition, c(self), c(other)), both constants in the result dtype",
    ops: "aten.where.Scalar",
    lower: (node, cx) => {
      const a = all(node);
      const d = cx.typeOf(node.outputs[0]).dtype;
      cx.emit(
        "aten.where.self",
        {
          condition: a.condition,
          self: t(cx.scalarConstant(scalar(a, "self").value, d)),
          other: t(cx.scalarConstant(scalar(a, "other").value, d)),
        },
        node.outputs,
      );
    },
  }),
  loweringRule({
    name: "masked_fill.Scalar→where.self",
    doc: "→ where.self(mask, c(value) in self's dtype, self): masked_fill casts the value to self's dtype; where avoids masked_fill.Tensor's device→host read of the value",
    ops: "aten.masked_fill.Scalar",
    lower: (node, cx) => {
      const a = all(node);
      const self = tensor(a, "self");
      const c = cx.scalarConstant(scalar(a, "value").value, cx.typeOf(self).dtype);
      cx.emit("aten.where.self", { condition: a.mask, self: t(c), other: t(self) }, node.outputs);
    },
  }),
  loweringRule({
    name: "leaky_relu",
    doc: "→ where(self > 0, self, self·c(negative_slope)): ATen's kernel is exactly `x > 0 ? x : x * slope` (no generated shim in 2.11)",
    ops: "aten.leaky_relu.default",
    lower: (node, cx) => {
      const a = all(node);
      const x = tensor(a, "self");
      const d = cx.typeOf(x).dtype;
      const [pos] = cx.emit("aten.gt.Tensor", {
        self: t(x),
        other: t(cx.scalarConstant(0, d)),
      });
      const [scaled] = cx.emit("aten.mul.Tensor", {
        self: t(x),
        other: t(wrapped(cx, scalar(a, "negative_slope"), d)),
      });
      cx.emit("aten.where.self", { condition: t(pos), self: t(x), other: t(scaled) }, node.outputs);
    },
  }),
  loweringRule({
    name: "elu",
    doc: "→ where(x ≤ 0, expm1(x·input_scale)·(alpha·scale), x·scale): ATen's elu kernel term by term",
    ops: "aten.elu.default",
    lower: (node, cx) => {
      const a = all(node);
      const x = tensor(a, "self");
      const d = cx.typeOf(x).dtype;
      const alpha = scalar(a, "alpha").value;
      const scale = scalar(a, "scale").value;
      const inScale = scalar(a, "input_scale").value;
      const mul = (v: string, k: number): string =>
        k === 1 ? v : cx.emit("aten.mul.Tensor", { self: t(v), other: t(cx.scalarConstant(k, d)) })[0];
      const [neg] = cx.emit("aten.le.Tensor", { self: t(x), other: t(cx.scalarConstant(0, d)) });
      const [em1] = cx.emit("aten.expm1.default", { self: t(mul(x, inScale)) });
      cx.emit(
        "aten.where.self",
        { condition: t(neg), self: t(mul(em1, alpha * scale)), other: t(mul(x, scale)) },
        node.outputs,
      );
    },
  }),
  loweringRule({
    name: "softplus",
    doc: "→ where(x·beta > threshold, x, log1p(exp(x·beta))/beta): ATen's softplus kernel term by term",
    ops: "aten.softplus.default",
    lower: (node, cx) => {
      const a = all(node);
      const x = tensor(a, "self");
      const d = cx.typeOf(x).dtype;
      const beta = scalar(a, "beta").value;
      const thr = scalar(a, "threshold").value;
      const cb = beta === 1 ? undefined : cx.scalarConstant(beta, d);
      const [xb] = cb ? cx.emit("aten.mul.Tensor", { self: t(x), other: t(cb) }) : [x];
      const [big] = cx.emit("aten.gt.Tensor", {
        self: t(xb),
        other: t(cx.scalarConstant(thr, d)),
      });
      const [ex] = cx.emit("aten.exp.default", { self: t(xb) });
      const [lp] = cx.emit("aten.log1p.default", { self: t(ex) });
      const [soft] = cb ? cx.emit("aten.div.Tensor", { self: t(lp), other: t(cb) }) : [lp];
      cx.emit("aten.where.self", { condition: t(big), self: t(x), other: t(soft) }, node.outputs);
    },
  }),
  loweringRule({
    name: "addmm→linear",
    doc: "beta = alpha = 1 → linear(mat1, mat2ᵀ, self), which ATen computes with the same addmm; otherwise mm, ·c(alpha), then add.Tensor(·, self, alpha=beta)",
    ops: "aten.addmm.default",
    lower: (node, cx) => {
      const a = all(node);
      const [self, m1, m2] = [tensor(a, "self"), tensor(a, "mat1"), tensor(a, "mat2")];
      const beta = scalar(a, "beta");
      const alpha = scalar(a, "alpha");
      if (beta.value === 1 && alpha.value === 1) {
        const [w] = cx.emit("aten.permute.default", {
          self: t(m2),
          dims: { kind: "ints", value: [1, 0] },
        });
        cx.emit("aten.linear.default", { input: t(m1), weight: t(w), bias: t(self) }, node.outputs);
        return;
      }
      const d = cx.typeOf(node.outputs[0]).dtype;
      const last = beta.value === 0 && alpha.value === 1 ? node.outputs : undefined;
      let [p] = cx.emit("aten.mm.default", { self: t(m1), mat2: t(m2) }, last);
      if (last) return;
      if (alpha.value !== 1) {
        const out = beta.value === 0 ? node.outputs : undefined;
        [p] = cx.emit("aten.mul.Tensor", { self: t(p), other: t(cx.scalarConstant(alpha.value, d)) }, out);
        if (out) return;
      }
      addScaled(cx, p, self, beta, node.outputs);
    },
  }),
  loweringRule({
    name: "constant_pad_nd→pad",
    doc: "→ pad(self, pad, 'constant', value: float?): aten::pad calls constant_pad_nd with the same value",
    ops: "aten.constant_pad_nd.default",
    lower: (node, cx) => {
      const a = all(node);
      cx.emit(
        "aten.pad.default",
        {
          self: a.self,
          pad: a.pad,
          mode: { kind: "string", value: "constant" },
          value: { kind: "float", value: scalar(a, "value").value },
        },
        node.outputs,
      );
    },
  }),
  correctionToDim("aten.var.correction", "aten.var.dim"),
  correctionToDim("aten.std.correction", "aten.std.dim"),
  correctionToDim("aten.var_mean.correction", "aten.var_mean.dim"),
  FILLED,
  FOLDED,
  tensorOverload("aten.fill.Scalar", "aten.fill.Tensor", "value"),
  COMPOSITE_RULES,
);
