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

export const str: Decoder<string> = (v, p) => (typeof v === "string" ? v : fail(p, "a string", v));
export const bool: Decoder<boolean> = (v, p) => (typeof v === "boolean" ? v : fail(p, "true or false", v));
export const num: Decoder<number> = (v, p) => (typeof v === "number" ? v : fail(p, "a number", v));
export const int: Decoder<number> = (v, p) =>
  typeof v === "number" && Number.isSafeInteger(v) ? v : fail(p, "an integer", v);
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

export function array<T>(item: Decoder<T>): Decoder<T[]> {
  return (v, p) => {
    if (!Array.isArray(v)) return fail(p, "an array", v);
    const out = new Array<T>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = item(v[i], `${p}[${i}]`);
    return out;
  };
}

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

/** An object with these fields (others are ignored); an optional field's decoder accepts undefined. */
export function struct<F extends Fields>(fields: F): Decoder<Decoded<F>> {
  return (v, p) => {
    const o = object(v, p);
    const out = {} as Record<string, unknown>;
    for (const key in fields) {
      const raw = Object.hasOwn(o, key) ? o[key] : undefined;
      out[key] = fields[key](raw, `${p}.${key}`);
    }
    return out as Decoded<F>;
  };
}

/** A JSON object used as a table: every own key, decoded, in a `Map`. */
export function table<T>(item: Decoder<T>): Decoder<Map<string, T>> {
  return (v, p) => {
    const o = object(v, p);
    const out = new Map<string, T>();
    for (const key of Object.keys(o)) out.set(key, item(o[key], `${p}[${JSON.stringify(key)}]`));
    return out;
  };
}

/** A tagged union written as an object with exactly one key: returns the key and the raw value. */
export function tagged(v: unknown, p: string): { tag: string; value: unknown; path: string } {
  const o = object(v, p);
  const keys = Object.keys(o);
  if (keys.length !== 1) return fail(p, "an object with exactly one key", v);
  return { tag: keys[0], value: o[keys[0]], path: `${p}.${keys[0]}` };
}

/**
 * `JSON.parse` after checking the nesting depth in one pass over the UTF-8 bytes (arrays and objects nested more
 * than `maxJsonDepth` deep are refused before anything recursive, like `JSON.stringify`, can see them).
 */
export function parseJson(
  data: Uint8Array | string,
  file: string,
  entry: string,
  code = "archive.bad-model",
): unknown {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const depth = maxDepth(bytes);
  const limit = limits().maxJsonDepth;
  if (depth > limit)
    throw new ArchiveError(file, `${entry} nests deeper than ${limit} levels; refusing it`, code);
  try {
    return JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(bytes));
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
      // skip a string, honouring backslash escapes
      for (i++; i < n; i++) {
        const d = bytes[i];
        if (d === 92) i++;
        else if (d === 34) break;
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
    if (e instanceof DecodeFailure) throw new ArchiveError(file, `${entry}: ${e.message}`, code);
    throw e;
  }
}
