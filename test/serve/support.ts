/** Shared by the serve tests: the MLP fixture's input and PyTorch output, and a spawned `torchc serve`'s URL. */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { Tensor } from "../../src/ir/tensor.js";
import { readNpy } from "../../src/util/npy.js";
import { MODELS, ROOT } from "../helpers.js";

export const X = readNpy(join(MODELS, "mlp.input.npy")); // [4, 20]
export const Y = readNpy(join(MODELS, "mlp.output.npy")); // [4, 10], PyTorch

/** Row r of a [rows, features] float32 tensor, as [1, features]. */
export const row = (t: Tensor, r: number): Tensor => {
  const per = t.shape[1];
  return { dtype: t.dtype, shape: [1, per], data: (t.data as Float32Array).slice(r * per, (r + 1) * per) };
};

/**
 * The URL a spawned `torchc serve` prints on stderr ("torchc serve: http://..."); rejects if it exits first.
 * stderr() is everything it has written there so far.
 */
export async function servedUrl(
  child: ChildProcessByStdio<null, Readable, Readable>,
): Promise<{ url: string; stderr(): string }> {
  let err = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (d) => {
      err += String(d);
      const m = /torchc serve: (http:\/\/[^/\s]+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  return { url, stderr: () => err };
}

/**
 * `torchc serve MODEL --backend reference --port 0 …flags` from the sources (tsx), stdout and stderr piped;
 * `detached` gives it a process group of its own (to signal it as a terminal's Ctrl-C would).
 */
export function spawnServe(
  model: string,
  flags: readonly string[],
  opts: { readonly detached?: boolean } = {},
): ChildProcessByStdio<null, Readable, Readable> {
  const args = [
    "--import",
    "tsx",
    "src/cli/main.ts",
    "serve",
    model,
    "--backend",
    "reference",
    "--port",
    "0",
  ];
  return spawn(process.execPath, [...args, ...flags], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.detached ?? false,
  });
}

/** Resolves once a spawned server's JSON-line logs (stdout) contain `needle` (it logs each request it receives). */
export function logged(child: ChildProcessByStdio<null, Readable, Readable>, needle: string): Promise<void> {
  return new Promise((resolve) => {
    let logs = "";
    child.stdout.on("data", (d) => {
      logs += String(d);
      if (logs.includes(needle)) resolve();
    });
  });
}
