import { ArchiveError } from "../../errors.js";
import { torchUnpickleOptions, unpickle } from "../pickle/index.js";
import type { PyValue } from "../pickle/values.js";
import { archiveRoot, type ZipArchive } from "../zip.js";

/**
 * The records of a `torch.jit.save` archive: `<root>/data.pkl` (the module objects), `constants.pkl` (tensor
 * constants of the code, `CONSTANTS.cN`), `data/<key>` and `constants/<key>` (storages), `code/**.py` (the
 * serialized TorchScript), `version`, `byteorder`, and for traced models `traced_inputs.pkl` (input shapes).
 */
export class TorchScriptArchive {
  readonly file: string;
  readonly root: string;
  readonly bigEndian: boolean;
  private readonly decoder = new TextDecoder();

  constructor(private readonly zip: ZipArchive) {
    this.file = zip.file;
    const root = archiveRoot(zip, ["data.pkl"]);
    if (root === undefined) {
      const unified = zip.names.some((p) => p.includes(".data/ts_code/"));
      throw new ArchiveError(
        this.file,
        unified
          ? "is a torch.package archive with TorchScript inside; torchc reads archives written by torch.jit.save"
          : "is a zip archive but not a TorchScript archive (no data.pkl inside)",
        "archive.not-torchscript",
      );
    }
    this.root = root;
    if (!zip.names.some((p) => p.startsWith(`${root}code/`))) {
      throw new ArchiveError(
        this.file,
        `has ${root}data.pkl but no code/ folder; it is not a TorchScript module (a torch.save checkpoint?)`,
        "archive.not-torchscript",
      );
    }
    const order = this.text("byteorder")?.trim();
    if (order !== undefined && order !== "little" && order !== "big") {
      throw new ArchiveError(this.file, `has an unknown byteorder record '${order}'`, "archive.invalid");
    }
    this.bigEndian = order === "big";
  }

  /** A record by its path under the root (`code/__torch__.py`), or undefined. */
  record(path: string): Uint8Array | undefined {
    return this.zip.read(this.root + path);
  }

  text(path: string): string | undefined {
    const b = this.record(path);
    return b && this.decoder.decode(b);
  }

  has(path: string): boolean {
    return this.zip.has(this.root + path);
  }

  /** Is there any record whose path starts with `prefix` (under the root)? */
  hasPrefix(prefix: string): boolean {
    const full = this.root + prefix;
    for (const k of this.zip.names) if (k.startsWith(full)) return true;
    return false;
  }

  /** Unpickles `<name>.pkl` with storages from `<name>/<key>`; undefined when the record is absent. */
  pickle(name: "data" | "constants" | "traced_inputs"): PyValue | undefined {
    const bytes = this.record(`${name}.pkl`);
    if (!bytes) return undefined;
    const source = {
      file: this.file,
      bigEndian: this.bigEndian,
      recordPath: (key: string) => `${this.root}${name}/${key}`,
      read: (key: string) => this.record(`${name}/${key}`),
      budget: this.zip.budget,
    };
    return unpickle(bytes, torchUnpickleOptions(`${this.file}:${this.root}${name}.pkl`, source));
  }
}
