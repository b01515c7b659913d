// The CUDA backend on a machine without an NVIDIA driver: one line that says so and what to do (issue 10).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MODELS, ROOT, tempDir } from "../helpers.js";

const hasDriver = existsSync("/dev/nvidiactl") || existsSync("/proc/driver/nvidia");

describe.skipIf(hasDriver)("torchc without an NVIDIA driver", () => {
  it("refuses --backend cuda in one line naming the driver, with a search path that has nothing", () => {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, "bin", "torchc.js"), "compile", join(MODELS, "tiny_resnet.pt2"), "--backend", "cuda"],
      {
        encoding: "utf8",
        timeout: 120_000,
        env: { ...process.env, TORCHC_LIBRARY_PATH: tempDir(), TORCHC_PYTHON: "none", TORCHC_VERBOSE: "" },
      },
    );
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /^error: no NVIDIA driver found: libcuda\.so\.1 is not in \d+ places \(TORCHC_VERBOSE=1 lists them\); .*--backend reference.*\n$/,
    );
    expect(r.stderr).not.toContain("pip install");
  });
});
