// Loading speed of every fixture model, median of N rounds:
//   npx tsx test/fuzz/load-speed.ts [rounds] [other-checkout]
// With a second checkout (e.g. `git archive HEAD~3 | tar -x -C /tmp/base`), both loaders run interleaved in one
// process, so the comparison sees the same machine load. "Before issue 9" is 9d4ae90, the parent of 9f1668e
// (issue 9, part 1); the checkout needs node_modules (a symlink to this one's will do):
//   mkdir /tmp/base && git archive 9d4ae90 | tar -x -C /tmp/base && ln -s "$PWD/node_modules" /tmp/base/
// The first fixture in the list also pays each loader's JIT warm-up, and the machine's other work moves single
// runs by 10-20%: compare medians of several runs.
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { readNpy } from "../../src/util/npy.js";

type Load = (path: string, opts: object) => Promise<unknown>;
const dir = join(import.meta.dirname, "../../fixtures/models");
const rounds = Number(process.argv[2] ?? 9);
const roots = [resolve(import.meta.dirname, "../.."), ...(process.argv[3] ? [resolve(process.argv[3])] : [])];
const loaders: Load[] = [];
for (const r of roots) loaders.push((await import(join(r, "src/frontends/load-model.ts"))).loadModel);
const files = readdirSync(dir).filter((f) => f.endsWith(".pt2") || f.endsWith(".pt"));
const totals = roots.map(() => 0);
for (const f of files) {
  const stem = f.replace(/\.scripted\.pt$/, "");
  const npy = [`${stem}.input.npy`, `${stem}.pos.input.npy`].find((n) => existsSync(join(dir, n)));
  const x = f.includes("scripted") && npy ? readNpy(join(dir, npy)) : undefined;
  const opts = x ? { inputTypes: [{ dtype: x.dtype, shape: x.shape }] } : {};
  const times: number[][] = roots.map(() => []);
  for (let r = 0; r < rounds + 2; r++) {
    for (const [i, load] of loaders.entries()) {
      const t0 = performance.now();
      await load(join(dir, f), opts);
      if (r >= 2) times[i].push(performance.now() - t0);
    }
  }
  const med = times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
  med.forEach((m, i) => {
    totals[i] += m;
  });
  console.log(`${f.padEnd(30)} ${med.map((m) => `${m.toFixed(2).padStart(7)} ms`).join("  ")}`);
}
console.log(
  `${"total (sum of medians)".padEnd(30)} ${totals.map((m) => `${m.toFixed(1).padStart(7)} ms`).join("  ")}`,
);
console.log(`columns: ${roots.join("  ")}`);
