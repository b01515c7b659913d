/**
 * `torchc serve` as a child process for the load benchmark: its own event loop and heap, so the load
 * generator's work does not land on the server's thread and the server's RSS is its own. Runs the compiled CLI
 * beside this file (.gpu-carry/build on the GPU machine) with the same Node, or the TypeScript sources through
 * tsx in a checkout. Reads its RSS and CPU time from /proc, and its batch-size histogram from /metrics.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** Node arguments that run the torchc CLI: compiled JavaScript when it is there, else the sources via tsx. */
function cliArgs(): string[] {
  const js = join(here, "..", "src", "cli", "main.js");
  if (existsSync(js)) return ["--enable-source-maps", js];
  return ["--import", "tsx", join(here, "..", "src", "cli", "main.ts")];
}

const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** `pid` and its descendants (Linux /proc; just `pid` where children are not listed). */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const kids = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, "utf8").trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    } catch {
      // no children file: this process only
    }
  }
  return out;
}

export interface BatchCounts {
  readonly rows: number;
  readonly batches: number;
  readonly gathered: number;
  readonly merged: number;
  readonly slotBodies: number;
  readonly allocatedBodies: number;
  /** Sums (seconds) and counts of the server's queue-wait and compute histograms. */
  readonly queueS: number;
  readonly queued: number;
  readonly computeS: number;
  readonly computed: number;
}

export interface ServerChild {
  readonly label: string;
  readonly url: string;
  readonly pid: number;
  /** Set once the process has ended (a crash when it ended before stop()). */
  readonly exit: { code: number | null; signal: string | null } | undefined;
  /** Resident set size in bytes (undefined when /proc cannot be read). */
  rssBytes(): number | undefined;
  /** User + system CPU seconds so far, all threads. */
  cpuSeconds(): number | undefined;
  /**
   * From /metrics: the batch-size histogram's sum and count (rows, batches), batch inputs gathered to the device
   * from request slots or merged on the batching thread, and bodies read into slots or allocations.
   */
  batchRows(): Promise<BatchCounts>;
  stderrTail(): string;
  /** SIGTERM (the server drains and exits), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: string | null }>;
}

export interface StartOptions {
  readonly label: string;
  readonly model: string;
  readonly flags: readonly string[];
  /** Where the server's JSON-line logs (stdout) go. */
  readonly logFile: string;
  readonly timeoutMs: number;
}

export async function startServer(o: StartOptions): Promise<ServerChild> {
  const log = openSync(o.logFile, "w");
  // SERVE_NODE_ARGS: extra Node flags for the server only (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
  const nodeArgs = (process.env.SERVE_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const args = [...nodeArgs, ...cliArgs(), "serve", o.model, "--port", "0", "--grpc-port", "off", ...o.flags];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", log, "pipe"] });
  closeSync(log);
  let err = "";
  let exit: ServerChild["exit"];
  const exited = new Promise<NonNullable<ServerChild["exit"]>>((resolve) =>
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  child.stderr?.on("data", (d) => {
    err = (err + String(d)).slice(-20_000);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(`${o.label}: no 'torchc serve:' line in ${o.timeoutMs} ms; stderr:\n${err.slice(-3000)}`),
      );
    }, o.timeoutMs);
    const look = () => {
      const m = /torchc serve: (http:\/\/[^/\s]+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stderr?.on("data", look);
    void exited.then((e) => {
      clearTimeout(timer);
      reject(
        new Error(`${o.label}: exited (${e.code ?? e.signal}) before serving; stderr:\n${err.slice(-3000)}`),
      );
    });
  });
  const pid = child.pid as number;
  return {
    label: o.label,
    url,
    pid,
    get exit() {
      return exit;
    },
    // The server and its children (`--processes`: the cluster primary and its server processes).
    rssBytes() {
      let sum: number | undefined;
      for (const p of tree(pid)) {
        try {
          const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
          if (m) sum = (sum ?? 0) + Number(m[1]) * 1024;
        } catch {
          // gone meanwhile
        }
      }
      return sum;
    },
    cpuSeconds() {
      let sum: number | undefined;
      for (const p of tree(pid)) {
        try {
          const stat = readFileSync(`/proc/${p}/stat`, "utf8");
          // Fields after "(comm)": state is field 3, utime 14, stime 15.
          const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
          sum = (sum ?? 0) + (Number(f[11]) + Number(f[12])) / CLK_TCK;
        } catch {
          // gone meanwhile
        }
      }
      return sum;
    },
    async batchRows() {
      const text = await (await fetch(`${url}/metrics`)).text();
      const read = (name: string, label = "") =>
        Number(new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
      return {
        rows: read("torchc_batch_rows_sum"),
        batches: read("torchc_batch_rows_count"),
        gathered: read("torchc_batch_inputs_total", 'path="gathered"'),
        merged: read("torchc_batch_inputs_total", 'path="merged"'),
        slotBodies: read("torchc_request_bodies_total", 'place="slot"'),
        allocatedBodies: read("torchc_request_bodies_total", 'place="allocation"'),
        queueS: read("torchc_queue_seconds_sum"),
        queued: read("torchc_queue_seconds_count"),
        computeS: read("torchc_compute_seconds_sum"),
        computed: read("torchc_compute_seconds_count"),
      };
    },
    stderrTail: () => err.slice(-3000),
    async stop(graceMs = 20_000) {
      if (exit) return exit;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
  };
}
