import { escapeControl } from "../frontends/escape.js";

/** One safe terminal line (see escapeControl); very long text is shortened. */
export function oneLine(text: string, max = 4000): string {
  const escaped = escapeControl(text);
  return escaped.length > max
    ? `${escaped.slice(0, max)}… (${escaped.length - max} more characters)`
    : escaped;
}
