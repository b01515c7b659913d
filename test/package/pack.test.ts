// The package as a user gets it: `npm pack` (prepack builds dist/), installed into an empty project without the
// network, a consumer program type-checked against the shipped .d.ts and run, and `npx torchc demo`.
//
// The pack runs in a copy of the checkout, so it never races another run over dist/ nor leaves one behind.
// The install is offline: the consumer's lockfile lists torchc's dependencies with the integrity of this
// checkout's package-lock.json, so `npm ci --offline` takes them from the npm cache that `npm ci` filled here.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

// No update check, audit or funding message; no prompt from npx.
const NPM_ENV = {
  ...process.env,
  npm_config_update_notifier: "false",
  npm_config_audit: "false",
  npm_config_fund: "false",
};

/**
 * Runs a command without blocking this worker: `npm pack` and `npm ci` take a minute or more on a slow machine,
 * and a worker blocked that long misses vitest's RPC deadline ("Timeout calling onTaskUpdate").
 */
function sh(cmd: string, args: readonly string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    let out = "";
    let err = "";
    let settled = false;
    const settle = (code: number | null) => {
      if (!settled) resolve({ code, out, err });
      settled = true;
    };
    const child = spawn(cmd, args, { cwd, timeout, env: NPM_ENV });
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    child.on("error", (e) => {
      err += String(e);
      settle(null);
    });
    child.on("close", (code) => settle(code));
  });
}

/** stderr without npm's own warnings and notices (a user's npmrc can add some to every npx call). */
const withoutNpmNotices = (err: string) =>
  err
    .split("\n")
    .filter((l) => l !== "" && !/^npm (warn|notice)\b/.test(l))
    .join("\n");

const npmVersion = spawnSync("npm", ["--version"], {
  cwd: ROOT,
  encoding: "utf8",
  timeout: 30_000,
  env: NPM_ENV,
});
const npmMissing = npmVersion.status !== 0;
if (npmMissing)
  process.stderr.write(
    `test/package skipped: npm is not available (${(npmVersion.stderr ?? "").trim() || String(npmVersion.error ?? "no npm on PATH")})\n`,
  );

const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const LOCK = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

const CONSUMER = `import { join } from "node:path";
import { type CompileOptions, compile, loadModel, readNpy, type Tensor, TorchcError, toFloat64Array } from "torchc";

const dir = process.argv[2];
const options: CompileOptions = { backend: "reference", minBlockSize: 3 };
const model = await loadModel(join(dir, "tiny_resnet.pt2"));
const compiled = await compile(model, options);
const x: Tensor = readNpy(join(dir, "tiny_resnet.input.npy"));
const [y] = await compiled.run([x]);
const got = toFloat64Array(y);
const ref = toFloat64Array(readNpy(join(dir, "tiny_resnet.output.npy")));
let err = 0;
let mag = 0;
for (let i = 0; i < ref.length; i++) {
  err = Math.max(err, Math.abs(got[i] - ref[i]));
  mag = Math.max(mag, Math.abs(ref[i]));
}
let missing = "";
try {
  await loadModel(join(dir, "no-such-model.pt2"));
} catch (e) {
  if (e instanceof TorchcError) missing = e.code;
}
await compiled.dispose();
console.log(JSON.stringify({ shape: y.shape, relative: err / mag, engines: compiled.report.runners.length, missing }));
`;

// A consumer with a type error: the .d.ts must make tsc refuse it (an untyped package would let it through).
const WRONG = `import { type CompileOptions } from "torchc";
export const options: CompileOptions = { backend: "tpu" };
`;

describe.skipIf(npmMissing)("the npm package", () => {
  let work: string;
  let project: string;
  let tarball: string;
  let files: string[];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "torchc-pack-"));
    const copy = join(work, "checkout");
    // Not the git-ignored bulk (node_modules is linked; the GPU carry can be tens of MiB).
    const skip = new Set(
      ["node_modules", "dist", ".git", ".gpu-carry", ".device-out", "tmp"].map((d) => join(ROOT, d)),
    );
    cpSync(ROOT, copy, { recursive: true, filter: (src) => !skip.has(src) });
    symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"), "dir");
    const pack = await sh("npm", ["pack", "--json", "--pack-destination", work], copy, 240_000);
    if (pack.code !== 0) throw new Error(`npm pack failed (${pack.code}):\n${pack.err}\n${pack.out}`);
    const [info] = JSON.parse(pack.out.slice(pack.out.indexOf("[")));
    files = info.files.map((f: { path: string }) => f.path);
    project = join(work, "consumer");
    cpSync(join(work, info.filename), join(project, info.filename));
    tarball = info.filename;
  }, 240_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("ships the build, the command, the demo's model and the license, and no sources or tests", () => {
    for (const f of [
      "dist/index.js",
      "dist/index.d.ts",
      "dist/cli/main.js",
      "bin/torchc.js",
      "fixtures/models/tiny_resnet.pt2",
      "fixtures/models/tiny_resnet.input.npy",
      "fixtures/models/tiny_resnet.output.npy",
      "LICENSE",
      "package.json",
    ])
      expect(files).toContain(f);
    expect(files.filter((f) => /^(src|test|bench|scripts)\//.test(f) || f.endsWith(".map"))).toEqual([]);
    expect(PKG.dependencies.tsx).toBeUndefined();
    expect(PKG.devDependencies.tsx).toBeDefined();
  });

  it("installs offline into an empty project, type-checks and runs a consumer, and runs `npx torchc demo`", async () => {
    // The consumer's lockfile: torchc from the tarball, its dependencies as this checkout locked them.
    const integrity = `sha512-${createHash("sha512")
      .update(readFileSync(join(project, tarball)))
      .digest("base64")}`;
    const packages: Record<string, unknown> = {
      "": { name: "consumer", dependencies: { torchc: `file:${tarball}` } },
      "node_modules/torchc": {
        version: PKG.version,
        resolved: `file:${tarball}`,
        integrity,
        license: PKG.license,
        dependencies: PKG.dependencies,
        bin: PKG.bin,
        engines: PKG.engines,
      },
    };
    for (const [path, entry] of Object.entries(
      LOCK.packages as Record<string, { dev?: boolean; devOptional?: boolean }>,
    ))
      if (path.startsWith("node_modules/") && !entry.dev && !entry.devOptional) packages[path] = entry;
    const manifest = {
      name: "consumer",
      private: true,
      type: "module",
      dependencies: { torchc: `file:${tarball}` },
    };
    writeFileSync(join(project, "package.json"), JSON.stringify(manifest, null, 2));
    writeFileSync(
      join(project, "package-lock.json"),
      JSON.stringify({ name: "consumer", lockfileVersion: 3, requires: true, packages }, null, 2),
    );
    // Offline from the cache that `npm ci` filled; should the cache have lost a tarball, the network may fill it.
    let install = await sh("npm", ["ci", "--offline", "--no-audit", "--no-fund"], project);
    if (install.code !== 0 && install.err.includes("ENOTCACHED")) {
      process.stderr.write(
        "test/package: a dependency is not in the npm cache; retrying npm ci --prefer-offline\n",
      );
      install = await sh("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund"], project);
    }
    if (install.code !== 0) throw new Error(`npm ci failed in the consumer project:\n${install.err}`);
    const installed = join(project, "node_modules", "torchc");
    expect(readFileSync(join(installed, "LICENSE"), "utf8")).toContain("Apache License");

    // Type-check against the shipped declarations, then run what tsc emitted.
    writeFileSync(join(project, "consumer.ts"), CONSUMER);
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          skipLibCheck: true,
          outDir: "out",
          types: ["node"],
          typeRoots: [join(ROOT, "node_modules", "@types")],
        },
        files: ["consumer.ts"],
      }),
    );
    const tsc = await sh(process.execPath, [TSC, "-p", "."], project);
    expect(`${tsc.out}${tsc.err}`).toBe("");
    expect(tsc.code).toBe(0);
    const models = relative(project, join(installed, "fixtures", "models"))
      .split(sep)
      .join("/");
    const run = await sh(process.execPath, [join("out", "consumer.js"), models], project);
    expect(run.err).toBe("");
    expect(run.code).toBe(0);
    const result = JSON.parse(run.out);
    expect(result.shape).toEqual([2, 10]);
    expect(result.relative).toBeLessThan(1e-4);
    expect(result.engines).toBeGreaterThan(0);
    expect(result.missing).toMatch(/\S/);

    writeFileSync(join(project, "wrong.ts"), WRONG);
    const refused = await sh(
      process.execPath,
      [
        TSC,
        "--noEmit",
        "--strict",
        "--module",
        "NodeNext",
        "--moduleResolution",
        "NodeNext",
        "--skipLibCheck",
        "wrong.ts",
      ],
      project,
    );
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/wrong\.ts.*"tpu"/);

    // The installed command (no sources, no tsx): the demo from the shipped model.
    const demo = await sh("npx", ["--no", "torchc", "demo"], project);
    expect(withoutNpmNotices(demo.err)).toBe("");
    expect(demo.code).toBe(0);
    expect(demo.out).toMatch(/^ok: the compiled tiny_resnet reproduces PyTorch/m);
    expect((await sh("npx", ["--no", "--", "torchc", "--version"], project)).out).toBe(
      `torchc ${PKG.version}\n`,
    );
  }, 180_000);
});
