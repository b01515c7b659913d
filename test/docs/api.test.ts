import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, tempDir } from "../helpers.js";

describe("npm run docs (typedoc)", () => {
  it("builds an API reference of the public entry and the client, with the main classes in it", () => {
    const out = tempDir();
    const r = spawnSync(
      process.execPath,
      [join(ROOT, "node_modules", "typedoc", "bin", "typedoc"), "--out", out],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Found 0 errors/);
    expect(existsSync(join(out, "index.html"))).toBe(true);
    const classes = readdirSync(join(out, "classes")).join(" ");
    for (const c of ["CompiledModule", "InferenceClient"]) expect(classes).toContain(c);
    const compiled = readdirSync(join(out, "classes")).find((f) => f.includes("CompiledModule"))!;
    const page = readFileSync(join(out, "classes", compiled), "utf8");
    for (const m of ["run", "memory", "allocateInputs", "benchmark", "dispose"])
      expect(page).toContain(`>${m}<`);
  }, 120_000);
});
