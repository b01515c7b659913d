/**
 * One conv problem's cuDNN plans shared by several layers (CudnnConvPlan.share, kernels/conv-cudnn.ts), through koffi
 * against the fake libcudnn (test/ffi/fakes): each layer binds its own pointers, tuning one tunes all, and the
 * candidates outlive every plan but the last. Skipped when no C compiler is available.
 */
import { expect, it } from "vitest";
import { Cudnn, DeviceBuffer, Stream } from "../../src/backends/cuda/device/index.js";
import { buildCudnnConv, type CudnnConvSpec } from "../../src/backends/cuda/kernels/conv-cudnn.js";
import { CUDNN, koffi } from "../../src/ffi/index.js";
import { convSpec } from "../backends/cuda/specs.js";
import { useFakeLibraries } from "./fakes/build.js";

const { suite } = useFakeLibraries();

function fake<T>(proto: string): () => T {
  const f = koffi().load(CUDNN.load().path).func(proto);
  return () => f() as T;
}

const spec: CudnnConvSpec = convSpec({
  layout: "NHWC",
  dtype: "float16",
  x: [2, 16, 10, 10],
  w: [32, 16, 3, 3],
  y: [2, 32, 10, 10],
  bias: false,
  epilogue: [],
});

suite("a conv problem's cuDNN plans shared by its layers (fake libcudnn)", () => {
  it("each layer executes with its own pointers; the candidates live until the last plan is destroyed", () => {
    const executions = fake<number>("int fake_cudnn_executions(void)");
    const log = fake<string>("const char *fake_cudnn_log(void)");
    const cudnn = Cudnn.create();
    const built = buildCudnnConv(cudnn, spec, { tune: true });
    if (!built.ok) throw new Error(built.reason);
    const a = built.plan;
    const b = a.share();
    // an unbound plan times nothing, and drops nothing for the other layers
    const stray = a.share();
    expect(stray.tune(Stream.create()).failures[0]).toMatch(/not bound/);
    expect(a.candidateCount).toBeGreaterThan(1);
    stray.destroy();
    expect(() => stray.tune(Stream.create())).toThrow("destroyed");
    expect(b.chosen).toBe(a.chosen);
    expect(b.candidateCount).toBe(a.candidateCount);
    const buf = () => DeviceBuffer.alloc(2 * 32 * 10 * 10 * 2);
    const [xa, wa, ya, xb, wb, yb] = [buf(), buf(), buf(), buf(), buf(), buf()];
    const packs = () =>
      log()
        .split("\n")
        .filter((l) => l.startsWith("16.1001=")).length;
    const packsBefore = packs();
    a.bind({ x: xa.ptr, w: wa.ptr, y: ya.ptr, extra: [] }, 0n);
    b.bind({ x: xb.ptr, w: wb.ptr, y: yb.ptr, extra: [] }, 0n);
    // a variant pack per layer and candidate: each layer runs on its own pointers
    expect(packs() - packsBefore).toBe(2 * a.candidateCount);
    const stream = Stream.create();
    // tuning either layer's plan tunes the problem: the other has nothing left to time
    expect(a.candidateCount).toBeGreaterThan(1);
    const tuned = b.tune(stream);
    expect(tuned.timed).toBe(2);
    expect(a.candidateCount).toBe(1);
    expect(a.chosen).toBe(b.chosen);
    expect(a.tune(stream).timed).toBe(0);
    const before = executions();
    a.execute(stream);
    b.execute(stream);
    expect(executions()).toBe(before + 2);
    // the first layer's plan goes: the other still runs on the same candidate
    const chosen = b.chosen;
    a.destroy();
    // the problem's candidates live on with b: a (the recorder's first plan) still answers for them
    expect(a.chosen).toBe(chosen);
    expect(b.chosen).toBe(chosen);
    b.execute(stream);
    expect(executions()).toBe(before + 3);
    // a third layer shared from the survivor
    const c = b.share();
    b.destroy();
    c.bind({ x: xb.ptr, w: wb.ptr, y: yb.ptr, extra: [] }, 0n);
    c.execute(stream);
    expect(executions()).toBe(before + 4);
    c.destroy();
    expect(c.chosen).toBeUndefined();
    expect(a.chosen).toBeUndefined();
    expect(() => c.share()).toThrow("destroyed");
    for (const x of [xa, wa, ya, xb, wb, yb]) x.free();
    stream.destroy();
    cudnn.destroy();
  });
});
