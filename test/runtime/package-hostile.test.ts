// Regression tests of issue 9 for .torchc packages: the manifest is parsed and type-checked, names from it are
// refused when they are prototype names, weights are checked against their declared sizes, and the graph is
// verified as a user error.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { unzipSync, zipSync } from "fflate";
import { beforeAll, describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { loadPackage, savePackage } from "../../src/runtime/package.js";
import { sha256 } from "../../src/runtime/package-entries.js";
import { MODELS, tempDir } from "../helpers.js";

let pkg: string;
beforeAll(async () => {
  pkg = join(tempDir(), "mlp.torchc");
  savePackage(pkg, {
    graph: (await loadModel(join(MODELS, "mlp.pt2"))).graph,
    options: {},
    source: "mlp.pt2",
  });
});

// biome-ignore lint/suspicious/noExplicitAny: the tests edit the manifest freely
type Json = any;

function edited(edit: (m: Json, files: Record<string, Uint8Array>) => Json | undefined): string {
  const files = unzipSync(readFileSync(pkg));
  const m = JSON.parse(new TextDecoder().decode(files["manifest.json"]));
  const out = edit(m, files) ?? m;
  files["manifest.json"] = new TextEncoder().encode(typeof out === "string" ? out : JSON.stringify(out));
  const f = join(tempDir(), "edited.torchc");
  writeFileSync(f, zipSync(files, { level: 0 }));
  return f;
}

function refusal(f: string, ...fragments: RegExp[]): void {
  let caught: unknown;
  try {
    loadPackage(f);
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected an ArchiveError").toBeInstanceOf(ArchiveError);
  const message = (caught as Error).message;
  expect(message).not.toContain("\n");
  expect(message).toMatch(/edited\.torchc: /);
  for (const x of fragments) expect(message).toMatch(x);
}

describe(".torchc packages from untrusted files", () => {
  it("loads the package it saved", () => {
    expect(loadPackage(pkg).graph.nodes.length).toBeGreaterThan(3);
  });

  it("reports a manifest that is not JSON", () => {
    refusal(
      edited(() => '{"format": "torchc-package",'),
      /manifest\.json is not valid JSON/,
    );
  });

  it("type-checks the manifest with the JSON path", () => {
    refusal(
      edited((m) => {
        m.graph.nodes = {};
      }),
      /manifest\.json: at \$\.graph\.nodes: expected an array, got \{\}/,
    );
    refusal(
      edited((m) => {
        m.graph.nodes[0].args = null;
      }),
      /at \$\.graph\.nodes\[0\]\.args: expected an object, got null/,
    );
    refusal(
      edited((m) => {
        (Object.values(m.weights) as Json[])[0].shape = [-1];
      }),
      /shape\[0\]: expected a non-negative integer, got -1/,
    );
    refusal(
      edited((m) => {
        (Object.values(m.weights) as Json[])[0].dtype = "constructor";
      }),
      /dtype: expected "float32" or/,
    );
  });

  for (const name of ["__proto__", "constructor", "toString"])
    it(`refuses a weight named '${name}'`, () => {
      refusal(
        edited((m) => {
          const [k, w] = Object.entries(m.weights)[0];
          delete m.weights[k];
          return JSON.stringify(m).replace(
            '"weights":{',
            `"weights":{${JSON.stringify(name)}:${JSON.stringify(w)},`,
          );
        }),
        new RegExp(`the name '${name}' is reserved`),
      );
    });

  it("checks weight files against their declared sizes", () => {
    refusal(
      edited((m, files) => {
        const w = (Object.values(m.weights) as Json[])[0];
        files[w.file] = files[w.file].subarray(0, 10);
        // A consistent entry table (re-hashed), so the weight's own size check is what refuses it.
        m.entries[w.file] = { bytes: 10, sha256: sha256(files[w.file]) };
      }),
      /weight '\w+' is float32\[64, 20\] \(5120 bytes\) but weights\/0 has 10 bytes/,
    );
  });

  it("verifies the graph as a user error naming the node", () => {
    refusal(
      edited((m) => {
        m.graph.nodes.reverse();
      }),
      /the graph is not well formed: node '\w+' \(aten[.\w]+\) reads '\w+' before it is defined/,
    );
  });
});
