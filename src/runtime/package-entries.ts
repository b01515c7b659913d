/**
 * Content hashes of a package's entries: the manifest lists every other entry with its size and SHA-256, and a
 * load checks each one before reading it, so a truncated or edited package is refused with the entry's name.
 */
import { createHash } from "node:crypto";
import { ArchiveError } from "../errors.js";
import type { ZipArchive } from "../frontends/zip.js";

export interface EntryRecord {
  readonly bytes: number;
  readonly sha256: string;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The manifest's table of entries for `files` (every file but the manifest itself). */
export function entryTable(files: Readonly<Record<string, Uint8Array>>): Record<string, EntryRecord> {
  const out: Record<string, EntryRecord> = {};
  for (const [name, bytes] of Object.entries(files))
    out[name] = { bytes: bytes.byteLength, sha256: sha256(bytes) };
  return out;
}

/**
 * Checks every listed entry against the archive: present, of the recorded size, with the recorded hash. Returns
 * a reader that hands out only checked entries.
 */
export function checkEntries(
  zip: ZipArchive,
  entries: ReadonlyMap<string, EntryRecord>,
  path: string,
): (name: string) => Uint8Array {
  const fail = (detail: string): never => {
    throw new ArchiveError(path, detail, "package.tampered");
  };
  const checked = new Map<string, Uint8Array>();
  for (const [name, e] of entries) {
    const size = zip.size(name);
    if (size === undefined) fail(`entry ${name} is missing (a truncated or edited package)`);
    if (size !== e.bytes)
      fail(
        `entry ${name} has ${size} bytes, the manifest records ${e.bytes} (a truncated or edited package)`,
      );
    zip.budget.charge(e.bytes, `entry ${name}`);
    const bytes = zip.read(name) ?? new Uint8Array();
    if (sha256(bytes) !== e.sha256)
      fail(
        `entry ${name} does not match its SHA-256 in the manifest (the package was modified after saving)`,
      );
    checked.set(name, bytes);
  }
  return (name) => {
    const b = checked.get(name);
    if (!b) return fail(`entry ${name} is not listed in the manifest's entries`);
    return b;
  };
}
