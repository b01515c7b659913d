// A scripted network in the style torch.jit.save prints torchvision-like modules: Final constants, helper
// methods, free functions in torch/nn/functional.py with defaults, dead training branches, checks that raise,
// uninitialized placeholders, loops over shapes and a while loop over a list. All of it resolves at compile time.
import { describe, expect, it } from "vitest";
import { toFloat64Array } from "../../../src/ir/tensor.js";
import { interpret } from "../../../src/ops/index.js";
import { f32, loadArchive, moduleHeader } from "./archive-builder.js";

const FUNCTIONAL = `def batch_norm(input: Tensor,
    running_mean: Optional[Tensor],
    running_var: Optional[Tensor],
    weight: Optional[Tensor]=None,
    bias: Optional[Tensor]=None,
    training: bool=False,
    momentum: float=0.10000000000000001,
    eps: float=1.0000000000000001e-05) -> Tensor:
  _0 = __torch__.torch.nn.functional._verify_batch_size
  if training:
    _1 = _0(torch.size(input), )
  else:
    pass
  _2 = torch.batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, True)
  return _2
def _verify_batch_size(size: List[int]) -> None:
  size_prods = torch.__getitem__(size, 0)
  for i in range(torch.sub(torch.len(size), 2)):
    size_prods = torch.mul(size_prods, size[torch.add(i, 2)])
  if torch.eq(size_prods, 1):
    ops.prim.RaiseException("Expected more than 1 value per channel", "builtins.ValueError")
  else:
    pass
  return None
def relu(input: Tensor,
    inplace: bool=False) -> Tensor:
  if inplace:
    result = torch.relu_(input)
  else:
    result = torch.relu(input)
  return result
def adaptive_avg_pool2d(input: Tensor,
    output_size: List[int]) -> Tensor:
  _3 = __torch__.torch.nn.modules.utils._list_with_default
  _4 = _3(output_size, torch.size(input), )
  return torch.adaptive_avg_pool2d(input, _4)
def resize(input: Tensor,
    size: Optional[List[int]]=None,
    scale_factor: Optional[List[float]]=None,
    mode: str="nearest") -> Tensor:
  _5 = "only one of size or scale_factor should be defined"
  _6 = uninitialized(Optional[List[int]])
  _7 = uninitialized(Tensor)
  if torch.__isnot__(size, None):
    _8, size0 = torch.__isnot__(scale_factor, None), size
  else:
    _8, size0 = False, size
  if _8:
    ops.prim.RaiseException(_5)
    output_size = _6
  else:
    if torch.__is__(size0, None):
      factors = unchecked_cast(List[float], scale_factor)
      _9 = 0
      _10 = torch.gt(torch.len(factors), 0)
      while _10:
        f = factors[_9]
        if torch.ne(torch.floor(f), f):
          torch.warn("non-integer scale", 2)
        else:
          pass
        _11 = torch.add(_9, 1)
        _10, _9 = torch.lt(_11, torch.len(factors)), _11
      output_size0 = annotate(List[int], [])
      for i in range(torch.sub(torch.dim(input), 2)):
        _12 = torch.mul(float(torch.size(input, torch.add(i, 2))), factors[i])
        _13 = torch.append(output_size0, torch.floor(_12))
      output_size = output_size0
    else:
      output_size = unchecked_cast(List[int], size0)
  if torch.__contains__(["nearest", "area"], mode):
    _14 = torch.upsample_nearest2d(input, output_size, None)
  else:
    ops.prim.RaiseException(torch.format("mode {} is not supported", mode))
    _14 = _7
  return _14
`;

const UTILS = `def _list_with_default(out_size: List[Optional[int]],
    defaults: List[int]) -> List[int]:
  if torch.le(torch.len(defaults), torch.len(out_size)):
    ops.prim.RaiseException(torch.format("Input dimension should be at least {}", torch.add(torch.len(out_size), 1)), "builtins.ValueError")
  else:
    pass
  _0 = torch.slice(defaults, torch.neg(torch.len(out_size)))
  _1 = annotate(List[int], [])
  for _2 in range(torch.len(out_size)):
    v = out_size[_2]
    d = _0[_2]
    if torch.__isnot__(v, None):
      _3 = unchecked_cast(int, v)
    else:
      _3 = d
    _4 = torch.append(_1, _3)
  return _1
`;

const CONV = `${moduleHeader("Conv2d", ["weight", "bias"], [], ["bias : Optional[Tensor]", 'padding_mode : Final[str] = "zeros"', "stride : Final[Tuple[int, int]] = (1, 1)", "groups : Final[int] = 1"]).replace("  bias : Tensor\n", "")}
  def forward(self: __torch__.torch.nn.modules.conv.Conv2d,
    input: Tensor) -> Tensor:
    _0 = (self)._conv_forward(input, self.weight, self.bias, )
    return _0
  def _conv_forward(self: __torch__.torch.nn.modules.conv.Conv2d,
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor]) -> Tensor:
    if torch.ne(self.padding_mode, "zeros"):
      ops.prim.RaiseException("padding modes are not in this test")
      _1 = uninitialized(Tensor)
    else:
      _1 = torch.conv2d(input, weight, bias, [1, 1], [0, 0], [1, 1], self.groups)
    return _1
`;

const BATCHNORM = `${moduleHeader("BatchNorm2d", ["weight", "bias"], ["running_mean", "running_var", "num_batches_tracked"], ["eps : Final[float] = 1.0000000000000001e-05", "momentum : Final[float] = 0.10000000000000001"])}
  def forward(self: __torch__.torch.nn.modules.batchnorm.BatchNorm2d,
    input: Tensor) -> Tensor:
    _0 = __torch__.torch.nn.functional.batch_norm
    _1 = (self)._check_input_dim(input, )
    if self.training:
      _2 = torch.add(self.num_batches_tracked, 1, 1)
      self.num_batches_tracked = _2
    else:
      pass
    if self.training:
      bn_training = True
    else:
      _3 = torch.__is__(self.running_mean, None)
      if _3:
        bn_training = torch.__is__(self.running_var, None)
      else:
        bn_training = False
    _4 = _0(input, self.running_mean, self.running_var, self.weight, self.bias, bn_training, self.momentum, self.eps, )
    return _4
  def _check_input_dim(self: __torch__.torch.nn.modules.batchnorm.BatchNorm2d,
    input: Tensor) -> NoneType:
    if torch.ne(torch.dim(input), 4):
      ops.prim.RaiseException(torch.format("expected 4D input (got {}D input)", torch.dim(input)), "builtins.ValueError")
    else:
      pass
    return None
`;

const ACT_POOL = `${moduleHeader("ReLU", [], [], ["inplace : Final[bool] = True"])}
  def forward(self: __torch__.torch.nn.modules.activation.ReLU,
    input: Tensor) -> Tensor:
    _0 = __torch__.torch.nn.functional.relu(input, True, )
    return _0
${moduleHeader("AdaptiveAvgPool2d", [], [], ["output_size : Final[Tuple[int, int]] = (1, 1)"])}
  def forward(self: __torch__.torch.nn.modules.pooling.AdaptiveAvgPool2d,
    input: Tensor) -> Tensor:
    _1 = __torch__.torch.nn.functional.adaptive_avg_pool2d
    return _1(input, [1, 1], )
`;

const SEQUENTIAL = `${moduleHeader("Sequential")}
  __annotations__["0"] = __torch__.torch.nn.modules.conv.Conv2d
  __annotations__["1"] = __torch__.torch.nn.modules.batchnorm.BatchNorm2d
  __annotations__["2"] = __torch__.torch.nn.modules.activation.ReLU
  def forward(self: __torch__.torch.nn.modules.container.Sequential,
    input: Tensor) -> Tensor:
    _0 = getattr(self, "0")
    _1 = getattr(self, "1")
    _2 = getattr(self, "2")
    input0 = (_0).forward(input, )
    input1 = (_1).forward(input0, )
    return (_2).forward(input1, )
  def __len__(self: __torch__.torch.nn.modules.container.Sequential) -> int:
    return 3
`;

const ROOT = `${moduleHeader("Net", [], [], ["features : __torch__.torch.nn.modules.container.Sequential", "pool : __torch__.torch.nn.modules.pooling.AdaptiveAvgPool2d"])}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    _0 = __torch__.torch.nn.functional.resize
    features = self.features
    y = (features).forward(x, )
    y0 = _0(y, None, [2., 2.], )
    _1 = torch.eq(torch.len(features), 3)
    if _1:
      pass
    else:
      ops.prim.RaiseException("AssertionError: ")
    return torch.flatten((self.pool).forward(y0, ), 1)
`;

const obj = (cls: string, state: Record<string, unknown>) =>
  ({ obj: cls, state: { training: false, _is_full_backward_hook: null, ...state } }) as never;

describe("a scripted torchvision-style network", () => {
  const spec = {
    code: {
      "__torch__.py": ROOT,
      "__torch__/torch/nn/functional.py": FUNCTIONAL,
      "__torch__/torch/nn/modules/utils.py": UTILS,
      "__torch__/torch/nn/modules/conv.py": CONV,
      "__torch__/torch/nn/modules/batchnorm.py": BATCHNORM,
      "__torch__/torch/nn/modules/activation.py": ACT_POOL.split("class AdaptiveAvgPool2d")[0],
      "__torch__/torch/nn/modules/pooling.py": `class AdaptiveAvgPool2d${ACT_POOL.split("class AdaptiveAvgPool2d")[1]}`,
      "__torch__/torch/nn/modules/container.py": SEQUENTIAL,
    },
    data: obj("__torch__.Net", {
      features: obj("__torch__.torch.nn.modules.container.Sequential", {
        "0": obj("__torch__.torch.nn.modules.conv.Conv2d", {
          weight: { tensor: f32([1, 1, 1, 1], [1]) },
          bias: null,
        }),
        "1": obj("__torch__.torch.nn.modules.batchnorm.BatchNorm2d", {
          weight: { tensor: f32([1], [1]) },
          bias: { tensor: f32([1], [0]) },
          running_mean: { tensor: f32([1], [0]) },
          running_var: { tensor: f32([1], [1]) },
          num_batches_tracked: { tensor: f32([], [0]) },
        }),
        "2": obj("__torch__.torch.nn.modules.activation.ReLU", {}),
      }),
      pool: obj("__torch__.torch.nn.modules.pooling.AdaptiveAvgPool2d", {}),
    }),
  };

  it("resolves every Python-level decision and emits only tensor ops", () => {
    const { graph } = loadArchive(spec, [{ dtype: "float32", shape: [1, 1, 2, 2] }]);
    expect(graph.nodes.map((n) => n.op)).toEqual([
      "aten.conv2d.default",
      "aten.batch_norm.default",
      "aten.relu.default",
      "aten.upsample_nearest2d.default",
      "aten.adaptive_avg_pool2d.default",
      "aten.flatten.using_ints",
    ]);
    const up = graph.nodes[3];
    expect(up.args.output_size).toEqual({ kind: "ints", value: [4, 4] });
    expect(graph.values[graph.outputs[0]]).toEqual({ dtype: "float32", shape: [1, 1] });
    expect(graph.nodes[1].meta.modulePath).toBe("features.1");
    expect(
      Object.values(graph.weights)
        .map((w) => w.target)
        .sort(),
    ).toEqual([
      "features.0.weight",
      "features.1.bias",
      "features.1.running_mean",
      "features.1.running_var",
      "features.1.weight",
    ]);
    const [y] = interpret(graph, [f32([1, 1, 2, 2], [1, -2, 3, 4])]);
    expect(toFloat64Array(y)[0]).toBeCloseTo((1 + 3 + 4) / 4 / Math.sqrt(1 + 1e-5), 5);
  });

  it("raises the model's own error for inputs its checks reject", () => {
    expect(() => loadArchive(spec, [{ dtype: "float32", shape: [1, 2, 2] }])).toThrowError(
      /ValueError: expected 4D input \(got 3D input\)/,
    );
  });
});
