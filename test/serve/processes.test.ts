import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareTensors } from "../../src/cli/compare.js";
import { InferenceClient } from "../../src/serve/client.js";
import { grpc, loadInferenceService } from "../../src/serve/grpc.js";
import { MODELS } from "../helpers.js";
import { logged, row, servedUrl, spawnServe, X, Y } from "./support.js";

const MLP = join(MODELS, "mlp.pt2");

const metric = (text: string, name: string): number => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : Number.NaN;
};

describe("torchc serve --processes", () => {
  it("two processes share the HTTP and gRPC ports, answer correctly, sum their metrics, and drain on SIGTERM", async () => {
    const child = spawnServe(MLP, ["--processes", "2", "--grpc-port", "0", "--max-queue-delay-us", "300000"]);
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      const { url, stderr } = await servedUrl(child);
      // One line, printed once both processes serve.
      expect(stderr()).toMatch(/\(2 processes\)/);
      const client = new InferenceClient(url);
      // Separate connections (undici opens more under concurrency): the primary deals them out to both processes.
      const outs = await Promise.all(
        Array.from({ length: 32 }, (_, k) => client.infer({ x: row(X, k % 4) }, { binary: k % 2 === 0 })),
      );
      for (const [k, o] of outs.entries())
        expect(compareTensors(o.softmax, row(Y, k % 4)).relative).toBeLessThanOrEqual(1e-4);
      // Whichever process answers /metrics, the numbers are both processes' sum.
      for (let i = 0; i < 4; i++) {
        const text = await (await fetch(new URL("/metrics", url))).text();
        expect(metric(text, "torchc_server_processes")).toBe(2);
        expect(metric(text, 'torchc_requests_total\\{model="model",status="200"\\}')).toBe(32);
      }
      const grpcAt = /gRPC (\S+)/.exec(stderr())?.[1];
      expect(grpcAt).toBeDefined();
      const Service = loadInferenceService();
      const rpc = new Service(grpcAt as string, grpc.credentials.createInsecure());
      const live = await new Promise<{ live: boolean }>((resolve, reject) =>
        rpc.ServerLive({}, (e: Error | null, r: { live: boolean }) => (e ? reject(e) : resolve(r))),
      );
      rpc.close();
      expect(live.live).toBe(true);
      // In flight when SIGTERM comes (a lone row waits 300 ms for others): answered, then both processes and the
      // primary exit 0. The servers log each request they receive (JSON lines on stdout).
      const received = logged(child, "/v2/models/model/infer?late");
      const pending = fetch(new URL("/v2/models/model/infer?late", url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          inputs: [
            { name: "x", shape: [1, 20], datatype: "FP32", data: Array.from(row(X, 2).data as Float32Array) },
          ],
        }),
      });
      await received;
      child.kill("SIGTERM");
      const late = (await (await pending).json()) as { outputs: { data: number[] }[] };
      const got = {
        dtype: "float32" as const,
        shape: [1, 10],
        data: Float32Array.from(late.outputs[0].data),
      };
      expect(compareTensors(got, row(Y, 2)).relative).toBeLessThanOrEqual(1e-4);
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  }, 60_000);

  it("Ctrl-C (SIGINT to the whole process group, primary and servers at once) still drains and exits 0", async () => {
    const child = spawnServe(
      MLP,
      ["--processes", "2", "--grpc-port", "off", "--max-queue-delay-us", "300000"],
      { detached: true },
    );
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      const { url } = await servedUrl(child);
      const received = logged(child, "/v2/models/model/infer");
      const pending = new InferenceClient(url).infer({ x: row(X, 1) });
      await received;
      process.kill(-(child.pid as number), "SIGINT");
      expect(compareTensors((await pending).softmax, row(Y, 1)).relative).toBeLessThanOrEqual(1e-4);
      expect(await exited).toBe(0);
    } finally {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // already gone
      }
    }
  }, 60_000);

  it("a model that cannot load stops every process and exits non-zero with its one-line error", async () => {
    const child = spawnServe(join(MODELS, "no-such.pt2"), ["--processes", "2", "--grpc-port", "off"]);
    let err = "";
    child.stderr.on("data", (d) => {
      err += String(d);
    });
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    expect(code).not.toBe(0);
    expect(err).toMatch(/no-such\.pt2/);
    expect(err).not.toMatch(/\n\s+at /);
  }, 60_000);
});
