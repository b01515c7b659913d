import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TorchcError } from "../../../src/errors.js";
import {
  dataGlobals,
  PyDict,
  PyFloat,
  type PySet,
  PyTuple,
  type PyValue,
  torchGlobals,
  unpickle,
} from "../../../src/frontends/pickle/index.js";

const DATA = join(import.meta.dirname, "data");
const read = (name: string) => new Uint8Array(readFileSync(join(DATA, name)));
const opts = (file: string) => ({ file, globals: dataGlobals() });

function get(d: PyValue, key: string): PyValue {
  if (!(d instanceof PyDict)) throw new Error("not a dict");
  return d.get(key) as PyValue;
}

describe("pickle machine: plain values", () => {
  for (let p = 0; p <= 5; p++) {
    it(`decodes protocol ${p}`, () => {
      const v = unpickle(read(`plain_p${p}.pkl`), opts(`plain_p${p}.pkl`));
      expect(get(v, "ints")).toEqual([
        0,
        1,
        255,
        256,
        65535,
        65536,
        -1,
        -(2 ** 31),
        2 ** 31,
        2 ** 62 < Number.MAX_SAFE_INTEGER ? 2 ** 62 : 2n ** 62n,
        -(2n ** 62n),
        2n ** 70n,
        -(2n ** 70n),
      ]);
      const floats = get(v, "floats") as PyFloat[];
      expect(floats.map((f) => f.value)).toEqual([0.5, -1.25, 1e-5, Number.POSITIVE_INFINITY]);
      expect(floats[0]).toBeInstanceOf(PyFloat);
      expect(get(v, "str")).toBe("héllo\nworld");
      expect(Array.from(get(v, "bytes") as Uint8Array)).toEqual([0, 1, 255]);
      const tuples = get(v, "tuples") as PyTuple[];
      expect(tuples.map((t) => t.items)).toEqual([[], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]);
      expect(tuples[1]).toBeInstanceOf(PyTuple);
      expect(get(v, "bools")).toEqual([true, false, null]);
      const nested = get(get(v, "nested"), "a");
      const inner = (get(nested, "b") as PyValue[])[1];
      expect(((get(inner, "c") as PyTuple).items[0] as PyFloat).value).toBe(2);
      expect((get(v, "intkeys") as PyDict).get(2)).toBe("two");
      expect((get(v, "set") as PySet).items.sort()).toEqual([1, 2, 3]);
      expect((get(v, "frozenset") as PySet).frozen).toBe(true);
      expect(Array.from(get(v, "bytearray") as Uint8Array)).toEqual([97, 98]);
    });
  }

  it("keeps shared references shared (memo)", () => {
    const v = unpickle(read("shared.pkl"), opts("shared.pkl"));
    expect(get(v, "x")).toBe(get(v, "y"));
  });
});

describe("pickle machine: refuses globals outside the allow-list", () => {
  const cases: [string, string][] = [
    ["evil_system_p0.pkl", "posix.system"],
    ["evil_system_p2.pkl", "posix.system"],
    ["evil_system_p4.pkl", "posix.system"],
    ["evil_eval.pkl", "builtins.eval"],
    ["evil_popen.pkl", "subprocess.Popen"],
    ["evil_nested_p4.pkl", "builtins.exec"],
  ];
  for (const [file, global] of cases) {
    it(`${file} → names '${global}' and the file`, () => {
      let err: unknown;
      try {
        unpickle(read(file), opts(`model.pt:archive/${file}`));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TorchcError);
      const e = err as TorchcError;
      expect(e.code).toBe("pickle.forbidden-global");
      expect(e.message).toContain(`'${global}'`);
      expect(e.message).toContain(`model.pt:archive/${file}`);
    });
  }
});

describe("pickle machine: malformed input", () => {
  it("a truncated pickle is one TorchcError naming the file", () => {
    const bytes = read("plain_p2.pkl");
    for (const cut of [1, 10, bytes.length >> 1, bytes.length - 1]) {
      expect(() => unpickle(bytes.subarray(0, cut), opts("cut.pkl"))).toThrowError(TorchcError);
      try {
        unpickle(bytes.subarray(0, cut), opts("cut.pkl"));
      } catch (e) {
        expect((e as Error).message).toMatch(/^cut\.pkl: /);
      }
    }
  });

  it("an empty pickle and an unknown opcode are refused", () => {
    expect(() => unpickle(new Uint8Array(0), opts("e.pkl"))).toThrowError(/e\.pkl: the pickle is empty/);
    expect(() => unpickle(Uint8Array.of(0x80, 2, 0xff, 0x2e), opts("u.pkl"))).toThrowError(
      /unknown opcode 0xff/,
    );
  });

  it("refuses persistent ids when no loader is given", () => {
    // (S'x'\n P? -- protocol 0 PERSID
    const bytes = new TextEncoder().encode("Pkey\n.");
    expect(() => unpickle(bytes, opts("p.pkl"))).toThrowError(/persistent id/);
  });
});

describe("pickle machine: known PyTorch globals torchc cannot rebuild", () => {
  it("says what is unsupported instead of calling it dangerous", () => {
    // GLOBAL torch._utils _rebuild_qtensor; STOP
    const bytes = Uint8Array.from("\x80\x02ctorch._utils\n_rebuild_qtensor\n.", (c) => c.charCodeAt(0));
    const opts = { file: "q.pt:archive/data.pkl", globals: torchGlobals() };
    expect(() => unpickle(bytes, opts)).toThrowError(
      /q\.pt:archive\/data\.pkl: uses 'torch\._utils\._rebuild_qtensor' \(a quantized tensor\), which torchc does not support/,
    );
  });
});
