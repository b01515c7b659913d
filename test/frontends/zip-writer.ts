// A zip writer for tests that need archives no honest writer makes: wrong CRCs, the encryption flag,
// duplicate names, entries sharing one stream, lying sizes, zip64 fields without a zip64 end record.
import { deflateRawSync } from "node:zlib";
import { crc32 } from "../../src/frontends/crc32.js";

export interface RawEntry {
  readonly name: string;
  readonly data: Uint8Array;
  readonly deflate?: boolean;
  /** Overrides: the CRC, the flags, the uncompressed size the directory declares. */
  readonly crc?: number;
  readonly flags?: number;
  readonly declaredSize?: number;
  /** Write sizes and offset as 0xFFFFFFFF with a zip64 extra field (and no zip64 end record). */
  readonly zip64Extra?: boolean;
  /** Reuse the data (local header and stream) of an earlier entry by index: an overlapping entry. */
  readonly sameAs?: number;
}

export function writeZip(entries: readonly RawEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const central: Uint8Array[] = [];
  const placed: { offset: number; csize: number; size: number; crc: number; method: number }[] = [];
  for (const e of entries) {
    const name = enc.encode(e.name);
    let at: { offset: number; csize: number; size: number; crc: number; method: number };
    if (e.sameAs !== undefined) at = placed[e.sameAs];
    else {
      const body = e.deflate ? new Uint8Array(deflateRawSync(e.data)) : e.data;
      at = {
        offset,
        csize: body.length,
        size: e.data.length,
        crc: e.crc ?? crc32(e.data),
        method: e.deflate ? 8 : 0,
      };
      const local = new Uint8Array(30 + name.length);
      const v = new DataView(local.buffer);
      v.setUint32(0, 0x04034b50, true);
      v.setUint16(4, 20, true);
      v.setUint16(6, e.flags ?? 0, true);
      v.setUint16(8, at.method, true);
      v.setUint32(14, at.crc, true);
      v.setUint32(18, at.csize, true);
      v.setUint32(22, at.size, true);
      v.setUint16(26, name.length, true);
      local.set(name, 30);
      chunks.push(local, body);
      offset += local.length + body.length;
    }
    placed.push(at);
    const extra = e.zip64Extra ? new Uint8Array(4 + 24) : new Uint8Array(0);
    if (e.zip64Extra) {
      const x = new DataView(extra.buffer);
      x.setUint16(0, 1, true);
      x.setUint16(2, 24, true);
      x.setBigUint64(4, BigInt(e.declaredSize ?? at.size), true);
      x.setBigUint64(12, BigInt(at.csize), true);
      x.setBigUint64(20, BigInt(at.offset), true);
    }
    const cd = new Uint8Array(46 + name.length + extra.length);
    const v = new DataView(cd.buffer);
    v.setUint32(0, 0x02014b50, true);
    v.setUint16(4, 20, true);
    v.setUint16(6, 20, true);
    v.setUint16(8, e.flags ?? 0, true);
    v.setUint16(10, at.method, true);
    v.setUint32(16, e.crc ?? at.crc, true);
    v.setUint32(20, e.zip64Extra ? 0xffffffff : at.csize, true);
    v.setUint32(24, e.zip64Extra ? 0xffffffff : (e.declaredSize ?? at.size), true);
    v.setUint16(28, name.length, true);
    v.setUint16(30, extra.length, true);
    v.setUint32(42, e.zip64Extra ? 0xffffffff : at.offset, true);
    cd.set(name, 46);
    cd.set(extra, 46 + name.length);
    central.push(cd);
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const v = new DataView(end.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, entries.length, true);
  v.setUint16(10, entries.length, true);
  v.setUint32(12, cdSize, true);
  v.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const c of [...chunks, ...central, end]) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/** The entries of a valid archive (fflate), to rebuild them with `writeZip`. */
export { unzipSync as readEntries } from "fflate";
