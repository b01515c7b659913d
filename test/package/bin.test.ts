// bin/torchc.js picks what to run: the sources in a checkout (never a stale dist/), dist/ in an installed package.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";

const made: string[] = [];

/** A fake package root with bin/torchc.js and what `layout` asks for; each entry point prints its name. */
function fakeRoot(layout: { src?: boolean; dist?: "older" | "newer"; tsx?: boolean }): string {
  const root = mkdtempSync(join(tmpdir(), "torchc-bin-"));
  made.push(root);
  cpSync(join(ROOT, "bin", "torchc.js"), join(root, "bin", "torchc.js"));
  writeFileSync(join(root, "package.json"), JSON.stringify({ type: "module" }));
  const old = new Date(Date.now() - 3_600_000);
  if (layout.src) {
    mkdirSync(join(root, "src", "cli"), { recursive: true });
    writeFileSync(
      join(root, "src", "cli", "main.ts"),
      'const from: string = "sources";\nconsole.log(from);\n',
    );
  }
  if (layout.dist) {
    mkdirSync(join(root, "dist", "cli"), { recursive: true });
    const built = join(root, "dist", "cli", "main.js");
    writeFileSync(built, 'console.log("dist");\n');
    if (layout.dist === "older") utimesSync(built, old, old);
    else if (layout.src) utimesSync(join(root, "src", "cli", "main.ts"), old, old);
  }
  if (layout.tsx) symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"), "dir");
  return root;
}

function torchc(root: string) {
  const r = spawnSync(process.execPath, [join(root, "bin", "torchc.js")], {
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe("bin/torchc.js", () => {
  it("runs the sources in a checkout, even when an older or newer dist/ is there", () => {
    for (const dist of ["older", "newer"] as const) {
      const r = torchc(fakeRoot({ src: true, dist, tsx: true }));
      expect(r.err).toBe("");
      expect(r.out).toBe("sources\n");
    }
  });

  it("runs dist/ in an installed package (no sources)", () => {
    const r = torchc(fakeRoot({ dist: "newer" }));
    expect(r.out).toBe("dist\n");
    expect(r.code).toBe(0);
  });

  it("in a checkout without tsx, runs dist/ only if it is newer than every source", () => {
    expect(torchc(fakeRoot({ src: true, dist: "newer" })).out).toBe("dist\n");
    const stale = torchc(fakeRoot({ src: true, dist: "older" }));
    expect(stale.out).toBe("");
    expect(stale.code).toBe(1);
    expect(stale.err).toMatch(/^error: .*checkout without tsx.*run `npm install`.*\n$/);
    expect(stale.err.trim().split("\n")).toHaveLength(1);
  });

  it("says in one line that a package without dist/ was packed without its build", () => {
    const r = torchc(fakeRoot({}));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: .*dist\/cli\/main\.js is missing: .*prepack.*\n$/);
  });
});
