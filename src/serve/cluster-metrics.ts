/** The server-process side of `--processes`' summed /metrics (./processes.ts is the primary's side). */
import { AggregatorRegistry, type Registry } from "prom-client";
import { isMessage, METRICS, type MetricsMessage } from "./processes.js";

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
      waiting.set(id, { resolve, reject });
      process.send?.({ type: METRICS, id } satisfies MetricsMessage);
    });
}
