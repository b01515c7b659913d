import { TorchcError } from "../../errors.js";

/** A place in a file of the archive's code/ folder. */
export interface SourceLoc {
  /** The record path inside the archive, e.g. `code/__torch__/torch/nn/modules/conv.py`. */
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export function formatLoc(loc: SourceLoc): string {
  return `${loc.file}:${loc.line}:${loc.col}`;
}

/** Code in the archive that torchc cannot read (syntax) or does not support (constructs, operators). */
export class TorchScriptError extends TorchcError {
  constructor(
    readonly archive: string,
    readonly loc: SourceLoc | undefined,
    detail: string,
    code = "torchscript.unsupported",
  ) {
    super(`${archive}: ${loc ? `${formatLoc(loc)}: ` : ""}${detail}`, code);
    this.name = "TorchScriptError";
  }
}
