/**
 * Every function under src/backends is at most MAX_LINES lines, from its signature to its closing brace
 * (class methods, constructors, accessors, function expressions and arrow functions each count on their own),
 * so each reads at once. Found with the TypeScript compiler's own parser.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";

const MAX_LINES = 80;

/** Files allowed longer functions, with the reason (paths relative to src/backends); none today. */
const ALLOWED: readonly string[] = [];

interface LongFunction {
  readonly where: string;
  readonly name: string;
  readonly lines: number;
}

function isFunctionLike(n: ts.Node): n is ts.FunctionLikeDeclaration {
  return (
    ts.isFunctionDeclaration(n) ||
    ts.isMethodDeclaration(n) ||
    ts.isConstructorDeclaration(n) ||
    ts.isGetAccessorDeclaration(n) ||
    ts.isSetAccessorDeclaration(n) ||
    ts.isFunctionExpression(n) ||
    ts.isArrowFunction(n)
  );
}

function nameOf(n: ts.FunctionLikeDeclaration, sf: ts.SourceFile): string {
  if (n.name) return n.name.getText(sf);
  if (ts.isConstructorDeclaration(n)) return "constructor";
  const p = n.parent;
  if (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p))
    return p.name.getText(sf);
  return "(anonymous)";
}

/** Functions in `text` longer than `max` lines (signature through closing brace, comments before it excluded). */
function longFunctions(file: string, text: string, max = MAX_LINES): LongFunction[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: LongFunction[] = [];
  const visit = (n: ts.Node): void => {
    if (isFunctionLike(n) && n.body) {
      const first = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(n.end).line;
      const lines = last - first + 1;
      if (lines > max) out.push({ where: `${file}:${first + 1}`, name: nameOf(n, sf), lines });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

const BACKENDS = join(ROOT, "src", "backends");

describe("short functions under src/backends", () => {
  it(`has no function longer than ${MAX_LINES} lines outside the allow-list`, () => {
    const files = sources(BACKENDS);
    expect(files.length).toBeGreaterThan(50);
    const long = files
      .map((f) => relative(BACKENDS, f))
      .filter((f) => !ALLOWED.includes(f))
      .flatMap((f) => longFunctions(f, readFileSync(join(BACKENDS, f), "utf8")))
      .map((l) => `${l.where} ${l.name}: ${l.lines} lines`);
    expect(long).toEqual([]);
  });

  it("lists only files that exist", () => {
    for (const f of ALLOWED) expect(statSync(join(BACKENDS, f)).isFile(), f).toBe(true);
  });

  it("counts each function, method and arrow on its own, from signature to closing brace", () => {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const text = [
      "/** a doc comment does not count */",
      `export function fits(): void {\n${body(MAX_LINES - 2)}\n}`,
      `function tooLong(): void {\n${body(MAX_LINES - 1)}\n}`,
      `class C {\n  method(): void {\n${body(MAX_LINES)}\n  }\n  short(): void {}\n}`,
      `const arrow = () => {\n${body(MAX_LINES - 1)}\n};`,
    ].join("\n");
    expect(longFunctions("x.ts", text).map((l) => [l.name, l.lines])).toEqual([
      ["tooLong", MAX_LINES + 1],
      ["method", MAX_LINES + 2],
      ["arrow", MAX_LINES + 1],
    ]);
  });
});
