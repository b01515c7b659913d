// Writing your own rewrite rules and running them in torchc's lowering pipeline.
//
//   npx tsx examples/custom-pass.ts
//
// A rule is a pattern (typed: what it captures is an ordinary object field the rewrite receives) and a
// rewrite that returns a replacement or `undefined` for "not here". Rule sets are arrays; rulePass turns
// one into a pipeline stage, and every firing shows up in the trace (`torchc --trace-passes`).
// (Once src/index.ts exists these imports become `from "torchc"`.)
import { pathToFileURL } from "node:url";
// From another package this is `from "torchc"`; inside the repository, the same public entry point.
import {
  arg,
  commutative,
  constantScalar,
  defaultPipeline,
  formatTrace,
  type Graph,
  GraphBuilder,
  insertPass,
  op,
  printGraph,
  rule,
  rulePass,
  ruleSet,
  runPipeline,
  type TensorType,
  value,
} from "../src/index.js";

// x * 1 ⇒ x. `commutative` also matches 1 * x; constantScalar accepts a literal 1 or an all-ones weight.
const x = value();
export const mulByOne = rule({
  name: "mul-by-one",
  doc: "x * 1 ⇒ x",
  pattern: commutative("aten.mul.Tensor", x, constantScalar(1)),
  captures: { x },
  // Decline when broadcasting against the constant would change the shape.
  rewrite: ({ x, root }, ctx) =>
    x.type.shape.join() === root.out.type.shape.join() ? ctx.replaceWith(x) : undefined,
});

// relu(relu(x)) ⇒ relu(x). The inner relu is pruned by the driver once nothing else reads it.
const inner = value();
export const reluOfRelu = rule({
  name: "relu-of-relu",
  doc: "relu(relu(x)) ⇒ relu(x)",
  pattern: op("aten.relu.default", { self: op("aten.relu.default", { self: inner }) }),
  captures: { inner },
  rewrite: ({ inner, root }, ctx) =>
    ctx.replaceWithNode("aten.relu.default", { self: arg.tensor(inner) }, root.out.type),
});

export const algebraRules = ruleSet(mulByOne, reluOfRelu);

/** relu(relu(x * 1)) * 1 + x, written with the IR builder. */
export function exampleGraph(): Graph {
  const t: TensorType = { dtype: "float32", shape: [2, 8] };
  const b = new GraphBuilder();
  const x = b.addInput("x", t);
  const call = (op: string, args: Parameters<GraphBuilder["addNode"]>[1], name: string) =>
    b.addNode(op, args, [{ name, type: t }], { sourceLocation: "model.py:12 in forward" })[0];
  const m = call("aten.mul.Tensor", { self: arg.tensor(x), other: arg.int(1) }, "m");
  const r1 = call("aten.relu.default", { self: arg.tensor(m) }, "r1");
  const r2 = call("aten.relu.default", { self: arg.tensor(r1) }, "r2");
  const m2 = call("aten.mul.Tensor", { self: arg.float(1), other: arg.tensor(r2) }, "m2");
  b.setOutputs([call("aten.add.Tensor", { self: arg.tensor(m2), other: arg.tensor(x) }, "y")]);
  return b.build();
}

export function main(): { graph: Graph; text: string } {
  const graph = exampleGraph();
  const passes = insertPass(
    defaultPipeline(),
    rulePass("my-algebra", "x*1 ⇒ x, relu∘relu ⇒ relu", algebraRules),
    {
      before: "decompose-to-core",
    },
  );
  const { graph: lowered, trace } = runPipeline(graph, passes);
  const text = [printGraph(graph), "", formatTrace(trace), "", printGraph(lowered)].join("\n");
  return { graph: lowered, text };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) console.log(main().text);
