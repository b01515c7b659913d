// Region ops in a .pt2 (issue 11: timm's efficientvit_b0 exports `with torch.autocast(..., enabled=False)` as
// higher_order.wrap_with_autocast, whose schema-less arguments are all named ''). The fixture MLP's first layer
// (linear → relu) is moved into a region body here, laid out as torch/_export/serde/serialize.py writes one
// (serialize_hoo_inputs: positional arguments named ''; the body an {as_graph: {name, graph}} with its own
// inputs, outputs and tensor_values); the loaded graph must still compute PyTorch's output for the fixture input.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../../src/errors.js";
import { loadPt2 } from "../../../src/frontends/pt2/load.js";
import { interpret } from "../../../src/ops/interpret.js";
import { compareTensors } from "../../../src/util/compare.js";
import { readNpy } from "../../../src/util/npy.js";
import { editArchive, entryName, MODELS } from "../../helpers.js";

const MLP = join(MODELS, "mlp.pt2");
const input = readNpy(join(MODELS, "mlp.input.npy"));
const golden = readNpy(join(MODELS, "mlp.output.npy"));

type Json = Record<string, unknown>;
type NodeJson = {
  target: string;
  inputs: { name: string; arg: unknown }[];
  outputs: unknown[];
  name?: string;
};
const T = (name: string) => ({ as_tensor: { name } });
const pos = (arg: unknown) => ({ name: "", arg, kind: 1 });
const FP16 = 6;
const FP32 = 7;

/** The MLP's fc1 layer as a region body, its values named to collide with the enclosing graph's on purpose. */
function fc1Body(values: Record<string, Json>, dtype: number) {
  const meta = (outer: string, d = values[outer].dtype) => ({ ...values[outer], dtype: d });
  return {
    // 'x' is also the program's input; 'p_fc2_weight' is another layer's weight there (another shape);
    // 'linear_1' is fc2's output there: a body that kept its own names would read the wrong tensors.
    inputs: [T("x"), T("p_fc2_weight"), T("b")],
    nodes: [
      {
        target: "torch.ops.aten.linear.default",
        inputs: [
          { name: "input", arg: T("x") },
          { name: "weight", arg: T("p_fc2_weight") },
          { name: "bias", arg: T("b") },
        ],
        outputs: [T("linear_1")],
        name: "linear_1",
        metadata: {},
      },
      {
        target: "torch.ops.aten.relu.default",
        inputs: [{ name: "self", arg: T("linear_1") }],
        outputs: [T("out")],
        name: "relu",
        metadata: {},
      },
    ],
    outputs: [T("out")],
    tensor_values: {
      x: meta("x"),
      p_fc2_weight: meta("p_fc1_weight"),
      b: meta("p_fc1_bias"),
      linear_1: meta("linear", dtype),
      out: meta("relu", dtype),
    },
    sym_int_values: {},
    is_single_tensor_return: false,
  };
}

const autocastArgs = (enabled: boolean, dtype: number | null) => [
  pos({ as_string: "cuda" }),
  pos(dtype === null ? { as_none: true } : { as_scalar_type: dtype }),
  pos({ as_bool: enabled }),
  pos({ as_none: true }),
];

/**
 * mlp.pt2 with fc1 (linear, relu) replaced by `region(...)`, which returns the value the rest reads as 'relu';
 * `regionDtype` is what the trace recorded for the body's results (fp16 under an enabled autocast on the GPU).
 */
function withRegion(region: (values: Record<string, Json>) => NodeJson, regionDtype = FP32): string {
  return editArchive(MLP, (e) => {
    const name = entryName(e, "models/model.json");
    const json = JSON.parse(new TextDecoder().decode(e[name]));
    const g = json.graph_module.graph;
    const values = g.tensor_values as Record<string, Json>;
    const node = region(values);
    const nodes = (g.nodes as NodeJson[]).filter((n) => n.name !== "linear" && n.name !== "relu");
    if (regionDtype !== FP32) {
      // the region's result in the lower precision, cast back before the layers outside it
      values.relu = { ...values.relu, dtype: regionDtype };
      values.relu_fp32 = { ...values.relu, dtype: FP32 };
      const back = {
        target: "torch.ops.aten._to_copy.default",
        inputs: [
          { name: "self", arg: T("relu") },
          { name: "dtype", arg: { as_scalar_type: FP32 } },
        ],
        outputs: [T("relu_fp32")],
        name: "relu_fp32",
        metadata: {},
      };
      for (const n of nodes)
        for (const i of n.inputs)
          if (JSON.stringify(i.arg) === JSON.stringify(T("relu"))) i.arg = T("relu_fp32");
      nodes.unshift(back);
    }
    nodes.unshift(node);
    g.nodes = nodes;
    e[name] = new TextEncoder().encode(JSON.stringify(json));
  });
}

/** A wrap_with_autocast node running fc1's body on `operands` (input, weight, bias) into `output`. */
function autocastNode(
  values: Record<string, Json>,
  autocast: { enabled: boolean; dtype: number | null; bodyDtype: number },
  operands: readonly string[],
  output: string,
): NodeJson {
  return {
    target: "torch.ops.higher_order.wrap_with_autocast",
    inputs: [
      ...autocastArgs(autocast.enabled, autocast.dtype),
      pos({ as_graph: { name: "submod_1", graph: fc1Body(values, autocast.bodyDtype) } }),
      ...operands.map((o) => pos(T(o))),
    ],
    outputs: [T(output)],
    name: "wrap_with_autocast",
  };
}

const autocastRegion =
  (enabled: boolean, dtype: number | null, bodyDtype: number) =>
  (values: Record<string, Json>): NodeJson =>
    autocastNode(values, { enabled, dtype, bodyDtype }, ["x", "p_fc1_weight", "p_fc1_bias"], "relu");

function relErr(file: string): number {
  const m = loadPt2(file);
  const [out] = interpret(m.graph, [input]);
  return compareTensors(out, golden).relative;
}

describe("pt2 regions: wrap_with_autocast and wrap_with_set_grad_enabled", () => {
  it("inlines a disabled autocast region under its own names and computes PyTorch's output", () => {
    const f = withRegion(autocastRegion(false, 13, FP32));
    const m = loadPt2(f);
    expect(m.graph.nodes.map((n) => n.op).slice(0, 3)).toEqual([
      "aten.linear.default",
      "aten.relu.default",
      "aten.dropout.default",
    ]);
    // the body's values were renamed away from the program's own 'linear_1' and 'p_fc2_weight'
    const linear = m.graph.nodes[0];
    expect(linear.args.weight).toEqual({ kind: "tensor", name: "p_fc1_weight" });
    expect(linear.outputs[0]).not.toBe("linear_1");
    expect(m.graph.values[linear.outputs[0]]).toEqual({ dtype: "float32", shape: [4, 64] });
    expect(m.graph.nodes[1].outputs).toEqual(["relu"]);
    expect(relErr(f)).toBeLessThan(1e-5);
  });

  it("casts the inputs of the ops an enabled autocast acts on to the dtype the trace recorded", () => {
    const f = withRegion(autocastRegion(true, FP16, FP16), FP16);
    const m = loadPt2(f);
    const casts = m.graph.nodes.filter((n) => n.op === "aten._to_copy.default");
    // x, the weight and the bias into fp16 for the linear; relu is not on autocast's lists: no cast; then back
    expect(casts.map((n) => n.args.self)).toEqual([
      { kind: "tensor", name: "x" },
      { kind: "tensor", name: "p_fc1_weight" },
      { kind: "tensor", name: "p_fc1_bias" },
      { kind: "tensor", name: "relu" },
    ]);
    expect(casts.map((n) => m.graph.values[n.outputs[0]].dtype)).toEqual([
      "float16",
      "float16",
      "float16",
      "float32",
    ]);
    const linear = m.graph.nodes.find((n) => n.op === "aten.linear.default");
    expect(linear && m.graph.values[linear.outputs[0]].dtype).toBe("float16");
    const err = relErr(f);
    expect(err).toBeLessThan(1e-2); // issue 13's fp16 bar
    expect(err).toBeGreaterThan(1e-6); // fp16 rounding happened
  });

  it("adds no casts where autocast did not act (the trace recorded fp32: tensors on another device)", () => {
    const f = withRegion(autocastRegion(true, FP16, FP32));
    const m = loadPt2(f);
    expect(m.graph.nodes.some((n) => n.op === "aten._to_copy.default")).toBe(false);
    expect(relErr(f)).toBeLessThan(1e-5);
  });

  it("inlines nested regions (a grad-mode region around an autocast one) and results that are operands", () => {
    const f = withRegion((values) => {
      values.x_again = values.x; // the enclosing graph's record of the passed-through operand
      return {
        target: "torch.ops.higher_order.wrap_with_set_grad_enabled",
        inputs: [
          pos({ as_bool: false }),
          pos({
            as_graph: {
              name: "submod_0",
              graph: {
                inputs: [T("a"), T("w"), T("c")],
                nodes: [
                  autocastNode(
                    values,
                    { enabled: false, dtype: null, bodyDtype: FP32 },
                    ["a", "w", "c"],
                    "getitem",
                  ),
                ],
                // the body's result, and its first operand passed through
                outputs: [T("getitem"), T("a")],
                tensor_values: {
                  a: values.x,
                  w: values.p_fc1_weight,
                  c: values.p_fc1_bias,
                  getitem: values.relu,
                },
                sym_int_values: {},
              },
            },
          }),
          pos(T("x")),
          pos(T("p_fc1_weight")),
          pos(T("p_fc1_bias")),
        ],
        outputs: [T("relu"), T("x_again")],
        name: "wrap_with_set_grad_enabled",
      };
    });
    const m = loadPt2(f);
    expect(m.graph.nodes.map((n) => n.op).slice(0, 3)).toEqual([
      "aten.linear.default",
      "aten.relu.default",
      "aten.alias.default",
    ]);
    expect(m.graph.nodes[2].args.self).toEqual({ kind: "tensor", name: "x" });
    expect(relErr(f)).toBeLessThan(1e-5);
  });

  it("refuses regions nested deeper than 64 (a hostile file would overflow the stack)", () => {
    const nested = (depth: number) =>
      withRegion((values) => {
        let node: NodeJson = autocastRegion(false, null, FP32)(values);
        for (let d = 0; d < depth; d++) {
          const inner = {
            ...node,
            inputs: [...node.inputs.slice(0, -3), pos(T("a")), pos(T("w")), pos(T("c"))],
            outputs: [T("getitem")],
          };
          node = {
            target: "torch.ops.higher_order.wrap_with_set_grad_enabled",
            inputs: [
              pos({ as_bool: false }),
              pos({
                as_graph: {
                  name: `submod_${d}`,
                  graph: {
                    inputs: [T("a"), T("w"), T("c")],
                    nodes: [inner],
                    outputs: [T("getitem")],
                    tensor_values: {
                      a: values.x,
                      w: values.p_fc1_weight,
                      c: values.p_fc1_bias,
                      getitem: values.relu,
                    },
                  },
                },
              }),
              pos(T("x")),
              pos(T("p_fc1_weight")),
              pos(T("p_fc1_bias")),
            ],
            outputs: [T("relu")],
            name: `wrap_${d}`,
          };
        }
        return node;
      });
    expect(relErr(nested(10))).toBeLessThan(1e-5);
    expect(() => loadPt2(nested(70))).toThrow(/regions are nested more than 64 deep/);
  });

  it("names the node when a region does not fit its body", () => {
    const tooFew = withRegion((values) => {
      const n = autocastRegion(false, null, FP32)(values);
      return { ...n, inputs: n.inputs.slice(0, -1) };
    });
    expect(() => loadPt2(tooFew)).toThrow(ArchiveError);
    expect(() => loadPt2(tooFew)).toThrow(
      /node 'wrap_with_autocast'.*passes 2 operands to a body of 3 inputs/,
    );
    const keyword = withRegion((values) => {
      const n = autocastRegion(false, null, FP32)(values);
      return { ...n, inputs: [...n.inputs, { name: "extra", arg: { as_int: 1 } }] };
    });
    expect(() => loadPt2(keyword)).toThrow(/keyword argument 'extra'/);
  });
});

// fixtures/export.py's AutocastRegion (EfficientViT's disabled-autocast linear attention), exported by PyTorch.
const REGION_FIXTURE = join(MODELS, "autocast_region.pt2");
describe.skipIf(!existsSync(REGION_FIXTURE))(
  "pt2 regions in a real export (fixtures/models/autocast_region.pt2)",
  () => {
    it("loads the export and computes PyTorch's output", () => {
      const m = loadPt2(REGION_FIXTURE);
      expect(m.graph.nodes.some((n) => n.op.startsWith("higher_order."))).toBe(false);
      const [out] = interpret(m.graph, [readNpy(join(MODELS, "autocast_region.input.npy"))]);
      expect(compareTensors(out, readNpy(join(MODELS, "autocast_region.output.npy"))).relative).toBeLessThan(
        1e-5,
      );
    });
  },
);
