import { ArchiveError } from "../errors.js";
import type { Graph, TensorType } from "../ir/graph.js";
import { loadPt2FromZip } from "./pt2/load.js";
import { archiveRoot, readZip } from "./zip.js";

/** A model read from disk, whatever format it came in. */
export interface LoadedModel {
  readonly path: string;
  readonly format: "pt2" | "torchscript";
  readonly graph: Graph;
}

export interface LoadOptions {
  /** Types of the inputs, needed for TorchScript archives (which do not record them). */
  readonly inputTypes?: readonly TensorType[];
}

/**
 * Opens a `.pt2` (torch.export.save) or `.pt` (torch.jit.save) archive. The format is recognised by the
 * archive's content, not its extension.
 */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const zip = readZip(path);
  if (archiveRoot(zip, ["archive_format", "models/"]) !== undefined) return loadPt2FromZip(zip);
  if (archiveRoot(zip, ["data.pkl"]) !== undefined) {
    const { loadTorchScriptFromZip } = await import("./torchscript/index.js");
    return loadTorchScriptFromZip(zip, options);
  }
  throw new ArchiveError(
    path,
    "is a zip archive but neither a torch.export archive (models/*.json) nor a TorchScript archive (data.pkl + code/)",
    "archive.unknown-format",
  );
}
