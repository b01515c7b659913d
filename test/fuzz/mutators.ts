// Mutators for every input format torchc reads: raw bytes, zip structure, JSON, pickles, TorchScript code and
// .npy headers. Each takes a valid seed file and returns a malformed or hostile variant; the hostile ones
// reproduce the attack classes of issue 9 (bombs, overlapping entries, stride-0 views, deep nesting,
// prototype names, terminal escapes, runaway loops).
import { unzipSync, zipSync } from "fflate";
import type { Random } from "./random.js";

/** Mutators never change their input (callers keep seeds); `slice` on a plain Uint8Array copies. */
export type Mutator = (bytes: Uint8Array, r: Random) => Uint8Array;

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---- bytes ----

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff];
const INTERESTING32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 65536, 2 ** 30];

export const flipBytes: Mutator = (b, r) => {
  const out = b.slice();
  const n = 1 + r.int(8);
  for (let i = 0; i < n; i++) {
    const at = r.int(out.length);
    out[at] = r.chance(0.5) ? r.int(256) : r.pick(INTERESTING);
  }
  return out;
};

export const setWord: Mutator = (b, r) => {
  const out = b.slice();
  if (out.length < 4) return out;
  const at = r.int(out.length - 3);
  new DataView(out.buffer).setUint32(at, r.pick(INTERESTING32), true);
  return out;
};

export const truncate: Mutator = (b, r) => b.slice(0, r.int(b.length));

export const spliceChunk: Mutator = (b, r) => {
  const a = r.int(b.length);
  const len = 1 + r.int(Math.min(4096, b.length - a));
  const chunk = b.slice(a, a + len);
  const at = r.int(b.length);
  const out = new Uint8Array(b.length + len);
  out.set(b.subarray(0, at));
  out.set(chunk, at);
  out.set(b.subarray(at), at + len);
  return out;
};

export const BYTE_MUTATORS: readonly Mutator[] = [flipBytes, setWord, truncate, spliceChunk];

// ---- zip structure (raw headers) ----

interface CdRecord {
  at: number;
  nameLen: number;
  localOffset: number;
}

function centralDirectory(b: Uint8Array): CdRecord[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let end = -1;
  for (let i = b.length - 22; i >= 0; i--)
    if (v.getUint32(i, true) === 0x06054b50) {
      end = i;
      break;
    }
  if (end < 0) return [];
  const count = v.getUint16(end + 10, true);
  let p = v.getUint32(end + 16, true);
  const out: CdRecord[] = [];
  for (let i = 0; i < count && p + 46 <= b.length && v.getUint32(p, true) === 0x02014b50; i++) {
    const nameLen = v.getUint16(p + 28, true);
    out.push({ at: p, nameLen, localOffset: v.getUint32(p + 42, true) });
    p += 46 + nameLen + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
  }
  return out;
}

/** Edits a field of one central-directory record (and sometimes its local header) to a hostile value. */
export const zipHeader: Mutator = (b, r) => {
  const out = b.slice();
  const v = new DataView(out.buffer);
  const cd = centralDirectory(out);
  if (cd.length === 0) return flipBytes(b, r);
  const e = r.pick(cd);
  switch (r.int(8)) {
    case 0: // encrypted
      v.setUint16(e.at + 8, v.getUint16(e.at + 8, true) | 1, true);
      break;
    case 1: // wrong CRC
      v.setUint32(e.at + 16, v.getUint32(e.at + 16, true) ^ (1 + r.int(0xffff)), true);
      break;
    case 2: // deflate claimed for stored data, or an unknown method
      v.setUint16(e.at + 10, r.pick([8, 12, 14, 99]), true);
      break;
    case 3: // huge declared sizes
      v.setUint32(e.at + 24, r.pick([0xffffffff, 0x7fffffff, 2 ** 31 + 5]), true);
      if (r.chance(0.5)) v.setUint32(e.at + 20, v.getUint32(e.at + 24, true), true);
      break;
    case 4: {
      // overlapping: point this entry at another entry's local header
      const other = r.pick(cd);
      v.setUint32(e.at + 42, other.localOffset, true);
      break;
    }
    case 5: {
      // duplicate names: copy another entry's name over one of the same length
      const same = cd.filter((x) => x !== e && x.nameLen === e.nameLen);
      if (same.length > 0) out.set(out.subarray(same[0].at + 46, same[0].at + 46 + e.nameLen), e.at + 46);
      break;
    }
    case 6: // zip64 markers without a zip64 record
      v.setUint32(e.at + 20, 0xffffffff, true);
      v.setUint32(e.at + 24, 0xffffffff, true);
      break;
    default: // local header offset past the end
      v.setUint32(e.at + 42, r.pick([out.length, 0xfffffff0, out.length - 10]), true);
  }
  return out;
};

// ---- zip content ----

export type EntryMutator = (name: string, data: Uint8Array, r: Random) => Uint8Array;

/** Rewrites one entry (chosen among those `wanted` accepts) with `mutate`; stored, as PyTorch writes. */
export function mutateEntry(wanted: (name: string) => boolean, mutate: EntryMutator): Mutator {
  return (b, r) => {
    const entries = unzipSync(b);
    const names = Object.keys(entries).filter(wanted);
    if (names.length === 0) return flipBytes(b, r);
    const name = r.pick(names);
    entries[name] = mutate(name, entries[name], r) as (typeof entries)[string];
    return zipSync(entries, { level: 0 });
  };
}

/** Adds, removes or renames entries. */
export const zipEntries: Mutator = (b, r) => {
  const entries = unzipSync(b);
  const names = Object.keys(entries);
  const name = r.pick(names);
  const root = names[0].split("/")[0];
  switch (r.int(4)) {
    case 0:
      delete entries[name];
      break;
    case 1:
      entries[
        `${root}/${r.pick(["data/weights/x", "models/other.json", "code/__torch__/x.py", "data.pkl"])}`
      ] = entries[name];
      break;
    case 2: // an entry that inflates a lot: a deflated bomb of zeros under a real name
      return zipSync({ ...entries, [name]: [new Uint8Array(r.pick([1 << 20, 16 << 20])), { level: 6 }] });
    default:
      entries[name] = new Uint8Array(0);
  }
  return zipSync(entries, { level: 0 });
};

// ---- JSON ----

const HOSTILE_VALUES: readonly unknown[] = [
  null,
  {},
  [],
  -1,
  1.5,
  1e300,
  2 ** 53 + 2,
  "",
  "x",
  true,
  "__proto__",
  "constructor",
  "toString",
  "\u001b[31mred\u001b[0m\nsecond line",
  [[[[[]]]]],
  { as_int: -5 },
  { as_int: 2 ** 40 },
  { as_expr: { expr_str: "s0" } },
];

type Path = (string | number)[];

function paths(v: unknown, out: Path[], at: Path, limit: number): void {
  if (out.length >= limit) return;
  out.push(at);
  if (Array.isArray(v)) for (const [i, x] of v.entries()) paths(x, out, [...at, i], limit);
  else if (v && typeof v === "object")
    for (const k of Object.keys(v)) paths((v as Record<string, unknown>)[k], out, [...at, k], limit);
}

function get(root: unknown, p: Path): unknown {
  let v = root;
  for (const k of p) v = (v as Record<string | number, unknown>)[k];
  return v;
}

/** One structural edit at a random place of a JSON document. */
export function mutateJson(value: unknown, r: Random): unknown {
  const root = structuredClone(value);
  const all: Path[] = [];
  paths(root, all, [], 20000);
  const p = r.pick(all);
  if (p.length === 0) return r.pick(HOSTILE_VALUES);
  const parent = get(root, p.slice(0, -1)) as Record<string | number, unknown>;
  const key = p[p.length - 1];
  const v = parent[key];
  switch (r.int(9)) {
    case 0:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      break;
    case 1:
      if (Array.isArray(parent)) parent.push(structuredClone(v));
      else parent[key] = [v, v];
      break;
    case 2:
      if (Array.isArray(parent) && parent.length > 1) {
        const j = r.int(parent.length);
        [parent[key as number], parent[j]] = [parent[j], parent[key as number]];
      } else parent[key] = { [String(key)]: v };
      break;
    case 3:
      if (typeof v === "number") parent[key] = r.pick([-v, v * 1e9, 0, -1, v + 0.5, 2 ** 31]);
      else parent[key] = r.pick(HOSTILE_VALUES);
      break;
    case 4:
      if (typeof v === "string")
        parent[key] = r.pick([
          "__proto__",
          "constructor",
          "hasOwnProperty",
          `${v}\u001b]0;pwned\u0007`,
          `${v}\n${v}`,
          v.repeat(2),
        ]);
      else parent[key] = r.pick(HOSTILE_VALUES);
      break;
    case 5: {
      // a key renamed to a prototype name
      if (!Array.isArray(parent)) {
        parent[r.pick(["__proto__", "constructor", "toString", "valueOf"])] = v;
        delete parent[key];
      } else parent[key] = r.pick(HOSTILE_VALUES);
      break;
    }
    case 6: {
      // deep nesting
      let deep: unknown = v;
      const depth = r.pick([100, 2000, 100000]);
      for (let i = 0; i < depth; i++) deep = [deep];
      parent[key] = deep;
      break;
    }
    default:
      parent[key] = r.pick(HOSTILE_VALUES);
  }
  return root;
}

/** Serialises JSON that may nest deeper than JSON.stringify can walk. */
function stringifyDeep(v: unknown): string {
  let depth = 0;
  let inner = v;
  while (Array.isArray(inner) && inner.length === 1 && Array.isArray(inner[0])) {
    inner = inner[0];
    depth++;
  }
  if (depth < 1000) return JSON.stringify(v);
  return "[".repeat(depth) + JSON.stringify(inner) + "]".repeat(depth);
}

export const jsonEntry: EntryMutator = (_name, data, r) => {
  let value: unknown;
  try {
    value = JSON.parse(dec.decode(data));
  } catch {
    return flipBytes(data, r);
  }
  let out = value;
  const edits = 1 + r.int(3);
  for (let i = 0; i < edits; i++) out = mutateJson(out, r);
  try {
    return enc.encode(stringifyDeep(out));
  } catch {
    return enc.encode(JSON.stringify(value));
  }
};

// ---- pt2 graph attacks ----

/** Whole-graph edits of model.json: self-reads, duplicate names, nodes out of order, stride-0 weights. */
export const graphAttack: EntryMutator = (_name, data, r) => {
  const p = JSON.parse(dec.decode(data));
  const g = p.graph_module?.graph;
  const nodes = g?.nodes as {
    inputs: { arg: Record<string, unknown> }[];
    outputs: Record<string, { name: string }>[];
  }[];
  if (!nodes || nodes.length < 2) return data;
  const n = r.pick(nodes);
  switch (r.int(5)) {
    case 0: {
      // a node that reads its own output
      const out = n.outputs[0]?.as_tensor?.name;
      const arg = n.inputs.find((i) => i.arg.as_tensor);
      if (out && arg) arg.arg.as_tensor = { name: out };
      break;
    }
    case 1: {
      // two nodes defining the same value
      const a = nodes[0].outputs[0]?.as_tensor;
      const b = nodes[1].outputs[0]?.as_tensor;
      if (a && b) b.name = a.name;
      break;
    }
    case 2:
      nodes.reverse();
      break;
    case 3: {
      // a tensor value with a huge or negative size
      const tv = g.tensor_values as Record<string, { sizes: { as_int: number }[] }>;
      const k = r.pick(Object.keys(tv));
      if (tv[k].sizes.length > 0) tv[k].sizes[0] = { as_int: r.pick([-3, 2 ** 40, 1e15]) };
      break;
    }
    default: {
      // an argument replaced by a different kind
      const arg = r.pick(n.inputs);
      if (arg)
        arg.arg = r.pick([
          { as_ints: [2 ** 40, -1] },
          { as_tensor: { name: "nope" } },
          { as_float: "NaN" },
          {},
          { as_int: null },
        ]);
    }
  }
  return enc.encode(JSON.stringify(p));
};

/** Weight metadata edits: stride-0 views of huge shapes, offsets past the storage, negative strides. */
export const weightMetaAttack: EntryMutator = (_name, data, r) => {
  const c = JSON.parse(dec.decode(data));
  const keys = Object.keys(c.config ?? {});
  if (keys.length === 0) return data;
  const m = c.config[r.pick(keys)].tensor_meta;
  switch (r.int(4)) {
    case 0:
      m.sizes = [{ as_int: 24000 }, { as_int: 24000 }];
      m.strides = [{ as_int: 0 }, { as_int: 0 }];
      break;
    case 1:
      m.storage_offset = { as_int: r.pick([2 ** 31, -4, 10 ** 9]) };
      break;
    case 2:
      m.strides = m.strides.map(() => ({ as_int: r.pick([-1, 0, 2 ** 33]) }));
      break;
    default:
      m.sizes = m.sizes.map(() => ({ as_int: r.pick([0, 2 ** 26, 3]) }));
  }
  return enc.encode(JSON.stringify(c));
};

// ---- TorchScript code ----

const CODE_SNIPPETS = [
  "_z = [0] * 1000000000",
  "_z = [0] * 100000",
  "for _i in range(10, 0, 0):\n{ind}  pass",
  "for _i in range(10000000000):\n{ind}  pass",
  "for _i in range(900):\n{ind}  for _j in range(900):\n{ind}    for _k in range(900):\n{ind}      _q = _i",
  "_z = 2 ** 200",
  "_z = 9223372036854775807 * 4",
  "_z = " + "(".repeat(3000) + "1" + ")".repeat(3000),
  "_z = " + "-".repeat(5000) + "1",
  'ops.prim.RaiseException("\\x1b[2J\\x1b[31mowned\\nsecond line", "builtins.ValueError")',
  `ops.prim.RaiseException("\u001b[2J\u001b[31mraw escape", "builtins.ValueError")`,
  "while True:\n{ind}  _z = 1",
];

function nestedIfs(depth: number, ind: string): string {
  let s = "";
  for (let i = 0; i < depth; i++) s += `${ind}${" ".repeat(i)}if True:\n`;
  return `${s}${ind}${" ".repeat(depth)}_z = 1`;
}

/** Inserts a hostile statement into a method body, or edits the code's text. */
export const codeEntry: EntryMutator = (_name, data, r) => {
  const lines = dec.decode(data).split("\n");
  const bodies = lines
    .map((l, i) => ({ l, i }))
    .filter(({ l }) => /^ {4,}\S/.test(l) && !/^\s*(def|class|@)/.test(l));
  if (bodies.length === 0 || r.chance(0.25)) return textEdit(data, r);
  const { l, i } = r.pick(bodies);
  const ind = l.match(/^ */)?.[0] ?? "    ";
  const stmt = r.chance(0.15)
    ? nestedIfs(r.pick([50, 3000]), ind)
    : ind + r.pick(CODE_SNIPPETS).replaceAll("{ind}", ind);
  lines.splice(i, 0, stmt);
  return enc.encode(lines.join("\n"));
};

function textEdit(data: Uint8Array, r: Random): Uint8Array {
  const text = dec.decode(data);
  switch (r.int(4)) {
    case 0:
      return enc.encode(
        text.replace(/\b\d+\b/, () => r.pick(["0", "-1", "99999999999", "1e308", "2147483648"])),
      );
    case 1: {
      const lines = text.split("\n");
      lines.splice(r.int(lines.length), 1);
      return enc.encode(lines.join("\n"));
    }
    case 2: {
      const at = r.int(text.length);
      return enc.encode(
        text.slice(0, at) +
          r.pick(["(", ")", ":", "\t", "\u001b", "'", '"""', "\\", "\n  "]) +
          text.slice(at),
      );
    }
    default:
      return flipBytes(data, r);
  }
}

// ---- pickles ----

/** A pickle with one hostile opcode sequence spliced in before STOP, or with bytes changed. */
export const pickleEntry: EntryMutator = (_name, data, r) => {
  if (r.chance(0.5)) return r.pick(BYTE_MUTATORS)(data, r);
  const inject = r.pick<() => number[]>([
    // LONG4 of 256 KiB, POP
    () => [0x8b, ...u32(262144), ...new Array(262144).fill(0x7f), 0x30],
    // GLOBAL with an escape sequence in the name, POP
    () => [0x63, ...enc.encode("os\u001b[31m\nsystem\u001b[0m\n"), 0x30],
    // GLOBAL builtins eval
    () => [0x63, ...enc.encode("builtins\neval\n"), 0x30],
    // a deep nesting of EMPTY_LIST + APPEND
    () => {
      const out: number[] = [];
      for (let i = 0; i < 20000; i++) out.push(0x5d);
      for (let i = 0; i < 19999; i++) out.push(0x61);
      return [...out, 0x30];
    },
    // text LONG with many digits
    () => [0x4c, ...enc.encode("9".repeat(100000)), 0x4c, 0x0a, 0x30],
  ])();
  const stop = data.lastIndexOf(0x2e);
  if (stop < 0) return data;
  const out = new Uint8Array(data.length + inject.length);
  out.set(data.subarray(0, stop));
  out.set(inject, stop);
  out.set(data.subarray(stop), stop + inject.length);
  return out;
};

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
}

// ---- npy ----

const NPY_HEADERS = [
  "{'descr': '<f4', 'fortran_order': False, 'shape': (4.0, 20), }",
  "{'descr': 'constructor', 'fortran_order': False, 'shape': (4, 20), }",
  "{'descr': '__proto__', 'fortran_order': False, 'shape': (4, 20), }",
  "{'x': \"'descr': '<f4'\", 'fortran_order': False, 'shape': (4, 20), }",
  "{'descr': '\u001b[31m<f4', 'fortran_order': False, 'shape': (4, 20), }",
  "{'descr': '<f4', 'fortran_order': False, 'shape': (-4, 20), }",
  "{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000, 4000000000), }",
  "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 20), }",
  "{'descr': '>f4', 'fortran_order': False, 'shape': (4, 20), }",
  "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 20), 'descr': '<f8'}",
  "{'descr': '<f4', 'fortran_order': False}",
  `{'descr': '<f4', 'fortran_order': False, 'shape': (4, 20), }${" ".repeat(70000)}`,
  "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "1, ".repeat(100) + ")}",
];

export const npyHeader: Mutator = (b, r) => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const oldLen = v.getUint16(8, true);
  const data = b.subarray(10 + oldLen);
  let header = r.pick(NPY_HEADERS);
  if (r.chance(0.3)) header = dec.decode(flipBytes(enc.encode(header), r));
  const head = enc.encode(`${header}\n`);
  const big = head.length > 65535;
  const pre = big ? 12 : 10;
  const out = new Uint8Array(pre + head.length + data.length);
  out.set(b.subarray(0, 8));
  if (big) {
    out[6] = 2;
    new DataView(out.buffer).setUint32(8, head.length, true);
  } else new DataView(out.buffer).setUint16(8, head.length, true);
  out.set(head, pre);
  out.set(data, pre + head.length);
  return out;
};
