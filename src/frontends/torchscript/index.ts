import type { Graph, TensorType } from "../../ir/graph.js";
import { readZip, type ZipArchive } from "../zip.js";
import { TorchScriptArchive } from "./archive.js";
import { translate } from "./translate.js";

export { TorchScriptArchive } from "./archive.js";
export { TorchScriptError } from "./errors.js";
export { tokenize } from "./lexer.js";
export { parseSource } from "./parser.js";
export { tracedInputTypes, translate } from "./translate.js";

/** A TorchScript model read into a torchc graph (the shape the .pt2 frontend returns, format "torchscript"). */
export interface LoadedModel {
  readonly path: string;
  readonly format: "torchscript";
  readonly graph: Graph;
}

export interface TorchScriptOptions {
  /**
   * Types of forward's inputs. Traced archives record them (traced_inputs.pkl) and this may be left out;
   * scripted archives need it.
   */
  readonly inputTypes?: readonly TensorType[];
}

/** Reads an archive written by `torch.jit.save` (traced or scripted) into a graph of aten ops. */
export async function loadTorchScript(path: string, opts: TorchScriptOptions = {}): Promise<LoadedModel> {
  return loadTorchScriptFromZip(readZip(path), opts);
}

export function loadTorchScriptFromZip(zip: ZipArchive, opts: TorchScriptOptions = {}): LoadedModel {
  const archive = new TorchScriptArchive(zip);
  return { path: zip.file, format: "torchscript", graph: translate(archive, opts.inputTypes) };
}
