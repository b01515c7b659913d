import { describe, expect, it } from "vitest";
import type { Graph, TensorType } from "../../../src/ir/graph.js";
import { scalarTensor, toFloat64Array } from "../../../src/ir/tensor.js";
import { interpret } from "../../../src/ops/index.js";
import { f32, loadArchive, moduleHeader } from "./archive-builder.js";

const T = (shape: number[]): TensorType => ({ dtype: "float32", shape });
const run = (g: Graph, ...xs: Parameters<typeof f32>[]) =>
  interpret(
    g,
    xs.map(([s, v]) => f32(s, v)),
  ).map((t) => Array.from(toFloat64Array(t)));
const ops = (g: Graph) => g.nodes.map((n) => n.op);

const LINEAR = `${moduleHeader("Linear", ["weight", "bias"])}
  in_features : Final[int] = 2
  def forward(self: __torch__.torch.nn.modules.linear.Linear,
    input: Tensor) -> Tensor:
    weight = self.weight
    bias = self.bias
    return torch.linear(input, weight, bias)
`;
const linearObj = (w: number[], b: number[]) => ({
  obj: "__torch__.torch.nn.modules.linear.Linear",
  state: {
    training: false,
    _is_full_backward_hook: null,
    weight: { tensor: f32([2, 2], w) },
    bias: { tensor: f32([2], b) },
  },
});

describe("translation of traced-style code", () => {
  it("inlines submodule calls and resolves weights with their targets", () => {
    const root = `${moduleHeader("Net", [], [], ["fc : __torch__.torch.nn.modules.linear.Linear", '__annotations__["0"] = __torch__.torch.nn.modules.linear.Linear'])}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    fc = self.fc
    _0 = getattr(self, "0")
    _1 = (fc).forward(x, )
    input = torch.relu_(_1)
    return (_0).forward(input, )
`;
    const { graph } = loadArchive(
      {
        code: { "__torch__.py": root, "__torch__/torch/nn/modules/linear.py": LINEAR },
        data: {
          obj: "__torch__.Net",
          state: {
            training: false,
            _is_full_backward_hook: null,
            fc: linearObj([1, 0, 0, -1], [0, 0]),
            "0": linearObj([2, 0, 0, 2], [1, 1]),
          },
        },
      },
      [T([1, 2])],
    );
    expect(ops(graph)).toEqual(["aten.linear.default", "aten.relu.default", "aten.linear.default"]);
    expect(graph.weights.p_fc_weight).toMatchObject({ kind: "parameter", target: "fc.weight" });
    expect(graph.weights.p_0_bias).toMatchObject({ kind: "parameter", target: "0.bias" });
    expect(graph.nodes[0].meta.modulePath).toBe("fc");
    expect(
      run(graph, [
        [1, 2],
        [3, 5],
      ]),
    ).toEqual([[7, 1]]);
  });

  it("folds shape arithmetic: size, NumToTensor, int(), CONSTANTS and scalar tensor ops", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    b = ops.prim.NumToTensor(torch.size(x, 0))
    _0 = int(b)
    c = ops.prim.NumToTensor(torch.size(x, 1))
    _1 = int(torch.floor_divide(c, CONSTANTS.c0))
    _2 = torch.reshape(x, [_0, _1, 2])
    return torch.mul(_2, CONSTANTS.c1)
`;
    const { graph } = loadArchive(
      {
        code: { "__torch__.py": code },
        data: { obj: "__torch__.Net", state: { training: false } },
        constants: [{ tensor: scalarTensor("int64", 2) }, { tensor: scalarTensor("float64", 0.5) }],
      },
      [T([1, 4])],
    );
    expect(ops(graph)).toEqual(["aten.reshape.default", "aten.mul.Tensor"]);
    expect(graph.nodes[0].args.shape).toEqual({ kind: "ints", value: [1, 2, 2] });
    // a known 0-d tensor next to a run-time tensor is passed as a number, as in export graphs
    expect(graph.nodes[1].args.other).toEqual({ kind: "float", value: 0.5 });
    expect(Object.keys(graph.weights)).toEqual([]);
    expect(
      run(graph, [
        [1, 4],
        [2, 4, 6, 8],
      ]),
    ).toEqual([[1, 2, 3, 4]]);
  });

  it("lowers _convolution to conv2d and keeps batch_norm", () => {
    const code = `${moduleHeader("Net", ["weight"], ["running_mean", "running_var"])}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    weight = self.weight
    _0 = torch._convolution(x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, False, False, True, True)
    _1 = torch.batch_norm(_0, None, None, self.running_mean, self.running_var, False, 0.10000000000000001, 1.0000000000000001e-05, True)
    return torch.dropout(_1, 0.5, False)
`;
    const { graph } = loadArchive(
      {
        code: { "__torch__.py": code },
        data: {
          obj: "__torch__.Net",
          state: {
            training: false,
            weight: { tensor: f32([1, 1, 1, 1], [2]) },
            running_mean: { tensor: f32([1], [1]) },
            running_var: { tensor: f32([1], [4]) },
          },
        },
      },
      [T([1, 1, 1, 2])],
    );
    expect(ops(graph)).toEqual(["aten.conv2d.default", "aten.batch_norm.default", "aten.dropout.default"]);
    expect(graph.weights.b_running_var).toMatchObject({ kind: "buffer" });
    const [[a, b]] = run(graph, [
      [1, 1, 1, 2],
      [1, 3],
    ]);
    expect(a).toBeCloseTo((2 - 1) / Math.sqrt(4 + 1e-5), 5);
    expect(b).toBeCloseTo((6 - 1) / Math.sqrt(4 + 1e-5), 5);
  });
});

describe("translation of scripted-style code", () => {
  const FUNCTIONAL = `def relu(input: Tensor,
    inplace: bool=False) -> Tensor:
  if inplace:
    result = torch.relu_(input)
  else:
    result = torch.relu(input)
  return result
def _check(x: Tensor) -> NoneType:
  _0 = torch.ne(torch.dim(x), 2)
  if _0:
    ops.prim.RaiseException(torch.format("expected 2D input (got {}D input)", torch.dim(x)), "builtins.ValueError")
  else:
    pass
  return None
def _list(n: int) -> List[int]:
  _1 = annotate(List[int], [])
  for _2 in range(n):
    _3 = torch.append(_1, torch.mul(_2, 2))
  return _1
`;

  it("resolves static conditions, calls free functions with defaults, unrolls loops over lists", () => {
    const code = `${moduleHeader("Net")}
  scale : Final[float] = 3.
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    _0 = __torch__.torch.nn.functional._check
    _1 = _0(x, )
    if self.training:
      y = torch.neg(x)
    else:
      y = __torch__.torch.nn.functional.relu(x, )
    dims = __torch__.torch.nn.functional._list(torch.len(torch.size(y)), )
    y0 = y
    for _2 in range(torch.len(dims)):
      d = dims[_2]
      y1 = torch.add(y0, d)
      y0 = y1
    return torch.mul(y0, self.scale)
`;
    const { graph } = loadArchive(
      {
        code: { "__torch__.py": code, "__torch__/torch/nn/functional.py": FUNCTIONAL },
        data: { obj: "__torch__.Net", state: { training: false } },
      },
      [T([1, 2])],
    );
    expect(ops(graph)).toEqual([
      "aten.relu.default",
      "aten.add.Tensor",
      "aten.add.Tensor",
      "aten.mul.Tensor",
    ]);
    expect(
      run(graph, [
        [1, 2],
        [-1, 1],
      ]),
    ).toEqual([[6, 9]]);
  });

  it("reports an exception the model raises with the code location", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    _0 = __torch__.torch.nn.functional._check(x, )
    return x
`;
    expect(() =>
      loadArchive(
        {
          code: { "__torch__.py": code, "__torch__/torch/nn/functional.py": FUNCTIONAL },
          data: { obj: "__torch__.Net", state: { training: false } },
        },
        [T([1, 2, 3])],
      ),
    ).toThrowError(
      /the model raises for inputs float32\[1, 2, 3\]: ValueError: expected 2D input \(got 3D input\)/,
    );
  });

  it("builds prim.If for a data-dependent branch, including in-place updates made inside it", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    z = torch.mul(x, 1.)
    if bool(torch.gt(torch.sum(x), 0)):
      y = torch.mul(x, 2.)
      _0 = torch.add_(z, 10.)
    else:
      y = torch.neg(x)
    return torch.add(y, z)
`;
    const { graph } = loadArchive(
      { code: { "__torch__.py": code }, data: { obj: "__torch__.Net", state: { training: false } } },
      [T([2])],
    );
    const node = graph.nodes.find((n) => n.op === "prim.If")!;
    expect(node.outputs).toHaveLength(2);
    expect(node.subgraphs![0].outputs).toHaveLength(2);
    expect(run(graph, [[2], [1, 2]])).toEqual([[1 * 2 + 11, 2 * 2 + 12]]);
    expect(run(graph, [[2], [-1, -2]])).toEqual([[1 - 1, 2 - 2]]);
  });

  it("drops the branch of a data-dependent if that always raises", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    if bool(torch.lt(torch.sum(x), 0)):
      ops.prim.RaiseException("negative", "builtins.ValueError")
      y = uninitialized(Tensor)
    else:
      y = torch.relu(x)
    return y
`;
    const { graph } = loadArchive(
      { code: { "__torch__.py": code }, data: { obj: "__torch__.Net", state: { training: false } } },
      [T([2])],
    );
    expect(ops(graph)).toEqual(["aten.sum.default", "aten.lt.Tensor", "aten.relu.default"]);
  });

  it("builds prim.Loop for a while loop with a data-dependent condition", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    y = x
    _0 = bool(torch.lt(torch.sum(y), 10.))
    while _0:
      y0 = torch.add(y, 1.)
      _0 = bool(torch.lt(torch.sum(y0), 10.))
      y = y0
    return y
`;
    const { graph } = loadArchive(
      { code: { "__torch__.py": code }, data: { obj: "__torch__.Net", state: { training: false } } },
      [T([2])],
    );
    const loop = graph.nodes.find((n) => n.op === "prim.Loop")!;
    expect(loop).toBeDefined();
    const body = loop.subgraphs![0];
    expect(body.inputs.length).toBe(body.outputs.length);
    expect(graph.values[body.inputs[0]] ?? body.values[body.inputs[0]]).toEqual({
      dtype: "int64",
      shape: [],
    });
    expect(run(graph, [[2], [1, 2]])).toEqual([[5, 6]]);
    expect(run(graph, [[2], [20, 2]])).toEqual([[20, 2]]);
  });

  it("carries Python numbers through a run-time loop as 0-d tensors (counters, 'and' conditions)", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    n = 0
    _0 = bool(torch.gt(torch.max(torch.abs(x)), 1.))
    if _0:
      _1 = torch.lt(n, 20)
    else:
      _1 = False
    x0, n0 = x, n
    _2 = _1
    while _2:
      x1 = torch.mul(x0, 0.5)
      n1 = torch.add(n0, 1)
      _3 = bool(torch.gt(torch.max(torch.abs(x1)), 1.))
      if _3:
        _4 = torch.lt(n1, 20)
      else:
        _4 = False
      _2, x0, n0 = _4, x1, n1
    return torch.mul(x0, n0)
`;
    const { graph } = loadArchive(
      { code: { "__torch__.py": code }, data: { obj: "__torch__.Net", state: { training: false } } },
      [T([2])],
    );
    const loop = graph.nodes.find((n) => n.op === "prim.Loop")!;
    expect(loop.subgraphs![0].nodes.some((n) => n.op === "prim.If")).toBe(true);
    expect(run(graph, [[2], [3, -0.5]])).toEqual([[1.5, -0.25]]);
    expect(run(graph, [[2], [0.5, -0.5]])).toEqual([[0, -0]]);
  });

  it("converts run-time numbers as Python does (int() truncates)", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    k = int(torch.sum(x))
    return torch.mul(x, torch.add(k, 1))
`;
    const { graph } = loadArchive(
      { code: { "__torch__.py": code }, data: { obj: "__torch__.Net", state: { training: false } } },
      [T([2])],
    );
    expect(run(graph, [[2], [1.25, 1.5]])).toEqual([[1.25 * 3, 1.5 * 3]]);
  });

  it("builds prim.Loop for range() over a number known only at run time", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor,
    n: Tensor) -> Tensor:
    y = x
    for i in range(int(n)):
      y = torch.add(y, i)
    return y
`;
    const { graph } = loadArchive(
      { code: { "__torch__.py": code }, data: { obj: "__torch__.Net", state: { training: false } } },
      [T([1]), { dtype: "int64", shape: [] }],
    );
    expect(graph.nodes.some((n) => n.op === "prim.Loop")).toBe(true);
    const [y] = interpret(graph, [f32([1], [0]), scalarTensor("int64", 4)]);
    expect(Array.from(toFloat64Array(y))).toEqual([0 + 1 + 2 + 3]);
  });
});

describe("translation of less common constructs", () => {
  it("folds tensor literals and factories, returns NamedTuples as several outputs", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> __torch__.Out:
    w = torch.tensor([[1., 2.]], dtype=None, device=None, requires_grad=False)
    z = torch.zeros([1, 2], dtype=6, layout=None, device=torch.device("cpu"), pin_memory=False)
    a = torch.add(torch.mul(x, w), z)
    _0 = __torch__.Out(a, torch.neg(a))
    return _0
class Out(NamedTuple):
  first : Tensor
  second : Tensor
`;
    const { graph } = loadArchive(
      { code: { "__torch__.py": code }, data: { obj: "__torch__.Net", state: { training: false } } },
      [T([1, 2])],
    );
    expect(graph.outputs).toHaveLength(2);
    expect(ops(graph)).toEqual(["aten.mul.Tensor", "aten.add.Tensor", "aten.neg.default"]);
    expect(
      run(graph, [
        [1, 2],
        [3, 4],
      ]),
    ).toEqual([
      [3, 8],
      [-3, -8],
    ]);
  });

  it("indexes module containers and calls their __len__", () => {
    const code = `${moduleHeader("Net", [], [], ["layers : __torch__.Layers"])}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    layers = self.layers
    _0 = torch.len(layers)
    _1 = layers[torch.sub(_0, 1)]
    return (_1).forward(x, )
${moduleHeader("Layers")}
  __annotations__["0"] = __torch__.Neg
  __annotations__["1"] = __torch__.Neg
  def __len__(self: __torch__.Layers) -> int:
    return 2
${moduleHeader("Neg")}
  def forward(self: __torch__.Neg,
    x: Tensor) -> Tensor:
    return torch.neg(x)
`;
    const neg = { obj: "__torch__.Neg", state: { training: false } };
    const { graph } = loadArchive(
      {
        code: { "__torch__.py": code },
        data: {
          obj: "__torch__.Net",
          state: {
            training: false,
            layers: { obj: "__torch__.Layers", state: { training: false, "0": neg, "1": neg } },
          },
        },
      },
      [T([1])],
    );
    expect(ops(graph)).toEqual(["aten.neg.default"]);
    expect(graph.nodes[0].meta.modulePath).toBe("layers.1");
  });

  it("refuses tensor operators applied to Python numbers only", () => {
    const code = `${moduleHeader("Net")}
  def forward(self: __torch__.Net,
    x: Tensor) -> Tensor:
    _0 = torch.sigmoid(3)
    return x
`;
    expect(() =>
      loadArchive(
        { code: { "__torch__.py": code }, data: { obj: "__torch__.Net", state: { training: false } } },
        [T([1])],
      ),
    ).toThrowError(/code\/__torch__\.py:\d+:\d+: aten::sigmoid is applied to Python values only/);
  });
});
