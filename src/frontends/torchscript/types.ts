import type { Expr } from "./ast.js";
import { dottedName } from "./ast.js";
import type { Val } from "./values.js";

/** A type annotation as text: `List[int]`, `Optional[Tensor]`, `__torch__.foo.Bar`. */
export function typeText(e: Expr): string {
  if (e.kind === "const" && e.value === null) return "None";
  if (e.kind === "subscript") return `${typeText(e.value)}[${e.index.map(typeText).join(", ")}]`;
  if (e.kind === "tuple" || e.kind === "list") return `[${e.items.map(typeText).join(", ")}]`;
  if (e.kind === "const") return JSON.stringify(e.value);
  return dottedName(e)?.join(".") ?? "?";
}

/** Does a value have the annotated type (`isinstance`)? Undefined when torchc cannot tell at compile time. */
export function hasType(v: Val, t: Expr): boolean | undefined {
  if (t.kind === "tuple") {
    const rs = t.items.map((x) => hasType(v, x));
    if (rs.some((r) => r === true)) return true;
    return rs.some((r) => r === undefined) ? undefined : false;
  }
  const name =
    t.kind === "subscript"
      ? dottedName(t.value)?.join(".")
      : t.kind === "const" && t.value === null
        ? "None"
        : dottedName(t)?.join(".");
  const args = t.kind === "subscript" ? t.index : [];
  switch (name) {
    case "Tensor":
      return v.k === "tensor";
    case "int":
      return v.k === "int" || (v.k === "dyn" && v.type === "int");
    case "float":
      return v.k === "float" || (v.k === "dyn" && v.type === "float");
    case "bool":
      return v.k === "bool" || (v.k === "dyn" && v.type === "bool");
    case "number":
      return v.k === "int" || v.k === "float" || v.k === "dyn";
    case "str":
      return v.k === "str";
    case "None":
    case "NoneType":
      return v.k === "none";
    case "Device":
      return v.k === "device";
    case "Optional":
      return v.k === "none" || (args[0] ? hasType(v, args[0]) : true);
    case "List":
      if (v.k !== "list") return false;
      return v.items.length === 0 || !args[0] ? true : v.items.every((x) => hasType(x, args[0]) !== false);
    case "Tuple":
      if (v.k !== "tuple") return false;
      return (
        args.length === 0 ||
        (args.length === v.items.length && v.items.every((x, i) => hasType(x, args[i]) !== false))
      );
    case "Dict":
      return v.k === "dict";
    case "Any":
      return true;
    default:
      if (name && v.k === "object") return v.obj.cls.qualname === name;
      return undefined;
  }
}

/** The scalar kind an annotation names (`annotate(int, x)`), if it names one. */
export function scalarKind(t: Expr): "int" | "float" | "bool" | undefined {
  const n = dottedName(t)?.join(".");
  return n === "int" || n === "float" || n === "bool" ? n : undefined;
}
