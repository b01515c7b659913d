import { PyDict, PySet, PyTuple, type PyValue, pyTypeName } from "./values.js";
import type { GlobalHandler } from "./vm.js";

function items(v: PyValue | undefined): PyValue[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  if (v instanceof PyTuple) return [...v.items];
  if (v instanceof PySet) return [...v.items];
  if (v instanceof PyDict) return v.keys();
  throw new TypeError(`expected an iterable, found ${pyTypeName(v)}`);
}

function latin1(s: PyValue | undefined): Uint8Array {
  if (typeof s !== "string") throw new TypeError(`expected a str, found ${pyTypeName(s)}`);
  return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
}

/**
 * Constructors of plain Python data that pickles of protocols 0–3 name as globals (sets, bytes, ordered dicts).
 * Each is a pure data conversion; none can reach the host.
 */
export function dataGlobals(): Map<string, GlobalHandler> {
  const g = new Map<string, GlobalHandler>();
  for (const mod of ["builtins", "__builtin__"]) {
    g.set(`${mod}.set`, { call: (a) => new PySet(items(a[0])) });
    g.set(`${mod}.frozenset`, { call: (a) => new PySet(items(a[0]), true) });
    g.set(`${mod}.bytearray`, {
      call: (a) =>
        a[0] instanceof Uint8Array ? a[0] : typeof a[0] === "string" ? latin1(a[0]) : new Uint8Array(0),
    });
    g.set(`${mod}.bytes`, {
      call: (a) => (a[0] instanceof Uint8Array ? a[0] : new Uint8Array(items(a[0]) as number[])),
    });
  }
  g.set("_codecs.encode", { call: (a) => latin1(a[0]) });
  g.set("collections.OrderedDict", {
    call: (a) => {
      const d = new PyDict();
      for (const p of items(a[0]))
        if (p instanceof PyTuple && p.items.length === 2) d.set(p.items[0], p.items[1]);
      return d;
    },
  });
  return g;
}
