#!/usr/bin/env node
// How busy a thread was over time, and on what: reads a V8 CPU profile (node --cpu-prof; one file per thread, the
// main thread's ends in .0.001.cpuprofile) and prints the idle share of every second, then the self time of the
// busiest functions between FROM and TO seconds (default: the whole profile). Session 16 used it to find that
// `torchc serve --ingest-threads`' batching thread was 95% busy under load, half of it in koffi's async dispatch.
//   node scripts/cpuprofile-busy.mjs <profile.cpuprofile> [FROM_S TO_S] [TOP]
import { readFileSync } from "node:fs";

const [path, fromArg, toArg, topArg] = process.argv.slice(2);
if (!path) {
  console.error("usage: node scripts/cpuprofile-busy.mjs <profile.cpuprofile> [FROM_S TO_S] [TOP]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(path, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
let t = 0;
const samples = profile.samples.map((id, i) => {
  const d = profile.timeDeltas[i] ?? 0;
  t += d;
  return { frame: byId.get(id).callFrame, t, d };
});
const seconds = [];
for (const s of samples) {
  const b = (seconds[Math.floor(s.t / 1e6)] ??= { idle: 0, all: 0 });
  b.all += s.d;
  if (s.frame.functionName === "(idle)") b.idle += s.d;
}
console.log(`idle share per second: ${seconds.map((b, i) => `${i}s ${b ? Math.round((100 * b.idle) / b.all) : "-"}%`).join(", ")}`);
const from = fromArg === undefined ? 0 : Number(fromArg) * 1e6;
const to = toArg === undefined ? Number.POSITIVE_INFINITY : Number(toArg) * 1e6;
const self = new Map();
let total = 0;
for (const s of samples) {
  if (s.t < from || s.t > to) continue;
  const f = s.frame;
  const key = `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + s.d);
  total += s.d;
}
console.log(`self time from ${from / 1e6} s to ${to === Number.POSITIVE_INFINITY ? "the end" : `${to / 1e6} s`} (${(total / 1e6).toFixed(2)} s sampled):`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 20)))
  console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
