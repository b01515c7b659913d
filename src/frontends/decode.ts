import { ArchiveError } from "../errors.js";
import { limits } from "./limits.js";

/**
 * Typed decoders for JSON read from files. A decoder checks an `unknown` against what a format declares and
 * returns it typed, or throws a `DecodeFailure` naming the JSON path and what was expected. Written here rather
 * than taken from a validation library: the formats are few and fixed, the messages must name the path in our
 * terms, decoding sits on the load path of large model.json files (no per-node closures or cloning), and tables
 * come out as `Map`s so that names like `__proto__` or `constructor` are plain keys.
 */
export type Decoder<T> = (v: unknown, path: string) => T;

export class DecodeFailure extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly got: unknown,
  ) {
    super(`at ${path}: expected ${expected}, got ${describe(got)}`);
  }
}

/** A short, safe description of a JSON value for messages. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === "object") {
    const keys = Object.keys(v as object);
    return keys.length === 0
      ? "{}"
      : `an object with ${keys
          .slice(0, 3)
          .map((k) => JSON.stringify(k))
          .join(", ")}${keys.length > 3 ? ", …" : ""}`;
  }
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}

const fail = (path: string, expected: string, got: unknown): never => {
  throw new DecodeFailure(path, expected, got);
};

/**
 * Whether decoders spell out JSON paths as they descend. Building a path string for every field of a large
 * model.json costs more than the checks themselves, so `fastDecode` runs without paths and, should a check fail,
 * runs again with them to name the place.
 */
let tracking = true;

/** The path of a field or element below `p` (or `p` itself while paths are not tracked). */
export function field(p: string, key: string): string {
  return tracking ? `${p}.${key}` : p;
}
export function index(p: string, i: number): string {
  return tracking ? `${p}[${i}]` : p;
}
export function key(p: string, k: string): string {
  return tracking ? `${p}[${JSON.stringify(k)}]` : p;
}

/**
 * Runs `f` without path tracking; if a decoder fails, runs `f` again with tracking so that the error names the
 * JSON path. `f` must be repeatable (a pure read of the same input).
 */
export function fastDecode<T>(f: () => T): T {
  if (!tracking) return f();
  tracking = false;
  try {
    return f();
  } catch (e) {
    if (!(e instanceof DecodeFailure) && !(e instanceof NeedsPath)) throw e;
  } finally {
    tracking = true;
  }
  return f();
}

/** Thrown by checks that need the path for their message while paths are not tracked. */
export class NeedsPath extends Error {}

/** Throws NeedsPath while paths are not tracked, so `fastDecode` repeats the work with paths. */
export function requirePath(): void {
  if (!tracking) throw new NeedsPath();
}

export const str: Decoder<string> = (v, p) => (typeof v === "string" ? v : fail(p, "a string", v));
export const bool: Decoder<boolean> = (v, p) => (typeof v === "boolean" ? v : fail(p, "true or false", v));
export const num: Decoder<number> = (v, p) => (typeof v === "number" ? v : fail(p, "a number", v));
/**
 * An integer argument, with int64's extremes (INT64_MAX / INT64_MIN, which JSON.parse reads as ±2^63) kept as
 * ±Number.MAX_SAFE_INTEGER: PyTorch writes them as "to the end" sentinels (a slice's end, e.g. timm's and
 * torchvision's Swin), where any value past the size means the same.
 */
export function intOrSentinel(v: unknown): number | undefined {
  if (typeof v !== "number") return undefined;
  if (Number.isSafeInteger(v)) return v;
  if (v === 2 ** 63) return Number.MAX_SAFE_INTEGER;
  if (v === -(2 ** 63)) return -Number.MAX_SAFE_INTEGER;
  return undefined;
}

export const int: Decoder<number> = (v, p) => intOrSentinel(v) ?? fail(p, "an integer", v);
export const size: Decoder<number> = (v, p) =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : fail(p, "a non-negative integer", v);
/** PyTorch's serializer writes non-finite floats as the strings "Infinity", "-Infinity" and "NaN". */
export const float: Decoder<number> = (v, p) => {
  if (typeof v === "number") return v;
  if (v === "Infinity") return Number.POSITIVE_INFINITY;
  if (v === "-Infinity") return Number.NEGATIVE_INFINITY;
  if (v === "NaN") return Number.NaN;
  return fail(p, "a number", v);
};
export const unknownValue: Decoder<unknown> = (v) => v;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function object(v: unknown, p: string): Record<string, unknown> {
  return isObject(v) ? v : fail(p, "an object", v);
}

/** An array whose items `item` accepts; the input array itself when no item was transformed. */
export function array<T>(item: Decoder<T>): Decoder<T[]> {
  return (v, p) => {
    if (!Array.isArray(v)) return fail(p, "an array", v);
    let out: T[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = item(v[i], index(p, i));
      if (out) out[i] = x;
      else if (x !== v[i]) {
        out = v.slice(0, i) as T[];
        out[i] = x;
      }
    }
    return out ?? (v as T[]);
  };
}

/** An array whose items are checked later, where they are read (`array(unknownValue)` without the walk). */
export const list: Decoder<readonly unknown[]> = (v, p) => (Array.isArray(v) ? v : fail(p, "an array", v));

export function optional<T>(d: Decoder<T>): Decoder<T | undefined> {
  return (v, p) => (v === undefined ? undefined : d(v, p));
}

export function nullable<T>(d: Decoder<T>): Decoder<T | null> {
  return (v, p) => (v === null ? null : d(v, p));
}

export function oneOf<T extends string>(values: readonly T[]): Decoder<T> {
  return (v, p) =>
    values.includes(v as T) ? (v as T) : fail(p, values.map((x) => JSON.stringify(x)).join(" or "), v);
}

type Fields = Record<string, Decoder<unknown>>;
type Decoded<F extends Fields> = { [K in keyof F]: ReturnType<F[K]> };

/**
 * An object with these fields (others are ignored); an optional field's decoder accepts undefined. The input
 * object itself is returned when no field was transformed (a decoded object is only read, never written).
 */
export function struct<F extends Fields>(fields: F): Decoder<Decoded<F>> {
  const keys = Object.keys(fields);
  const decoders = keys.map((k) => fields[k]);
  // a field named like a built-in property must not be read through the prototype when absent
  const copyAlways = keys.some((k) => k in Object.prototype);
  return (v, p) => {
    const o = object(v, p);
    let out: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const raw = Object.hasOwn(o, k) ? o[k] : undefined;
      const x = decoders[i](raw, field(p, k));
      if (out) out[k] = x;
      else if (x !== raw || copyAlways) {
        out = {};
        for (let j = 0; j < i; j++) out[keys[j]] = o[keys[j]];
        out[k] = x;
      }
    }
    return (out ?? o) as Decoded<F>;
  };
}

/** A JSON object used as a table: every own key, decoded, in a `Map`. */
export function table<T>(item: Decoder<T>): Decoder<Map<string, T>> {
  return (v, p) => {
    const o = object(v, p);
    const out = new Map<string, T>();
    for (const k of Object.keys(o)) out.set(k, item(o[k], key(p, k)));
    return out;
  };
}

/**
 * The one own key of a plain object that has exactly one (what `tagged` accepts), else undefined; without
 * allocating, for the fast paths of readers. A `for…in` also sees inherited enumerable keys, so one key seen
 * that is the object's own is exactly `Object.keys(v).length === 1`.
 */
export function onlyKey(v: unknown): string | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  let only: string | undefined;
  for (const k in v) {
    if (only !== undefined) return undefined;
    only = k;
  }
  return only !== undefined && Object.hasOwn(v, only) ? only : undefined;
}

/** A tagged union written as an object with exactly one key: returns the key and the raw value. */
export function tagged(v: unknown, p: string): { tag: string; value: unknown; path: string } {
  const o = object(v, p);
  const tag = onlyKey(o);
  if (tag !== undefined) return { tag, value: o[tag], path: field(p, tag) };
  const keys = Object.keys(o);
  if (keys.length !== 1) return fail(p, "an object with exactly one key", v);
  return { tag: keys[0], value: o[keys[0]], path: field(p, keys[0]) };
}

/**
 * `JSON.parse`, as one ArchiveError line when the text is not JSON. V8's parser is iterative, so nesting cannot
 * overflow its stack; what comes after must not recurse into arbitrary JSON either. The typed decoders only
 * descend as deep as their schema, so for fixed schemas that is all; a recursive schema (a package's nested
 * graphs) passes `maxDepth` and the nesting is checked in one pass over the bytes before parsing.
 */
export function parseJson(
  data: Uint8Array | string,
  file: string,
  entry: string,
  code = "archive.bad-model",
  opts: { readonly checkDepth?: boolean } = {},
): unknown {
  const bytes = typeof data === "string" ? undefined : data;
  if (opts.checkDepth) {
    const limit = limits().maxJsonDepth;
    if (maxDepth(bytes ?? new TextEncoder().encode(data as string)) > limit)
      throw new ArchiveError(file, `${entry} nests deeper than ${limit} levels; refusing it`, code);
  }
  try {
    return JSON.parse(
      bytes
        ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
        : (data as string),
    );
  } catch (e) {
    throw new ArchiveError(file, `${entry} is not valid JSON (${(e as Error).message})`, code);
  }
}

/** The deepest nesting of [ and { outside strings (structural characters are ASCII, so bytes will do). */
function maxDepth(bytes: Uint8Array): number {
  let depth = 0;
  let max = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const c = bytes[i];
    if (c === 34) {
      // skip a string: the next quote not escaped by an odd run of backslashes
      for (;;) {
        const q = bytes.indexOf(34, i + 1);
        if (q < 0) return max;
        let b = q - 1;
        while (bytes[b] === 92) b--;
        i = q;
        if ((q - 1 - b) % 2 === 0) break;
      }
    } else if (c === 91 || c === 123) {
      if (++depth > max) max = depth;
    } else if (c === 93 || c === 125) depth--;
  }
  return max;
}

/** Runs a decoder over a parsed file and turns a failure into an `ArchiveError` naming file, entry and path. */
export function decodeEntry<T>(
  d: Decoder<T>,
  value: unknown,
  file: string,
  entry: string,
  code = "archive.bad-model",
): T {
  try {
    return d(value, "$");
  } catch (e) {
    if (e instanceof DecodeFailure) {
      requirePath();
      throw new ArchiveError(file, `${entry}: ${e.message}`, code);
    }
    throw e;
  }
}
