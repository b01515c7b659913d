// Argument names, types, defaults and return counts must be PyTorch's own: the .pt2 frontend keys arguments by
// schema name. test/ops/torch-schemas.json holds torch 2.11's schema strings (test/ops/make_extra_golden.py).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { getOp, OP_NAMES, parseSchema } from "../../src/ops/index.js";

const file = JSON.parse(readFileSync(new URL("./torch-schemas.json", import.meta.url), "utf8")) as {
  torch: string;
  schemas: Record<string, string | null>;
};

function split(schema: string): { args: string; returns: number | "list" } {
  const open = schema.indexOf("(");
  const arrow = schema.lastIndexOf(" -> ");
  const args = schema.slice(open + 1, schema.lastIndexOf(")", arrow));
  const ret = schema.slice(arrow + 4).trim();
  if (ret === "()") return { args, returns: 0 };
  if (/\[\]$/.test(ret)) return { args, returns: "list" };
  if (ret.startsWith("(")) return { args, returns: ret.slice(1, -1).split(",").length };
  return { args, returns: 1 };
}

describe(`op schemas match torch ${file.torch}`, () => {
  it("knows every op in the table", () => {
    // torchc.* ops are torchc's own (quantized layers): no PyTorch schema to match
    expect(OP_NAMES.filter((n) => !file.schemas[n] && !n.startsWith("torchc."))).toEqual([]);
  });

  it.each(OP_NAMES.filter((n) => file.schemas[n]).map((n) => [n]))("%s", (name) => {
    const def = getOp(name);
    const { args, returns } = split(file.schemas[name] as string);
    expect(def?.schema).toEqual(parseSchema(name, args));
    expect(def?.returns).toBe(returns);
  });
});
