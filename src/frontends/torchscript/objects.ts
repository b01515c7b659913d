import type { WeightKind } from "../../ir/graph.js";
import { type PickledTensor, PyDevice } from "../pickle/torch.js";
import {
  isExtension,
  PyDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PyTuple,
  type PyValue,
  pyTypeName,
} from "../pickle/values.js";
import type { TorchScriptArchive } from "./archive.js";
import type { ClassInfo, Program } from "./program.js";
import { type GraphState, sanitize } from "./scope.js";
import { StaticError } from "./static-ops.js";
import { bool, float, int, NONE, type ObjectVal, str, type Val } from "./values.js";

/**
 * The module objects of data.pkl and the constants of constants.pkl as translator values: objects keep their
 * identity and path from the root, tensors become graph weights (parameter / buffer / constant, by the class's
 * `__parameters__` and `__buffers__`) the first time code reads them.
 */
export class ModuleData {
  private readonly objects = new Map<PyObject, ObjectVal>();
  private readonly weights = new Map<PickledTensor, Val>();
  private constantsTable: Val[] | undefined;

  constructor(
    private readonly archive: TorchScriptArchive,
    private readonly program: Program,
    private readonly g: GraphState,
    /** Runs a class's `__setstate__` on an object whose pickled state is not an attribute dict. */
    private readonly setState: (obj: ObjectVal, state: Val) => void,
  ) {}

  objectOf(py: PyObject, fqn: string): ObjectVal {
    const hit = this.objects.get(py);
    if (hit) return hit;
    const cls = this.program.classOf(py.qualifiedName);
    const obj: ObjectVal = { cls, py, fqn, attrs: new Map() };
    this.objects.set(py, obj);
    if (py.state !== undefined && !(py.state instanceof PyDict) && cls.methods.has("__setstate__")) {
      this.setState(obj, this.toVal(py.state, `${fqn}.__state__`, undefined, ""));
    }
    return obj;
  }

  /** Attribute `attr` of `obj` as pickled (undefined when the state has no such entry). */
  attribute(obj: ObjectVal, attr: string): Val | undefined {
    const py = obj.py.attr(attr);
    if (py === undefined) return undefined;
    return this.toVal(py, obj.fqn ? `${obj.fqn}.${attr}` : attr, obj.cls, attr);
  }

  toVal(py: PyValue, fqn: string, owner: ClassInfo | undefined, attr: string): Val {
    if (py === null) return NONE;
    if (typeof py === "boolean") return bool(py);
    if (typeof py === "number") return int(py);
    if (typeof py === "bigint") return int(Number(py));
    if (typeof py === "string") return str(py);
    if (py instanceof PyFloat) return float(py.value);
    if (Array.isArray(py))
      return { k: "list", items: py.map((x, i) => this.toVal(x, `${fqn}.${i}`, undefined, `${attr}.${i}`)) };
    if (py instanceof PyTuple)
      return {
        k: "tuple",
        items: py.items.map((x, i) => this.toVal(x, `${fqn}.${i}`, undefined, `${attr}.${i}`)),
      };
    if (py instanceof PyDict) {
      return {
        k: "dict",
        entries: py
          .entries()
          .map(([k, v]) => [
            this.toVal(k, fqn, undefined, attr),
            this.toVal(v, `${fqn}.${String(k)}`, undefined, `${attr}.${String(k)}`),
          ]),
      };
    }
    if (py instanceof PyObject) return { k: "object", obj: this.objectOf(py, fqn) };
    if (py instanceof PyDevice) return { k: "device", v: py.device };
    if (isExtension(py, "tensor")) return this.weight(py as PickledTensor, fqn, owner, attr);
    if (py instanceof PyGlobal)
      throw new StaticError(
        `attribute '${fqn}' holds a reference to ${py.qualifiedName}, which torchc cannot use`,
      );
    throw new StaticError(`attribute '${fqn}' holds a ${pyTypeName(py)}, which torchc does not support`);
  }

  private weight(t: PickledTensor, fqn: string, owner: ClassInfo | undefined, attr: string): Val {
    const hit = this.weights.get(t);
    if (hit) return hit;
    const kind: WeightKind = owner?.parameters.has(attr)
      ? "parameter"
      : owner?.buffers.has(attr)
        ? "buffer"
        : "constant";
    const prefix = kind === "parameter" ? "p_" : kind === "buffer" ? "b_" : "c_";
    const tensor = t.toTensor();
    const name = this.g.addWeight(sanitize(`${prefix}${fqn}`), { kind, target: fqn, tensor });
    const v: Val = { k: "tensor", box: { name, type: { dtype: tensor.dtype, shape: tensor.shape } } };
    this.weights.set(t, v);
    return v;
  }

  /** constants.pkl: tensors stay known data (small ones fold, others become constants when used). */
  constants(): Val[] {
    if (!this.constantsTable) {
      const py = this.archive.pickle("constants");
      const items = py instanceof PyTuple ? py.items : [];
      this.constantsTable = items.map((x, i) => {
        if (isExtension(x, "tensor")) {
          const t = (x as PickledTensor).toTensor();
          return { k: "tensor", box: { known: t, type: { dtype: t.dtype, shape: t.shape } } } as Val;
        }
        return this.toVal(x, `CONSTANTS.c${i}`, undefined, "");
      });
    }
    return this.constantsTable;
  }
}
