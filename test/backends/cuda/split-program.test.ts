// The engine's generated kernels split into several NVRTC programs (builder.ts, TORCHC_NVRTC_PROGRAMS): every
// distinct kernel in exactly one part, each part a whole translation unit (the prelude first), the same split
// for the same plan (each part is a kernel-cache entry), and one part the single program itself.
import { describe, expect, it } from "vitest";
import { engineNvrtcOptions, nvrtcPrograms } from "../../../src/backends/cuda/builder.js";
import { splitProgram } from "../../../src/backends/cuda/kernels/generated.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { efficientNetB0 } from "../../../src/backends/cuda/testing/nets.js";

const plan = planCudaEngine(efficientNetB0(1, 7, 64), { precision: "fp16", channelsLast: true });
const program = plan.program;

describe("splitting the generated kernels into NVRTC programs", () => {
  it("the program is its prelude and its distinct kernels, in order", () => {
    expect(program.units.length).toBe(program.uniqueKernels);
    expect(program.units.length).toBeGreaterThan(8);
    expect(program.source).toBe(`${program.prelude}\n${program.units.map((u) => u.source).join("\n")}`);
    expect(new Set(program.symbols)).toEqual(new Set(program.units.map((u) => u.symbol)));
  });

  for (const n of [2, 3, 8])
    it(`${n} parts: each distinct kernel once, each part a whole program, balanced by source length`, () => {
      const parts = splitProgram(program, n);
      expect(parts).toHaveLength(n);
      const symbols = parts.flatMap((p) => p.symbols);
      expect(symbols).toEqual(program.units.map((u) => u.symbol));
      for (const p of parts) {
        expect(p.source.startsWith(`${program.prelude}\n`)).toBe(true);
        for (const s of p.symbols) expect(p.source).toContain(`${s}(`);
      }
      const sizes = parts.map((p) => p.source.length - program.prelude.length);
      const largestUnit = Math.max(...program.units.map((u) => u.source.length));
      const share = (program.source.length - program.prelude.length) / n;
      for (const size of sizes) expect(size).toBeLessThanOrEqual(share + largestUnit + 2);
      expect(splitProgram(program, n)).toEqual(parts);
    });

  it("one part, or fewer kernels than parts: the program itself, or a kernel per part", () => {
    expect(splitProgram(program, 1)).toEqual([
      { source: program.source, symbols: program.units.map((u) => u.symbol) },
    ]);
    const many = splitProgram(program, 10_000);
    expect(many).toHaveLength(program.units.length);
    for (const p of many) expect(p.symbols).toHaveLength(1);
  });

  it("the part count and NVRTC's split-compile come from the environment, bounded", () => {
    expect(nvrtcPrograms({})).toBe(1);
    expect(nvrtcPrograms({ TORCHC_NVRTC_PROGRAMS: "0" })).toBe(1);
    expect(nvrtcPrograms({ TORCHC_NVRTC_PROGRAMS: "x" })).toBe(1);
    expect(nvrtcPrograms({ TORCHC_NVRTC_PROGRAMS: "64" })).toBeLessThanOrEqual(8);
    expect(engineNvrtcOptions({})).toEqual([]);
    expect(engineNvrtcOptions({ TORCHC_NVRTC_SPLIT_COMPILE: "0" })).toEqual(["--split-compile=0"]);
    expect(engineNvrtcOptions({ TORCHC_NVRTC_SPLIT_COMPILE: "-1" })).toEqual([]);
  });
});
