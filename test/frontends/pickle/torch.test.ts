import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TorchcError } from "../../../src/errors.js";
import {
  PickledTensor,
  PyDict,
  type StorageSource,
  torchUnpickleOptions,
  unpickle,
} from "../../../src/frontends/pickle/index.js";
import { toFloat64Array } from "../../../src/ir/tensor.js";

const DATA = join(import.meta.dirname, "data");
const read = (name: string) => new Uint8Array(readFileSync(join(DATA, name)));

function source(records: Record<string, Uint8Array | undefined>): StorageSource {
  return { file: "t.pt", recordPath: (k) => `archive/data/${k}`, read: (k) => records[k] };
}

function load(records: Record<string, Uint8Array | undefined>): PyDict {
  const v = unpickle(read("tensors.pkl"), torchUnpickleOptions("t.pt:archive/data.pkl", source(records)));
  expect(v).toBeInstanceOf(PyDict);
  return v as PyDict;
}

const all = () => ({ "0": read("tensors_0"), "1": read("tensors_1"), "2": read("tensors_2") });
const values = (d: PyDict, k: string) => Array.from(toFloat64Array((d.get(k) as PickledTensor).toTensor()));

describe("torch tensors in pickles", () => {
  it("rebuilds _rebuild_tensor_v2 views as dense tensors", () => {
    const d = load(all());
    const w = d.get("w") as PickledTensor;
    expect(w).toBeInstanceOf(PickledTensor);
    expect(w.dtype).toBe("float32");
    expect(w.toTensor().shape).toEqual([3, 4]);
    expect(values(d, "w")).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(values(d, "wt")).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(values(d, "slice")).toEqual([5, 7]);
    expect(values(d, "bcast")).toEqual([1, 2, 3, 1, 2, 3]);
    expect(values(d, "scalar")).toEqual([11]);
    expect((d.get("scalar") as PickledTensor).toTensor().shape).toEqual([]);
    expect((d.get("ids") as PickledTensor).dtype).toBe("int64");
    expect(values(d, "ids")).toEqual([7, -8, 9]);
    expect(values(d, "half")).toEqual([1, -2]);
  });

  it("shares one storage between views", () => {
    const d = load(all());
    expect((d.get("w") as PickledTensor).storage).toBe((d.get("wt") as PickledTensor).storage);
  });

  it("a missing or short storage record is one TorchcError naming the record", () => {
    const d = load({ ...all(), "0": undefined });
    expect(() => (d.get("w") as PickledTensor).toTensor()).toThrowError(TorchcError);
    expect(() => (d.get("w") as PickledTensor).toTensor()).toThrowError(/archive\/data\/0' is missing/);
    const d2 = load({ ...all(), "1": read("tensors_1").subarray(0, 10) });
    expect(() => (d2.get("ids") as PickledTensor).toTensor()).toThrowError(/has 10 bytes, 24 expected/);
  });

  it("reads shapes even when the storage holds no data", () => {
    const d = load({ ...all(), "0": new Uint8Array(0) });
    expect((d.get("w") as PickledTensor).shape).toEqual([3, 4]);
    expect(() => (d.get("w") as PickledTensor).toTensor()).toThrowError(/holds no data/);
  });
});
