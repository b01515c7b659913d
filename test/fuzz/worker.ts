// Runs torchc command lines in this process, one per message from the fuzz harness, and reports the exit
// status, what was written to stdout and stderr, and the peak resident memory so far.
import { main } from "../../src/cli/main.js";
import { setLimits } from "../../src/frontends/limits.js";

interface Job {
  readonly id: number;
  readonly args: readonly string[];
}

const capture = async (args: readonly string[]) => {
  let out = "";
  let err = "";
  const stdout = process.stdout.write.bind(process.stdout);
  const stderr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(args);
  } catch (e) {
    code = 99;
    err += `uncaught: ${(e as Error).stack ?? e}`;
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
    setLimits({ maxMemory: undefined });
  }
  return { code, out: out.slice(0, 20000), err: err.slice(0, 20000) };
};

process.on("message", async (job: Job) => {
  const t0 = performance.now();
  const r = await capture(job.args);
  process.send?.({
    id: job.id,
    ...r,
    ms: performance.now() - t0,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  });
});
process.send?.({ ready: true });
