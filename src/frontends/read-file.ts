import { closeSync, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { formatBytes } from "./limits.js";

/** Why a file could not be read: `missing` (absent, a folder, unreadable) or `too-large` (over the limit). */
export type ReadFailure = { readonly kind: "missing" | "too-large"; readonly detail: string };

/**
 * Reads a whole file, but never more than `limit` bytes: a regular file is checked by its size first, and
 * anything else (a pipe, `/dev/zero`, a growing file) is read in chunks until the limit is passed.
 */
export function readFileBounded(path: string, limit: number): Uint8Array | ReadFailure {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      kind: "missing",
      detail: code === "ENOENT" ? "no such file" : `cannot read (${code ?? String(e)})`,
    };
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) return { kind: "missing", detail: "is a directory, not a file" };
    if (st.isFile() && st.size > limit) return { kind: "too-large", detail: tooLarge(st.size, limit) };
    const chunks: Uint8Array[] = [];
    let total = 0;
    const step = st.isFile() && st.size > 0 ? st.size + 1 : 1 << 20;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(step, limit + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > limit) return { kind: "too-large", detail: tooLarge(total, limit, true) };
      chunks.push(chunk.subarray(0, n));
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { kind: "missing", detail: `cannot read (${code ?? String(e)})` };
  } finally {
    closeSync(fd);
  }
}

function tooLarge(size: number, limit: number, atLeast = false): string {
  return `is ${atLeast ? "more than " : ""}${formatBytes(atLeast ? limit : size)}, over the memory budget of ${formatBytes(limit)} (raise it with --max-memory or TORCHC_MAX_MEMORY)`;
}

export function isReadFailure(v: Uint8Array | ReadFailure): v is ReadFailure {
  return !(v instanceof Uint8Array);
}

/** The most bytes one readSync call takes (Node refuses lengths of 2 GiB and more). */
const MAX_READ = 1 << 30;

/**
 * A regular file read a piece at a time at given positions, never whole: archives over 2 GiB (more than one
 * Buffer or readFileSync holds) stay readable, and only the pieces read cost memory. Each time the file is
 * opened again it is checked to be the same size and age as when it was first opened.
 */
export class PositionedFile {
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    readonly size: number,
    private readonly mtimeMs: number,
  ) {}

  /**
   * The file, if it is a regular file; a failure if it is missing or a folder; undefined for anything else (a
   * pipe, a device like /dev/zero), which has no positions to read and must be read whole with a limit.
   */
  static open(path: string): PositionedFile | ReadFailure | undefined {
    let st: Stats;
    try {
      st = fstatOf(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return {
        kind: "missing",
        detail: code === "ENOENT" ? "no such file" : `cannot read (${code ?? String(e)})`,
      };
    }
    if (st.isDirectory()) return { kind: "missing", detail: "is a directory, not a file" };
    return st.isFile() ? new PositionedFile(path, st.size, st.mtimeMs) : undefined;
  }

  /** Runs `fn` with the file kept open, so that its many small reads (a zip directory's) open it once. */
  hold<T>(fn: () => T): T {
    if (this.fd !== undefined) return fn();
    const fd = this.openChecked();
    this.fd = fd;
    try {
      return fn();
    } finally {
      this.fd = undefined;
      closeSync(fd);
    }
  }

  /** `length` bytes at `offset`, in a buffer of their own; throws an Error whose message says what went wrong. */
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size)
      throw new Error(`has no bytes ${offset}..${offset + length} (it is ${this.size} bytes)`);
    const fd = this.fd ?? this.openForNow();
    const out = new Uint8Array(length);
    for (let got = 0; got < length; ) {
      const n = readSync(fd, out, got, Math.min(length - got, MAX_READ), offset + got);
      if (n === 0) throw new Error(`ended at byte ${offset + got} while being read (was it truncated?)`);
      got += n;
    }
    return out;
  }

  /**
   * Opens the file for the reads of this turn of the event loop (a model's load reads its entries one after
   * another synchronously) and closes it right after, so that no descriptor outlives the work.
   */
  private openForNow(): number {
    const fd = this.openChecked();
    this.fd = fd;
    setImmediate(() => {
      if (this.fd === fd) this.fd = undefined;
      closeSync(fd);
    }).unref();
    return fd;
  }

  private openChecked(): number {
    let fd: number;
    try {
      fd = openSync(this.path, "r");
    } catch (e) {
      throw new Error(`can no longer be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    const st = fstatSync(fd);
    if (st.size !== this.size || st.mtimeMs !== this.mtimeMs) {
      closeSync(fd);
      throw new Error(`changed while it was being read (${this.size} bytes before, ${st.size} now)`);
    }
    return fd;
  }
}

function fstatOf(path: string): Stats {
  const fd = openSync(path, "r");
  try {
    return fstatSync(fd);
  } finally {
    closeSync(fd);
  }
}
