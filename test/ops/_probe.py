import torch, torch.nn as nn, torch.nn.functional as F, sys
out = sys.argv[1]
f = open(out + "/schemas.txt", "w")
names = """conv2d conv1d convolution _convolution conv_transpose2d conv_transpose1d batch_norm _native_batch_norm_legit_no_training _native_batch_norm_legit native_batch_norm linear addmm mm bmm matmul t add sub rsub mul div neg pow sqrt rsqrt exp log abs reciprocal clamp clamp_min clamp_max minimum maximum where eq ne lt gt le ge erf relu relu6 hardtanh silu sigmoid tanh gelu hardswish hardsigmoid leaky_relu elu mean sum amax amin max min argmax argmin adaptive_avg_pool2d _adaptive_avg_pool2d avg_pool2d max_pool2d max_pool2d_with_indices softmax _softmax log_softmax _log_softmax layer_norm native_layer_norm group_norm native_group_norm view _unsafe_view reshape flatten permute transpose unsqueeze squeeze expand expand_as view_as reshape_as type_as cat stack slice select clone contiguous alias detach _to_copy to dropout native_dropout scaled_dot_product_attention _scaled_dot_product_flash_attention_for_cpu _scaled_dot_product_efficient_attention _scaled_dot_product_flash_attention embedding arange full zeros ones scalar_tensor full_like zeros_like ones_like split split_with_sizes chunk unbind var std var_mean pad constant_pad_nd upsample_nearest2d upsample_bilinear2d _assert_tensor_metadata masked_fill logical_not logical_and tril triu index_select index gather cumsum floor ceil round sin cos repeat lift_fresh_copy copy _assert_scalar sym_size bitwise_not mish softplus""".split()
for n in names:
    try:
        op = getattr(torch.ops.aten, n)
    except Exception as e:
        f.write(f"MISSING {n}\n"); continue
    for ov in op.overloads():
        f.write(f"{n}.{ov}: {getattr(op, ov)._schema}\n")
from torch._decomp import core_aten_decompositions
d = core_aten_decompositions()
f.write("\nCORE DECOMPS:\n" + "\n".join(sorted(str(k) for k in d.keys())) + "\n")
f.close()
g = open(out + "/graphs.txt", "w")
class M(nn.Module):
    def __init__(s, fn, *mods):
        super().__init__(); s.fn = fn; s.mods = nn.ModuleList(mods)
    def forward(s, *x): return s.fn(s, *x)
cases = {
 "sdpa": (lambda s,q,k,v: F.scaled_dot_product_attention(q,k,v), (torch.randn(1,2,4,8),)*3),
 "sdpa_causal_scale": (lambda s,q,k,v: F.scaled_dot_product_attention(q,k,v,is_causal=True,scale=0.3), (torch.randn(1,2,4,8),)*3),
 "sdpa_mask": (lambda s,q,k,v,m: F.scaled_dot_product_attention(q,k,v,attn_mask=m), (torch.randn(1,2,4,8),)*3+(torch.randn(4,4),)),
 "acts": (lambda s,x: F.hardswish(x)+F.silu(x)+F.hardsigmoid(x)+F.gelu(x)+F.gelu(x,approximate="tanh")+F.relu6(x)+F.elu(x)+F.leaky_relu(x)+F.mish(x), (torch.randn(2,3),)),
 "linear3d": (lambda s,x: s.mods[0](x), (torch.randn(2,3,4),), nn.Linear(4,5)),
 "cnn": (lambda s,x: s.mods[2](s.mods[1](s.mods[0](x))).flatten(1), (torch.randn(1,3,8,8),), nn.Conv2d(3,4,3,padding="same"), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1)),
 "pools": (lambda s,x: F.max_pool2d(x,2,ceil_mode=True)+F.avg_pool2d(x,2,ceil_mode=True)+F.adaptive_avg_pool2d(x,(5,5))[...,:4,:4], (torch.randn(1,3,8,8),)),
 "norms": (lambda s,x: F.layer_norm(x,(8,))+F.group_norm(x,1)+x.var(-1,keepdim=True)+x.std(-1,keepdim=True), (torch.randn(2,4,8),)),
 "misc": (lambda s,x: torch.cat(x.chunk(2,1),0).reshape(4,-1).transpose(0,1).contiguous().to(torch.float64).softmax(-1).float() + F.dropout(x.new_ones(1),0.5,False), (torch.randn(2,4,8),)),
 "split_pad_up": (lambda s,x: sum(F.pad(t,(1,1)).sum() for t in x.split([1,3],1)) + F.interpolate(x,scale_factor=2).sum(), (torch.randn(1,4,3,3),)),
 "emb_arange": (lambda s,i: s.mods[0](i) + torch.arange(3.0), (torch.tensor([[0,2]]),), nn.Embedding(4,3)),
}
for name, c in cases.items():
    fn, inp, *mods = c
    try:
        ep = torch.export.export(M(fn, *mods).eval(), inp)
        g.write(f"=== {name} default\n{ep.graph}\n")
        g.write(f"=== {name} core\n{ep.run_decompositions().graph}\n")
    except Exception as e:
        g.write(f"=== {name} FAILED {e!r}\n")
g.close()
