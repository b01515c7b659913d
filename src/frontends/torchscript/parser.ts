import { limits } from "../limits.js";
import type { ClassDef, Expr, FunctionDef, Keyword, Param, Pos, SourceFile, Stmt } from "./ast.js";
import { TorchScriptError } from "./errors.js";
import { type Token, tokenize } from "./lexer.js";

const COMPARE_OPS = new Set(["<", ">", "==", ">=", "<=", "!="]);
const AUG_OPS = new Set(["+=", "-=", "*=", "/=", "//=", "%=", "**=", "&=", "|=", "^=", "<<=", ">>=", "@="]);

/** Parses one file of a TorchScript archive's code/ folder. */
export function parseSource(src: string, archive: string, path: string): SourceFile {
  return new Parser(tokenize(src, archive, path), archive, path).file();
}

/** Parses a single expression (used for type strings such as `List[int]`). */
export function parseExpression(src: string, archive: string, path: string): Expr {
  const p = new Parser(tokenize(src, archive, path), archive, path);
  const e = p.expression();
  return e;
}

class Parser {
  private i = 0;
  /** Nesting of blocks, expressions and unary operators, bounded so hostile code cannot exhaust the stack. */
  private depth = 0;
  private readonly maxDepth = limits().maxNesting;

  constructor(
    private readonly toks: readonly Token[],
    private readonly archive: string,
    private readonly path: string,
  ) {}

  // ---- token helpers ----

  private get tok(): Token {
    return this.toks[this.i];
  }
  private peek(k = 1): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)];
  }
  private pos(t: Token = this.tok): Pos {
    return { line: t.line, col: t.col };
  }
  private fail(msg: string, t: Token = this.tok): never {
    throw new TorchScriptError(
      this.archive,
      { file: this.path, line: t.line, col: t.col },
      msg,
      "torchscript.syntax",
    );
  }
  private describe(t: Token): string {
    if (t.kind === "eof") return "end of file";
    if (t.kind === "newline") return "end of line";
    if (t.kind === "indent") return "an indent";
    if (t.kind === "dedent") return "a dedent";
    return `'${t.text}'`;
  }
  private isOp(text: string, t: Token = this.tok): boolean {
    return t.kind === "op" && t.text === text;
  }
  private isKw(text: string, t: Token = this.tok): boolean {
    return t.kind === "name" && t.text === text;
  }
  private eatOp(text: string): boolean {
    if (this.isOp(text)) {
      this.i++;
      return true;
    }
    return false;
  }
  private eatKw(text: string): boolean {
    if (this.isKw(text)) {
      this.i++;
      return true;
    }
    return false;
  }
  private expectOp(text: string, what?: string): Token {
    if (!this.isOp(text))
      this.fail(`expected '${text}'${what ? ` ${what}` : ""}, found ${this.describe(this.tok)}`);
    return this.toks[this.i++];
  }
  private expectKw(text: string): Token {
    if (!this.isKw(text)) this.fail(`expected '${text}', found ${this.describe(this.tok)}`);
    return this.toks[this.i++];
  }
  private expectName(what: string): Token {
    if (this.tok.kind !== "name") this.fail(`expected ${what}, found ${this.describe(this.tok)}`);
    return this.toks[this.i++];
  }
  private expectNewline(): void {
    if (this.tok.kind === "newline") {
      this.i++;
      return;
    }
    if (this.tok.kind === "eof" || this.tok.kind === "dedent") return;
    this.fail(`unexpected ${this.describe(this.tok)}; expected the end of the statement`);
  }

  // ---- file level ----

  file(): SourceFile {
    const classes = new Map<string, ClassDef>();
    const functions = new Map<string, FunctionDef>();
    while (this.tok.kind !== "eof") {
      if (this.tok.kind === "newline") {
        this.i++;
        continue;
      }
      if (this.isKw("import") || this.isKw("from")) {
        while (!this.atStatementEnd()) this.i++;
        continue;
      }
      if (this.isKw("class")) {
        const c = this.classDef();
        classes.set(c.name, c);
        continue;
      }
      if (this.isKw("def")) {
        const f = this.funcDef();
        functions.set(f.name, f);
        continue;
      }
      // `op_version_set = 1` and similar module-level assignments carry no code
      if (this.tok.kind === "name" && this.isOp("=", this.peek())) {
        this.simpleStatements();
        continue;
      }
      this.fail(
        `unexpected ${this.describe(this.tok)} at the top level of a code file (expected 'class' or 'def')`,
      );
    }
    return { path: this.path, classes, functions };
  }

  private classDef(): ClassDef {
    const pos = this.pos();
    this.expectKw("class");
    const name = this.expectName("a class name").text;
    let base: Expr | undefined;
    if (this.eatOp("(")) {
      if (!this.isOp(")")) base = this.expression();
      this.expectOp(")");
    }
    this.expectOp(":");
    return { name, base, body: this.suite(), pos };
  }

  private funcDef(): FunctionDef {
    const pos = this.pos();
    this.expectKw("def");
    const name = this.expectName("a function name").text;
    this.expectOp("(");
    const params: Param[] = [];
    let kwOnly = false;
    while (!this.isOp(")")) {
      if (this.eatOp("*")) {
        kwOnly = true;
        if (!this.eatOp(",")) break;
        continue;
      }
      const t = this.expectName("a parameter name");
      let annotation: Expr | undefined;
      let def: Expr | undefined;
      if (this.eatOp(":")) annotation = this.expression();
      if (this.eatOp("=")) def = this.expression();
      params.push({
        name: t.text,
        annotation,
        default: def,
        pos: this.pos(t),
        ...(kwOnly ? { kwOnly } : {}),
      });
      if (!this.eatOp(",")) break;
    }
    this.expectOp(")", "to close the parameter list");
    let returns: Expr | undefined;
    if (this.eatOp("->")) returns = this.expression();
    this.expectOp(":");
    return { name, params, returns, body: this.suite(), pos };
  }

  /** Enters one level of nesting (leave with `this.depth--`), refusing code nested deeper than the budget. */
  private enter(): void {
    if (++this.depth > this.maxDepth)
      this.fail(
        `the code nests deeper than ${this.maxDepth} levels; refusing it (TORCHC_MAX_NESTING raises the limit)`,
      );
  }

  private suite(): Stmt[] {
    this.enter();
    try {
      return this.suiteBody();
    } finally {
      this.depth--;
    }
  }

  private suiteBody(): Stmt[] {
    if (this.tok.kind !== "newline") return this.simpleStatements();
    this.i++;
    while (this.tok.kind === "newline") this.i++;
    if (this.tok.kind !== "indent") this.fail(`expected an indented block, found ${this.describe(this.tok)}`);
    this.i++;
    const body: Stmt[] = [];
    while (this.tok.kind !== "dedent" && this.tok.kind !== "eof") {
      if (this.tok.kind === "newline") {
        this.i++;
        continue;
      }
      body.push(...this.statement());
    }
    if (this.tok.kind === "dedent") this.i++;
    return body;
  }

  // ---- statements ----

  private statement(): Stmt[] {
    const t = this.tok;
    if (t.kind === "indent") this.fail("unexpected indent");
    if (t.kind === "name") {
      switch (t.text) {
        case "if":
          return [this.ifStmt()];
        case "for": {
          const pos = this.pos();
          this.i++;
          const target = this.targetList();
          this.expectKw("in");
          const iter = this.expressionList();
          this.expectOp(":");
          return [{ kind: "for", target, iter, body: this.suite(), pos }];
        }
        case "while": {
          const pos = this.pos();
          this.i++;
          const test = this.expression();
          this.expectOp(":");
          return [{ kind: "while", test, body: this.suite(), pos }];
        }
        case "def":
          return [{ kind: "def", def: this.funcDef() }];
        case "class":
          return [{ kind: "class", def: this.classDef() }];
        case "with":
        case "try":
        case "lambda":
        case "async":
        case "yield":
        case "global":
        case "nonlocal":
        case "del":
          this.fail(`'${t.text}' statements are not part of the TorchScript subset torchc reads`);
      }
    }
    return this.simpleStatements();
  }

  private ifStmt(): Stmt {
    const pos = this.pos();
    this.i++; // if / elif
    const test = this.expression();
    this.expectOp(":");
    const body = this.suite();
    let orelse: Stmt[] = [];
    if (this.isKw("elif")) orelse = [this.ifStmt()];
    else if (this.eatKw("else")) {
      this.expectOp(":");
      orelse = this.suite();
    }
    return { kind: "if", test, body, orelse, pos };
  }

  private simpleStatements(): Stmt[] {
    const out: Stmt[] = [this.smallStatement()];
    while (this.eatOp(";")) {
      if (this.tok.kind === "newline" || this.tok.kind === "eof") break;
      out.push(this.smallStatement());
    }
    this.expectNewline();
    return out;
  }

  private smallStatement(): Stmt {
    const pos = this.pos();
    const t = this.tok;
    if (t.kind === "name") {
      switch (t.text) {
        case "pass":
          this.i++;
          return { kind: "pass", pos };
        case "break":
          this.i++;
          return { kind: "break", pos };
        case "continue":
          this.i++;
          return { kind: "continue", pos };
        case "return": {
          this.i++;
          if (this.atStatementEnd()) return { kind: "return", pos };
          return { kind: "return", value: this.expressionList(), pos };
        }
        case "raise": {
          this.i++;
          if (this.atStatementEnd()) return { kind: "raise", pos };
          const value = this.expression();
          if (this.eatKw("from")) this.expression();
          return { kind: "raise", value, pos };
        }
        case "assert": {
          this.i++;
          const test = this.expression();
          const msg = this.eatOp(",") ? this.expression() : undefined;
          return { kind: "assert", test, msg, pos };
        }
      }
    }
    const first = this.expressionList();
    if (this.eatOp(":")) {
      const annotation = this.expression();
      const value = this.eatOp("=") ? this.expressionList() : undefined;
      return { kind: "annassign", target: first, annotation, value, pos };
    }
    if (this.tok.kind === "op" && AUG_OPS.has(this.tok.text)) {
      const op = this.tok.text.slice(0, -1);
      this.i++;
      return { kind: "augassign", target: first, op, value: this.expressionList(), pos };
    }
    if (this.isOp("=")) {
      const targets = [first];
      let value = first;
      while (this.eatOp("=")) {
        value = this.expressionList();
        targets.push(value);
      }
      targets.pop();
      for (const tg of targets) this.checkTarget(tg);
      return { kind: "assign", targets, value, pos };
    }
    return { kind: "expr", value: first, pos };
  }

  private atStatementEnd(): boolean {
    return (
      this.tok.kind === "newline" || this.tok.kind === "eof" || this.tok.kind === "dedent" || this.isOp(";")
    );
  }

  private checkTarget(e: Expr): void {
    if (e.kind === "name" || e.kind === "attr" || e.kind === "subscript") return;
    if (e.kind === "tuple" || e.kind === "list") {
      for (const x of e.items) this.checkTarget(x);
      return;
    }
    throw new TorchScriptError(
      this.archive,
      { file: this.path, ...e.pos },
      "cannot assign to this expression",
      "torchscript.syntax",
    );
  }

  private targetList(): Expr {
    const pos = this.pos();
    const items = [this.bitOr()];
    let tuple = false;
    while (this.isOp(",")) {
      this.i++;
      tuple = true;
      if (this.isKw("in")) break;
      items.push(this.bitOr());
    }
    const e: Expr = tuple ? { kind: "tuple", items, pos } : items[0];
    this.checkTarget(e);
    return e;
  }

  // ---- expressions ----

  /** `a, b` as a tuple, `a` as itself, `a,` as a one-element tuple. */
  expressionList(): Expr {
    const pos = this.pos();
    const first = this.expression();
    if (!this.isOp(",")) return first;
    const items = [first];
    while (this.eatOp(",")) {
      if (this.atExpressionListEnd()) break;
      items.push(this.expression());
    }
    return { kind: "tuple", items, pos };
  }

  private atExpressionListEnd(): boolean {
    const t = this.tok;
    return (
      t.kind === "newline" ||
      t.kind === "eof" ||
      t.kind === "dedent" ||
      (t.kind === "op" && ["=", ")", "]", "}", ":", ";"].includes(t.text)) ||
      AUG_OPS.has(t.text)
    );
  }

  expression(): Expr {
    this.enter();
    try {
      return this.expressionBody();
    } finally {
      this.depth--;
    }
  }

  private expressionBody(): Expr {
    const pos = this.pos();
    if (this.isKw("lambda"))
      this.fail("lambda expressions are not part of the TorchScript subset torchc reads");
    const body = this.orTest();
    if (this.isKw("if")) {
      this.i++;
      const test = this.orTest();
      this.expectKw("else");
      const orelse = this.expression();
      return { kind: "ifexp", test, body, orelse, pos };
    }
    return body;
  }

  private orTest(): Expr {
    const pos = this.pos();
    const first = this.andTest();
    if (!this.isKw("or")) return first;
    const operands = [first];
    while (this.eatKw("or")) operands.push(this.andTest());
    return { kind: "boolop", op: "or", operands, pos };
  }

  private andTest(): Expr {
    const pos = this.pos();
    const first = this.notTest();
    if (!this.isKw("and")) return first;
    const operands = [first];
    while (this.eatKw("and")) operands.push(this.notTest());
    return { kind: "boolop", op: "and", operands, pos };
  }

  private notTest(): Expr {
    const pos = this.pos();
    if (this.eatKw("not")) {
      this.enter();
      try {
        return { kind: "unary", op: "not", operand: this.notTest(), pos };
      } finally {
        this.depth--;
      }
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const pos = this.pos();
    const first = this.bitOr();
    const ops: string[] = [];
    const operands = [first];
    for (;;) {
      const t = this.tok;
      let op: string | undefined;
      if (t.kind === "op" && COMPARE_OPS.has(t.text)) {
        op = t.text;
        this.i++;
      } else if (this.isKw("in")) {
        op = "in";
        this.i++;
      } else if (this.isKw("not") && this.isKw("in", this.peek())) {
        op = "not in";
        this.i += 2;
      } else if (this.isKw("is")) {
        this.i++;
        op = this.eatKw("not") ? "is not" : "is";
      }
      if (!op) break;
      ops.push(op);
      operands.push(this.bitOr());
    }
    return ops.length === 0 ? first : { kind: "compare", ops, operands, pos };
  }

  private binaryLevel(ops: readonly string[], next: () => Expr): Expr {
    let left = next();
    while (this.tok.kind === "op" && ops.includes(this.tok.text)) {
      const pos = this.pos();
      const op = this.tok.text;
      this.i++;
      left = { kind: "binary", op, left, right: next(), pos };
    }
    return left;
  }

  private bitOr(): Expr {
    return this.binaryLevel(["|"], () => this.bitXor());
  }
  private bitXor(): Expr {
    return this.binaryLevel(["^"], () => this.bitAnd());
  }
  private bitAnd(): Expr {
    return this.binaryLevel(["&"], () => this.shift());
  }
  private shift(): Expr {
    return this.binaryLevel(["<<", ">>"], () => this.arith());
  }
  private arith(): Expr {
    return this.binaryLevel(["+", "-"], () => this.term());
  }
  private term(): Expr {
    return this.binaryLevel(["*", "/", "//", "%", "@"], () => this.factor());
  }

  private factor(): Expr {
    const pos = this.pos();
    const t = this.tok;
    if (t.kind === "op" && (t.text === "-" || t.text === "+" || t.text === "~")) {
      this.i++;
      this.enter();
      let operand: Expr;
      try {
        operand = this.factor();
      } finally {
        this.depth--;
      }
      if (t.text === "-" && operand.kind === "const" && typeof operand.value === "number") {
        return { kind: "const", value: -operand.value, isFloat: operand.isFloat, pos };
      }
      return { kind: "unary", op: t.text as "-" | "+" | "~", operand, pos };
    }
    return this.power();
  }

  private power(): Expr {
    const pos = this.pos();
    const base = this.atomExpr();
    if (!this.eatOp("**")) return base;
    this.enter();
    try {
      return { kind: "binary", op: "**", left: base, right: this.factor(), pos };
    } finally {
      this.depth--;
    }
  }

  private atomExpr(): Expr {
    let e = this.atom();
    for (;;) {
      const pos = this.pos();
      if (this.eatOp("(")) {
        const { args, kwargs } = this.callArgs();
        e = { kind: "call", func: e, args, kwargs, pos: e.pos };
        continue;
      }
      if (this.eatOp("[")) {
        const index: Expr[] = [];
        while (!this.isOp("]")) {
          index.push(this.subscriptItem());
          if (!this.eatOp(",")) break;
        }
        this.expectOp("]", "to close the subscript");
        e = { kind: "subscript", value: e, index, pos };
        continue;
      }
      if (this.eatOp(".")) {
        const name = this.expectName("an attribute name");
        e = { kind: "attr", value: e, attr: name.text, pos: this.pos(name) };
        continue;
      }
      return e;
    }
  }

  private subscriptItem(): Expr {
    const pos = this.pos();
    let lower: Expr | undefined;
    if (!this.isOp(":")) {
      lower = this.expression();
      if (!this.isOp(":")) return lower;
    }
    this.expectOp(":");
    let upper: Expr | undefined;
    let step: Expr | undefined;
    if (!this.isOp(":") && !this.isOp("]") && !this.isOp(",")) upper = this.expression();
    if (this.eatOp(":") && !this.isOp("]") && !this.isOp(",")) step = this.expression();
    return { kind: "slice", lower, upper, step, pos };
  }

  private callArgs(): { args: Expr[]; kwargs: Keyword[] } {
    const args: Expr[] = [];
    const kwargs: Keyword[] = [];
    while (!this.isOp(")")) {
      if (this.isOp("*") || this.isOp("**"))
        this.fail("starred arguments are not part of the TorchScript subset torchc reads");
      if (this.tok.kind === "name" && this.isOp("=", this.peek())) {
        const name = this.tok.text;
        this.i += 2;
        kwargs.push({ name, value: this.expression() });
      } else {
        if (kwargs.length > 0) this.fail("positional argument after a keyword argument");
        args.push(this.expression());
      }
      if (!this.eatOp(",")) break;
    }
    this.expectOp(")", "to close the call");
    return { args, kwargs };
  }

  private atom(): Expr {
    const t = this.tok;
    const pos = this.pos();
    switch (t.kind) {
      case "int":
        this.i++;
        return { kind: "const", value: t.value as number, pos };
      case "float":
        this.i++;
        return { kind: "const", value: t.value as number, isFloat: true, pos };
      case "string": {
        let s = "";
        while (this.tok.kind === "string") s += this.toks[this.i++].value as string;
        return { kind: "const", value: s, pos };
      }
      case "name": {
        this.i++;
        if (t.text === "True") return { kind: "const", value: true, pos };
        if (t.text === "False") return { kind: "const", value: false, pos };
        if (t.text === "None") return { kind: "const", value: null, pos };
        if (
          [
            "if",
            "else",
            "elif",
            "for",
            "while",
            "in",
            "is",
            "and",
            "or",
            "not",
            "def",
            "class",
            "return",
            "pass",
            "import",
            "from",
          ].includes(t.text)
        ) {
          this.i--;
          this.fail(`unexpected keyword '${t.text}' in an expression`);
        }
        return { kind: "name", id: t.text, pos };
      }
      case "op":
        if (t.text === "(") {
          this.i++;
          if (this.eatOp(")")) return { kind: "tuple", items: [], pos };
          const first = this.expression();
          if (this.eatOp(")")) return first;
          const items = [first];
          while (this.eatOp(",")) {
            if (this.isOp(")")) break;
            items.push(this.expression());
          }
          this.expectOp(")", "to close the parenthesis");
          return { kind: "tuple", items, pos };
        }
        if (t.text === "[") {
          this.i++;
          const items: Expr[] = [];
          while (!this.isOp("]")) {
            items.push(this.expression());
            if (this.isKw("for"))
              this.fail("comprehensions are not part of the TorchScript subset torchc reads");
            if (!this.eatOp(",")) break;
          }
          this.expectOp("]", "to close the list");
          return { kind: "list", items, pos };
        }
        if (t.text === "{") {
          this.i++;
          const keys: Expr[] = [];
          const values: Expr[] = [];
          while (!this.isOp("}")) {
            keys.push(this.expression());
            this.expectOp(":", "in a dict literal");
            values.push(this.expression());
            if (!this.eatOp(",")) break;
          }
          this.expectOp("}", "to close the dict");
          return { kind: "dict", keys, values, pos };
        }
        if (t.text === "...") {
          this.i++;
          return { kind: "ellipsis", pos };
        }
        break;
      default:
        break;
    }
    return this.fail(`unexpected ${this.describe(t)}`);
  }
}
