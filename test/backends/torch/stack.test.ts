// The StableIValue stack built from a plan, against a fake LibTorch that records what it allocated.
import { describe, expect, it } from "vitest";
import type { ArgHost } from "../../../src/backends/cuda/device/dispatcher-args.js";
import { encodeFloat } from "../../../src/backends/cuda/device/dispatcher-args.js";
import type { DispatchPlan } from "../../../src/backends/torch/encoded-arg.js";
import { checkTensors, encodeStack, resultHandles, STACK_SLACK } from "../../../src/backends/torch/stack.js";
import type { DType } from "../../../src/ir/dtype.js";

class FakeHost implements ArgHost {
  readonly log: string[] = [];
  private next = 0x1000n;
  readonly lists = new Map<bigint, bigint[]>();
  readonly boxes = new Map<bigint, bigint>();
  private id(): bigint {
    this.next += 0x10n;
    return this.next;
  }
  newTensorHandle(h: bigint): bigint {
    const n = this.id();
    this.log.push(`handle(${h})=${n}`);
    return n;
  }
  newIntList(values: readonly bigint[]): bigint {
    const n = this.id();
    this.lists.set(n, [...values]);
    this.log.push(`list(${values.length})`);
    return n;
  }
  newString(v: string): bigint {
    this.log.push(`string(${v})`);
    return this.id();
  }
  box(v: bigint): bigint {
    const n = this.id();
    this.boxes.set(n, v);
    this.log.push("box");
    return n;
  }
  dtypeCode(d: DType): number {
    return d === "float16" ? 5 : 6;
  }
  deviceTypeCode(t: "cpu" | "cuda"): number {
    return t === "cuda" ? 1 : 0;
  }
}

const tensors = new Map([
  ["x", { handle: 0x10n, alive: true }],
  ["y", { handle: 0x20n, alive: true }],
  ["dead", { handle: 0x30n, alive: false }],
]);
const resolve = (n: string) => tensors.get(n) as { handle: bigint; alive: boolean };

function p(args: DispatchPlan["args"], returns: DispatchPlan["returns"] = 1): DispatchPlan {
  return {
    op: "aten::test",
    overload: "",
    via: "dispatcher",
    args,
    names: args.map((_, i) => `a${i}`),
    returns,
  };
}

describe("the dispatcher stack", () => {
  it("encodes scalars in place and makes new handles, lists, strings and boxes for the callee to own", () => {
    const host = new FakeHost();
    const stack = encodeStack(
      p([
        { kind: "tensor", value: "x" },
        { kind: "int", value: -1 },
        { kind: "float", value: 0.5 },
        { kind: "bool", value: true },
        { kind: "dtype", value: "float16" },
        { kind: "memoryFormat", value: "channels_last", code: 2 },
        { kind: "none" },
        { kind: "optional", value: { kind: "int", value: 7 } },
        { kind: "intList", values: [1, 2] },
        { kind: "str", value: "tanh" },
        { kind: "tensorList", values: ["x", "y"] },
        { kind: "optTensorList", values: [null, "y"] },
        { kind: "floatList", values: [2.5] },
      ]),
      resolve,
      host,
    );
    expect(stack.length).toBe(13 + STACK_SLACK);
    expect(stack[1]).toBe(BigInt.asUintN(64, -1n));
    expect(stack[2]).toBe(encodeFloat(0.5));
    expect(stack[3]).toBe(1n);
    expect(stack[4]).toBe(5n);
    expect(stack[5]).toBe(2n);
    expect(stack[6]).toBe(0n);
    expect(host.boxes.get(stack[7])).toBe(7n);
    expect(host.lists.get(stack[8])).toEqual([1n, 2n]);
    expect(host.lists.get(stack[10])?.length).toBe(2);
    const opt = host.lists.get(stack[11]) as bigint[];
    expect(opt[0]).toBe(0n);
    expect(host.boxes.has(opt[1])).toBe(true);
    expect(host.lists.get(stack[12])).toEqual([encodeFloat(2.5)]);
    expect(host.log.filter((l) => l.startsWith("handle(16)")).length).toBe(2); // x: argument + list item
    expect(host.log).toContain("string(tanh)");
    expect(stack.slice(13).every((v) => v === 0n)).toBe(true);
  });

  it("checks every tensor before anything is allocated", () => {
    const host = new FakeHost();
    const bad = p([
      { kind: "tensor", value: "x" },
      { kind: "tensorList", values: ["y", "dead"] },
    ]);
    expect(() => checkTensors(bad, (n) => tensors.get(n))).toThrow(/'dead', whose tensor was released/);
    expect(() => checkTensors(p([{ kind: "tensor", value: "nope" }]), (n) => tensors.get(n))).toThrow(
      /not computed/,
    );
    expect(host.log).toEqual([]);
    expect(() => checkTensors(p([{ kind: "double", value: 1 }]), (n) => tensors.get(n))).toThrow(/Scalar/);
  });

  it("sizes the stack for results as well as arguments", () => {
    const host = new FakeHost();
    expect(encodeStack(p([{ kind: "tensor", value: "x" }], 3), resolve, host).length).toBe(3 + STACK_SLACK);
  });

  it("reads tensor results, and list results through the list reader", () => {
    const stack = new BigUint64Array([0xa0n, 0n, 0xb0n, 0n]);
    expect(resultHandles(p([], 3), stack, () => [])).toEqual([0xa0n, 0n, 0xb0n]);
    expect(resultHandles(p([], "list"), stack, (l) => (l === 0xa0n ? [1n, 2n] : []))).toEqual([1n, 2n]);
    expect(() => resultHandles(p([], "list"), new BigUint64Array(1), () => [])).toThrow(/no list/);
  });
});
