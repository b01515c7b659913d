/**
 * What every GPU test file starts with: open the GPU or say why the file is skipped (TORCHC_REQUIRE_GPU=1, set by
 * scripts/gpu.sh, turns a missing GPU into a failure), and report lines to the console and TORCHC_GPU_REPORT.
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { beforeEach } from "node:test";
import { fileURLToPath } from "node:url";
import { CudaContext } from "../../src/backends/cuda/device/context.js";

export function openGpu(): { ctx: CudaContext | undefined; skip: string | false } {
  try {
    return { ctx: CudaContext.get(0), skip: false };
  } catch (e) {
    if (process.env.TORCHC_REQUIRE_GPU === "1") throw e;
    return { ctx: undefined, skip: `no usable GPU: ${(e as Error).message.split("\n")[0]}` };
  }
}

/** A reporter that prints `[tag] {json}` and appends the JSON to TORCHC_GPU_REPORT when set. */
export function gpuReporter(tag: string): (name: string, values: Record<string, unknown>) => void {
  return (name, values) => {
    const line = JSON.stringify({ check: name, ...values });
    console.log(`[${tag}] ${line}`);
    const file = process.env.TORCHC_GPU_REPORT;
    if (file) appendFileSync(file, `${line}\n`);
  };
}

/** Records each test's start in TORCHC_GPU_REPORT, so a crash inside native code still names the test. */
export function recordTestStarts(): void {
  beforeEach((t) => {
    const file = process.env.TORCHC_GPU_REPORT;
    if (file) appendFileSync(file, `${JSON.stringify({ started: t.name })}\n`);
  });
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The repository root: two levels above test/gpu in a checkout, four above .gpu-carry/build/test/gpu where the
 * GPU tests run compiled (so a path relative to the compiled file, like test/helpers.ts's MODELS, names
 * .gpu-carry/build/fixtures instead). The first of those holding `marker` (path parts below the root);
 * undefined, despite its type, where neither does.
 */
export function repoRoot(...marker: string[]): string {
  return [join(here, "..", ".."), join(here, "..", "..", "..", "..")].find((r) =>
    existsSync(join(r, ...marker)),
  )!;
}

/**
 * A folder of script-made fixtures: `given` (an environment variable's value) when it holds `marker`, else a fresh
 * temporary one (named from `prefix`) that `python3 <script> <dir> ...args` fills, its stdout printed. `why` says
 * why there are none: the script's exit with the last `tailLines` lines of its stderr.
 */
export function scriptFixtures(opts: {
  readonly given: string | undefined;
  readonly marker: string;
  readonly prefix: string;
  readonly script: string;
  readonly args: readonly string[];
  readonly tailLines: number;
}): { dir: string; why: string | false } {
  const { given, script } = opts;
  if (given && existsSync(join(given, opts.marker))) return { dir: given, why: false };
  const dir = mkdtempSync(join(tmpdir(), opts.prefix));
  const r = spawnSync("python3", [script, dir, ...opts.args], { encoding: "utf8", timeout: 400_000 });
  console.log(r.stdout);
  if (r.status !== 0) {
    const tail = (r.stderr ?? "").split("\n").slice(-opts.tailLines).join(" ");
    return { dir, why: `${basename(script)} failed: ${tail}` };
  }
  return { dir, why: false };
}
