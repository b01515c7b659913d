import { dataGlobals, PyTuple, type PyValue, torchGlobals, unpickle } from "../pickle/index.js";
import type { TorchScriptArchive } from "./archive.js";

interface Record_ {
  readonly offset: number;
  readonly source: PyValue;
  readonly start: number;
  readonly end: number;
}

/** Where a piece of serialized code came from in the user's program. */
export interface OriginalSource {
  /** `export.py:171 in forward` or `model.py:40: if x.sum() > 0:` */
  readonly location: string;
  /** The Python stack the tracer recorded (traced modules only). */
  readonly stackTrace?: string;
}

const LIBRARY = /[/\\](torch|torchvision|timm|transformers)[/\\]/;

/**
 * Reads `code/…/x.py.debug_pkl` (the source ranges `torch.jit.save` stores next to each code file) to map a
 * position in serialized code back to the user's Python source. Missing or unreadable debug records just
 * yield nothing: they only improve messages.
 */
export class DebugInfo {
  private readonly files = new Map<
    string,
    { lineStarts: number[]; records: Record_[]; table: readonly PyValue[] } | null
  >();

  constructor(private readonly archive: TorchScriptArchive) {}

  private load(file: string) {
    if (this.files.has(file)) return this.files.get(file) ?? null;
    let entry: { lineStarts: number[]; records: Record_[]; table: readonly PyValue[] } | null = null;
    try {
      const bytes = this.archive.record(`${file}.debug_pkl`);
      const code = this.archive.text(file);
      if (bytes && code !== undefined) {
        const globals = new Map([...torchGlobals(), ...dataGlobals()]);
        const v = unpickle(bytes, { file: `${this.archive.file}:${file}.debug_pkl`, globals });
        if (
          v instanceof PyTuple &&
          v.items[0] === "FORMAT_WITH_STRING_TABLE" &&
          v.items[1] instanceof PyTuple &&
          v.items[2] instanceof PyTuple
        ) {
          const lineStarts = [0];
          for (let i = 0; i < code.length; i++) if (code[i] === "\n") lineStarts.push(i + 1);
          const records: Record_[] = [];
          for (const r of v.items[2].items) {
            if (!(r instanceof PyTuple) || !(r.items[1] instanceof PyTuple)) continue;
            const [source, start, end] = r.items[1].items;
            records.push({ offset: Number(r.items[0]), source, start: Number(start), end: Number(end) });
          }
          records.sort((a, b) => a.offset - b.offset);
          entry = { lineStarts, records, table: v.items[1].items };
        }
      }
    } catch {
      entry = null;
    }
    this.files.set(file, entry);
    return entry;
  }

  /** The user's source for a position (1-based line and column) in a code file, if recorded. */
  lookup(file: string, line: number, col: number): OriginalSource | undefined {
    const f = this.load(file);
    if (!f) return undefined;
    const offset = (f.lineStarts[line - 1] ?? 0) + col - 1;
    let lo = 0;
    let hi = f.records.length - 1;
    let hit = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (f.records[mid].offset <= offset) {
        hit = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (hit < 0) return undefined;
    const r = f.records[hit];
    if (!(r.source instanceof PyTuple)) return undefined;
    const [pieces, fnameIdx, startLine] = r.source.items;
    const str = (i: PyValue) =>
      typeof i === "number" && typeof f.table[i] === "string" ? (f.table[i] as string) : "";
    const fname = str(fnameIdx);
    if (!fname || !Array.isArray(pieces)) return undefined;
    const text = pieces.map(str).join("");
    const short = fname.split(/[/\\]/).slice(-2).join("/");
    const frames = [...text.matchAll(/^(.*)\((\d+)\): (.*)$/gm)];
    if (frames.length > 0 && r.start === 0) {
      // traced: the text is the Python stack, innermost first
      const user = frames.find((m) => !LIBRARY.test(m[1])) ?? frames[0];
      return {
        location: `${user[1].split(/[/\\]/).slice(-2).join("/")}:${user[2]} in ${user[3]}`,
        stackTrace: text,
      };
    }
    const before = text.slice(0, r.start);
    const lineNo = Number(startLine) + (before.match(/\n/g)?.length ?? 0);
    const snippet = text.slice(r.start, r.end).split("\n")[0].trim();
    return { location: `${short}:${lineNo}${snippet ? `: ${snippet}` : ""}` };
  }
}
