import { ArchiveError } from "../errors.js";
import type { Graph, TensorType } from "../ir/graph.js";
import type { SymbolicGraph } from "../ir/symbolic.js";
import { loadPt2FromZip } from "./pt2/load.js";
import { archiveRoot, readZip } from "./zip.js";

/** A model read from disk, whatever format it came in. */
export interface LoadedModel {
  readonly path: string;
  readonly format: "pt2" | "torchscript";
  readonly graph: Graph;
  /** A .pt2 exported with dynamic shapes: its symbols, their ranges, and the program at any size (ir/symbolic.ts). */
  readonly dynamic?: SymbolicGraph;
}

export interface LoadOptions {
  /**
   * Types of the inputs, needed for TorchScript archives (which do not record them). compile()'s input specs
   * are accepted too: a range stands for its opt shape, a missing dtype for float32.
   */
  readonly inputTypes?: readonly {
    readonly dtype?: TensorType["dtype"];
    readonly shape?: TensorType["shape"];
    readonly optShape?: TensorType["shape"];
  }[];
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
    const inputTypes = options.inputTypes?.map((t, i): TensorType => {
      const shape = t.shape ?? t.optShape;
      if (!shape)
        throw new ArchiveError(
          path,
          `input ${i} has no shape (give shape or optShape)`,
          "archive.input-types",
        );
      return { dtype: t.dtype ?? "float32", shape };
    });
    return loadTorchScriptFromZip(zip, { inputTypes });
  }
  throw new ArchiveError(
    path,
    "is a zip archive but neither a torch.export archive (models/*.json) nor a TorchScript archive (data.pkl + code/)",
    "archive.unknown-format",
  );
}
