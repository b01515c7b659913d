import { InputError } from "../../errors.js";
import type { Graph, TensorType } from "../../ir/graph.js";
import { formatType } from "../../ir/printer.js";
import type { PickledTensor } from "../pickle/torch.js";
import { isExtension, PyDict, PyObject, PyTuple } from "../pickle/values.js";
import { verifyLoadedGraph } from "../verify-loaded.js";
import type { TorchScriptArchive } from "./archive.js";
import { dottedName } from "./ast.js";
import { resetScriptBudget } from "./budget.js";
import type { Frame } from "./control.js";
import { TorchScriptError } from "./errors.js";
import { Interpreter } from "./interp.js";
import { Program } from "./program.js";
import { ModelRaise } from "./static-ops.js";
import { typeText } from "./types.js";
import { describe, type Val } from "./values.js";

/** Input types recorded by torch.jit.trace (`traced_inputs.pkl`: shapes and dtypes, no data). */
export function tracedInputTypes(archive: TorchScriptArchive): TensorType[] | undefined {
  const py = archive.pickle("traced_inputs");
  if (!(py instanceof PyDict)) return undefined;
  const fwd = py.get("forward");
  const items = Array.isArray(fwd) ? fwd : fwd instanceof PyTuple ? fwd.items : undefined;
  if (!items?.every((x) => isExtension(x, "tensor"))) return undefined;
  return items.map((x) => {
    const t = x as PickledTensor;
    return { dtype: t.dtype, shape: [...t.shape] };
  });
}

/** Translates the archive's `forward` into a graph, with the given (or traced) input types. */
export function translate(archive: TorchScriptArchive, inputTypes?: readonly TensorType[]): Graph {
  resetScriptBudget();
  const program = new Program(archive);
  const root = archive.pickle("data");
  if (!(root instanceof PyObject)) {
    throw new TorchScriptError(
      archive.file,
      undefined,
      `${archive.root}data.pkl does not hold a TorchScript module`,
      "archive.not-torchscript",
    );
  }
  const it = new Interpreter(archive, program);
  // Every pickle of the archive goes through the allow-list now, used or not.
  it.data.constants();
  const traced = tracedInputTypes(archive);
  const self = it.data.objectOf(root, "");
  const forward = self.cls.methods.get("forward");
  if (!forward)
    throw new TorchScriptError(
      archive.file,
      undefined,
      `module ${self.cls.qualname} has no forward method`,
      "torchscript.missing-code",
    );
  const params = forward.params.slice(1);
  // an empty list (a caller that had no inputs at hand) counts as not given
  const types = inputTypes && (inputTypes.length > 0 || params.length === 0) ? inputTypes : traced;
  const file = self.cls.file;
  if (!types) {
    throw new InputError(
      `${archive.file}: this TorchScript archive does not record the shapes of its inputs (${params.map((p) => `${p.name}: ${p.annotation ? typeText(p.annotation) : "?"}`).join(", ")}); ` +
        "pass them with --input-shape (e.g. --input-shape 1x3x224x224) or loadTorchScript(path, { inputTypes })",
      "input.shape-required",
    );
  }
  // inputs bind to forward's leading parameters; the others keep their defaults (`scale: Optional[float]=None`)
  const required = params.filter((p) => !p.default).length;
  if (types.length < required || types.length > params.length) {
    const range = required === params.length ? `${params.length}` : `${required} to ${params.length}`;
    throw new InputError(
      `${archive.file}: forward takes ${range} inputs (${params.map((p) => p.name).join(", ")}), ${types.length} input types were given`,
      "input.count",
    );
  }
  const args: Val[] = params.slice(0, types.length).map((p, i) => {
    const ann = p.annotation && dottedName(p.annotation)?.join(".");
    if (p.annotation && ann !== "Tensor") {
      throw new TorchScriptError(
        archive.file,
        { file, ...p.pos },
        `forward input '${p.name}' is ${typeText(p.annotation)}; torchc compiles models whose inputs are tensors`,
        "torchscript.unsupported",
      );
    }
    const name = it.g.addInput(p.name, types[i]);
    return { k: "tensor", box: { name, type: types[i] } };
  });
  let result: Val;
  try {
    result = it.callFunction(forward, file, { k: "object", obj: self }, args, new Map(), self);
  } catch (e) {
    if (e instanceof ModelRaise) {
      throw new TorchScriptError(
        archive.file,
        undefined,
        `the model raises for inputs ${types.map(formatType).join(", ")}: ${e.message}`,
        "torchscript.raises",
      );
    }
    throw e;
  }
  const frame: Frame = { vars: new Map(), file, fn: "forward", module: self };
  const outputs = flattenOutputs(result, (v) =>
    it.fail(
      frame,
      forward.pos,
      `forward returns ${describe(v)}; torchc needs tensors (or tuples and lists of them)`,
    ),
  );
  it.g.top.builder.setOutputs(outputs.map((v) => it.g.valueOf(v, "out")));
  return verifyLoadedGraph(it.g.top.builder.build(), archive.file, "torchscript.bad-graph", {
    inferTypes: false,
  });
}

function flattenOutputs(
  v: Val,
  bad: (v: Val) => never,
): { name?: string; known?: import("../../ir/tensor.js").Tensor; type: TensorType }[] {
  if (v.k === "tensor" || v.k === "dyn") return [v.box];
  if (v.k === "tuple" || v.k === "list") return v.items.flatMap((x) => flattenOutputs(x, bad));
  return bad(v);
}
