// Queries over a page parsed by parse5 (the HTML standard's parser, without a browser or jsdom).
import { parse } from "parse5";

export interface El {
  readonly tag: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly El[];
  /** The concatenated text inside, as a browser's textContent. */
  readonly text: string;
}

type P5Node = {
  nodeName: string;
  tagName?: string;
  value?: string;
  attrs?: { name: string; value: string }[];
  childNodes?: P5Node[];
  content?: P5Node;
};

function convert(n: P5Node): El | undefined {
  if (!n.tagName) return undefined;
  const kids = (n.childNodes ?? []).map(convert).filter((c): c is El => c !== undefined);
  const text = (m: P5Node): string =>
    m.nodeName === "#text" ? (m.value ?? "") : (m.childNodes ?? []).map(text).join("");
  return {
    tag: n.tagName,
    attrs: Object.fromEntries((n.attrs ?? []).map((a) => [a.name, a.value])),
    children: kids,
    text: text(n),
  };
}

export function parseHtml(html: string): El {
  const doc = parse(html) as unknown as P5Node;
  const root = (doc.childNodes ?? []).map(convert).find((e) => e !== undefined);
  if (!root) throw new Error("no document element");
  return root;
}

/** Every element under `root` (itself included) that matches. */
export function all(root: El, match: (e: El) => boolean): El[] {
  const out: El[] = [];
  const walk = (e: El) => {
    if (match(e)) out.push(e);
    for (const c of e.children) walk(c);
  };
  walk(root);
  return out;
}

export const hasClass = (e: El, c: string) => (e.attrs.class ?? "").split(/\s+/).includes(c);
