/** The server-process side of `--processes`' summed /metrics (./processes.ts is the primary's side). */
import { AggregatorRegistry, type Registry } from "prom-client";
import { isMessage, METRICS, type MetricsMessage } from "./processes.js";

/**
 * Server process, first thing: answer the primary's metrics requests (empty until serve() sets the registry), so
 * that a process still loading its model does not stall every other process's /metrics for prom-client's 5 s.
 */
export function answerClusterMetrics(): void {
  new AggregatorRegistry();
}

/**
 * Server process: `registry` joins the primary's sum, and the returned function fetches that sum (what /metrics
 * answers in any process). `refresh` runs before this process's metrics are read (device gauges).
 */
export function clusterMetrics(registry: Registry, refresh: () => void): () => Promise<string> {
  // The constructor installs prom-client's reply to the primary's requests; setRegistries picks what it sends.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  const timer = setInterval(refresh, 1000);
  timer.unref();
  let next = 0;
  const waiting = new Map<number, { resolve(t: string): void; reject(e: Error): void }>();
  process.on("message", (m: unknown) => {
    if (!isMessage<MetricsMessage>(m, METRICS)) return;
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.text !== undefined) w?.resolve(m.text);
    else w?.reject(new Error(m.error ?? "no metrics from the primary"));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      refresh();
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error("the server's primary process did not answer for the metrics in 6 s"));
      }, 6000);
      const settle = (f: () => void) => {
        clearTimeout(timer);
        f();
      };
      waiting.set(id, {
        resolve: (t) => settle(() => resolve(t)),
        reject: (e) => settle(() => reject(e)),
      });
      process.send?.({ type: METRICS, id } satisfies MetricsMessage);
    });
}
