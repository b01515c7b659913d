/** The syntax tree of the Python subset in a TorchScript archive's code/ folder. */

export interface Pos {
  readonly line: number;
  readonly col: number;
}

export type Expr =
  | { readonly kind: "name"; readonly id: string; readonly pos: Pos }
  | {
      readonly kind: "const";
      readonly value: number | string | boolean | null;
      readonly isFloat?: boolean;
      readonly pos: Pos;
    }
  | { readonly kind: "attr"; readonly value: Expr; readonly attr: string; readonly pos: Pos }
  | {
      readonly kind: "call";
      readonly func: Expr;
      readonly args: readonly Expr[];
      readonly kwargs: readonly Keyword[];
      readonly pos: Pos;
    }
  | { readonly kind: "subscript"; readonly value: Expr; readonly index: readonly Expr[]; readonly pos: Pos }
  | {
      readonly kind: "slice";
      readonly lower?: Expr;
      readonly upper?: Expr;
      readonly step?: Expr;
      readonly pos: Pos;
    }
  | { readonly kind: "list"; readonly items: readonly Expr[]; readonly pos: Pos }
  | { readonly kind: "tuple"; readonly items: readonly Expr[]; readonly pos: Pos }
  | {
      readonly kind: "dict";
      readonly keys: readonly Expr[];
      readonly values: readonly Expr[];
      readonly pos: Pos;
    }
  | {
      readonly kind: "unary";
      readonly op: "-" | "+" | "~" | "not";
      readonly operand: Expr;
      readonly pos: Pos;
    }
  | {
      readonly kind: "binary";
      readonly op: string;
      readonly left: Expr;
      readonly right: Expr;
      readonly pos: Pos;
    }
  | {
      readonly kind: "compare";
      readonly ops: readonly string[];
      readonly operands: readonly Expr[];
      readonly pos: Pos;
    }
  | {
      readonly kind: "boolop";
      readonly op: "and" | "or";
      readonly operands: readonly Expr[];
      readonly pos: Pos;
    }
  | {
      readonly kind: "ifexp";
      readonly test: Expr;
      readonly body: Expr;
      readonly orelse: Expr;
      readonly pos: Pos;
    }
  | { readonly kind: "ellipsis"; readonly pos: Pos };

export interface Keyword {
  readonly name: string;
  readonly value: Expr;
}

export type Stmt =
  | { readonly kind: "expr"; readonly value: Expr; readonly pos: Pos }
  | { readonly kind: "assign"; readonly targets: readonly Expr[]; readonly value: Expr; readonly pos: Pos }
  | {
      readonly kind: "annassign";
      readonly target: Expr;
      readonly annotation: Expr;
      readonly value?: Expr;
      readonly pos: Pos;
    }
  | {
      readonly kind: "augassign";
      readonly target: Expr;
      readonly op: string;
      readonly value: Expr;
      readonly pos: Pos;
    }
  | { readonly kind: "return"; readonly value?: Expr; readonly pos: Pos }
  | {
      readonly kind: "if";
      readonly test: Expr;
      readonly body: readonly Stmt[];
      readonly orelse: readonly Stmt[];
      readonly pos: Pos;
    }
  | {
      readonly kind: "for";
      readonly target: Expr;
      readonly iter: Expr;
      readonly body: readonly Stmt[];
      readonly pos: Pos;
    }
  | { readonly kind: "while"; readonly test: Expr; readonly body: readonly Stmt[]; readonly pos: Pos }
  | { readonly kind: "pass"; readonly pos: Pos }
  | { readonly kind: "break"; readonly pos: Pos }
  | { readonly kind: "continue"; readonly pos: Pos }
  | { readonly kind: "raise"; readonly value?: Expr; readonly pos: Pos }
  | { readonly kind: "assert"; readonly test: Expr; readonly msg?: Expr; readonly pos: Pos }
  | { readonly kind: "def"; readonly def: FunctionDef }
  | { readonly kind: "class"; readonly def: ClassDef };

export interface Param {
  readonly name: string;
  readonly annotation?: Expr;
  readonly default?: Expr;
  readonly kwOnly?: boolean;
  readonly pos: Pos;
}

export interface FunctionDef {
  readonly name: string;
  readonly params: readonly Param[];
  readonly returns?: Expr;
  readonly body: readonly Stmt[];
  readonly pos: Pos;
}

export interface ClassDef {
  readonly name: string;
  readonly base?: Expr;
  readonly body: readonly Stmt[];
  readonly pos: Pos;
}

/** One parsed file of code/: its classes and free functions, by name. */
export interface SourceFile {
  readonly path: string;
  readonly classes: ReadonlyMap<string, ClassDef>;
  readonly functions: ReadonlyMap<string, FunctionDef>;
}

/** `a.b.c` as ["a","b","c"], or undefined when the expression is not a dotted name. */
export function dottedName(e: Expr): string[] | undefined {
  if (e.kind === "name") return [e.id];
  if (e.kind === "attr") {
    const base = dottedName(e.value);
    return base && [...base, e.attr];
  }
  return undefined;
}
