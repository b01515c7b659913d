#!/usr/bin/env node
// What the JS thread did inside the event loop's longest gaps: reads a V8 CPU profile (node --cpu-prof) and the
// runtime GPU test's `[runtime] {"check":"event loop ...","longest":[{ms,endUs}]}` line, and prints for each gap
// the sampled time by leaf function and by its three callers. Both clocks are the monotonic one in µs.
//   node scripts/cpuprofile-gaps.mjs <profile.cpuprofile> <test log with the [runtime] line>
import { readFileSync } from "node:fs";

const [profilePath, logPath] = process.argv.slice(2);
if (!profilePath || !logPath) {
  console.error("usage: node scripts/cpuprofile-gaps.mjs <profile.cpuprofile> <runtime test log>");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(profilePath, "utf8"));
const line = readFileSync(logPath, "utf8")
  .split("\n")
  .find((l) => l.includes('"check":"event loop'));
if (!line) {
  console.error(`${logPath}: no event-loop report line`);
  process.exit(1);
}
const report = JSON.parse(line.slice(line.indexOf("{")));

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => {
  const f = n.callFrame;
  const where = f.url ? ` ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}` : "";
  return `${f.functionName || "(anonymous)"}${where}`;
};
const stackOf = (id, depth) => {
  const out = [];
  for (let at = id; at !== undefined && out.length < depth; at = parent.get(at)) out.push(name(byId.get(at)));
  return out.join(" ← ");
};

// Sample k covers [t_k, t_{k+1}); t_0 = startTime + timeDeltas[0].
const times = [];
let t = profile.startTime;
for (const d of profile.timeDeltas) times.push((t += d));

for (const gap of report.longest ?? []) {
  const from = gap.endUs - gap.ms * 1000;
  const leaf = new Map();
  const stacks = new Map();
  let covered = 0;
  for (let k = 0; k < profile.samples.length; k++) {
    const start = times[k];
    const end = k + 1 < times.length ? times[k + 1] : profile.endTime;
    const us = Math.min(end, gap.endUs) - Math.max(start, from);
    if (us <= 0) continue;
    covered += us;
    const id = profile.samples[k];
    const l = name(byId.get(id));
    leaf.set(l, (leaf.get(l) ?? 0) + us);
    const s = stackOf(id, 4);
    stacks.set(s, (stacks.get(s) ?? 0) + us);
  }
  console.log(`\n== gap ${gap.ms} ms ending at ${gap.endUs} µs (${(covered / 1000).toFixed(3)} ms sampled)`);
  const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  for (const [f, us] of top(leaf, 10)) console.log(`  ${(us / 1000).toFixed(3)} ms  ${f}`);
  console.log("  stacks:");
  for (const [s, us] of top(stacks, 8)) console.log(`  ${(us / 1000).toFixed(3)} ms  ${s}`);
}
