/**
 * Evaluates the size expressions torch.export writes for symbolic sizes (`SymExpr.expr_str`, sympy's printing:
 * `s0`, `2*s0`, `49*s77`, `s0 + 1`, `(s0//2)`, `Max(1, s0)`) at integer values of their symbols. Only what
 * sizes use: integers, symbols, + - * // % and ** with integer results, parentheses, Max, Min, FloorDiv, Mod,
 * CeilToInt/FloorToInt of integers. Anything else is refused with the expression in the message.
 */

type Token = { kind: "num"; value: number } | { kind: "name"; value: string } | { kind: "op"; value: string };

const TOKEN = /\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\/\/|\*\*|[-+*/%(),]))/y;

function tokenize(expr: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < expr.length) {
    if (/^\s*$/.test(expr.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(expr);
    if (!m) throw new SymExprError(expr, `unexpected '${expr.slice(at, at + 10)}'`);
    if (m[1] !== undefined) out.push({ kind: "num", value: Number(m[1]) });
    else if (m[2] !== undefined) out.push({ kind: "name", value: m[2] });
    else out.push({ kind: "op", value: m[3] });
    at = TOKEN.lastIndex;
  }
  return out;
}

export class SymExprError extends Error {
  constructor(
    readonly expr: string,
    detail: string,
  ) {
    super(`cannot evaluate size expression '${expr.slice(0, 80)}': ${detail}`);
  }
}

const FUNCTIONS: Readonly<Record<string, (args: number[]) => number>> = {
  Max: (a) => Math.max(...a),
  Min: (a) => Math.min(...a),
  FloorDiv: ([a, b]) => Math.floor(a / b),
  Mod: ([a, b]) => a - b * Math.floor(a / b),
  CeilToInt: ([a]) => Math.ceil(a),
  FloorToInt: ([a]) => Math.floor(a),
  // sympy's srepr node names (normalizeSymExpr keeps them as calls)
  Mul: (a) => a.reduce((x, y) => x * y, 1),
  Add: (a) => a.reduce((x, y) => x + y, 0),
  Pow: ([a, b]) => a ** b,
};

/** The value of `expr` with symbols bound by `binding` (an unbound symbol is an error naming it). */
export function evalSymExpr(expr: string, binding: Readonly<Record<string, number>>): number {
  const tokens = tokenize(expr);
  let i = 0;
  const fail = (detail: string): never => {
    throw new SymExprError(expr, detail);
  };
  const peek = (v: string) => tokens[i]?.kind === "op" && tokens[i].value === v;
  const expect = (v: string) => {
    if (!peek(v)) fail(`expected '${v}'`);
    i++;
  };
  const integer = (v: number): number => (Number.isSafeInteger(v) ? v : fail(`${v} is not an integer`));

  function sum(): number {
    let v = product();
    while (peek("+") || peek("-")) {
      const op = tokens[i++].value;
      const r = product();
      v = op === "+" ? v + r : v - r;
    }
    return v;
  }
  function product(): number {
    let v = unary();
    while (peek("*") || peek("//") || peek("/") || peek("%")) {
      const op = tokens[i++].value;
      const r = unary();
      if ((op === "//" || op === "/" || op === "%") && r === 0) fail("division by zero");
      if (op === "*") v *= r;
      else if (op === "//") v = Math.floor(v / r);
      else if (op === "%") v -= r * Math.floor(v / r);
      else v = integer(v / r);
    }
    return v;
  }
  function unary(): number {
    if (peek("-")) {
      i++;
      return -unary();
    }
    const base = atom();
    if (peek("**")) {
      i++;
      return integer(base ** unary());
    }
    return base;
  }
  function atom(): number {
    const t = tokens[i++];
    if (!t) return fail("unexpected end");
    if (t.kind === "num") return t.value;
    if (t.kind === "op") {
      if (t.value !== "(") fail(`unexpected '${t.value}'`);
      const v = sum();
      expect(")");
      return v;
    }
    if (peek("(")) {
      const f = FUNCTIONS[t.value];
      if (!f) fail(`function '${t.value}' is not supported`);
      i++;
      const args = [sum()];
      while (peek(",")) {
        i++;
        args.push(sum());
      }
      expect(")");
      return f(args);
    }
    const v = Object.hasOwn(binding, t.value) ? binding[t.value] : undefined;
    return v === undefined ? fail(`symbol '${t.value}' has no value (not an input dimension)`) : v;
  }

  const v = sum();
  if (i !== tokens.length) fail(`unexpected '${(tokens[i] as Token).value}'`);
  return integer(v);
}

/**
 * torch 2.11 writes some sizes in sympy's `srepr` form (`Symbol('s77', positive=True, integer=True)`, seen on the
 * GPU machine for a dynamic batch; `Integer(2)`, `Mul(…)`, `Add(…)`, `Pow(…)` in compound ones): the infix form the
 * evaluator reads, with Mul/Add/Pow left as functions it knows.
 */
export function normalizeSymExpr(expr: string): string {
  return expr
    .replace(/Symbol\(\s*'([A-Za-z_][A-Za-z0-9_]*)'(?:\s*,\s*[A-Za-z_]+\s*=\s*(?:True|False))*\s*\)/g, "$1")
    .replace(/Integer\(\s*(-?\d+)\s*\)/g, "($1)");
}

/** The symbol an expression is exactly (`s0`), else undefined. */
export function bareSymbol(expr: string): string | undefined {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(expr);
  return m ? m[1] : undefined;
}
