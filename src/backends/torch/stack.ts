/**
 * A DispatchPlan's arguments as the StableIValue stack of `aoti_torch_call_dispatcher` (native-apis §6), and
 * its results back as tensor handles. Every tensor the plan names is resolved and checked live before the
 * first allocation, so a refused call allocates nothing. The callee takes ownership of tensor handles, lists,
 * strings and boxes, so each is made fresh here (the runner's tensors stay valid).
 *
 * Lists (`int[]`, `float[]`, `bool[]`, `Tensor[]`, `Tensor?[]`) are StableListHandles: the 2.11 shim converts
 * a list item by item with the schema's element type, so a `Tensor[]` item is a tensor handle (taken over by
 * the callee) and a `Tensor?[]` item is 0 or a boxed handle.
 */
import { TorchcError } from "../../errors.js";
import { type ArgHost, encodeStackArg, type StackArg } from "../cuda/device/dispatcher-args.js";
import { argValues, type DispatchPlan, type EncodedArg } from "./encoded-arg.js";

/** A live tensor handle (TorchTensor satisfies it). */
export interface HandleRef {
  readonly handle: bigint;
  readonly alive: boolean;
}

/** Slots beyond max(arguments, returns): a schema that disagrees with torchc's table cannot write past the stack. */
export const STACK_SLACK = 8;

export function encodeValue(a: EncodedArg, resolve: (name: string) => HandleRef, host: ArgHost): bigint {
  if (a.kind === "double")
    throw new TorchcError("a Scalar (double) argument cannot go on a dispatcher stack", "torch.plan");
  // The device layer's one encoder; a double never sits inside an optional (plan-dispatch.ts never wraps one).
  const handle = (name: string) => host.newTensorHandle(resolve(name).handle);
  return encodeStackArg(a as StackArg<string>, handle, host);
}

/** Checks every tensor the call reads is bound and alive; throws naming the first that is not. */
export function checkTensors(plan: DispatchPlan, resolve: (name: string) => HandleRef | undefined): void {
  plan.args.forEach((a, i) => {
    if (a.kind === "double" && plan.via === "dispatcher")
      throw new TorchcError(
        `${plan.op}: argument '${plan.names[i]}' is a Scalar, which the dispatcher cannot take`,
        "torch.plan",
      );
    for (const v of argValues(a)) {
      const t = resolve(v);
      if (!t)
        throw new TorchcError(
          `${plan.op}: argument '${plan.names[i]}' reads '${v}', which is not computed`,
          "torch.plan",
        );
      if (!t.alive || typeof t.handle !== "bigint" || t.handle === 0n)
        throw new TorchcError(
          `${plan.op}: argument '${plan.names[i]}' reads '${v}', whose tensor was released`,
          "torch.plan",
        );
    }
  });
}

/** The stack for `plan` (sized max(args, returns) + slack); all tensors must have passed checkTensors. */
export function encodeStack(
  plan: DispatchPlan,
  resolve: (name: string) => HandleRef,
  host: ArgHost,
): BigUint64Array {
  const returns = plan.returns === "list" ? 1 : plan.returns;
  const stack = new BigUint64Array(Math.max(plan.args.length, returns) + STACK_SLACK);
  plan.args.forEach((a, i) => {
    stack[i] = encodeValue(a, resolve, host);
  });
  return stack;
}

/** The raw tensor handles a call returned (0n where a result is absent); list results are read and freed. */
export function resultHandles(
  plan: DispatchPlan,
  stack: BigUint64Array,
  takeList: (list: bigint) => bigint[],
): bigint[] {
  if (plan.returns === "list") {
    const list = stack[0];
    if (list === 0n) throw new TorchcError(`${plan.op} returned no list`, "torch.call");
    return takeList(list).map((h) => BigInt.asUintN(64, h));
  }
  return Array.from(stack.subarray(0, plan.returns));
}
