/**
 * The soak (issue 16: "under a 10-minute load at concurrency 64 with 1% malformed requests mixed in: no failed
 * valid request, no crash, no memory growth over 50 MiB"). One device command runs at most 10 minutes, so the
 * duration is SOAK_S seconds of measured load after a warm-up of min(10 s, SOAK_S / 10); a 10-minute soak needs
 * SOAK_S=600 and a command limit above what the device tool allows. Malformed requests (wrong shape, bad dtype,
 * bad JSON, in turn) must each be answered 400. The server's RSS is sampled every second from /proc; growth is
 * from the start of the measured window to its end (and to its peak).
 */
import { runLoad } from "./serve-load-gen.js";
import type { ServerChild } from "./serve-load-server.js";
import type { Setup } from "./serve-load-setup.js";
import type { Wire } from "./serve-load-wire.js";

const MiB = 1 << 20;
const GROWTH_LIMIT_MIB = 50;

export interface SoakReport {
  readonly seconds: number;
  readonly concurrency: number;
  readonly throughput: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Valid requests over the whole soak (warm-up included), by outcome. */
  readonly valid: Record<string, number>;
  readonly failedValid: number;
  readonly malformed: { sent: number; byStatus: Record<string, number>; byKind: Record<string, number> };
  readonly crashed: boolean;
  readonly readyAfter: boolean;
  readonly rss: {
    readonly startMiB: number;
    readonly endMiB: number;
    readonly peakMiB: number;
    readonly growthMiB: number;
    readonly peakGrowthMiB: number;
    /** One sample every 10 s of the window, MiB. */
    readonly trace: readonly number[];
  };
  readonly failures: readonly string[];
}

export async function soak(
  server: ServerChild,
  wire: Wire,
  setup: Pick<Setup, "cases" | "tolerance" | "threads">,
  o: { seconds: number; concurrency: number; malformedEvery: number },
): Promise<SoakReport> {
  const warmS = Math.min(10, o.seconds / 10);
  const samples: { at: number; rss: number }[] = [];
  let open = Number.POSITIVE_INFINITY;
  let close = Number.POSITIVE_INFINITY;
  const sampler = setInterval(() => {
    const rss = server.rssBytes();
    if (rss !== undefined) samples.push({ at: performance.now(), rss });
  }, 1000);
  const rssNow = () => server.rssBytes() ?? Number.NaN;
  let startRss = Number.NaN;
  let endRss = Number.NaN;
  console.log(
    `[serve-load] soak: ${o.seconds} s at concurrency ${o.concurrency} after ${warmS} s warm-up, 1 in ${o.malformedEvery} malformed`,
  );
  const r = await runLoad({
    origin: server.url,
    wire,
    cases: setup.cases,
    tolerance: setup.tolerance,
    concurrency: o.concurrency,
    warmS,
    measureS: o.seconds,
    malformedEvery: o.malformedEvery,
    threads: setup.threads,
    onWindow: (edge) => {
      if (edge === "open") {
        open = performance.now();
        startRss = rssNow();
      } else {
        close = performance.now();
        endRss = rssNow();
      }
    },
  }).finally(() => clearInterval(sampler));
  const window = samples.filter((s) => s.at >= open && s.at <= close).map((s) => s.rss);
  const peak = Math.max(startRss, endRss, ...window);
  const crashed = server.exit !== undefined;
  const readyAfter =
    !crashed &&
    (await fetch(`${server.url}/v2/health/ready`).then(
      (x) => x.status === 200,
      () => false,
    ));
  const failedValid = Object.entries(r.total).reduce((a, [k, v]) => (k === "200" ? a : a + v), 0);
  const malformedNot400 = Object.entries(r.malformed.byStatus).reduce(
    (a, [k, v]) => (k === "400" ? a : a + v),
    0,
  );
  const growth = (endRss - startRss) / MiB;
  const failures: string[] = [];
  if (failedValid > 0)
    failures.push(
      `soak: ${failedValid} valid requests failed (${JSON.stringify(r.total)}): ${r.examples.join("; ")}`,
    );
  const kindsSent = Object.keys(r.malformed.byKind).length;
  if (kindsSent < 3)
    failures.push(`soak: malformed kinds sent ${JSON.stringify(r.malformed.byKind)}, expected all 3`);
  if (malformedNot400 > 0)
    failures.push(`soak: malformed requests not answered 400: ${JSON.stringify(r.malformed.byStatus)}`);
  if (crashed) failures.push(`soak: the server exited (${server.exit?.code ?? server.exit?.signal})`);
  else if (!readyAfter) failures.push("soak: the server is not ready after the soak");
  if (!(growth <= GROWTH_LIMIT_MIB))
    failures.push(`soak: RSS grew ${growth.toFixed(1)} MiB (limit ${GROWTH_LIMIT_MIB})`);
  const report: SoakReport = {
    seconds: o.seconds,
    concurrency: o.concurrency,
    throughput: r.throughput,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    valid: r.total,
    failedValid,
    malformed: r.malformed,
    crashed,
    readyAfter,
    rss: {
      startMiB: +(startRss / MiB).toFixed(1),
      endMiB: +(endRss / MiB).toFixed(1),
      peakMiB: +(peak / MiB).toFixed(1),
      growthMiB: +growth.toFixed(1),
      peakGrowthMiB: +((peak - startRss) / MiB).toFixed(1),
      trace: window.filter((_, i) => i % 10 === 0).map((b) => +(b / MiB).toFixed(1)),
    },
    failures,
  };
  const validN = Object.values(r.total).reduce((a, b) => a + b, 0);
  console.log(
    `[serve-load] soak: ${validN} valid requests, ${failedValid} failed; ${r.malformed.sent} malformed ${JSON.stringify(r.malformed.byKind)} → ${JSON.stringify(r.malformed.byStatus)}; ` +
      `${r.throughput.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms; ` +
      `crashed ${crashed}, ready after ${readyAfter}; RSS ${report.rss.startMiB} → ${report.rss.endMiB} MiB (peak ${report.rss.peakMiB}, growth ${report.rss.growthMiB} MiB, limit ${GROWTH_LIMIT_MIB})`,
  );
  return report;
}
