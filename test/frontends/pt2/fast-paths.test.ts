// The .pt2 reader checks the common shapes of model.json in place and sends everything else through the typed
// decoders; node metadata is derived when first read. These tests pin that the fast paths accept exactly what
// the decoders accept and give the same values, and that lazy metadata reads, copies and serializes as before.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { unzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../../src/errors.js";
import { DecodeFailure, decodeEntry, fastDecode, onlyKey, tagged } from "../../../src/frontends/decode.js";
import { escapeControl } from "../../../src/frontends/escape.js";
import { loadPt2 } from "../../../src/frontends/pt2/load.js";
import { symInt, weightConfig } from "../../../src/frontends/pt2/schema.js";
import { modulePathFromStack, userSourceLocation } from "../../../src/frontends/stack-trace.js";
import { editArchive, entryName, MODELS } from "../../helpers.js";

const PT2 = readdirSync(MODELS).filter((f) => f.endsWith(".pt2"));
const dec = new TextDecoder();
const enc = new TextEncoder();

describe("onlyKey and tagged agree with Object.keys", () => {
  const inherited = Object.create({ extra: 1 }) as Record<string, unknown>;
  inherited.as_int = 3;
  const cases: [string, unknown][] = [
    ["one key", { as_int: 3 }],
    ["two keys", { as_int: 3, b: 1 }],
    ["no key", {}],
    ["an array", [1]],
    ["null", null],
    ["a string", "as_int"],
    ["an own key and an inherited enumerable one", inherited],
    ["a null-prototype object", Object.assign(Object.create(null), { as_tensor: { name: "x" } })],
    ["__proto__ as an own key", JSON.parse('{"__proto__": 1}')],
  ];
  for (const [what, v] of cases)
    it(what, () => {
      const plain = typeof v === "object" && v !== null && !Array.isArray(v);
      const keys = plain ? Object.keys(v) : [];
      // never a wrong key; undefined (the decoder then counts with Object.keys) only where it cannot tell
      const only = onlyKey(v);
      if (only !== undefined) expect(keys).toEqual([only]);
      else expect(v === inherited || keys.length !== 1).toBe(true);
      if (plain && keys.length === 1) expect(tagged(v, "$").tag).toBe(keys[0]);
      else expect(() => tagged(v, "$")).toThrow(DecodeFailure);
    });
});

describe("symInt and weight entries: the in-place path gives what the decoder gives", () => {
  it("symInt", () => {
    expect(symInt({ as_int: 7 }, "$")).toBe(7);
    expect(symInt({ as_int: -2 }, "$")).toBe(-2);
    expect(symInt({ as_expr: { expr_str: "s0" } }, "$")).toBeUndefined();
    expect(() => symInt({ as_int: 1.5 }, "$")).toThrow(/an integer/);
    expect(() => symInt({ as_int: 1, b: 2 }, "$")).toThrow(/exactly one key/);
  });

  const entry = (meta: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    config: {
      w: {
        path_name: "weight_0",
        use_pickle: false,
        tensor_meta: {
          dtype: 7,
          sizes: [{ as_int: 2 }, { as_int: 3 }],
          strides: [{ as_int: 3 }, { as_int: 1 }],
          storage_offset: { as_int: 0 },
          ...meta,
        },
        ...extra,
      },
    },
  });
  const decode = (v: unknown) => fastDecode(() => decodeEntry(weightConfig, v, "f.pt2", "cfg.json")).config;

  it("static sizes", () => {
    expect(decode(entry({})).get("w")).toEqual({
      path_name: "weight_0",
      use_pickle: false,
      tensor_meta: { dtype: 7, sizes: [2, 3], strides: [3, 1], storage_offset: 0 },
    });
  });

  it("a symbolic size goes through the decoder (undefined, refused later as dynamic)", () => {
    const m = decode(entry({ sizes: [{ as_expr: {} }, { as_int: 3 }] })).get("w");
    expect(m?.tensor_meta.sizes).toEqual([undefined, 3]);
  });

  it("wrong types are refused with the JSON path", () => {
    for (const bad of [entry({ dtype: "7" }), entry({}, { use_pickle: "no" }), entry({ strides: 1 })]) {
      let caught: unknown;
      try {
        decode(bad);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ArchiveError);
      expect((caught as Error).message).toMatch(/cfg\.json: at \$\.config\["w"\]\./);
    }
  });
});

describe("every fixture: node metadata is derived when read", () => {
  for (const f of PT2)
    it(f, () => {
      const graph = loadPt2(join(MODELS, f)).graph;
      const model = unzipSync(readFileSync(join(MODELS, f)));
      const json = JSON.parse(dec.decode(model[entryName(model, "models/model.json")]));
      const stacks = new Map<string, Record<string, unknown>>();
      for (const n of json.graph_module.graph.nodes) stacks.set(n.name, n.metadata ?? {});
      for (const node of graph.nodes) {
        const md = stacks.get(node.name) ?? {};
        const stack = typeof md.stack_trace === "string" ? md.stack_trace : undefined;
        const modules = typeof md.nn_module_stack === "string" ? md.nn_module_stack : undefined;
        const location = userSourceLocation(stack);
        const path = modulePathFromStack(modules);
        const want = {
          stackTrace: stack,
          sourceLocation: location && escapeControl(location),
          modulePath: path && escapeControl(path),
        };
        expect({ ...node.meta }).toEqual(want);
        expect(JSON.parse(JSON.stringify(node.meta))).toEqual(JSON.parse(JSON.stringify(want)));
        expect(node.meta.sourceLocation).toBe(want.sourceLocation);
      }
    });

  it("control characters in a stack trace are escaped when the location is read", () => {
    const f = editArchive(join(MODELS, "mlp.pt2"), (e) => {
      const name = entryName(e, "models/model.json");
      const p = JSON.parse(dec.decode(e[name]));
      const n = p.graph_module.graph.nodes[0];
      n.metadata = {
        stack_trace: 'File "/home/u/model.py", line 3, in forward\n    x = self.fc(x)\x1b[31m',
        nn_module_stack: "L__self__,fc\x1b[2J,torch.nn.Linear",
      };
      e[name] = enc.encode(JSON.stringify(p));
    });
    const meta = loadPt2(f).graph.nodes[0].meta;
    expect(meta.sourceLocation).toBe("u/model.py:3 in forward: x = self.fc(x)\\x1b[31m");
    expect(meta.modulePath).toBe("fc\\x1b[2J");
  });
});
