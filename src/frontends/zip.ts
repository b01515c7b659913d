import * as zlib from "node:zlib";
import { Inflate } from "fflate";
import { ArchiveError } from "../errors.js";
import { crc32 } from "./crc32.js";
import { formatBytes, limits, MemoryBudget } from "./limits.js";
import { isReadFailure, PositionedFile, readFileBounded } from "./read-file.js";

/**
 * Where an archive's bytes come from: bytes already in memory (read as views), or a file read by position
 * (`copies`: each read is a fresh buffer, charged to the load's memory budget).
 */
interface ByteSource {
  readonly size: number;
  readonly copies: boolean;
  read(offset: number, length: number): Uint8Array;
}

function memorySource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, copies: false, read: (at, n) => bytes.subarray(at, at + n) };
}

/** A file's reads, their failures (the file vanished, shrank or changed) reported as archive errors. */
function fileSource(f: PositionedFile, fail: (detail: string, code: string) => never): ByteSource {
  return {
    size: f.size,
    copies: true,
    read: (at, n) => {
      try {
        return f.read(at, n);
      } catch (e) {
        return fail((e as Error).message, "archive.changed");
      }
    },
  };
}

/** Compressed bytes read from a file this many at a time when only a prefix is inflated. */
const CHUNK = 1 << 20;

/** Where one entry lives in the archive, from its central-directory record and local header. */
interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
  readonly dataOffset: number;
}

/**
 * A zip archive read from an untrusted file. The directory is checked up front (one end record at the very end,
 * entries inside the file and not overlapping, no duplicate names, no encryption, stored or deflated only);
 * entries are inflated only when read, never beyond their declared size, with their CRC checked, and every
 * inflated byte is charged to the load's memory budget.
 */
export class ZipArchive {
  /** Entry names in directory order. */
  readonly names: readonly string[];

  constructor(
    readonly file: string,
    private readonly source: ByteSource,
    private readonly entries: ReadonlyMap<string, ZipEntry>,
    readonly budget: MemoryBudget,
  ) {
    this.names = [...entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry's uncompressed size as its directory record declares it. */
  size(name: string): number | undefined {
    return this.entries.get(name)?.size;
  }

  /**
   * An entry's bytes, or undefined when there is no such entry. With `prefix`, only the first `prefix` bytes are
   * inflated (a weight file larger than its tensor view); the CRC is then checked only for a whole read.
   */
  read(name: string, prefix?: number): Uint8Array | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    const want = prefix === undefined ? e.size : Math.min(prefix, e.size);
    const whole = want === e.size;
    let out: Uint8Array;
    if (e.method === 0) {
      if (this.source.copies) this.budget.charge(want, `zip entry ${name}`);
      out = this.source.read(e.dataOffset, want);
    } else {
      this.budget.charge(want, `zip entry ${name}`);
      out = whole ? this.inflateWhole(e) : this.inflatePrefix(e, want);
    }
    if (whole && crc32(out) !== e.crc)
      this.fail(`zip entry ${name} is damaged (its CRC does not match its data)`, "archive.corrupt");
    return out;
  }

  /** The entry as text (UTF-8), or undefined. */
  text(name: string): string | undefined {
    const b = this.read(name);
    return b && new TextDecoder().decode(b);
  }

  private compressed(e: ZipEntry): Uint8Array {
    if (this.source.copies) this.budget.charge(e.compressedSize, `zip entry ${e.name} (compressed)`);
    return this.source.read(e.dataOffset, e.compressedSize);
  }

  private inflateWhole(e: ZipEntry): Uint8Array {
    const src = this.compressed(e);
    let out: Uint8Array;
    try {
      out = zlib.inflateRawSync(src, { maxOutputLength: Math.max(1, e.size + 1) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
        this.fail(
          `zip entry ${e.name} inflates beyond its declared ${formatBytes(e.size)}`,
          "archive.corrupt",
        );
      return this.fail(`zip entry ${e.name} is damaged (${(err as Error).message})`, "archive.corrupt");
    }
    if (out.length !== e.size)
      this.fail(
        `zip entry ${e.name} inflates to ${out.length} bytes but its directory says ${e.size}`,
        "archive.corrupt",
      );
    return out;
  }

  private inflatePrefix(e: ZipEntry, want: number): Uint8Array {
    const out = new Uint8Array(want);
    let got = 0;
    const inflater = new Inflate((chunk) => {
      const n = Math.min(chunk.length, want - got);
      if (n > 0) out.set(chunk.subarray(0, n), got);
      got += n;
    });
    // The compressed stream a piece at a time: a prefix of a large entry reads no more of the file than it needs.
    try {
      for (let i = 0; i < e.compressedSize && got < want; i += CHUNK) {
        const piece = this.source.read(e.dataOffset + i, Math.min(CHUNK, e.compressedSize - i));
        for (let j = 0; j < piece.length && got < want; j += 16384)
          inflater.push(piece.subarray(j, j + 16384), i + j + 16384 >= e.compressedSize);
      }
    } catch (err) {
      if (err instanceof ArchiveError) throw err;
      this.fail(`zip entry ${e.name} is damaged (${(err as Error).message})`, "archive.corrupt");
    }
    if (got < want)
      this.fail(`zip entry ${e.name} inflates to fewer bytes than the ${want} needed`, "archive.corrupt");
    return out;
  }

  private fail(detail: string, code: string): never {
    throw new ArchiveError(this.file, detail, code);
  }
}

/**
 * Reads a zip archive. A regular file is read by position: its directory up front, each entry only when asked
 * for, so archives over 2 GiB work and only what is read is charged to the memory budget. Anything else (a pipe,
 * `/dev/zero`) is read whole, no further than the budget allows.
 */
export function readZip(file: string, budget?: MemoryBudget): ZipArchive {
  const fail = (detail: string, code = "archive.too-large"): never => {
    throw new ArchiveError(file, detail, code);
  };
  const b = budget ?? new MemoryBudget(fail);
  const missing = (detail: string) =>
    fail(
      detail === "is a directory, not a file" ? "is a directory, not a model archive" : detail,
      "archive.missing",
    );
  const opened = PositionedFile.open(file);
  if (opened instanceof PositionedFile)
    return opened.hold(() => parseArchive(fileSource(opened, fail), file, b));
  if (opened !== undefined) return missing(opened.detail);
  const bytes = readFileBounded(file, b.limit);
  if (isReadFailure(bytes)) return bytes.kind === "missing" ? missing(bytes.detail) : fail(bytes.detail);
  b.charge(bytes.length, "the archive");
  return parseArchive(memorySource(bytes), file, b);
}

const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** The end record (22 bytes), its longest comment, and the zip64 locator (20 bytes) before it. */
const TAIL = 22 + 65535 + 20;

/** A zip archive already in memory. */
export function parseZip(bytes: Uint8Array, file: string, budget?: MemoryBudget): ZipArchive {
  return parseArchive(memorySource(bytes), file, budget);
}

/** Little-endian reads of a piece of the archive; 8-byte values must be exact doubles. */
function reader(bytes: Uint8Array, fail: (detail: string) => never) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    u16: (at: number) => view.getUint16(at, true),
    u32: (at: number) => view.getUint32(at, true),
    u64: (at: number, what: string): number => {
      const v = view.getBigUint64(at, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is not plausible`);
      return Number(v);
    },
  };
}

/** Where the directory is and how many records it holds, from the end record (and its zip64 form). */
function locateDirectory(
  src: ByteSource,
  fail: (detail: string, code?: string) => never,
): { count: number; cdSize: number; cdOffset: number; end: number } {
  const tailStart = Math.max(0, src.size - TAIL);
  const tail = src.read(tailStart, src.size - tailStart);
  const t = reader(tail, fail);
  const at = findEndOfCentralDirectory(tail, t.u16);
  if (at < 0)
    fail(
      "is truncated: the zip directory at its end is missing (was the download or copy cut short?)",
      "archive.truncated",
    );
  let count = t.u16(at + 10);
  let cdSize = t.u32(at + 12);
  let cdOffset = t.u32(at + 16);
  if (t.u16(at + 4) !== 0 || t.u16(at + 6) !== 0 || t.u16(at + 8) !== count)
    fail("is a multi-volume (split) zip archive, which torchc does not read", "archive.unsupported");
  const end = tailStart + at;
  const loc = at - 20;
  if (loc >= 0 && t.u32(loc) === ZIP64_LOCATOR) {
    const rec = t.u64(loc + 8, "the zip64 end record offset");
    if (rec + 56 > end - 20) fail("has a damaged zip64 end record", "archive.truncated");
    const z = reader(src.read(rec, 56), fail);
    if (z.u32(0) !== ZIP64_EOCD) fail("has a damaged zip64 end record", "archive.truncated");
    count = z.u64(32, "the zip64 entry count");
    cdSize = z.u64(40, "the zip64 directory size");
    cdOffset = z.u64(48, "the zip64 directory offset");
  }
  if (cdOffset + cdSize > end || cdSize < 46 * count)
    fail("is truncated or damaged: its zip directory lies outside the file", "archive.truncated");
  return { count, cdSize, cdOffset, end };
}

function parseArchive(src: ByteSource, file: string, budget?: MemoryBudget): ZipArchive {
  const fail = (detail: string, code = "archive.corrupt"): never => {
    throw new ArchiveError(file, detail, code);
  };
  const magic = src.read(0, Math.min(4, src.size));
  const isZip =
    magic.length === 4 && magic[0] === 0x50 && magic[1] === 0x4b && (magic[2] === 3 || magic[2] === 5);
  if (!isZip)
    fail(
      "is not a zip archive (expected a .pt2 from torch.export.save or a .pt from torch.jit.save)",
      "archive.not-zip",
    );
  const b = budget ?? new MemoryBudget(fail, limits().maxMemory);
  const { count, cdSize, cdOffset } = locateDirectory(src, fail);
  if (src.copies) b.charge(cdSize, "the zip directory");
  const cd = src.read(cdOffset, cdSize);
  const { u16, u32, u64 } = reader(cd, fail);
  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || u32(p) !== CENTRAL) fail(`zip directory record ${i} is damaged`);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const crc = u32(p + 16);
    let compressedSize = u32(p + 20);
    let size = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    let localOffset = u32(p + 42);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > cdSize) fail(`zip directory record ${i} is damaged`);
    const name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64: the 8-byte values follow in this order, present only for fields saturated at 0xFFFFFFFF.
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = u16(x);
      const len = u16(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        const take = (what: string): number => {
          if (q + 8 > x + 4 + len) fail(`zip entry ${name} has a damaged zip64 record`);
          const v = u64(q, what);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = take("an entry size");
        if (compressedSize === 0xffffffff) compressedSize = take("an entry size");
        if (localOffset === 0xffffffff) localOffset = take("an entry offset");
      }
      x += 4 + len;
    }
    if (flags & 0x41)
      fail(`zip entry ${name} is encrypted; torchc reads unencrypted archives only`, "archive.unsupported");
    if (method !== 0 && method !== 8)
      fail(
        `zip entry ${name} uses compression method ${method}; torchc reads stored and deflated entries`,
        "archive.unsupported",
      );
    if (method === 0 && compressedSize !== size)
      fail(`zip entry ${name} is stored but its sizes disagree (${compressedSize} and ${size})`);
    if (entries.has(name)) fail(`has two zip entries named ${name}; refusing an ambiguous archive`);
    if (localOffset + 30 > cdOffset)
      fail(`zip entry ${name} points outside the archive's data`, "archive.truncated");
    const local = reader(src.read(localOffset, 30), fail);
    if (local.u32(0) !== LOCAL)
      fail(`zip entry ${name} points outside the archive's data`, "archive.truncated");
    const dataOffset = localOffset + 30 + local.u16(26) + local.u16(28);
    if (dataOffset + compressedSize > cdOffset)
      fail(`zip entry ${name} runs past the archive's data (truncated?)`, "archive.truncated");
    entries.set(name, { name, method, crc, compressedSize, size, localOffset, dataOffset });
    p = next;
  }
  const byOffset = [...entries.values()].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    if (byOffset[i].localOffset < prev.dataOffset + prev.compressedSize)
      fail(`zip entries ${prev.name} and ${byOffset[i].name} overlap; refusing a crafted archive`);
  }
  return new ZipArchive(file, src, entries, b);
}

/** The end record that ends the tail exactly (its comment reaches the last byte), searching backwards. */
function findEndOfCentralDirectory(tail: Uint8Array, u16: (at: number) => number): number {
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail[i] === 0x50 && tail[i + 1] === 0x4b && tail[i + 2] === 5 && tail[i + 3] === 6) {
      if (i + 22 + u16(i + 20) === tail.length) return i;
    }
  }
  return -1;
}

/**
 * The folder every entry lives under (`tiny_resnet/…`), recognised by a marker file or folder at the top of the
 * archive or one folder down (deeper matches, like `code/__torch__/timm/models/…`, are not markers).
 */
export function archiveRoot(
  zip: { readonly names: readonly string[] },
  markers: readonly string[],
): string | undefined {
  for (const path of zip.names) {
    for (const m of markers) {
      const i = path.indexOf(m);
      if (i < 0 || (i > 0 && path[i - 1] !== "/")) continue;
      const root = path.slice(0, i);
      if (root.split("/").length <= 2) return root;
    }
  }
  return undefined;
}
