import { ArchiveError } from "../errors.js";
import { escapeControl, hasControl } from "./escape.js";

/**
 * Names read from a file are printed (inspect, reports) and become keys of graph tables (values, weights,
 * arguments). A name with control characters could rewrite the terminal, so it is refused. A name that an
 * object already answers to (`__proto__`, `constructor`, `toString`, …) would read or replace a built-in property
 * instead of an entry, so such names are refused at the boundary with one clear line.
 */
const RESERVED = new Set<string>(Object.getOwnPropertyNames(Object.prototype));

export function isReservedName(name: string): boolean {
  return RESERVED.has(name);
}

/** The common case, cheaply: not a built-in property name and no control characters. */
export function isSafeName(name: string): boolean {
  return !RESERVED.has(name) && !hasControl(name);
}

export function checkFileName(name: string, file: string, where: string): void {
  if (hasControl(name))
    throw new ArchiveError(
      file,
      `${where}: the name '${escapeControl(name.slice(0, 80))}' contains control characters; refusing it`,
      "archive.bad-name",
    );
  if (isReservedName(name))
    throw new ArchiveError(
      file,
      `${where}: the name '${name}' is reserved (it names a built-in property of JavaScript objects); refusing it`,
      "archive.bad-name",
    );
}
