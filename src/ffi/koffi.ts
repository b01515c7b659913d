/**
 * The koffi module, required on first use rather than imported: importing `src/ffi` must work on a machine
 * where koffi's native part cannot load (another platform, a pruned install), and costs nothing until a
 * library is actually needed.
 */
import { createRequire } from "node:module";
import type * as KoffiModule from "koffi";

export type Koffi = typeof KoffiModule.default;
export type KoffiLibrary = KoffiModule.LibraryHandle;
export type KoffiFunction = ReturnType<KoffiLibrary["func"]>;

let cached: Koffi | undefined;

export function koffi(): Koffi {
  if (cached === undefined) {
    const require = createRequire(import.meta.url);
    cached = require("koffi") as Koffi;
  }
  return cached;
}
