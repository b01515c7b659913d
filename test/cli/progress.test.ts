// The progress line of long compiles: drawn on a terminal, quiet when stderr is piped (issue 10).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ProgressLine, progressWanted, withProgress } from "../../src/cli/progress.js";
import { reportProgress } from "../../src/util/progress.js";
import { MODELS, ROOT } from "../helpers.js";

const ERASE = "\r\x1b[2K";
const BIN = join(ROOT, "bin", "torchc.js");
const MODEL = join(MODELS, "tiny_resnet.pt2");

function fakeTerminal(columns = 100) {
  const writes: string[] = [];
  return { writes, stream: { isTTY: true, columns, write: (s: string) => writes.push(s) > 0 } };
}

/** The lines a terminal would have shown, in order. */
const drawn = (text: string) =>
  text
    .split(ERASE)
    .map((s) => s.replace(/ · \d+\.\d s$/, ""))
    .filter((s) => s !== "");

describe("the progress line", () => {
  it("redraws one line in place, sub-steps after their phase, and erases it at the end", () => {
    const { writes, stream } = fakeTerminal();
    let t = 0;
    const line = new ProgressLine(stream, () => t);
    line.update({ phase: "passes" });
    t = 1500;
    line.update({ phase: "segment", done: 2, total: 3, detail: "engine, 25 nodes" });
    line.update({ phase: "compile kernels", sub: true, detail: "14 kernels" });
    line.clear();
    expect(writes.every((w) => w.startsWith(ERASE) && !w.includes("\n"))).toBe(true);
    expect(writes.slice(0, 3).map((w) => w.slice(ERASE.length))).toEqual([
      "torchc: passes · 0.0 s",
      "torchc: segment 2/3 (engine, 25 nodes) · 1.5 s",
      "torchc: segment 2/3 (engine, 25 nodes) · compile kernels (14 kernels) · 1.5 s",
    ]);
    expect(writes.at(-1)).toBe(ERASE);
  });

  it("draws a counting phase at most every 50 ms, but always its last step", () => {
    const { writes, stream } = fakeTerminal();
    let t = 0;
    const line = new ProgressLine(stream, () => t);
    for (let k = 1; k <= 100; k++) {
      t = k; // 100 steps in 100 ms
      line.update({ phase: "tune convs", sub: true, done: k, total: 100 });
    }
    expect(writes.length).toBeLessThanOrEqual(4);
    expect(writes.at(-1)).toMatch(/tune convs 100\/100/);
  });

  it("fits the terminal's width", () => {
    const { writes, stream } = fakeTerminal(40);
    new ProgressLine(stream, () => 0).update({ phase: "segment", done: 1, total: 9, detail: "x".repeat(80) });
    expect(writes[0].length - ERASE.length).toBeLessThanOrEqual(39);
    expect(writes[0].endsWith("…")).toBe(true);
  });

  it("is wanted on a terminal only, unless TORCHC_PROGRESS says otherwise", () => {
    const tty = { isTTY: true, write: () => true };
    const pipe = { isTTY: false, write: () => true };
    expect(progressWanted(tty, {})).toBe(true);
    expect(progressWanted(pipe, {})).toBe(false);
    expect(progressWanted(tty, { CI: "true" })).toBe(false);
    expect(progressWanted(tty, { TERM: "dumb" })).toBe(false);
    expect(progressWanted(tty, { TORCHC_PROGRESS: "0" })).toBe(false);
    expect(progressWanted(pipe, { TORCHC_PROGRESS: "1" })).toBe(true);
  });

  it("withProgress listens only while its work runs, and erases the line even when the work throws", async () => {
    const { writes, stream } = fakeTerminal();
    await expect(
      withProgress(
        "load",
        async () => {
          reportProgress({ phase: "passes" });
          throw new Error("boom");
        },
        stream,
        {},
      ),
    ).rejects.toThrow("boom");
    expect(drawn(writes.join(""))).toEqual(["torchc: load", "torchc: passes"]);
    expect(writes.at(-1)).toBe(ERASE);
    reportProgress({ phase: "after" });
    expect(writes.join("")).not.toContain("after");
    const quiet = fakeTerminal();
    await withProgress(
      "load",
      async () => reportProgress({ phase: "passes" }),
      { ...quiet.stream, isTTY: false },
      {},
    );
    expect(quiet.writes).toEqual([]);
  });
});

function torchc(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, CI: "", TORCHC_PROGRESS: "", ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("torchc compile's progress", () => {
  it("prints nothing on a piped stderr", () => {
    const r = torchc(["compile", MODEL], {});
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
    expect(r.out).toMatch(/^lowering: /);
  });

  it("shows each phase in order when forced on, and ends on an erased line", () => {
    const r = torchc(["compile", MODEL], { TORCHC_PROGRESS: "1" });
    expect(r.code).toBe(0);
    expect(drawn(r.err)).toEqual([
      "torchc: load",
      "torchc: passes",
      "torchc: partition",
      "torchc: segment 1/1 (engine, 25 nodes)",
    ]);
    expect(r.err.endsWith(ERASE)).toBe(true);
    expect(r.out).toMatch(/^lowering: /);
  });

  // util-linux's `script` runs the command on a pseudo-terminal: stderr is a TTY there, as in a shell.
  const script = ["/usr/bin/script", "/bin/script"].find((p) => existsSync(p));
  it.skipIf(!script)("draws on a real terminal, and the report that follows starts on a clean line", () => {
    const cmd = `"${process.execPath}" "${BIN}" compile "${MODEL}"`;
    const r = spawnSync(script!, ["-qec", cmd, "/dev/null"], {
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, CI: "", TORCHC_PROGRESS: "", TERM: "xterm" },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`${ERASE}torchc: load`);
    expect(r.stdout).toContain(`${ERASE}torchc: segment 1/1 (engine, 25 nodes)`);
    expect(r.stdout).toMatch(new RegExp(`${ERASE.replace("[", "\\[")}lowering: `));
  });
});
