// .torchc packages of models with control flow (format version 3): each prim.If / prim.Loop block is saved as it
// was compiled (lowered, precisions assigned) with its own weights, so loadCompiled, which runs no passes, builds
// the same blocks and gives bit-identical outputs on the same backend. Version 1/2 packages with blocks (written
// when blocks lost their constants and lowering) and tampered packages are refused with the documented errors.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { loadTorchScript } from "../../src/frontends/torchscript/index.js";
import type { Graph } from "../../src/ir/graph.js";
import { type Tensor, tensorBytes, tensorFromNumbers } from "../../src/ir/tensor.js";
import { type CompiledModule, compile, loadCompiled } from "../../src/runtime/compile.js";
import type { CompileOptions } from "../../src/runtime/options.js";
import { loadPackage } from "../../src/runtime/package.js";
import { describePackage, formatPackage } from "../../src/runtime/package-inspect.js";
import { parseNpy } from "../../src/util/npy.js";
import { editArchive, MODELS, tempDir } from "../helpers.js";
import { f38, looped } from "./looped-fixture.js";

const npy = (f: string): Tensor => parseNpy(new Uint8Array(readFileSync(join(MODELS, f))), f);
const haveGated = existsSync(join(MODELS, "gated.scripted.pt"));

// biome-ignore lint/suspicious/noExplicitAny: the tests read and edit the manifest freely
type Json = any;
const manifestOf = (entries: Record<string, Uint8Array>): Json =>
  JSON.parse(new TextDecoder().decode(entries["manifest.json"]));
const readManifest = (f: string): Json => {
  let m: Json;
  editArchive(f, (e) => {
    m = manifestOf(e);
  });
  return m;
};
const withManifest = (f: string, edit: (m: Json, e: Record<string, Uint8Array>) => void): string =>
  editArchive(f, (e) => {
    const m = manifestOf(e);
    edit(m, e);
    e["manifest.json"] = new TextEncoder().encode(JSON.stringify(m));
  });

/** Compiles, saves and loads back; runs `check` on both modules, then disposes them. */
async function roundTrip(
  graph: Graph,
  options: CompileOptions,
  check: (saved: CompiledModule, loaded: CompiledModule, path: string) => Promise<void>,
): Promise<void> {
  const saved = await compile(graph, { backend: "reference", ...options });
  const path = join(tempDir(), "control.torchc");
  try {
    saved.save(path);
    const loaded = await loadCompiled(path);
    try {
      await check(saved, loaded, path);
    } finally {
      await loaded.dispose();
    }
  } finally {
    await saved.dispose();
  }
}

async function expectSameOutputs(a: CompiledModule, b: CompiledModule, inputs: Tensor[]): Promise<void> {
  const [x] = await a.run(inputs);
  const [y] = await b.run(inputs);
  expect(y.dtype).toBe(x.dtype);
  expect(y.shape).toEqual(x.shape);
  expect(Buffer.from(tensorBytes(y)).equals(Buffer.from(tensorBytes(x)))).toBe(true);
}

const loopInput = (scale: number) =>
  tensorFromNumbers(
    "float32",
    [3, 8],
    Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.9 + 0.3) * scale),
  );
// 0 and 3 trips of the for; 2 trips, then the while halves (scale 9)
const loopCases = [
  { n: 0, scale: 0.5 },
  { n: 3, scale: 0.5 },
  { n: 2, scale: 9 },
];

/** The dtypes of the values in every block of the module's graph (nested blocks included). */
function blockDtypes(g: Graph): Set<string> {
  const out = new Set<string>();
  for (const n of g.nodes)
    for (const b of n.subgraphs ?? []) {
      for (const t of Object.values(b.values)) out.add(t.dtype);
      for (const d of blockDtypes(b)) out.add(d);
    }
  return out;
}

describe("a saved package of the hand-built Looped (prim.Loop: a for with a constant condition, a while)", () => {
  for (const precision of ["fp32", "fp16"] as const) {
    it(`loads and gives the saved module's outputs bit for bit for 0, 2 and 3 trips (${precision})`, async () => {
      await roundTrip(looped(), { enabledPrecisions: [precision] }, async (saved, loaded, path) => {
        const m = readManifest(path);
        expect(m.version).toBe(3);
        const forLoop = m.graph.nodes.find((n: Json) => n.name === "for_loop");
        // the for body's constant condition is the block's own weight, stored as an entry of its own
        expect(Object.keys(forLoop.subgraphs[0].weights)).toContain("go");
        expect(m.entries[forLoop.subgraphs[0].weights.go.file]).toBeDefined();
        // the outer weights the body reads are not stored twice when its lowering left them unchanged
        if (precision === "fp32") expect(Object.keys(forLoop.subgraphs[0].weights)).toEqual(["go"]);
        // blocks are saved lowered: fp16 blocks hold float16 values, and the loaded module's blocks are the same
        expect(blockDtypes(loadPackage(path).graph).has("float16")).toBe(precision === "fp16");
        expect(blockDtypes(loaded.graph)).toEqual(blockDtypes(saved.savedGraph()));
        for (const c of loopCases)
          await expectSameOutputs(saved, loaded, [loopInput(c.scale), tensorFromNumbers("int64", [], [c.n])]);
      });
    });
  }

  it("saves each block's lowered graph: the loaded module's block modules have the saved module's nodes", async () => {
    await roundTrip(looped(), { enabledPrecisions: ["fp16"] }, async (saved, loaded) => {
      const ops = (m: CompiledModule) =>
        m
          .savedGraph()
          .nodes.flatMap((n) => (n.subgraphs ?? []).map((b) => b.nodes.map((k) => k.op).join(",")));
      expect(ops(loaded)).toEqual(ops(saved));
      expect(loaded.report.text).toContain("control flow: 2 loops");
    });
  });

  it("shows the control-flow blocks in torchc inspect", async () => {
    await roundTrip(looped(), {}, async (_saved, _loaded, path) => {
      const d = describePackage(path);
      expect(d.control).toEqual({ ifs: 0, loops: 2, blocks: 2, nodes: 8, weights: 1, weightBytes: 1 });
      expect(formatPackage(d)).toMatch(
        /\n {2}control: {3}2 loops: 2 blocks, saved lowered \(8 nodes, 1 weight of their own, 1 bytes\)/,
      );
    });
  });

  it("refuses a tampered or truncated block weight, naming the entry", async () => {
    await roundTrip(looped(), {}, async (_saved, _loaded, path) => {
      const m = readManifest(path);
      const file = m.graph.nodes.find((n: Json) => n.name === "for_loop").subgraphs[0].weights.go.file;
      const flipped = editArchive(path, (e) => {
        e[file] = Uint8Array.of(0);
      });
      expect(() => loadPackage(flipped)).toThrow(/entry weights\/\d+ does not match its SHA-256/);
      const cut = editArchive(path, (e) => {
        e[file] = new Uint8Array();
      });
      expect(() => loadPackage(cut)).toThrow(/entry weights\/\d+ has 0 bytes, the manifest records 1/);
      const gone = editArchive(path, (e) => {
        delete e[file];
      });
      let err: unknown;
      try {
        loadPackage(gone);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ArchiveError);
      expect((err as ArchiveError).code).toBe("package.tampered");
      expect((err as Error).message).toMatch(/is missing \(a truncated or edited package\)/);
    });
  });

  it("refuses a block without its weights table, and a version 2 package with blocks", async () => {
    await roundTrip(looped(), {}, async (_saved, _loaded, path) => {
      const noTable = withManifest(path, (m) => {
        delete m.graph.nodes.find((n: Json) => n.name === "for_loop").subgraphs[0].weights;
      });
      expect(() => loadPackage(noTable)).toThrow(/block 0 of node 'for_loop' has no weights table/);
      const old = withManifest(path, (m) => {
        m.version = 2;
      });
      let err: unknown;
      try {
        loadPackage(old);
      } catch (e) {
        err = e;
      }
      expect((err as ArchiveError).code).toBe("package.version");
      expect((err as Error).message).toMatch(
        /is a version 2 package with control-flow blocks \(block 0 of node 'for_loop'\).*compile the model again/,
      );
    });
  });
});

describe.skipIf(!haveGated)("a saved package of the scripted gated model (prim.If)", () => {
  const load = () => loadTorchScript(join(MODELS, "gated.scripted.pt"), { inputTypes: [f38] });

  for (const precision of ["fp32", "fp16"] as const)
    it(`loads and gives the saved module's outputs bit for bit on each branch (${precision})`, async () => {
      await roundTrip(
        (await load()).graph,
        { enabledPrecisions: [precision] },
        async (saved, loaded, path) => {
          expect(readManifest(path).version).toBe(3);
          expect(blockDtypes(loaded.graph).has("float16")).toBe(precision === "fp16");
          for (const tag of ["pos", "neg"])
            await expectSameOutputs(saved, loaded, [npy(`gated.${tag}.input.npy`)]);
        },
      );
    });

  it("shows the if in torchc inspect", async () => {
    await roundTrip((await load()).graph, {}, async (_saved, _loaded, path) => {
      const text = formatPackage(describePackage(path));
      expect(text).toMatch(/\n {2}control: {3}1 if: 2 blocks, saved lowered/);
    });
  });
});
