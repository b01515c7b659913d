// vitest setupFiles: a turn of the event loop after every test. Without it a file of synchronous tests (the CPU
// emulator's, several seconds each) never lets the worker read vitest's RPC replies, and once such a stretch passes
// 60 s the reply's timeout fires first: "Timeout calling onTaskUpdate", a failed run with every test passing
// (fresh-clone CI on two cores, session 12: rows-variants.test.ts, 69 s of synchronous tests).
import { afterEach } from "vitest";

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
