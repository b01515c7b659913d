// Regression tests of issue 9 for the .pt2 loader: malformed graphs, unchecked types, impossible sizes, deep
// nesting, prototype names and stride-0 views each give one ArchiveError line naming the file (and the node or
// JSON path), never a TypeError or RangeError; and a non-persistent buffer is found among the constants.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../../src/errors.js";
import { setLimits } from "../../../src/frontends/limits.js";
import { loadPt2 } from "../../../src/frontends/pt2/load.js";
import { editArchive, entryName, MODELS } from "../../helpers.js";

const MLP = join(MODELS, "mlp.pt2");
const dec = new TextDecoder();
const enc = new TextEncoder();

// biome-ignore lint/suspicious/noExplicitAny: the tests edit PyTorch's JSON freely
type Json = any;

/** mlp.pt2 with model.json (and optionally the weights config) edited. */
function edited(editModel: (p: Json) => Json | undefined, editWeights?: (c: Json) => void): string {
  return editArchive(MLP, (e) => {
    const name = entryName(e, "models/model.json");
    const p = JSON.parse(dec.decode(e[name]));
    const out = editModel(p) ?? p;
    e[name] = enc.encode(typeof out === "string" ? out : JSON.stringify(out));
    if (editWeights) {
      const w = entryName(e, "model_weights_config.json");
      const c = JSON.parse(dec.decode(e[w]));
      editWeights(c);
      e[w] = enc.encode(JSON.stringify(c));
    }
  });
}

function refusal(f: () => unknown, ...fragments: (string | RegExp)[]): ArchiveError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected an ArchiveError").toBeInstanceOf(ArchiveError);
  const e = caught as ArchiveError;
  expect(e.message).not.toContain("\n");
  expect(e.message).toContain("edited.pt2");
  for (const f of fragments) expect(e.message).toMatch(f);
  return e;
}

const nodes = (p: Json) => p.graph_module.graph.nodes;

describe("malformed graphs are user errors naming the node", () => {
  it("a node that reads its own output", () => {
    const f = edited((p) => {
      const n = nodes(p)[1];
      n.inputs[0].arg = { as_tensor: { name: n.outputs[0].as_tensor.name } };
    });
    refusal(() => loadPt2(f), /node '\w+' \(aten\.\w+\.\w+\) reads '\w+' before it is defined/);
  });

  it("two nodes defining the same value", () => {
    const f = edited((p) => {
      nodes(p)[2].outputs[0].as_tensor.name = nodes(p)[1].outputs[0].as_tensor.name;
    });
    refusal(() => loadPt2(f), /node '\w+' \(aten[.\w]+\) defines value '\w+', which is already defined/);
  });

  it("nodes out of order", () => {
    const f = edited((p) => {
      nodes(p).reverse();
    });
    refusal(() => loadPt2(f), /reads '\w+' before it is defined/);
  });

  it("an output type that disagrees with the op's schema", () => {
    const f = edited((p) => {
      const out = nodes(p)[0].outputs[0].as_tensor.name;
      p.graph_module.graph.tensor_values[out].sizes[1] = { as_int: 63 };
    });
    refusal(
      () => loadPt2(f),
      /node 'linear' \(aten\.linear\.default\).* declares output 'linear' as float32\[4, 63\] but its op gives float32\[4, 64\]/,
    );
  });

  it("arguments an op cannot take are reported with the node", () => {
    const f = edited((p) => {
      nodes(p)[0].inputs[1].arg = { as_int: 3 };
    });
    refusal(() => loadPt2(f), /node 'linear' \(aten\.linear\.default\).*does not fit its op's schema/);
  });
});

describe("unchecked types in model.json are ArchiveErrors with the JSON path", () => {
  const cases: [string, (p: Json) => void, RegExp][] = [
    [
      "a null node",
      (p) => {
        nodes(p)[0] = null;
      },
      /at \$\.graph_module\.graph\.nodes\[0\]: expected an object, got null/,
    ],
    [
      "non-array inputs",
      (p) => {
        nodes(p)[0].inputs = {};
      },
      /nodes\[0\]\.inputs: expected an array, got \{\}/,
    ],
    [
      "an empty argument",
      (p) => {
        nodes(p)[0].inputs[0].arg = {};
      },
      /nodes\[0\]\.inputs\[0\]\.arg: expected an object with exactly one key, got \{\}/,
    ],
    [
      "non-list sizes",
      (p) => {
        p.graph_module.graph.tensor_values.linear.sizes = 3;
      },
      /tensor_values\["linear"\]\.sizes: expected an array, got 3/,
    ],
    [
      "non-list strides",
      (p) => {
        p.graph_module.graph.tensor_values.linear.strides = null;
      },
      /\.strides: expected an array, got null/,
    ],
    [
      "a string where an int belongs",
      (p) => {
        nodes(p)[2].inputs[1].arg = { as_int: "1" };
      },
      /inputs\[1\]\.arg\.as_int: expected an integer, got "1"/,
    ],
    [
      "a null signature",
      (p) => {
        p.graph_module.signature = null;
      },
      /graph_module\.signature: expected an object, got null/,
    ],
  ];
  for (const [what, edit, message] of cases)
    it(what, () => {
      refusal(() => loadPt2(edited(edit)), /models\/model\.json: /, message);
    });
});

describe("impossible sizes stop before allocation", () => {
  for (const [what, size, message] of [
    ["negative", -3, /negative size/],
    ["fractional", 2.5, /expected an integer, got 2\.5/],
    ["huge", 2 ** 50, /larger than the memory budget|impossible size/],
  ] as const) {
    it(`${what} sizes`, () => {
      const f = edited((p) => {
        const out = nodes(p)[0].outputs[0].as_tensor.name;
        p.graph_module.graph.tensor_values[out].sizes[0] = { as_int: size };
      });
      refusal(() => loadPt2(f), message);
    });
  }

  it("stride-0 weights of a huge shape are refused beyond the budget instead of densified", () => {
    setLimits({ maxMemory: 64 << 20 });
    try {
      const f = edited(
        () => undefined,
        (c) => {
          const m = c.config["fc1.weight"].tensor_meta;
          m.sizes = [{ as_int: 24000 }, { as_int: 24000 }];
          m.strides = [{ as_int: 0 }, { as_int: 0 }];
        },
      );
      const t0 = performance.now();
      refusal(
        () => loadPt2(f),
        /'fc1\.weight' \(float32\[24000, 24000\], 2\.1 GiB\) needs 2\.1 GiB, over the memory budget of 64\.0 MiB/,
      );
      expect(performance.now() - t0).toBeLessThan(2000);
    } finally {
      setLimits({ maxMemory: undefined });
    }
  });

  it("a small stride-0 view within the budget is materialised", () => {
    const f = edited(
      (p) => {
        p.graph_module.graph.tensor_values.p_fc1_bias.sizes = [{ as_int: 64 }];
      },
      (c) => {
        const m = c.config["fc1.bias"].tensor_meta;
        m.strides = [{ as_int: 0 }];
      },
    );
    const w = Object.values(loadPt2(f).graph.weights).find((x) => x.target === "fc1.bias");
    const data = w?.tensor.data as Float32Array;
    expect(new Set(data).size).toBe(1);
  });
});

describe("nesting and names", () => {
  it("takes JSON nested 100,000 deep without overflowing the stack", () => {
    const deep = `${"[".repeat(100000)}${"]".repeat(100000)}`;
    // where the schema has a value, the nesting is refused with its path
    const f = edited((p) => {
      nodes(p)[0].inputs.unshift("DEEP");
      return JSON.stringify(p).replace('"DEEP"', deep);
    });
    refusal(
      () => loadPt2(f),
      /models\/model\.json: at \$\.graph_module\.graph\.nodes\[0\]\.inputs\[0\]: expected an object, got an array of 1/,
    );
    // where the schema has nothing, it is never walked
    const g = edited((p) => JSON.stringify(p).replace('"metadata":{', `"deep":${deep},"metadata":{`));
    expect(loadPt2(g).graph.nodes.length).toBeGreaterThan(0);
  });

  for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty"])
    it(`refuses a value named '${name}'`, () => {
      const f = edited((p) => {
        const old = nodes(p)[0].outputs[0].as_tensor.name;
        const text = JSON.stringify(p).replaceAll(`"${old}"`, JSON.stringify(name));
        return text;
      });
      refusal(() => loadPt2(f), new RegExp(`the name '${name}' is reserved`));
    });

  it("refuses names with control characters, shown escaped", () => {
    const f = edited((p) => {
      const old = nodes(p)[0].outputs[0].as_tensor.name;
      return JSON.stringify(p).replaceAll(`"${old}"`, JSON.stringify("x\u001b[2Jy"));
    });
    const e = refusal(() => loadPt2(f), /contains control characters/);
    expect(e.message).toContain("\\x1b[2J");
    expect(e.message).not.toContain("\u001b");
  });
});

describe("non-persistent buffers", () => {
  it("are found among the constants (timm levit's attention_bias_idxs)", () => {
    const f = editArchive(MLP, (e) => {
      const m = entryName(e, "models/model.json");
      const p = JSON.parse(dec.decode(e[m]));
      const spec = p.graph_module.signature.input_specs.find(
        (s: Json) => s.parameter?.parameter_name === "fc1.bias",
      );
      spec.buffer = { arg: spec.parameter.arg, buffer_name: "attn.attention_bias_idxs", persistent: false };
      delete spec.parameter;
      e[m] = enc.encode(JSON.stringify(p));
      const wc = entryName(e, "model_weights_config.json");
      const w = JSON.parse(dec.decode(e[wc]));
      const entry = w.config["fc1.bias"];
      delete w.config["fc1.bias"];
      e[wc] = enc.encode(JSON.stringify(w));
      const cc = entryName(e, "model_constants_config.json");
      const c = JSON.parse(dec.decode(e[cc]));
      c.config["attn.attention_bias_idxs"] = { ...entry, path_name: "tensor_0" };
      e[cc] = enc.encode(JSON.stringify(c));
      e[entryName(e, "model_constants_config.json").replace("model_constants_config.json", "tensor_0")] =
        e[entryName(e, `data/weights/${entry.path_name}`)];
    });
    const w = Object.values(loadPt2(f).graph.weights).find((x) => x.target === "attn.attention_bias_idxs");
    expect(w?.kind).toBe("buffer");
    expect(w?.tensor.shape).toEqual([64]);
  });

  it("a buffer in neither config names both places", () => {
    const f = editArchive(MLP, (e) => {
      const m = entryName(e, "models/model.json");
      const p = JSON.parse(dec.decode(e[m]));
      const spec = p.graph_module.signature.input_specs.find(
        (s: Json) => s.parameter?.parameter_name === "fc1.bias",
      );
      spec.buffer = { arg: spec.parameter.arg, buffer_name: "nowhere", persistent: false };
      delete spec.parameter;
      e[m] = enc.encode(JSON.stringify(p));
    });
    refusal(
      () => loadPt2(f),
      "buffer 'nowhere' is listed in the signature but missing from data/weights/ or data/constants/",
    );
  });
});
