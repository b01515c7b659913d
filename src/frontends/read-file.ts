import { closeSync, fstatSync, openSync, readSync } from "node:fs";
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
