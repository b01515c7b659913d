import type { TorchScriptArchive } from "./archive.js";
import type { ClassDef, Expr, FunctionDef, SourceFile } from "./ast.js";
import { dottedName } from "./ast.js";
import { TorchScriptError } from "./errors.js";
import { parseSource } from "./parser.js";

/** A class of the archive's code, with what its body declares. */
export interface ClassInfo {
  /** `__torch__.torch.nn.modules.conv.___torch_mangle_124.Conv2d` */
  readonly qualname: string;
  /** The code record that defines it, e.g. `code/__torch__/torch/nn/modules/conv/___torch_mangle_124.py`. */
  readonly file: string;
  readonly def: ClassDef;
  readonly isModule: boolean;
  readonly parameters: ReadonlySet<string>;
  readonly buffers: ReadonlySet<string>;
  /** Declared attribute types (`weight : Tensor`, `__annotations__["0"] = ...`). */
  readonly attributes: ReadonlyMap<string, Expr>;
  /** `name : Final[int] = 3` */
  readonly constants: ReadonlyMap<string, Expr>;
  readonly methods: ReadonlyMap<string, FunctionDef>;
}

export interface FunctionInfo {
  readonly qualname: string;
  readonly file: string;
  readonly def: FunctionDef;
}

/** Finds classes and free functions by qualified name, parsing code/ files on first use. */
export class Program {
  private readonly files = new Map<string, SourceFile | null>();
  private readonly classes = new Map<string, ClassInfo>();

  constructor(readonly archive: TorchScriptArchive) {}

  /** `code/__torch__/torch/nn/functional.py` for qualifier `__torch__.torch.nn.functional`. */
  static fileOf(qualifier: string): string {
    return `code/${qualifier.split(".").join("/")}.py`;
  }

  private source(qualifier: string): SourceFile | null {
    const cached = this.files.get(qualifier);
    if (cached !== undefined) return cached;
    const path = Program.fileOf(qualifier);
    const text = this.archive.text(path);
    const parsed = text === undefined ? null : parseSource(text, this.archive.file, path);
    this.files.set(qualifier, parsed);
    return parsed;
  }

  /** Does some code file live at or below this qualifier (a namespace worth descending into)? */
  isNamespace(qualifier: string): boolean {
    const dir = `code/${qualifier.split(".").join("/")}`;
    return this.archive.has(`${dir}.py`) || this.hasPrefix(`${dir}/`);
  }

  private hasPrefix(prefix: string): boolean {
    return this.archive.hasPrefix(prefix);
  }

  findClass(qualname: string): ClassInfo | undefined {
    const hit = this.classes.get(qualname);
    if (hit) return hit;
    const i = qualname.lastIndexOf(".");
    if (i < 0) return undefined;
    const src = this.source(qualname.slice(0, i));
    const def = src?.classes.get(qualname.slice(i + 1));
    if (!src || !def) return undefined;
    const info = describeClass(qualname, src.path, def, this.archive.file);
    this.classes.set(qualname, info);
    return info;
  }

  classOf(qualname: string): ClassInfo {
    const c = this.findClass(qualname);
    if (!c) {
      throw new TorchScriptError(
        this.archive.file,
        undefined,
        `class '${qualname}' is not defined in ${Program.fileOf(qualname.slice(0, Math.max(0, qualname.lastIndexOf("."))))}`,
        "torchscript.missing-code",
      );
    }
    return c;
  }

  findFunction(qualname: string): FunctionInfo | undefined {
    const i = qualname.lastIndexOf(".");
    if (i < 0) return undefined;
    const src = this.source(qualname.slice(0, i));
    const def = src?.functions.get(qualname.slice(i + 1));
    return src && def ? { qualname, file: src.path, def } : undefined;
  }
}

function stringList(e: Expr | undefined): string[] {
  if (!e || (e.kind !== "list" && e.kind !== "tuple")) return [];
  return e.items
    .filter((x) => x.kind === "const" && typeof x.value === "string")
    .map((x) => (x as { value: string }).value);
}

function describeClass(qualname: string, file: string, def: ClassDef, archive: string): ClassInfo {
  const base = def.base && dottedName(def.base)?.join(".");
  const parameters = new Set<string>();
  const buffers = new Set<string>();
  const attributes = new Map<string, Expr>();
  const constants = new Map<string, Expr>();
  const methods = new Map<string, FunctionDef>();
  for (const s of def.body) {
    if (s.kind === "def") methods.set(s.def.name, s.def);
    else if (s.kind === "assign" && s.targets.length === 1) {
      const t = s.targets[0];
      if (t.kind === "name" && t.id === "__parameters__")
        for (const n of stringList(s.value)) parameters.add(n);
      else if (t.kind === "name" && t.id === "__buffers__")
        for (const n of stringList(s.value)) buffers.add(n);
      else if (t.kind === "subscript" && t.value.kind === "name" && t.value.id === "__annotations__") {
        const k = t.index[0];
        if (k?.kind === "const" && typeof k.value === "string") attributes.set(k.value, s.value);
      }
      // `__annotations__ = []`, `__forward_hooks__ = [...]`: nothing to record
    } else if (s.kind === "annassign" && s.target.kind === "name") {
      if (s.value) constants.set(s.target.id, s.value);
      else attributes.set(s.target.id, s.annotation);
    } else if (s.kind === "pass" || s.kind === "expr") {
      // docstrings and `pass`
    } else {
      throw new TorchScriptError(
        archive,
        { file, ...("pos" in s ? s.pos : s.def.pos) },
        `unexpected statement in the body of class ${def.name}`,
        "torchscript.syntax",
      );
    }
  }
  return {
    qualname,
    file,
    def,
    isModule: base === "Module",
    parameters,
    buffers,
    attributes,
    constants,
    methods,
  };
}
