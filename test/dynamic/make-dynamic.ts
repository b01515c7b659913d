/**
 * Fixture archives with a dynamic batch, made from the static fixtures the way torch.export writes them with
 * `dynamic_shapes={"x": {0: Dim("batch", min=1, max=…)}}`: the batch size of every activation becomes the
 * symbol `s0` (`{as_expr: {expr_str: "s0", hint}}`) and range_constraints records its range. The weights and
 * PyTorch's outputs are the fixture's own, so each output row stays PyTorch's golden row.
 */
import { join } from "node:path";
import { editArchive, entryName, MODELS } from "../helpers.js";

// biome-ignore lint/suspicious/noExplicitAny: the archive JSON is edited field by field, whatever its schema
type Json = Record<string, any>;

export interface DynamicFixture {
  /** The static fixture's name (tiny_efficientnet, mlp). */
  readonly name: string;
  /** The batch the fixture was exported at. */
  readonly batch: number;
  readonly min: number;
  readonly max: number;
  /** Replace `flatten` by `sym_size` + `view` with a symbolic size argument (what the core IR has). */
  readonly symbolicView?: boolean;
  /** Write the symbol in sympy's srepr form, as torch 2.11 did on the GPU machine: `Symbol('s0', positive=True, …)`. */
  readonly srepr?: boolean;
  /** Edit the program further (for row-check tests). */
  readonly edit?: (graph: Json) => void;
}

const SREPR = "Symbol('s0', positive=True, integer=True)";
const sym = (batch: number, srepr = false) => ({
  as_expr: { expr_str: srepr ? SREPR : "s0", hint: { as_int: batch } },
});

export function dynamicArchive(f: DynamicFixture): string {
  return editArchive(join(MODELS, `${f.name}.pt2`), (entries) => {
    const name = entryName(entries, "models/model.json");
    const program = JSON.parse(new TextDecoder().decode(entries[name])) as Json;
    const g = program.graph_module.graph as Json;
    const weights = new Set<string>();
    for (const spec of program.graph_module.signature.input_specs as Json[]) {
      const body = spec.parameter ?? spec.buffer ?? spec.tensor_constant;
      if (body) weights.add(body.arg.name);
    }
    for (const [value, meta] of Object.entries(g.tensor_values as Record<string, Json>)) {
      if (weights.has(value)) continue;
      if (meta.sizes[0]?.as_int === f.batch) meta.sizes[0] = sym(f.batch, f.srepr);
    }
    if (f.symbolicView) {
      const i = (g.nodes as Json[]).findIndex((n) => n.target === "torch.ops.aten.flatten.using_ints");
      if (i < 0) throw new Error(`${f.name} has no flatten node`);
      const flat = g.nodes[i];
      const src = flat.inputs[0].arg.as_tensor.name as string;
      const out = flat.outputs[0].as_tensor.name as string;
      const feat = g.tensor_values[out].sizes[1].as_int as number;
      g.sym_int_values = { ...(g.sym_int_values ?? {}), sym_size_int_1: sym(f.batch) };
      g.nodes.splice(
        i,
        1,
        {
          target: "torch.ops.aten.sym_size.int",
          inputs: [
            { name: "self", arg: { as_tensor: { name: src } }, kind: 1 },
            { name: "dim", arg: { as_int: 0 }, kind: 1 },
          ],
          outputs: [{ as_sym_int: { as_name: "sym_size_int_1" } }],
          metadata: {},
          name: "sym_size_int_1",
        },
        {
          target: "torch.ops.aten.view.default",
          inputs: [
            { name: "self", arg: { as_tensor: { name: src } }, kind: 1 },
            {
              name: "size",
              arg: { as_sym_ints: [{ as_name: "sym_size_int_1" }, { as_int: feat }] },
              kind: 1,
            },
          ],
          outputs: [{ as_tensor: { name: out } }],
          metadata: {},
          name: "view",
        },
      );
    }
    f.edit?.(g);
    program.range_constraints = { s0: { min_val: f.min, max_val: f.max } };
    entries[name] = new TextEncoder().encode(JSON.stringify(program));
  });
}
