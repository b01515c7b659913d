import { ArchiveError } from "../../errors.js";
import { limits } from "../limits.js";
import { OP, opcodeName } from "./opcodes.js";
import {
  isExtension,
  PyDict,
  PyFloat,
  PyGlobal,
  PyObject,
  PySet,
  PyTuple,
  type PyValue,
  pyTypeName,
} from "./values.js";

/** What an allow-listed global does when the pickle calls it (REDUCE, NEWOBJ, OBJ, INST). */
export interface GlobalHandler {
  /** Builds the result from the call's positional arguments; absent means the global is data only. */
  call?(args: readonly PyValue[]): PyValue;
  /** Replaces the reference GLOBAL pushes (e.g. a dtype marker); default: a PyGlobal. */
  value?: PyValue;
  /** A legitimate PyTorch global torchc cannot rebuild (quantized or sparse tensors): why, for the message. */
  unsupported?: string;
}

export interface UnpickleOptions {
  /** Names the pickle in every message, e.g. `model.pt:model/data.pkl`. */
  file: string;
  /** The allow-list, keyed `module.name`. Any other global stops the machine with an error. */
  globals: ReadonlyMap<string, GlobalHandler>;
  /**
   * Module prefixes whose classes are plain data records (TorchScript's `__torch__`): instantiating one builds a
   * PyObject that holds its arguments and state; nothing runs.
   */
  dataClassModules?: readonly string[];
  /** Resolves persistent ids (PERSID/BINPERSID); without it such a pickle is refused. */
  persistentLoad?(pid: PyValue): PyValue;
}

/** Raised for anything the machine will not do; always names the file. */
export class PickleError extends ArchiveError {
  constructor(file: string, detail: string, code = "pickle.invalid") {
    super(file, detail, code);
    this.name = "PickleError";
  }
}

/** Is `module.name` permitted by `options` (exact entry, or a class in a data-class namespace)? */
export function isAllowedGlobal(options: UnpickleOptions, module: string, name: string): boolean {
  if (options.globals.has(`${module}.${name}`)) return true;
  return (options.dataClassModules ?? []).some((p) => module === p || module.startsWith(`${p}.`));
}

/**
 * A pickle virtual machine (protocols 0–5). It never imports or calls anything by name: every global must be
 * on the allow-list and is resolved to a TypeScript handler; all other globals are refused.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PyValue {
  return new Machine(bytes, options).run();
}

class Machine {
  private pos = 0;
  private stack: PyValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly view: DataView;
  private readonly text = new TextDecoder("utf-8", { fatal: false });
  private readonly latin1 = new TextDecoder("latin1");

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fail(detail: string, code = "pickle.invalid"): never {
    throw new PickleError(this.options.file, detail, code);
  }

  run(): PyValue {
    if (this.bytes.length === 0) this.fail("the pickle is empty", "archive.truncated");
    for (;;) {
      const at = this.pos;
      const op = this.u8();
      if (op === OP.STOP) break;
      try {
        this.step(op);
      } catch (e) {
        if (e instanceof ArchiveError) throw e;
        this.fail(`${(e as Error).message} (opcode ${opcodeName(op)} at byte ${at})`);
      }
    }
    if (this.stack.length !== 1) {
      this.fail(`the pickle ends with ${this.stack.length} values on the stack instead of 1`);
    }
    return this.stack[0];
  }

  // ---- reading ----

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) {
      this.fail(
        `the pickle is truncated: ${n} more bytes needed at byte ${this.pos} of ${this.bytes.length}`,
        "archive.truncated",
      );
    }
  }
  private u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }
  private u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`a length of ${v} bytes is not plausible`);
    return Number(v);
  }
  private take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0)
      this.fail(
        `the pickle is truncated: a text argument at byte ${this.pos} has no end of line`,
        "archive.truncated",
      );
    const s = this.latin1.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
  private utf8(n: number): string {
    return this.text.decode(this.take(n));
  }

  // ---- stack ----

  private push(v: PyValue): void {
    this.stack.push(v);
  }
  private pop(): PyValue {
    const v = this.stack.pop();
    if (v === undefined) this.fail("stack underflow");
    return v;
  }
  private top(): PyValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined) this.fail("stack underflow");
    return v;
  }
  private popMark(): PyValue[] {
    const m = this.marks.pop();
    if (m === undefined) this.fail("no MARK on the stack");
    return this.stack.splice(m);
  }
  private memoGet(i: number): PyValue {
    if (!this.memo.has(i)) this.fail(`memo slot ${i} is read before it is written`);
    return this.memo.get(i) as PyValue;
  }

  // ---- the instruction set ----

  private step(op: number): void {
    switch (op) {
      case OP.PROTO: {
        const p = this.u8();
        if (p > 5) this.fail(`pickle protocol ${p} is newer than protocol 5`);
        return;
      }
      case OP.FRAME:
        this.u64();
        return;
      case OP.MARK:
        this.marks.push(this.stack.length); // marks are kept as stack heights
        return;
      case OP.POP:
        if (this.marks.length > 0 && this.marks[this.marks.length - 1] === this.stack.length) this.popMark();
        else this.pop();
        return;
      case OP.POP_MARK:
        this.popMark();
        return;
      case OP.DUP:
        this.push(this.top());
        return;

      // constants and numbers
      case OP.NONE:
        this.push(null);
        return;
      case OP.NEWTRUE:
        this.push(true);
        return;
      case OP.NEWFALSE:
        this.push(false);
        return;
      case OP.BININT:
        this.push(this.i32());
        return;
      case OP.BININT1:
        this.push(this.u8());
        return;
      case OP.BININT2:
        this.push(this.u16());
        return;
      case OP.LONG1:
        this.push(decodeLong(this.take(this.u8())));
        return;
      case OP.LONG4: {
        const n = this.i32();
        if (n < 0) this.fail("LONG4 with a negative length");
        const max = limits().maxPickleIntBytes;
        if (n > max)
          this.fail(
            `an integer of ${n} bytes is larger than torchc reads (${max} bytes; TORCHC_MAX_PICKLE_INT_BYTES)`,
          );
        this.push(decodeLong(this.take(n)));
        return;
      }
      case OP.INT: {
        const s = this.line();
        this.push(
          s === "01" ? true : s === "00" ? false : parseIntText(s, () => this.fail(`bad INT literal '${s}'`)),
        );
        return;
      }
      case OP.LONG: {
        const s = this.line().replace(/L$/, "");
        this.push(parseIntText(s, () => this.fail(`bad LONG literal '${s}'`)));
        return;
      }
      case OP.FLOAT: {
        const s = this.line().trim();
        const special: Record<string, number> = {
          inf: Infinity,
          "-inf": -Infinity,
          nan: Number.NaN,
          "-nan": Number.NaN,
        };
        const v = s.toLowerCase() in special ? special[s.toLowerCase()] : Number(s);
        if (Number.isNaN(v) && !/nan/i.test(s)) this.fail(`bad FLOAT literal '${s}'`);
        this.push(new PyFloat(v));
        return;
      }
      case OP.BINFLOAT: {
        this.need(8);
        const v = this.view.getFloat64(this.pos, false);
        this.pos += 8;
        this.push(new PyFloat(v));
        return;
      }

      // strings and bytes
      case OP.BINUNICODE:
        this.push(this.utf8(this.u32()));
        return;
      case OP.SHORT_BINUNICODE:
        this.push(this.utf8(this.u8()));
        return;
      case OP.BINUNICODE8:
        this.push(this.utf8(this.u64()));
        return;
      case OP.UNICODE:
        this.push(decodeRawUnicodeEscape(this.line()));
        return;
      case OP.STRING:
        this.push(decodeStringRepr(this.line(), () => this.fail("bad STRING literal")));
        return;
      case OP.BINSTRING:
        this.push(this.latin1.decode(this.take(this.i32())));
        return;
      case OP.SHORT_BINSTRING:
        this.push(this.latin1.decode(this.take(this.u8())));
        return;
      case OP.BINBYTES:
        this.push(this.take(this.u32()).slice());
        return;
      case OP.SHORT_BINBYTES:
        this.push(this.take(this.u8()).slice());
        return;
      case OP.BINBYTES8:
      case OP.BYTEARRAY8:
        this.push(this.take(this.u64()).slice());
        return;
      case OP.NEXT_BUFFER:
        this.fail("out-of-band buffers (NEXT_BUFFER) are not supported");
        return;
      case OP.READONLY_BUFFER:
        return;

      // containers
      case OP.EMPTY_LIST:
        this.push([]);
        return;
      case OP.EMPTY_TUPLE:
        this.push(new PyTuple([]));
        return;
      case OP.EMPTY_DICT:
        this.push(new PyDict());
        return;
      case OP.EMPTY_SET:
        this.push(new PySet());
        return;
      case OP.LIST:
        this.push(this.popMark());
        return;
      case OP.TUPLE:
        this.push(new PyTuple(this.popMark()));
        return;
      case OP.TUPLE1:
        this.push(new PyTuple([this.pop()]));
        return;
      case OP.TUPLE2: {
        const b = this.pop();
        const a = this.pop();
        this.push(new PyTuple([a, b]));
        return;
      }
      case OP.TUPLE3: {
        const c = this.pop();
        const b = this.pop();
        const a = this.pop();
        this.push(new PyTuple([a, b, c]));
        return;
      }
      case OP.DICT: {
        const items = this.popMark();
        const d = new PyDict();
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        this.push(d);
        return;
      }
      case OP.FROZENSET:
        this.push(new PySet(this.popMark(), true));
        return;
      case OP.APPEND: {
        const v = this.pop();
        this.appendTo(this.top(), [v]);
        return;
      }
      case OP.APPENDS: {
        const items = this.popMark();
        this.appendTo(this.top(), items);
        return;
      }
      case OP.ADDITEMS: {
        const items = this.popMark();
        const s = this.top();
        if (!(s instanceof PySet)) this.fail(`ADDITEMS on a ${pyTypeName(s)}`);
        s.items.push(...items);
        return;
      }
      case OP.SETITEM: {
        const v = this.pop();
        const k = this.pop();
        this.setItems(this.top(), [k, v]);
        return;
      }
      case OP.SETITEMS: {
        const items = this.popMark();
        this.setItems(this.top(), items);
        return;
      }

      // memo
      case OP.PUT:
        this.memo.set(parseIntText(this.line(), () => this.fail("bad PUT index")) as number, this.top());
        return;
      case OP.BINPUT:
        this.memo.set(this.u8(), this.top());
        return;
      case OP.LONG_BINPUT:
        this.memo.set(this.u32(), this.top());
        return;
      case OP.MEMOIZE:
        this.memo.set(this.memo.size, this.top());
        return;
      case OP.GET:
        this.push(this.memoGet(parseIntText(this.line(), () => this.fail("bad GET index")) as number));
        return;
      case OP.BINGET:
        this.push(this.memoGet(this.u8()));
        return;
      case OP.LONG_BINGET:
        this.push(this.memoGet(this.u32()));
        return;

      // globals and objects
      case OP.GLOBAL: {
        const module = this.line();
        const name = this.line();
        this.push(this.resolveGlobal(module, name));
        return;
      }
      case OP.STACK_GLOBAL: {
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== "string" || typeof name !== "string")
          this.fail("STACK_GLOBAL needs two strings");
        this.push(this.resolveGlobal(module, name));
        return;
      }
      case OP.EXT1:
      case OP.EXT2:
      case OP.EXT4:
        this.fail("extension-registry globals (EXT1/EXT2/EXT4) are not allowed", "pickle.forbidden-global");
        return;
      case OP.REDUCE: {
        const args = this.pop();
        const fn = this.pop();
        if (!(args instanceof PyTuple)) this.fail(`REDUCE arguments are a ${pyTypeName(args)}, not a tuple`);
        this.push(this.call(fn, args.items));
        return;
      }
      case OP.NEWOBJ: {
        const args = this.pop();
        const cls = this.pop();
        if (!(args instanceof PyTuple)) this.fail(`NEWOBJ arguments are a ${pyTypeName(args)}, not a tuple`);
        this.push(this.call(cls, args.items));
        return;
      }
      case OP.NEWOBJ_EX: {
        const kwargs = this.pop();
        const args = this.pop();
        const cls = this.pop();
        if (!(args instanceof PyTuple)) this.fail("NEWOBJ_EX arguments are not a tuple");
        if (kwargs instanceof PyDict && kwargs.size > 0)
          this.fail("NEWOBJ_EX with keyword arguments is not supported");
        this.push(this.call(cls, args.items));
        return;
      }
      case OP.OBJ: {
        const items = this.popMark();
        const cls = items.shift();
        this.push(this.call(cls ?? null, items));
        return;
      }
      case OP.INST: {
        const module = this.line();
        const name = this.line();
        const cls = this.resolveGlobal(module, name);
        this.push(this.call(cls, this.popMark()));
        return;
      }
      case OP.BUILD: {
        const state = this.pop();
        this.build(this.top(), state);
        return;
      }
      case OP.PERSID:
        this.push(this.persistent(this.line()));
        return;
      case OP.BINPERSID:
        this.push(this.persistent(this.pop()));
        return;
      default:
        this.fail(`unknown opcode ${opcodeName(op)}`);
    }
  }

  private appendTo(target: PyValue, items: PyValue[]): void {
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof PySet) target.items.push(...items);
    else this.fail(`APPEND on a ${pyTypeName(target)}`);
  }

  private setItems(target: PyValue, items: PyValue[]): void {
    if (!(target instanceof PyDict)) this.fail(`SETITEM on a ${pyTypeName(target)}`);
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  private resolveGlobal(module: string, name: string): PyValue {
    const key = `${module}.${name}`;
    const handler = this.options.globals.get(key);
    if (handler?.unsupported)
      this.fail(
        `uses '${key}' (${handler.unsupported}), which torchc does not support`,
        "archive.unsupported",
      );
    if (handler) return handler.value ?? new PyGlobal(module, name);
    if (isAllowedGlobal(this.options, module, name)) return new PyGlobal(module, name);
    this.fail(
      `refusing to load global '${key}': it is not on torchc's allow-list of PyTorch data types. ` +
        "A pickle that names it could run arbitrary code; torchc never executes or skips such references, so the " +
        "file is rejected (is it a model saved by torch.jit.save from a trusted source?)",
      "pickle.forbidden-global",
    );
  }

  private call(fn: PyValue, args: readonly PyValue[]): PyValue {
    if (!(fn instanceof PyGlobal)) this.fail(`cannot call a ${pyTypeName(fn)}`);
    const handler = this.options.globals.get(fn.qualifiedName);
    if (handler?.call) return handler.call(args);
    if (!handler && isAllowedGlobal(this.options, fn.module, fn.name))
      return new PyObject(fn.module, fn.name, args);
    this.fail(`global '${fn.qualifiedName}' is data, not something a pickle may call`);
  }

  private build(target: PyValue, state: PyValue): void {
    if (target instanceof PyObject) {
      target.state = state;
      return;
    }
    if (isExtension(target) && target.setState) {
      target.setState(state);
      return;
    }
    if (target instanceof PyDict && state instanceof PyDict) {
      for (const [k, v] of state.entries()) target.set(k, v);
      return;
    }
    this.fail(`BUILD on a ${pyTypeName(target)}`);
  }

  private persistent(pid: PyValue): PyValue {
    if (!this.options.persistentLoad)
      this.fail("the pickle refers to external data (a persistent id) that this reader does not provide");
    return this.options.persistentLoad(pid);
  }
}

/** Little-endian two's complement, as LONG1/LONG4 store it (through hex: linear in the length). */
export function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let hex = "";
  for (let i = b.length - 1; i >= 0; i--) hex += b[i].toString(16).padStart(2, "0");
  let v = BigInt(`0x${hex}`);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseIntText(s: string, bad: () => never): number | bigint {
  const t = s.trim();
  // as many decimal digits as the largest integer LONG4 may carry (2.41 digits a byte)
  if (t.length > Math.ceil(limits().maxPickleIntBytes * 2.41) + 1 || !/^[-+]?\d+$/.test(t)) bad();
  const v = BigInt(t);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function decodeRawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a, b) =>
    String.fromCodePoint(Number.parseInt(a ?? b, 16)),
  );
}

/** Python 2 `repr(str)`: 'abc' or "abc" with backslash escapes. */
function decodeStringRepr(s: string, bad: () => never): string {
  const q = s[0];
  if ((q !== "'" && q !== '"') || s[s.length - 1] !== q || s.length < 2) bad();
  const body = s.slice(1, -1);
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === "x") return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return (
      (
        {
          n: "\n",
          r: "\r",
          t: "\t",
          "\\": "\\",
          "'": "'",
          '"': '"',
          a: "\x07",
          b: "\b",
          f: "\f",
          v: "\v",
        } as Record<string, string>
      )[e] ?? `\\${e}`
    );
  });
}
