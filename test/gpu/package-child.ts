/**
 * The fresh process of test/gpu/package.gpu.test.ts: loads a .torchc package, runs one input, writes the output
 * and prints `[package-child] {"loadMs":…,"firstRunMs":…,"totalMs":…}`. Timing starts after the imports (process
 * start and module loading excluded) and includes the CUDA context, the libraries and the engines.
 * Also prints `[package-child-phases] [[phase, startMs], …]` (each progress event's start; a phase lasts until the
 * next one starts, the last until the load returns) and `[package-child-engines] […]` (each engine's build ms:
 * plan, cudnn, cublas, nvrtc, upload).
 *   node package-child.js model.torchc input.npy output.npy
 */
import { loadCompiled } from "../../src/runtime/compile.js";
import { readNpy, writeNpy } from "../../src/util/npy.js";
import { onProgress } from "../../src/util/progress.js";

const [pkg, input, output] = process.argv.slice(2);
const x = readNpy(input);
const phases: [string, number][] = [];
const t0 = performance.now();
const stop = onProgress((e) =>
  phases.push([`${e.phase}${e.detail ? ` (${e.detail})` : ""}`, performance.now() - t0]),
);
const compiled = await loadCompiled(pkg);
stop();
const t1 = performance.now();
phases.push(["(load returned)", t1 - t0]);
const [y] = await compiled.run([x]);
const t2 = performance.now();
writeNpy(output, y);
console.log(`[package-child] ${JSON.stringify({ loadMs: t1 - t0, firstRunMs: t2 - t1, totalMs: t2 - t0 })}`);
console.log(
  `[package-child-phases] ${JSON.stringify(phases.map(([p, at]) => [p, Math.round(at * 10) / 10]))}`,
);
// The engines' own split of their build (ms): cuDNN plan restores vs host planning vs weight upload.
const runners = (compiled as unknown as { runners: { engine?: { stats?: { ms: unknown } } }[] }).runners;
console.log(`[package-child-engines] ${JSON.stringify(runners.map((r) => r.engine?.stats?.ms ?? null))}`);
await compiled.dispose();
