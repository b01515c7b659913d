import { describe, expect, it } from "vitest";
import { TorchcError } from "../../../src/errors.js";
import type { Expr, Stmt } from "../../../src/frontends/torchscript/ast.js";
import { tokenize } from "../../../src/frontends/torchscript/lexer.js";
import { parseSource } from "../../../src/frontends/torchscript/parser.js";

const parse = (src: string) => parseSource(src, "m.pt", "code/__torch__.py");

// A class as torch.jit.save prints it (python_print.cpp): annotated attributes, __annotations__ for
// non-identifier names, Final constants, a multi-line signature, inlined submodule calls.
const RESNET_LIKE = `class ResNet(Module):
  __parameters__ = []
  __buffers__ = ["running_mean", ]
  training : bool
  _is_full_backward_hook : Optional[bool]
  conv1 : __torch__.torch.nn.modules.conv.___torch_mangle_124.Conv2d
  __annotations__["0"] = __torch__.torchvision.models.resnet.BasicBlock
  eps : Final[float] = 1.0000000000000001e-05
  kernel_size : Final[Tuple[int, int]] = (3, 3)
  def forward(self: __torch__.ResNet,
    x: Tensor) -> Tensor:
    conv1 = self.conv1
    _0 = getattr(self, "0")
    _1 = (conv1).forward(x, )
    input = torch._convolution(_1, CONSTANTS.c0, None, [2, 2], [3, 3], [1, 1], False, [0, 0], 1, False, False, True, True)
    _2 = torch.batch_norm(input, None, None, None, None, False, 0.10000000000000001, 1.0000000000000001e-05, True)
    a, b, = ops.prim.TupleUnpack(_2)
    _3 = annotate(List[int], [])
    return torch.gelu(_2, approximate="tanh")
`;

function forward(src: string): readonly Stmt[] {
  const f = parse(src);
  const cls = [...f.classes.values()][0];
  const m = cls.body.find((s) => s.kind === "def");
  if (m?.kind !== "def") throw new Error("no def");
  return m.def.body;
}

describe("torchscript lexer", () => {
  it("produces INDENT/DEDENT and joins lines inside brackets", () => {
    const toks = tokenize("def f(a,\n    b):\n  return a\n", "m.pt", "code/x.py");
    const kinds = toks.map((t) => (t.kind === "op" || t.kind === "name" ? t.text : t.kind));
    expect(kinds).toEqual([
      "def",
      "f",
      "(",
      "a",
      ",",
      "b",
      ")",
      ":",
      "newline",
      "indent",
      "return",
      "a",
      "newline",
      "dedent",
      "eof",
    ]);
  });

  it("reads the number and string forms the printer writes", () => {
    const toks = tokenize(
      'x = [2., 1.0000000000000001e-05, 9223372036854775807, -1, .5, \'a\\nb\', "q\\""]\n',
      "m.pt",
      "code/x.py",
    );
    const vals = toks
      .filter((t) => t.kind === "float" || t.kind === "int" || t.kind === "string")
      .map((t) => [t.kind, t.value]);
    expect(vals).toEqual([
      ["float", 2],
      ["float", 1.0000000000000001e-5],
      ["int", Number("9223372036854775807")],
      ["int", 1],
      ["float", 0.5],
      ["string", "a\nb"],
      ["string", 'q"'],
    ]);
  });

  it("reports bad characters with file and line:col", () => {
    expect(() => tokenize("x = 1\ny = $\n", "m.pt", "code/__torch__/a.py")).toThrowError(
      /^m\.pt: code\/__torch__\/a\.py:2:5: unexpected character '\$'/,
    );
  });
});

describe("torchscript parser", () => {
  it("parses a class as python_print writes it", () => {
    const f = parse(RESNET_LIKE);
    const cls = f.classes.get("ResNet")!;
    expect(cls.base).toMatchObject({ kind: "name", id: "Module" });
    const body = forward(RESNET_LIKE);
    expect(body.map((s) => s.kind)).toEqual([
      "assign",
      "assign",
      "assign",
      "assign",
      "assign",
      "assign",
      "assign",
      "return",
    ]);
    const conv = body[3];
    expect(conv.kind === "assign" && conv.value.kind === "call" && conv.value.args.length).toBe(13);
    const unpack = body[5];
    expect(unpack.kind === "assign" && unpack.targets[0].kind).toBe("tuple");
    const ret = body[7];
    expect(ret.kind === "return" && ret.value?.kind === "call" && ret.value.kwargs[0].name).toBe(
      "approximate",
    );
    const call = (body[2] as { value: Expr }).value;
    expect(call).toMatchObject({
      kind: "call",
      func: { kind: "attr", attr: "forward", value: { kind: "name", id: "conv1" } },
    });
  });

  it("parses if/else, for, while, and free functions", () => {
    const f = parse(`def relu(input: Tensor,
    inplace: bool=False) -> Tensor:
  if inplace:
    result = torch.relu_(input)
  else:
    result = torch.relu(input)
  _0 = annotate(List[int], [])
  for _1 in range(torch.len(_0)):
    _2 = torch.append(_0, _1)
  _3 = True
  while _3:
    _3 = False
  return result
`);
    const fn = f.functions.get("relu")!;
    expect(fn.params.map((p) => [p.name, p.default?.kind])).toEqual([
      ["input", undefined],
      ["inplace", "const"],
    ]);
    expect(fn.body.map((s) => s.kind)).toEqual(["if", "assign", "for", "assign", "while", "return"]);
  });

  it("accepts the optional version header and imports", () => {
    const f = parse("op_version_set = 1\nimport __torch__.foo\nclass A(Module):\n  __parameters__ = []\n");
    expect([...f.classes.keys()]).toEqual(["A"]);
  });

  it("names the file and line:col of a syntax error", () => {
    const bad =
      "class A(Module):\n  def forward(self: A,\n    x: Tensor) -> Tensor:\n    y = torch.relu(x))\n    return y\n";
    let err: unknown;
    try {
      parse(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TorchcError);
    expect((err as TorchcError).code).toBe("torchscript.syntax");
    expect((err as Error).message).toMatch(/^m\.pt: code\/__torch__\.py:4:22: /);
  });

  it("refuses constructs outside the subset with a location", () => {
    expect(() => parse("def f(x: Tensor) -> Tensor:\n  with x:\n    pass\n")).toThrowError(
      /code\/__torch__\.py:2:3: 'with' statements are not part/,
    );
    expect(() => parse("def f(x: Tensor) -> Tensor:\n  return [y for y in x]\n")).toThrowError(
      /2:13: comprehensions/,
    );
  });
});
