/**
 * A thin typed wrapper over one cuDNN backend descriptor: create, set typed attributes (always as arrays, per
 * the attribute-type table in native-apis §5), finalize, get, destroy.
 */
import { ATTR, ATTR_TYPE, CUDNN, DESC } from "../../../ffi/cudnn.js";
import { checkCudnn } from "../../../ffi/status.js";
import type { OutPtr, Ptr } from "../../../ffi/types.js";
import { fail } from "./validate.js";

export class BackendDescriptor {
  private destroyed = false;

  private constructor(
    private readonly raw: bigint,
    /** What it is, for messages: "tensor x", "conv", "plan". */
    readonly label: string,
  ) {}

  static create(type: number, label: string): BackendDescriptor {
    const out: OutPtr = [null];
    checkCudnn(`cudnnBackendCreateDescriptor(${label})`, CUDNN.fn.cudnnBackendCreateDescriptor(type, out));
    if (out[0] === null) throw new Error(`cudnnBackendCreateDescriptor(${label}) returned NULL`);
    return new BackendDescriptor(out[0], label);
  }

  /** A finalized variant pack: one data pointer per real tensor id (in `uids` order) and the workspace. */
  static variantPack(uids: readonly bigint[], ptrs: readonly bigint[], workspace: bigint): BackendDescriptor {
    const vp = BackendDescriptor.create(DESC.VARIANT_PACK, "variant pack");
    try {
      return vp
        .int64s(ATTR.VARIANT_PACK_UNIQUE_IDS, uids, "UNIQUE_IDS")
        .pointers(ATTR.VARIANT_PACK_DATA_POINTERS, ptrs, "DATA_POINTERS")
        .pointers(ATTR.VARIANT_PACK_WORKSPACE, [workspace], "WORKSPACE")
        .finalize();
    } catch (e) {
      vp.destroy();
      throw e;
    }
  }

  get handle(): bigint {
    if (this.destroyed) fail(`cuDNN descriptor ${this.label} has been destroyed`);
    return this.raw;
  }

  private set(name: number, type: number, values: ArrayBufferView & { length: number }, what: string): this {
    const rc = CUDNN.fn.cudnnBackendSetAttribute(this.handle, name, type, values.length, values);
    checkCudnn(`cudnnBackendSetAttribute(${this.label}.${what})`, rc);
    return this;
  }

  int64s(name: number, values: readonly (number | bigint)[], what = String(name)): this {
    return this.set(
      name,
      ATTR_TYPE.INT64,
      BigInt64Array.from(values, (v) => BigInt(v)),
      what,
    );
  }

  /** A 4-byte enum attribute (DATA_TYPE, CONVOLUTION_MODE, HEUR_MODE, POINTWISE_MODE). */
  enum32(name: number, type: number, value: number, what = String(name)): this {
    return this.set(name, type, new Int32Array([value]), what);
  }

  bool(name: number, value: boolean, what = String(name)): this {
    return this.set(name, ATTR_TYPE.BOOLEAN, new Uint8Array([value ? 1 : 0]), what);
  }

  float(name: number, value: number, what = String(name)): this {
    return this.set(name, ATTR_TYPE.FLOAT, new Float32Array([value]), what);
  }

  double(name: number, value: number, what = String(name)): this {
    return this.set(name, ATTR_TYPE.DOUBLE, new Float64Array([value]), what);
  }

  handleAttr(name: number, handle: Ptr, what = String(name)): this {
    return this.set(name, ATTR_TYPE.HANDLE, new BigUint64Array([handle ?? 0n]), what);
  }

  descriptors(name: number, descs: readonly BackendDescriptor[], what = String(name)): this {
    return this.set(
      name,
      ATTR_TYPE.BACKEND_DESCRIPTOR,
      BigUint64Array.from(descs, (d) => d.handle),
      what,
    );
  }

  pointers(name: number, ptrs: readonly bigint[], what = String(name)): this {
    return this.set(name, ATTR_TYPE.VOID_PTR, BigUint64Array.from(ptrs), what);
  }

  finalize(): this {
    checkCudnn(`cudnnBackendFinalize(${this.label})`, CUDNN.fn.cudnnBackendFinalize(this.handle));
    return this;
  }

  /** Finalize, returning the status instead of throwing (engine configs that may be unsupported). */
  tryFinalize(): number {
    return CUDNN.fn.cudnnBackendFinalize(this.handle);
  }

  getInt64(name: number, what = String(name)): bigint {
    const count = new BigInt64Array(1);
    const value = new BigInt64Array(1);
    const rc = CUDNN.fn.cudnnBackendGetAttribute(this.handle, name, ATTR_TYPE.INT64, 1, count, value);
    checkCudnn(`cudnnBackendGetAttribute(${this.label}.${what})`, rc);
    return value[0]!;
  }

  /** How many descriptors attribute `name` holds. */
  countDescriptors(name: number, what = String(name)): number {
    const count = new BigInt64Array(1);
    const rc = CUDNN.fn.cudnnBackendGetAttribute(
      this.handle,
      name,
      ATTR_TYPE.BACKEND_DESCRIPTOR,
      0,
      count,
      null,
    );
    checkCudnn(`cudnnBackendGetAttribute(${this.label}.${what} count)`, rc);
    return Number(count[0]);
  }

  /** Fills caller-created descriptors `into` from attribute `name`; returns how many were filled. */
  getDescriptors(name: number, into: readonly BackendDescriptor[], what = String(name)): number {
    const count = new BigInt64Array(1);
    const handles = BigUint64Array.from(into, (d) => d.handle);
    const rc = CUDNN.fn.cudnnBackendGetAttribute(
      this.handle,
      name,
      ATTR_TYPE.BACKEND_DESCRIPTOR,
      into.length,
      count,
      handles,
    );
    checkCudnn(`cudnnBackendGetAttribute(${this.label}.${what})`, rc);
    return Number(count[0]);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    CUDNN.fn.cudnnBackendDestroyDescriptor(this.raw);
  }
}
