import { ArchiveError } from "../../errors.js";
import { DTYPE_BYTES, type DType } from "../../ir/dtype.js";
import { allocData, numel, type Tensor } from "../../ir/tensor.js";
import { MemoryBudget } from "../limits.js";
import { dataGlobals } from "./builtins.js";
import {
  asInt,
  asIntTuple,
  isExtension,
  type PyExtension,
  PyGlobal,
  PyTuple,
  type PyValue,
  pyTypeName,
} from "./values.js";
import type { GlobalHandler, UnpickleOptions } from "./vm.js";

/** A dtype named by a storage class (`torch.FloatStorage`) or a dtype object (`torch.float32`). */
export class DTypeMarker implements PyExtension {
  readonly pyKind = "dtype";
  constructor(
    readonly torchName: string,
    /** Undefined for element types torchc does not support (complex, quantized). */
    readonly dtype: DType | undefined,
  ) {}
}

export class PyDevice implements PyExtension {
  readonly pyKind = "device";
  constructor(readonly device: string) {}
}

/** Where storages live: `read(key)` returns the record's bytes, or undefined when the archive lacks it. */
export interface StorageSource {
  /** Names the archive in messages. */
  readonly file: string;
  /** The record path a key maps to, for messages (`model/data/0`). */
  recordPath(key: string): string;
  read(key: string): Uint8Array | undefined;
  /** True when the archive was written big-endian (its `byteorder` record says "big"). */
  readonly bigEndian?: boolean;
  /** Charged before a tensor is materialised (a stride-0 view can be far larger than its storage). */
  readonly budget?: MemoryBudget;
}

/** A storage named by a persistent id: ('storage', torch.FloatStorage, key, location, numel). */
export class PickledStorage implements PyExtension {
  readonly pyKind = "storage";
  private cached: Uint8Array | undefined;
  constructor(
    readonly dtypeName: string,
    readonly dtype: DType | undefined,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
    readonly source: StorageSource,
  ) {}

  /** The raw little-endian bytes (numel × element size), read on first use. */
  bytes(): Uint8Array {
    if (this.cached) return this.cached;
    const dtype = this.requireDtype();
    const need = this.numel * DTYPE_BYTES[dtype];
    if (need === 0) {
      this.cached = new Uint8Array(0);
      return this.cached;
    }
    const raw = this.source.read(this.key);
    const path = this.source.recordPath(this.key);
    if (raw === undefined)
      throw new ArchiveError(
        this.source.file,
        `storage record '${path}' is missing`,
        "archive.missing-record",
      );
    if (raw.length === 0)
      throw new ArchiveError(
        this.source.file,
        `storage record '${path}' holds no data (the archive was saved without tensor data)`,
        "archive.no-data",
      );
    if (raw.length < need) {
      throw new ArchiveError(
        this.source.file,
        `storage record '${path}' has ${raw.length} bytes, ${need} expected for ${this.numel} × ${dtype}`,
        "archive.truncated",
      );
    }
    let b = raw.subarray(0, need);
    if (this.source.bigEndian && DTYPE_BYTES[dtype] > 1) b = swapBytes(b, DTYPE_BYTES[dtype]);
    this.cached = b;
    return b;
  }

  requireDtype(): DType {
    if (!this.dtype) {
      throw new ArchiveError(
        this.source.file,
        `storage '${this.key}' holds ${this.dtypeName} elements, which torchc does not support`,
        "archive.unsupported-dtype",
      );
    }
    return this.dtype;
  }
}

/** A tensor as `torch._utils._rebuild_tensor_v2` describes it: a view (offset, sizes, strides) of a storage. */
export class PickledTensor implements PyExtension {
  readonly pyKind = "tensor";
  private cached: Tensor | undefined;
  constructor(
    readonly storage: PickledStorage,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
  ) {}

  get dtype(): DType {
    return this.storage.requireDtype();
  }

  /** A dense row-major copy of the view, checked against its storage and the memory budget first. */
  toTensor(): Tensor {
    if (this.cached) return this.cached;
    const dtype = this.dtype;
    const es = DTYPE_BYTES[dtype];
    const file = this.storage.source.file;
    const view = `a tensor view [${this.shape}] with strides [${this.stride}] at offset ${this.offset}`;
    if (this.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw new ArchiveError(file, `${view} has a negative or impossible size`, "archive.invalid");
    const n = numel(this.shape);
    if (!Number.isSafeInteger(n * es))
      throw new ArchiveError(file, `${view} is impossibly large`, "archive.too-large");
    if (n > 0) {
      let maxIndex = this.offset;
      for (let d = 0; d < this.shape.length; d++) maxIndex += (this.shape[d] - 1) * this.stride[d];
      if (this.offset < 0 || maxIndex >= this.storage.numel || this.stride.some((s) => s < 0)) {
        throw new ArchiveError(
          file,
          `${view} exceeds its storage '${this.storage.key}' of ${this.storage.numel} elements`,
          "archive.invalid",
        );
      }
    }
    const budget =
      this.storage.source.budget ??
      new MemoryBudget((detail) => {
        throw new ArchiveError(file, detail, "archive.too-large");
      });
    budget.charge(n * es, `${view} of storage '${this.storage.key}'`);
    const data = allocData(dtype, n);
    const out = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (n > 0) copyStrided(this.storage.bytes(), out, es, this.offset, this.shape, this.stride);
    this.cached = { dtype, shape: [...this.shape], data };
    return this.cached;
  }
}

function copyStrided(
  src: Uint8Array,
  dst: Uint8Array,
  es: number,
  offset: number,
  shape: readonly number[],
  stride: readonly number[],
): void {
  const rank = shape.length;
  const contiguous = (() => {
    let s = 1;
    for (let d = rank - 1; d >= 0; d--) {
      if (shape[d] !== 1 && stride[d] !== s) return false;
      s *= shape[d];
    }
    return true;
  })();
  const n = numel(shape);
  if (contiguous) {
    dst.set(src.subarray(offset * es, (offset + n) * es));
    return;
  }
  const idx = new Array<number>(rank).fill(0);
  let at = offset;
  for (let i = 0; i < n; i++) {
    for (let k = 0, a = at * es, b = i * es; k < es; k++) dst[b + k] = src[a + k];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      at += stride[d];
      if (idx[d] < shape[d]) break;
      at -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
}

function swapBytes(b: Uint8Array, es: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i += es) for (let j = 0; j < es; j++) out[i + j] = b[i + es - 1 - j];
  return out;
}

const STORAGE_DTYPES: Record<string, DType | undefined> = {
  FloatStorage: "float32",
  DoubleStorage: "float64",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  ComplexFloatStorage: undefined,
  ComplexDoubleStorage: undefined,
  ComplexHalfStorage: undefined,
  QInt8Storage: undefined,
  QUInt8Storage: undefined,
  QInt32Storage: undefined,
  QUInt4x2Storage: undefined,
  QUInt2x4Storage: undefined,
  Float8_e4m3fnStorage: undefined,
  Float8_e5m2Storage: undefined,
};

const DTYPE_OBJECTS: Record<string, DType | undefined> = {
  float32: "float32",
  float: "float32",
  float64: "float64",
  double: "float64",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  int64: "int64",
  long: "int64",
  int32: "int32",
  int: "int32",
  int16: "int16",
  short: "int16",
  int8: "int8",
  uint8: "uint8",
  bool: "bool",
  complex64: undefined,
  complex128: undefined,
};

function tensorOf(v: PyValue, what: string): PickledTensor {
  if (isExtension(v, "tensor")) return v as PickledTensor;
  throw new TypeError(`${what}: expected a tensor, found ${pyTypeName(v)}`);
}

function rebuildTensor(args: readonly PyValue[]): PickledTensor {
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!isExtension(storage, "storage"))
    throw new TypeError(`_rebuild_tensor: expected a storage, found ${pyTypeName(storage)}`);
  const shape = asIntTuple(size, "tensor size");
  const strides = asIntTuple(stride, "tensor stride");
  if (shape.length !== strides.length)
    throw new TypeError(`tensor size [${shape}] and stride [${strides}] differ in rank`);
  return new PickledTensor(
    storage as PickledStorage,
    asInt(offset, "storage offset"),
    shape,
    strides,
    requiresGrad === true,
  );
}

/**
 * The allow-list for PyTorch archives: tensor and storage rebuilding, container helpers of `torch.jit._pickle`,
 * `collections.OrderedDict`, devices and dtypes. Nothing here runs user code.
 */
export function torchGlobals(): Map<string, GlobalHandler> {
  const g = dataGlobals();
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES))
    g.set(`torch.${name}`, { value: new DTypeMarker(name, dtype) });
  for (const [name, dtype] of Object.entries(DTYPE_OBJECTS))
    g.set(`torch.${name}`, { value: new DTypeMarker(name, dtype) });
  g.set("torch._utils._rebuild_tensor_v2", { call: rebuildTensor });
  g.set("torch._utils._rebuild_tensor", { call: rebuildTensor });
  g.set("torch._utils._rebuild_parameter", { call: (a) => tensorOf(a[0], "_rebuild_parameter") });
  g.set("torch._utils._rebuild_parameter_with_state", {
    call: (a) => tensorOf(a[0], "_rebuild_parameter_with_state"),
  });
  g.set("torch._tensor._rebuild_from_type_v2", {
    call: (a) => {
      const [fn, type, args] = a;
      if (!(fn instanceof PyGlobal) || !(args instanceof PyTuple))
        throw new TypeError("_rebuild_from_type_v2: malformed arguments");
      const inner = g.get(fn.qualifiedName);
      if (!inner?.call || !fn.module.startsWith("torch._utils"))
        throw new TypeError(`_rebuild_from_type_v2 may not call '${fn.qualifiedName}'`);
      if (
        !(type instanceof PyGlobal) ||
        !["torch.Tensor", "torch.nn.parameter.Parameter"].includes(type.qualifiedName)
      ) {
        throw new TypeError(
          `tensor subclass '${type instanceof PyGlobal ? type.qualifiedName : pyTypeName(type)}' is not supported`,
        );
      }
      return inner.call(args.items);
    },
  });
  const unsupported: Record<string, string> = {
    "torch._utils._rebuild_qtensor": "a quantized tensor",
    "torch._utils._rebuild_sparse_tensor": "a sparse tensor",
    "torch._utils._rebuild_sparse_csr_tensor": "a sparse tensor",
    "torch._utils._rebuild_meta_tensor_no_storage": "a meta tensor without data",
    "torch._utils._rebuild_wrapper_subclass": "a tensor subclass",
    "torch._utils._rebuild_device_tensor_from_numpy": "a tensor stored as a NumPy array",
    "torch._utils._rebuild_nested_tensor": "a nested tensor",
    "torch.distributed.rpc.rref": "a remote reference",
    "builtins.complex": "a complex number",
  };
  for (const [k, why] of Object.entries(unsupported)) g.set(k, { unsupported: why });
  g.set("torch.Tensor", {});
  g.set("torch.nn.parameter.Parameter", {});
  g.set("torch.Size", { call: (a) => new PyTuple(asIntTuple(a[0] ?? new PyTuple([]), "torch.Size")) });
  g.set("torch.device", {
    call: (a) =>
      new PyDevice(a.length > 1 && a[1] !== null ? `${String(a[0])}:${String(a[1])}` : String(a[0])),
  });
  for (const name of ["build_intlist", "build_tensorlist", "build_doublelist", "build_boollist"]) {
    g.set(`torch.jit._pickle.${name}`, { call: (a) => a[0] ?? [] });
  }
  g.set("torch.jit._pickle.restore_type_tag", { call: (a) => a[0] ?? null });
  return g;
}

/** persistent_load for PyTorch archives: ('storage', <storage type or dtype>, key, location, numel). */
export function torchPersistentLoad(source: StorageSource): (pid: PyValue) => PyValue {
  const storages = new Map<string, PickledStorage>();
  return (pid) => {
    if (!(pid instanceof PyTuple) || pid.items[0] !== "storage" || pid.items.length < 5) {
      throw new TypeError(
        `unknown persistent id ${pid instanceof PyTuple ? `('${String(pid.items[0])}', …)` : pyTypeName(pid)}`,
      );
    }
    const [, type, key, location, n] = pid.items;
    if (!isExtension(type, "dtype")) throw new TypeError(`storage type is a ${pyTypeName(type)}`);
    const marker = type as DTypeMarker;
    const k = typeof key === "string" ? key : String(key);
    const existing = storages.get(k);
    if (existing) return existing;
    const s = new PickledStorage(
      marker.torchName,
      marker.dtype,
      k,
      String(location),
      asInt(n, "storage numel"),
      source,
    );
    storages.set(k, s);
    return s;
  };
}

/** Options for unpickling a PyTorch archive record whose storages come from `source`. */
export function torchUnpickleOptions(
  file: string,
  source: StorageSource,
  dataClassModules: readonly string[] = ["__torch__"],
): UnpickleOptions {
  return { file, globals: torchGlobals(), dataClassModules, persistentLoad: torchPersistentLoad(source) };
}
