import { TorchScriptError } from "./errors.js";

export type TokenKind = "name" | "int" | "float" | "string" | "op" | "newline" | "indent" | "dedent" | "eof";

export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  /** Parsed value of int, float and string tokens. */
  readonly value?: number | string;
  readonly line: number;
  readonly col: number;
}

const OPERATORS = [
  "**=",
  "//=",
  ">>=",
  "<<=",
  "...",
  "->",
  "**",
  "//",
  "==",
  "!=",
  "<=",
  ">=",
  "<<",
  ">>",
  "+=",
  "-=",
  "*=",
  "/=",
  "%=",
  "&=",
  "|=",
  "^=",
  "@=",
  "+",
  "-",
  "*",
  "/",
  "%",
  "@",
  "&",
  "|",
  "^",
  "~",
  "<",
  ">",
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
  ",",
  ":",
  ".",
  ";",
  "=",
];

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "0": "\0",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v",
  "\n": "",
};

/**
 * Splits the Python subset `torch.jit.save` writes into tokens, with Python's INDENT/DEDENT/NEWLINE structure
 * (newlines inside brackets are joined). Errors name the file and line:col.
 */
export function tokenize(src: string, archive: string, file: string): Token[] {
  const out: Token[] = [];
  const indents = [0];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let depth = 0;
  let atLineStart = true;
  const fail = (msg: string, l = line, c = i - lineStart + 1): never => {
    throw new TorchScriptError(archive, { file, line: l, col: c }, msg, "torchscript.syntax");
  };
  const push = (kind: TokenKind, text: string, col: number, value?: number | string, l = line) =>
    out.push(value === undefined ? { kind, text, line: l, col } : { kind, text, value, line: l, col });

  while (i < src.length) {
    if (atLineStart && depth === 0) {
      // measure indentation; skip blank and comment-only lines
      let j = i;
      let width = 0;
      while (j < src.length && (src[j] === " " || src[j] === "\t")) {
        width = src[j] === "\t" ? (Math.floor(width / 8) + 1) * 8 : width + 1;
        j++;
      }
      if (j >= src.length) break;
      if (src[j] === "\n" || src[j] === "\r" || src[j] === "#") {
        while (j < src.length && src[j] !== "\n") j++;
        i = j + 1;
        line++;
        lineStart = i;
        continue;
      }
      i = j;
      atLineStart = false;
      const col = i - lineStart + 1;
      if (width > indents[indents.length - 1]) {
        indents.push(width);
        push("indent", "", col);
      } else {
        while (width < indents[indents.length - 1]) {
          indents.pop();
          push("dedent", "", col);
        }
        if (width !== indents[indents.length - 1]) fail("inconsistent indentation", line, col);
      }
    }
    const c = src[i];
    const col = i - lineStart + 1;
    if (c === "\n") {
      if (depth === 0) {
        push("newline", "\n", col);
        atLineStart = true;
      }
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === "\\" && src[i + 1] === "\n") {
      i += 2;
      line++;
      lineStart = i;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j])) j++;
      // string prefixes (r"", b"", u"")
      if ((src[j] === '"' || src[j] === "'") && /^[rRbBuU]{1,2}$/.test(src.slice(i, j))) {
        const raw = /r/i.test(src.slice(i, j));
        i = j;
        const { value, end, endLine, endLineStart } = readString(src, i, raw, fail, line, lineStart);
        push("string", src.slice(i, end), col, value);
        i = end;
        line = endLine;
        lineStart = endLineStart;
        continue;
      }
      push("name", src.slice(i, j), col);
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(src[i + 1] ?? ""))) {
      const m =
        /^(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))[jJ]?/.exec(
          src.slice(i, i + 64),
        );
      if (!m) fail(`bad number`);
      const text = m![0];
      if (/[jJ]$/.test(text)) fail(`complex literal '${text}' is not supported`);
      const clean = text.replace(/_/g, "");
      const isFloat = /^[^xob]*[.eE]/i.test(clean) && !/^0[xob]/i.test(clean);
      push(isFloat ? "float" : "int", text, col, isFloat ? Number.parseFloat(clean) : Number(clean));
      i += text.length;
      continue;
    }
    if (c === '"' || c === "'") {
      const { value, end, endLine, endLineStart } = readString(src, i, false, fail, line, lineStart);
      push("string", src.slice(i, end), col, value);
      i = end;
      line = endLine;
      lineStart = endLineStart;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (!op) fail(`unexpected character '${c}'`);
    if (op === "(" || op === "[" || op === "{") depth++;
    if (op === ")" || op === "]" || op === "}") depth = Math.max(0, depth - 1);
    push("op", op!, col);
    i += op!.length;
  }
  if (!atLineStart || out.length > 0) {
    if (out.length > 0 && out[out.length - 1].kind !== "newline" && out[out.length - 1].kind !== "dedent")
      push("newline", "\n", i - lineStart + 1);
  }
  while (indents.length > 1) {
    indents.pop();
    push("dedent", "", 1);
  }
  push("eof", "", i - lineStart + 1);
  return out;
}

function readString(
  src: string,
  start: number,
  raw: boolean,
  fail: (msg: string, l?: number, c?: number) => never,
  line0: number,
  lineStart0: number,
): { value: string; end: number; endLine: number; endLineStart: number } {
  const q = src[start];
  const triple = src.startsWith(q.repeat(3), start);
  const close = triple ? q.repeat(3) : q;
  let i = start + close.length;
  let line = line0;
  let lineStart = lineStart0;
  let value = "";
  for (;;) {
    if (i >= src.length) fail("unterminated string", line0, start - lineStart0 + 1);
    if (src.startsWith(close, i))
      return { value, end: i + close.length, endLine: line, endLineStart: lineStart };
    const c = src[i];
    if (c === "\n") {
      if (!triple) fail("unterminated string", line0, start - lineStart0 + 1);
      line++;
      lineStart = i + 1;
    }
    if (c === "\\" && !raw) {
      const e = src[i + 1];
      if (e === "x") {
        value += String.fromCharCode(Number.parseInt(src.slice(i + 2, i + 4), 16));
        i += 4;
        continue;
      }
      if (e === "u" || e === "U") {
        const n = e === "u" ? 4 : 8;
        value += String.fromCodePoint(Number.parseInt(src.slice(i + 2, i + 2 + n), 16));
        i += 2 + n;
        continue;
      }
      if (/[0-7]/.test(e) && e !== "0") {
        const m = /^[0-7]{1,3}/.exec(src.slice(i + 1))![0];
        value += String.fromCharCode(Number.parseInt(m, 8));
        i += 1 + m.length;
        continue;
      }
      if (e in ESCAPES) {
        value += ESCAPES[e];
        if (e === "\n") {
          line++;
          lineStart = i + 2;
        }
        i += 2;
        continue;
      }
      value += c;
      i++;
      continue;
    }
    value += c;
    i++;
  }
}
