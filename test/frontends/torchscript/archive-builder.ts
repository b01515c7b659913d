// Builds small TorchScript archives in memory (a protocol-2 pickler + fflate's zip writer), so tests can feed the
// frontend code and data in exactly the layout torch.jit.save writes, without PyTorch.
import { zipSync } from "fflate";
import { type LoadedModel, loadTorchScriptFromZip } from "../../../src/frontends/torchscript/index.js";
import { parseZip } from "../../../src/frontends/zip.js";
import type { DType } from "../../../src/ir/dtype.js";
import type { TensorType } from "../../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers } from "../../../src/ir/tensor.js";

export type PyLike =
  | null
  | boolean
  | number
  | string
  | PyLike[]
  | { readonly float: number }
  | { readonly tuple: readonly PyLike[] }
  | { readonly dict: readonly (readonly [PyLike, PyLike])[] }
  | { readonly obj: string; readonly state: Readonly<Record<string, PyLike>> }
  | { readonly tensor: Tensor }
  | { readonly global: readonly [string, string]; readonly args?: readonly PyLike[] };

const STORAGE: Partial<Record<DType, string>> = {
  float32: "FloatStorage",
  float64: "DoubleStorage",
  float16: "HalfStorage",
  int64: "LongStorage",
  int32: "IntStorage",
  uint8: "ByteStorage",
  bool: "BoolStorage",
};

/** Pickles `v` (protocol 2, as torch.jit.save does); tensor data goes to `storages` under keys "0", "1", … */
export function pickle(v: PyLike, storages: Uint8Array[]): Uint8Array {
  const out: number[] = [0x80, 2];
  const enc = new TextEncoder();
  const byte = (...b: number[]) => out.push(...b);
  const u32 = (n: number) => byte(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
  const str = (s: string) => {
    const b = enc.encode(s);
    byte(0x58);
    u32(b.length);
    out.push(...b);
  };
  const global = (m: string, n: string) => {
    byte(0x63);
    out.push(...enc.encode(`${m}\n${n}\n`));
  };
  const walk = (x: PyLike): void => {
    if (x === null || x === true || x === false) {
      byte(x === null ? 0x4e : x ? 0x88 : 0x89);
      return;
    }
    if (typeof x === "number") {
      if (Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31) {
        byte(0x4a);
        u32(x >>> 0);
      } else {
        byte(0x8a, 8);
        const v = new DataView(new ArrayBuffer(8));
        v.setBigInt64(0, BigInt(x), true);
        out.push(...new Uint8Array(v.buffer));
      }
      return;
    }
    if (typeof x === "string") {
      str(x);
      return;
    }
    if (Array.isArray(x)) {
      byte(0x5d, 0x28);
      for (const item of x) walk(item);
      byte(0x65);
      return;
    }
    if ("float" in x) {
      const v = new DataView(new ArrayBuffer(8));
      v.setFloat64(0, x.float, false);
      byte(0x47);
      out.push(...new Uint8Array(v.buffer));
      return;
    }
    if ("tuple" in x) {
      byte(0x28);
      for (const item of x.tuple) walk(item);
      byte(0x74);
      return;
    }
    if ("dict" in x) {
      byte(0x7d, 0x28);
      for (const [k, val] of x.dict) {
        walk(k);
        walk(val);
      }
      byte(0x75);
      return;
    }
    if ("obj" in x) {
      const i = x.obj.lastIndexOf(".");
      global(x.obj.slice(0, i), x.obj.slice(i + 1));
      byte(0x29, 0x81, 0x7d, 0x28);
      for (const [k, val] of Object.entries(x.state)) {
        str(k);
        walk(val);
      }
      byte(0x75, 0x62);
      return;
    }
    if ("tensor" in x) {
      const t = x.tensor;
      const key = String(storages.length);
      storages.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice());
      global("torch._utils", "_rebuild_tensor_v2");
      byte(0x28, 0x28);
      str("storage");
      global("torch", STORAGE[t.dtype] as string);
      str(key);
      str("cpu");
      walk(t.data.length);
      byte(0x74, 0x51);
      walk(0);
      walk({ tuple: [...t.shape] });
      const strides: number[] = [];
      let s = 1;
      for (let d = t.shape.length - 1; d >= 0; d--) {
        strides.unshift(s);
        s *= t.shape[d];
      }
      walk({ tuple: strides });
      byte(0x89);
      global("collections", "OrderedDict");
      byte(0x29, 0x52, 0x74, 0x52);
      return;
    }
    global(x.global[0], x.global[1]);
    walk({ tuple: x.args ?? [] });
    byte(0x52);
  };
  walk(v);
  byte(0x2e);
  return Uint8Array.from(out);
}

export interface ArchiveSpec {
  readonly name?: string;
  /** Code files by path under code/, e.g. `__torch__.py`. */
  readonly code: Readonly<Record<string, string>>;
  readonly data: PyLike;
  readonly constants?: readonly PyLike[];
  /** Raw records by path under the root (override or add). */
  readonly records?: Readonly<Record<string, Uint8Array>>;
}

export function makeArchive(spec: ArchiveSpec): Uint8Array {
  const root = spec.name ?? "archive";
  const files: Record<string, Uint8Array> = {};
  const enc = new TextEncoder();
  const dataStorages: Uint8Array[] = [];
  files[`${root}/data.pkl`] = pickle(spec.data, dataStorages);
  dataStorages.forEach((b, i) => {
    files[`${root}/data/${i}`] = b;
  });
  const constStorages: Uint8Array[] = [];
  files[`${root}/constants.pkl`] = pickle({ tuple: [...(spec.constants ?? [])] }, constStorages);
  constStorages.forEach((b, i) => {
    files[`${root}/constants/${i}`] = b;
  });
  for (const [path, src] of Object.entries(spec.code)) files[`${root}/code/${path}`] = enc.encode(src);
  files[`${root}/version`] = enc.encode("3\n");
  files[`${root}/byteorder`] = enc.encode("little");
  for (const [path, b] of Object.entries(spec.records ?? {})) files[`${root}/${path}`] = b;
  return zipSync(files, { level: 0 });
}

export function loadArchive(
  spec: ArchiveSpec,
  inputTypes?: readonly TensorType[],
  file = "test.pt",
): LoadedModel {
  return loadTorchScriptFromZip(parseZip(makeArchive(spec), file), { inputTypes });
}

export function f32(shape: readonly number[], values: readonly number[]): Tensor {
  return tensorFromNumbers("float32", shape, values);
}

/** Python-printer style class header for a module with the given parameters. */
export function moduleHeader(
  name: string,
  params: readonly string[] = [],
  buffers: readonly string[] = [],
  attrs: readonly string[] = [],
): string {
  return [
    `class ${name}(Module):`,
    `  __parameters__ = [${params.map((p) => `"${p}", `).join("")}]`,
    `  __buffers__ = [${buffers.map((p) => `"${p}", `).join("")}]`,
    ...[...params, ...buffers].map((p) => `  ${p} : Tensor`),
    "  training : bool",
    "  _is_full_backward_hook : Optional[bool]",
    ...attrs.map((a) => `  ${a}`),
  ].join("\n");
}
