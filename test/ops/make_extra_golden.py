r"""Writes test/ops/extra-golden.json and test/ops/torch-schemas.json with PyTorch (run where torch is installed).

extra-golden.json: op cases beyond fixtures/ops/golden.json, in the same format (explicit arguments only).
torch-schemas.json: PyTorch's schema string for every op name listed in test/ops/op-names.txt.

After adding ops, refresh the name list and rerun on a machine with torch 2.11:
  npx tsx -e 'import("./src/ops/index.ts").then((m) => console.log(m.OP_NAMES.join("\n")))' > test/ops/op-names.txt
  python3 test/ops/make_extra_golden.py && npx biome format --write test/ops/extra-golden.json test/ops/torch-schemas.json
"""
import base64, json, math, sys
import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  registers torch.ops.quantized_decomposed

torch.manual_seed(0)
here = sys.argv[1] if len(sys.argv) > 1 else "test/ops"
out_dir = sys.argv[2] if len(sys.argv) > 2 else here

def R(*s): return torch.randn(s)  # a tuple: torch 2.13 refuses randn() without sizes
def Ri(lo, hi, *s): return torch.randint(lo, hi, s)
def Rb(*s): return torch.rand(*s) > 0.5

C = []
def case(op, **kw): C.append((op, kw))

x4 = R(1, 2, 5, 6)
case("aten.upsample_bilinear2d.vec", input=x4, output_size=None, align_corners=False, scale_factors=[1.5, 1.5])
case("aten.upsample_bilinear2d.default", self=x4, output_size=[7, 4], align_corners=True)
case("aten.upsample_bilinear2d.default", self=x4, output_size=[3, 9], align_corners=False)
case("aten.upsample_nearest2d.vec", input=x4, output_size=None, scale_factors=[1.7, 0.6])
case("aten.upsample_nearest2d.vec", input=x4, output_size=[4, 13], scale_factors=None)
case("aten.pad.default", self=x4, pad=[2, 1, 1, 3], mode="reflect")
case("aten.pad.default", self=x4, pad=[2, 1, 1, 3], mode="replicate")
case("aten.pad.default", self=x4, pad=[2, 1, 1, 3], mode="circular")
case("aten.pad.default", self=x4, pad=[1, 1], mode="constant", value=2.5)
case("aten.reflection_pad2d.default", self=x4, padding=[1, 2, 3, 0])
case("aten.constant_pad_nd.default", self=x4, pad=[-1, 2, 0, -2], value=-3)
x3 = R(3, 4, 5)
case("aten.index.Tensor", self=x3, indices=[None, torch.tensor([[0, -1], [2, 1]])])
case("aten.index.Tensor", self=x3, indices=[torch.tensor([0, 2]), None, torch.tensor([4, -2])])
case("aten.index.Tensor", self=x3, indices=[torch.tensor([1]), torch.tensor([[0], [3]])])
case("aten.gather.default", self=x3, dim=2, index=Ri(0, 5, 3, 4, 2))
case("aten.index_select.default", self=x3, dim=1, index=torch.tensor([3, 0, 0]))
case("aten.embedding.default", weight=R(6, 3), indices=torch.tensor([[5, 0], [2, 2]]), padding_idx=0)
case("aten.cumsum.default", self=x3, dim=1)
case("aten.cumsum.default", self=Ri(-5, 5, 2, 6), dim=-1)
q, k, v = R(2, 4, 5, 8), R(2, 2, 7, 8), R(2, 2, 7, 6)
case("aten.scaled_dot_product_attention.default", query=q, key=k, value=v, enable_gqa=True)
case("aten.scaled_dot_product_attention.default", query=R(1, 2, 3, 4), key=R(1, 2, 5, 4), value=R(1, 2, 5, 4), is_causal=True)
case("aten.scaled_dot_product_attention.default", query=R(2, 2, 3, 4), key=R(2, 2, 5, 4), value=R(2, 2, 5, 4), attn_mask=R(1, 1, 3, 5), scale=0.3)
case("aten.scaled_dot_product_attention.default", query=R(2, 3, 4), key=R(2, 5, 4), value=R(2, 5, 4), attn_mask=Rb(3, 5) | torch.eye(3, 5, dtype=torch.bool))
case("aten._scaled_dot_product_flash_attention_for_cpu.default", query=R(1, 2, 4, 8), key=R(1, 2, 4, 8), value=R(1, 2, 4, 8), is_causal=True)
case("aten._scaled_dot_product_flash_attention_for_cpu.default", query=R(1, 2, 3, 8), key=R(1, 2, 6, 8), value=R(1, 2, 6, 8), attn_mask=R(1, 2, 3, 6), scale=0.5)
case("aten.conv_transpose1d.default", input=R(2, 4, 6), weight=R(4, 3, 3), bias=R(3), stride=[2], padding=[1], output_padding=[1])
case("aten.convolution.default", input=R(1, 4, 5, 4), weight=R(4, 3, 3, 2), bias=None, stride=[2, 1], padding=[1, 0], dilation=[2, 1], transposed=True, output_padding=[1, 0], groups=2)
case("aten.conv2d.default", input=R(1, 6, 9, 9), weight=R(6, 1, 5, 5), bias=R(6), stride=[2, 2], padding=[2, 2], groups=6)
case("aten.conv2d.padding", input=R(1, 2, 6, 7), weight=R(3, 2, 4, 3), padding="same", dilation=[1, 2])
case("aten.native_group_norm.default", input=R(2, 6, 3, 3), weight=R(6), bias=R(6), N=2, C=6, HxW=9, group=3, eps=1e-5)
case("aten.group_norm.default", input=R(2, 4, 5), num_groups=2, weight=R(4), bias=R(4), eps=1e-3)
case("aten.var_mean.correction", self=x3, dim=[0, 2], correction=0, keepdim=True)
case("aten.std.correction", self=x3, dim=[1])

case("aten.var.dim", self=x3, dim=[2], unbiased=False)
case("aten.tril.default", self=R(4, 5), diagonal=-1)
case("aten.triu.default", self=R(2, 4, 3), diagonal=1)
case("aten.roll.default", self=x3, shifts=[1, -2], dims=[0, 2])
case("aten.roll.default", self=x3, shifts=[3])
case("aten.flip.default", self=x3, dims=[0, -1])
case("aten.repeat.default", self=R(2, 3), repeats=[2, 1, 2])
cond = Rb(3, 4)
case("aten.where.Scalar", condition=cond, self=1.5, other=-2)
case("aten.where.ScalarOther", condition=cond, self=Ri(0, 9, 3, 4), other=0.5)
case("aten.masked_fill.Scalar", self=R(2, 3, 4), mask=Rb(3, 1), value=-1e9)
case("aten.logical_and.default", self=cond, other=R(3, 4))
case("aten.logical_or.default", self=cond, other=Rb(4))
case("aten.logical_not.default", self=R(3, 4).round())
case("aten.bitwise_not.default", self=cond)
case("aten.remainder.Scalar", self=R(3, 4) * 5, other=-1.5)
case("aten.remainder.Tensor", self=Ri(-9, 9, 3, 4), other=torch.tensor([2, -3, 4, 5]))
case("aten.fmod.Scalar", self=R(3, 4) * 5, other=1.5)
case("aten.floor_divide.default", self=Ri(-9, 9, 3, 4), other=torch.tensor([2, -3, 4, 5]))
case("aten.div.Scalar_mode", self=R(3, 4) * 5, other=-1.5, rounding_mode="floor")
case("aten.pow.Scalar", self=2, exponent=R(3, 4))
case("aten.pow.Tensor_Scalar", self=Ri(0, 5, 3, 4), exponent=3)
img = R(2, 3, 7, 8)
case("aten.avg_pool2d.default", self=img, kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], ceil_mode=True, count_include_pad=False)
case("aten.avg_pool2d.default", self=img, kernel_size=[3, 2], stride=[2, 3], padding=[1, 1], ceil_mode=True, count_include_pad=True)
case("aten.max_pool2d.default", self=img, kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], dilation=[2, 2])
case("aten.max_pool2d_with_indices.default", self=img, kernel_size=[2, 3], stride=[2, 2], padding=[1, 1], ceil_mode=True)
case("aten.adaptive_avg_pool2d.default", self=R(3, 7, 5), output_size=[3, 2])
case("aten.softplus.default", self=R(3, 4) * 10, beta=2, threshold=5)
case("aten.mish.default", self=R(3, 4) * 5)
case("aten.elu.default", self=R(3, 4), alpha=0.5, scale=1.2, input_scale=2.0)
case("aten.gelu.default", self=R(3, 4) * 4, approximate="tanh")
case("aten.hardswish.default", self=torch.tensor([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0]))
case("aten.hardsigmoid.default", self=torch.tensor([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0]))
case("aten.erf.default", self=torch.linspace(-7, 7, 29))
case("aten.mean.dim", self=x3, dim=[1], keepdim=False, dtype=torch.float64)
case("aten.sum.dim_IntList", self=Ri(-3, 3, 3, 4), dim=[0], dtype=torch.float32)
case("aten.prod.dim_int", self=R(3, 4), dim=1, keepdim=True)
case("aten.any.dim", self=Rb(3, 4), dim=1)
case("aten.all.dims", self=Rb(3, 4, 2), dim=[0, 2], keepdim=True)
case("aten.stack.default", tensors=[R(2, 3), R(2, 3), R(2, 3)], dim=-1)
case("aten.unbind.int", self=R(2, 3), dim=1)
case("aten.narrow.default", self=x3, dim=2, start=-3, length=2)
case("aten.unflatten.int", self=x3, dim=1, sizes=[2, -1])
case("aten.full_like.default", self=Ri(0, 3, 2, 2), fill_value=7.9)
case("aten.zeros_like.default", self=R(2, 2), dtype=torch.int64)
case("aten.new_full.default", self=R(2), size=[2, 3], fill_value=-1)
case("aten.arange.start_step", start=0.5, end=3.0, step=0.7)
case("aten.arange.start", start=-3, end=4)
case("aten.addmm.default", self=torch.full((3,), float("nan")), mat1=R(2, 4), mat2=R(4, 3), beta=0, alpha=0.5)
case("aten.matmul.default", self=R(4), other=R(2, 4, 3))
case("aten.matmul.default", self=R(2, 1, 3, 4), other=R(5, 4, 2))
case("aten.linear.default", input=R(2, 3, 4), weight=R(4))
case("aten.max.dim", self=Ri(-9, 9, 3, 4), dim=0)
case("aten.argmin.default", self=R(3, 4), dim=1, keepdim=True)
case("aten.amin.default", self=x3, dim=[0, 2], keepdim=True)
case("aten.clamp.Tensor", self=R(3, 4), min=R(4) - 0.5, max=R(3, 1) + 0.5)
case("aten.clamp_min.Tensor", self=R(3, 4), min=R(3, 4))
case("aten._to_copy.default", self=R(3, 4) * 10, dtype=torch.int64)
case("aten._to_copy.default", self=R(3, 4), dtype=torch.float16)
case("aten.to.dtype", self=Ri(-5, 5, 3, 4), dtype=torch.bool)
case("aten.add.Tensor", self=R(3, 4).half(), other=R(4).half(), alpha=2)
case("aten.mul.Tensor", self=Ri(0, 5, 3, 4), other=2.5)
case("aten.div.Tensor", self=Ri(1, 9, 3, 4), other=Ri(1, 9, 4))
case("aten.layer_norm.default", input=x3, normalized_shape=[4, 5], weight=R(4, 5), bias=R(4, 5), eps=1e-6)
case("aten.relu_.default", self=R(3, 4))
case("aten.add_.Tensor", self=R(3, 4), other=R(4), alpha=-1.5)
case("aten.hardtanh_.default", self=R(3, 4) * 3, min_val=-2.0, max_val=1.0)
case("aten.pow_.Scalar", self=R(3, 4).abs(), exponent=0.5)
case("aten._native_batch_norm_legit.no_stats", input=R(4, 3, 2, 2), weight=R(3), bias=R(3), training=True, momentum=0.1, eps=1e-5)
case("aten.native_batch_norm.default", input=R(4, 3, 5), weight=None, bias=None, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5)
case("aten.batch_norm.default", input=R(4, 3), weight=R(3), bias=R(3), running_mean=R(3), running_var=R(3).abs(), training=False, momentum=0.1, eps=1e-3, cudnn_enabled=False)
case("aten.copy.default", self=R(3, 4), src=Ri(0, 4, 4))
case("aten.expand_as.default", self=R(3, 1), other=R(2, 3, 4))
case("aten.type_as.default", self=R(3), other=Ri(0, 2, 2))
case("aten.slice.Tensor", self=x3, dim=2, start=-4, end=None, step=3)
case("aten.select.int", self=x3, dim=-1, index=-2)
case("aten.squeeze.default", self=R(1, 3, 1, 2))
case("aten.softmax.int", self=R(3, 4), dim=0, dtype=torch.float64)
case("aten.log_softmax.int", self=R(3, 4) * 20, dim=0)
case("aten.split.sizes", self=R(5, 2), split_size=[2, 3])
# composite ops (src/ops/composite.ts) and Swin-T's shapes
case("aten.addcmul.default", self=R(2, 3), tensor1=R(3), tensor2=R(2, 1), value=0.7)
case("aten.addcdiv.default", self=R(2, 3), tensor1=R(2, 3), tensor2=R(2, 3) + 3, value=-1.5)
x5 = R(2, 3, 4)
case("aten.linalg_vector_norm.default", self=x5)
case("aten.linalg_vector_norm.default", self=x5, ord=1, dim=[1], keepdim=True)
case("aten.linalg_vector_norm.default", self=x5, ord=float("inf"), dim=[0, 2])
case("aten.linalg_vector_norm.default", self=x5, ord=float("-inf"), dim=[-1])
case("aten.linalg_vector_norm.default", self=x5, ord=0, dim=[2])
case("aten.linalg_vector_norm.default", self=x5, ord=3.5, dim=[-1], dtype=torch.float64)
case("aten.einsum.default", equation="bhqd,bhkd->bhqk", tensors=[R(2, 3, 4, 5), R(2, 3, 6, 5)])
case("aten.einsum.default", equation="...ij,...jk", tensors=[R(2, 1, 3, 4), R(5, 4, 2)])
case("aten.einsum.default", equation="bii->bi", tensors=[R(2, 3, 3)])
case("aten.einsum.default", equation="i,j,ij->", tensors=[R(3), R(4), R(3, 4)])
case("aten.as_strided.default", self=R(3, 4), size=[2, 2], stride=[1, 4], storage_offset=1)
case("aten.as_strided.default", self=R(2, 6), size=[2, 2, 3], stride=[6, 3, 1])
for aa in ("bilinear", "bicubic"):
    case(f"aten._upsample_{aa}2d_aa.default", self=R(1, 2, 9, 7), output_size=[4, 3], align_corners=False)
    case(f"aten._upsample_{aa}2d_aa.default", self=R(1, 2, 5, 6), output_size=[8, 3], align_corners=True)
    case(f"aten._upsample_{aa}2d_aa.vec", input=R(2, 1, 14, 14), output_size=None, align_corners=False, scale_factors=[0.5, 0.75])
case("aten.roll.default", self=R(1, 14, 14, 3), shifts=[-3, -3], dims=[1, 2])
case("aten.fill.Scalar", self=Ri(-5, 5, 2, 3), value=2.7)
case("aten.fill.Tensor", self=R(2, 3), value=R())
case("aten.zero.default", self=R(3))
case("aten.slice_scatter.default", self=R(4, 6), src=R(4, 2), dim=1, start=-5, end=5, step=3)
case("aten.select_scatter.default", self=R(3, 4, 2), src=R(3, 2), dim=1, index=-1)

# quantization (issue 14): quantized_decomposed Q/DQ and aten fake_quantize, values straddling rounding ties
xq = torch.cat([R(2, 3, 4) * 3, torch.tensor([0.025, 0.075, -0.125, 10.0]).expand(2, 3, 4)], dim=-1)
case("quantized_decomposed.quantize_per_tensor.default", input=xq, scale=0.05, zero_point=3, quant_min=-128, quant_max=127, dtype=torch.int8)
case("quantized_decomposed.quantize_per_tensor.tensor", input=xq, scale=torch.tensor([0.07]), zero_point=torch.tensor([128]), quant_min=0, quant_max=255, dtype=torch.uint8)
case("quantized_decomposed.dequantize_per_tensor.default", input=Ri(-128, 128, 3, 5).to(torch.int8), scale=0.013, zero_point=-4, quant_min=-128, quant_max=127, dtype=torch.int8)
case("quantized_decomposed.dequantize_per_tensor.tensor", input=Ri(0, 256, 3, 5).to(torch.uint8), scale=torch.tensor([0.2]), zero_point=torch.tensor([120]), quant_min=0, quant_max=255, dtype=torch.uint8)
case("quantized_decomposed.quantize_per_channel.default", input=R(4, 3, 2) * 2, scales=R(4).abs() + 0.01, zero_points=Ri(-3, 3, 4), axis=0, quant_min=-127, quant_max=127, dtype=torch.int8)
case("quantized_decomposed.dequantize_per_channel.default", input=Ri(-127, 128, 3, 4).to(torch.int8), scales=R(4).abs() + 0.01, zero_points=Ri(-3, 3, 4), axis=1, quant_min=-127, quant_max=127, dtype=torch.int8)
case("aten.fake_quantize_per_tensor_affine.default", self=xq, scale=0.1, zero_point=2, quant_min=-128, quant_max=127)
case("aten.fake_quantize_per_tensor_affine.tensor_qparams", self=xq, scale=torch.tensor([0.05]), zero_point=torch.tensor([0], dtype=torch.int32), quant_min=-128, quant_max=127)
case("aten.fake_quantize_per_tensor_affine_cachemask.default", self=xq, scale=0.03, zero_point=0, quant_min=-128, quant_max=127)
case("aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default", self=xq, scale=torch.tensor([0.03]), zero_point=torch.tensor([1], dtype=torch.int32), fake_quant_enabled=torch.tensor([1]), quant_min=-128, quant_max=127)
case("aten.fake_quantize_per_channel_affine.default", self=R(3, 4) * 2, scale=R(3).abs() + 0.05, zero_point=Ri(-2, 2, 3).to(torch.int32), axis=0, quant_min=-128, quant_max=127)
case("aten.fake_quantize_per_channel_affine_cachemask.default", self=R(3, 4) * 2, scale=R(4).abs() + 0.05, zero_point=Ri(0, 3, 4).to(torch.int32), axis=1, quant_min=0, quant_max=255)

# plain bicubic (timm CrossViT's position resampling) and repeat_interleave with an int (timm ConViT): issue 11's zoo
case("aten.upsample_bicubic2d.default", self=R(1, 2, 5, 6), output_size=[9, 4], align_corners=False)
case("aten.upsample_bicubic2d.default", self=R(1, 2, 5, 6), output_size=[3, 11], align_corners=True)
case("aten.upsample_bicubic2d.vec", input=R(2, 3, 7, 7), output_size=None, align_corners=False, scale_factors=[1.5, 0.6])
case("aten.upsample_bicubic2d.vec", input=R(1, 4, 14, 14), output_size=[15, 15], align_corners=False, scale_factors=None)
case("aten.repeat_interleave.self_int", self=R(2, 3, 4), repeats=3, dim=1)
case("aten.repeat_interleave.self_int", self=R(2, 3), repeats=2)
case("aten.repeat_interleave.self_int", self=Ri(0, 9, 4, 2), repeats=2, dim=-1, output_size=4)

# RMSNorm (issue 13): with a weight, without (eps None: the dtype's machine epsilon), over two trailing dims
case("aten.rms_norm.default", input=R(2, 5, 8), normalized_shape=[8], weight=R(8), eps=1e-6)
case("aten.rms_norm.default", input=R(3, 4) * 1e-3, normalized_shape=[4])
# eps None on half inputs: PyTorch adds float32's epsilon (its compute type), not float16's
case("aten.rms_norm.default", input=(R(3, 8) * 1e-2).half(), normalized_shape=[8])
case("aten.rms_norm.default", input=(R(2, 3, 8) * 3e-3).half(), normalized_shape=[8], weight=R(8).half())
case("aten.rms_norm.default", input=R(2, 3, 4, 5), normalized_shape=[4, 5], weight=R(4, 5), eps=1e-5)

def finite(x):
    """inf / nan as the strings the readers revive: bare Infinity is not JSON."""
    return x if math.isfinite(x) else str(x)

def arg(v, tensors):
    if isinstance(v, torch.Tensor):
        name = f"t{len(tensors)}"; tensors[name] = v; return {"kind": "tensor", "name": name}
    if isinstance(v, (list, tuple)) and any(isinstance(x, torch.Tensor) for x in v):
        return {"kind": "tensors", "names": [None if x is None else arg(x, tensors)["name"] for x in v]}
    if v is None: return {"kind": "none"}
    if isinstance(v, bool): return {"kind": "bool", "value": v}
    if isinstance(v, int): return {"kind": "int", "value": v}
    if isinstance(v, float): return {"kind": "float", "value": finite(v)}
    if isinstance(v, str): return {"kind": "string", "value": v}
    if isinstance(v, torch.dtype): return {"kind": "dtype", "value": str(v).replace("torch.", "")}
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, bool) for x in v): return {"kind": "bools", "value": list(v)}
        if all(isinstance(x, int) for x in v): return {"kind": "ints", "value": list(v)}
        return {"kind": "floats", "value": [finite(float(x)) for x in v]}
    raise TypeError(v)

def enc(t):
    t = t.detach().contiguous()
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "data": base64.b64encode(t.numpy().tobytes()).decode()}

cases = []
for i, (op, kw) in enumerate(C):
    ns, base, ov = op.split(".")
    fn = getattr(getattr(getattr(torch.ops, ns), base), ov)
    tensors = {}
    args = {k: arg(v, tensors) for k, v in kw.items()}
    call = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    res = fn(**call)
    outs = list(res) if isinstance(res, (tuple, list)) else [res]
    cases.append({"id": f"{base}.{ov}_x{i:03d}", "op": op, "args": args, "tensors": {k: enc(v) for k, v in tensors.items()}, "outputs": [enc(o) for o in outs]})
json.dump({"torch": torch.__version__, "cases": cases}, open(f"{out_dir}/extra-golden.json", "w"))

schemas = {}
for name in open(f"{here}/op-names.txt").read().split():
    ns, base, ov = name.split(".")
    try:
        schemas[name] = str(getattr(getattr(getattr(torch.ops, ns), base), ov)._schema)
    except Exception:
        schemas[name] = None
json.dump({"torch": torch.__version__, "schemas": schemas}, open(f"{out_dir}/torch-schemas.json", "w"), indent=0)
print(len(cases), "cases,", sum(v is not None for v in schemas.values()), "schemas")
