import { readFileSync, statSync } from "node:fs";
import { unzipSync } from "fflate";
import { ArchiveError } from "../errors.js";

/** The entries of a zip archive by path. Entries are read eagerly; model archives fit in memory. */
export interface ZipArchive {
  readonly file: string;
  readonly entries: ReadonlyMap<string, Uint8Array>;
}

export function readZip(file: string): ZipArchive {
  let bytes: Uint8Array;
  try {
    if (statSync(file).isDirectory())
      throw new ArchiveError(file, "is a directory, not a model archive", "archive.missing");
    bytes = readFileSync(file);
  } catch (e) {
    if (e instanceof ArchiveError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ArchiveError(
      file,
      code === "ENOENT" ? "no such file" : `cannot read (${code ?? String(e)})`,
      "archive.missing",
    );
  }
  return parseZip(bytes, file);
}

export function parseZip(bytes: Uint8Array, file: string): ZipArchive {
  const isZip =
    bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
  if (!isZip) {
    throw new ArchiveError(
      file,
      "is not a zip archive (expected a .pt2 from torch.export.save or a .pt from torch.jit.save)",
      "archive.not-zip",
    );
  }
  // The central directory sits at the end; without its end record the archive was cut short.
  if (findEndOfCentralDirectory(bytes) < 0) {
    throw new ArchiveError(
      file,
      "is truncated: the zip directory at its end is missing (was the download or copy cut short?)",
      "archive.truncated",
    );
  }
  let raw: Record<string, Uint8Array>;
  try {
    raw = unzipSync(bytes);
  } catch (e) {
    throw new ArchiveError(
      file,
      `is a damaged or truncated zip archive (${(e as Error).message})`,
      "archive.truncated",
    );
  }
  return { file, entries: new Map(Object.entries(raw)) };
}

function findEndOfCentralDirectory(bytes: Uint8Array): number {
  const min = Math.max(0, bytes.length - 22 - 65535);
  for (let i = bytes.length - 22; i >= min; i--) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && bytes[i + 2] === 5 && bytes[i + 3] === 6) return i;
  }
  return -1;
}

/**
 * The folder every entry lives under (`tiny_resnet/…`), recognised by a marker file or folder at the top of the
 * archive or one folder down (deeper matches, like `code/__torch__/timm/models/…`, are not markers).
 */
export function archiveRoot(zip: ZipArchive, markers: readonly string[]): string | undefined {
  for (const path of zip.entries.keys()) {
    for (const m of markers) {
      const i = path.indexOf(m);
      if (i < 0 || (i > 0 && path[i - 1] !== "/")) continue;
      const root = path.slice(0, i);
      if (root.split("/").length <= 2) return root;
    }
  }
  return undefined;
}
