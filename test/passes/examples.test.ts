import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { exampleGraph, main } from "../../examples/custom-pass.js";
import { ROOT } from "../helpers.js";
import { expectSameResults } from "./graphs.js";

describe("examples/custom-pass.ts", () => {
  it("rewrites with the user's rules and prints their trace", () => {
    const { graph, text } = main();
    expect(graph.nodes.map((n) => n.op)).toEqual(["aten.relu.default", "aten.add.Tensor"]);
    expect(text).toMatch(/pass my-algebra: 3 changes/);
    expect(text).toMatch(
      /mul-by-one\s+\S+ \(aten\.mul\.Tensor\) at model\.py:12 in forward\s+\[examples\/custom-pass\.ts:\d+\]/,
    );
    expect(text).toMatch(/relu-of-relu/);
    expectSameResults(exampleGraph(), graph);
  });

  it("runs as a script", () => {
    const out = execFileSync(
      process.execPath,
      ["--import", "tsx", join(ROOT, "examples", "custom-pass.ts")],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(out).toContain("pass my-algebra: 3 changes");
  });
});
