#!/usr/bin/env node
// The `torchc` command.
//  - In a checkout (src/ is there) it runs the TypeScript sources through tsx, so that a dist/ left by an earlier
//    build never shadows the sources. Without tsx (dev dependencies not installed) it runs dist/ only if dist/ is
//    newer than every source file, and otherwise says what to do.
//  - An installed package has no src/: it runs the compiled dist/ that `npm pack` built (prepack).
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "src", "cli", "main.ts");
const built = join(root, "dist", "cli", "main.js");

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

/** The newest modification time of any file under dir. */
function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (existsSync(source)) {
  let tsx;
  try {
    tsx = await import("tsx/esm/api");
  } catch {
    tsx = undefined;
  }
  if (tsx) {
    tsx.register();
    await import(pathToFileURL(source).href);
  } else if (existsSync(built) && statSync(built).mtimeMs >= newest(join(root, "src"))) {
    await import(pathToFileURL(built).href);
  } else {
    fail(
      `${root} is a torchc checkout without tsx (a dev dependency) and without an up-to-date dist/: ` +
        "run `npm install` to run the sources, or `npm run build`",
    );
  }
} else if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  fail(`${built} is missing: this torchc package was packed without its build (npm pack runs prepack, which builds it)`);
}
