import * as zlib from "node:zlib";
import { Inflate } from "fflate";
import { ArchiveError } from "../errors.js";
import { crc32 } from "./crc32.js";
import { formatBytes, limits, MemoryBudget } from "./limits.js";
import { isReadFailure, readFileBounded } from "./read-file.js";

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
    private readonly bytes: Uint8Array,
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
      out = this.bytes.subarray(e.dataOffset, e.dataOffset + want);
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
    return this.bytes.subarray(e.dataOffset, e.dataOffset + e.compressedSize);
  }

  private inflateWhole(e: ZipEntry): Uint8Array {
    let out: Uint8Array;
    try {
      out = zlib.inflateRawSync(this.compressed(e), { maxOutputLength: Math.max(1, e.size + 1) });
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
    const src = this.compressed(e);
    try {
      for (let i = 0; i < src.length && got < want; i += 16384)
        inflater.push(src.subarray(i, i + 16384), i + 16384 >= src.length);
    } catch (err) {
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

/** Reads a zip archive, no more of it than the memory budget allows (so `/dev/zero` is refused). */
export function readZip(file: string, budget?: MemoryBudget): ZipArchive {
  const fail = (detail: string, code = "archive.too-large"): never => {
    throw new ArchiveError(file, detail, code);
  };
  const b = budget ?? new MemoryBudget(fail);
  const bytes = readFileBounded(file, b.limit);
  if (isReadFailure(bytes)) {
    if (bytes.kind === "missing")
      return fail(
        bytes.detail === "is a directory, not a file" ? "is a directory, not a model archive" : bytes.detail,
        "archive.missing",
      );
    return fail(bytes.detail);
  }
  b.charge(bytes.length, "the archive");
  return parseZip(bytes, file, b);
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export function parseZip(bytes: Uint8Array, file: string, budget?: MemoryBudget): ZipArchive {
  const fail = (detail: string, code = "archive.corrupt"): never => {
    throw new ArchiveError(file, detail, code);
  };
  const isZip =
    bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
  if (!isZip)
    fail(
      "is not a zip archive (expected a .pt2 from torch.export.save or a .pt from torch.jit.save)",
      "archive.not-zip",
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => view.getUint16(at, true);
  const u32 = (at: number) => view.getUint32(at, true);
  const u64 = (at: number, what: string): number => {
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is not plausible`);
    return Number(v);
  };
  const end = findEndOfCentralDirectory(bytes, view);
  if (end < 0)
    fail(
      "is truncated: the zip directory at its end is missing (was the download or copy cut short?)",
      "archive.truncated",
    );
  let count = u16(end + 10);
  let cdSize = u32(end + 12);
  let cdOffset = u32(end + 16);
  if (u16(end + 4) !== 0 || u16(end + 6) !== 0 || u16(end + 8) !== count)
    fail("is a multi-volume (split) zip archive, which torchc does not read", "archive.unsupported");
  const loc = end - 20;
  if (loc >= 0 && u32(loc) === ZIP64_LOCATOR) {
    const at = u64(loc + 8, "the zip64 end record offset");
    if (at + 56 > loc || u32(at) !== ZIP64_EOCD) fail("has a damaged zip64 end record", "archive.truncated");
    count = u64(at + 32, "the zip64 entry count");
    cdSize = u64(at + 40, "the zip64 directory size");
    cdOffset = u64(at + 48, "the zip64 directory offset");
  }
  const cdEnd = cdOffset + cdSize;
  if (cdEnd > end || cdSize < 46 * count)
    fail("is truncated or damaged: its zip directory lies outside the file", "archive.truncated");
  const entries = new Map<string, ZipEntry>();
  const decoder = new TextDecoder();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || u32(p) !== CENTRAL) fail(`zip directory record ${i} is damaged`);
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
    if (next > cdEnd) fail(`zip directory record ${i} is damaged`);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
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
    if (localOffset + 30 > cdOffset || u32(localOffset) !== LOCAL)
      fail(`zip entry ${name} points outside the archive's data`, "archive.truncated");
    const dataOffset = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
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
  return new ZipArchive(file, bytes, entries, budget ?? new MemoryBudget(fail, limits().maxMemory));
}

/** The end record that ends the file exactly (its comment reaches the last byte), searching backwards. */
function findEndOfCentralDirectory(bytes: Uint8Array, view: DataView): number {
  const min = Math.max(0, bytes.length - 22 - 65535);
  for (let i = bytes.length - 22; i >= min; i--) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && bytes[i + 2] === 5 && bytes[i + 3] === 6) {
      if (view.getUint32(i, true) === EOCD && i + 22 + view.getUint16(i + 20, true) === bytes.length)
        return i;
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
