import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NativeError } from "../../src/errors.js";
import {
  clearDiscoveryCache,
  cudaIncludeDirs,
  type DiscoveryHost,
  LibraryMissingError,
  type LibraryTarget,
  loadLibrary,
  parseLdconfig,
  searchPlaces,
  systemHost,
} from "../../src/ffi/discover.js";

const CUDNN: LibraryTarget = { title: "cuDNN 9", files: ["libcudnn.so.9"], absolute: true };
const DRIVER: LibraryTarget = { title: "the CUDA driver", files: ["libcuda.so.1"], absolute: false };
const NVRTC: LibraryTarget = { title: "NVRTC", files: ["libnvrtc.so.13", "libnvrtc.so.12"], absolute: true };

let root: string;

function dir(...parts: string[]): string {
  const d = join(root, ...parts);
  mkdirSync(d, { recursive: true });
  return d;
}

function touch(...parts: string[]): string {
  const p = join(root, ...parts);
  mkdirSync(join(p, ".."), { recursive: true });
  writeFileSync(p, "not really an ELF file");
  return p;
}

function host(
  env: Record<string, string>,
  opts: { sp?: string; ldconfig?: Record<string, string> } = {},
): DiscoveryHost {
  return {
    env,
    sitePackages: (python) => (opts.sp ? { dir: opts.sp } : { error: `${python}: command not found` }),
    ldconfig: () => new Map(Object.entries(opts.ldconfig ?? {})),
    // Only the temp tree exists, so toolkit folders on the machine running the tests change nothing.
    exists: (path) => path.startsWith(root) && existsSync(path),
  };
}

/** A loader that "loads" any existing path (or the listed sonames) and records what it was asked. */
function recorder(failing: string[] = [], sonames: string[] = []) {
  const asked: string[] = [];
  const load = (path: string) => {
    asked.push(path);
    if (failing.includes(path)) throw new Error(`${path}: wrong ELF class: ELFCLASS32\nsecond line`);
    if (path.startsWith("/") ? !existsSync(path) : !sonames.includes(path))
      throw new Error(`${path}: cannot open`);
    return { handle: path };
  };
  return { asked, load };
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "torchc-discover-"));
});

afterAll(() => {
  clearDiscoveryCache();
  rmSync(root, { recursive: true, force: true });
});

describe("search order", () => {
  it("lists TORCHC_LIBRARY_PATH (left to right), the PyTorch install, CUDA_HOME/CUDA_PATH, then the toolkit", () => {
    const { places, notes } = searchPlaces(
      host(
        { TORCHC_LIBRARY_PATH: "/a:/b::", CUDA_HOME: "/opt/cuda", CUDA_PATH: "/opt/cuda2" },
        { sp: "/sp" },
      ),
    );
    expect(places.map((p) => p.dir)).toEqual([
      "/a",
      "/b",
      "/sp/torch/lib",
      "/sp/nvidia/cu13/lib",
      "/sp/nvidia/cudnn/lib",
      "/sp/nvidia/cublas/lib",
      "/sp/nvidia/cuda_nvrtc/lib",
      "/sp/nvidia/cusparselt/lib",
      "/opt/cuda/lib64",
      "/opt/cuda2/lib64",
      "/usr/local/cuda/lib64",
      "/usr/local/cuda/targets/x86_64-linux/lib",
    ]);
    expect(places[0]!.source).toBe("TORCHC_LIBRARY_PATH");
    expect(places[2]!.source).toBe("PyTorch install (python3)");
    expect(notes).toEqual([]);
  });

  it("prefers TORCHC_LIBRARY_PATH over the PyTorch install, and the PyTorch install over the toolkit", () => {
    const sp = dir("order", "sp");
    const own = dir("order", "own");
    touch("order", "sp", "nvidia", "cudnn", "lib", "libcudnn.so.9");
    const ownLib = touch("order", "own", "libcudnn.so.9");
    const { load } = recorder();
    expect(loadLibrary(CUDNN, load, host({ TORCHC_LIBRARY_PATH: own }, { sp })).path).toBe(ownLib);
    const viaSp = loadLibrary(CUDNN, load, host({}, { sp }));
    expect(viaSp.path).toBe(join(sp, "nvidia/cudnn/lib/libcudnn.so.9"));
    expect(viaSp.source).toBe("PyTorch install (python3)");
  });

  it("tries the file names in preference order within a folder", () => {
    const d = dir("names");
    touch("names", "libnvrtc.so.12");
    const hit = loadLibrary(NVRTC, recorder().load, host({ TORCHC_LIBRARY_PATH: d }));
    expect(hit.path).toBe(join(d, "libnvrtc.so.12"));
    touch("names", "libnvrtc.so.13");
    expect(loadLibrary(NVRTC, recorder().load, host({ TORCHC_LIBRARY_PATH: d })).path).toBe(
      join(d, "libnvrtc.so.13"),
    );
  });

  it("goes on past a file that exists but does not load, and reports it", () => {
    const bad = touch("bad", "a", "libcudnn.so.9");
    const good = touch("bad", "b", "libcudnn.so.9");
    const { load, asked } = recorder([bad]);
    const hit = loadLibrary(
      CUDNN,
      load,
      host({ TORCHC_LIBRARY_PATH: `${join(root, "bad/a")}:${join(root, "bad/b")}` }),
    );
    expect(hit.path).toBe(good);
    expect(asked).toEqual([bad, good]);
  });

  it("resolves absolute-only libraries through LD_LIBRARY_PATH and ldconfig, never by bare soname", () => {
    const ld = dir("ld");
    const sys = touch("sys", "libcudnn.so.9");
    const { load, asked } = recorder([], ["libcudnn.so.9"]);
    const hit = loadLibrary(
      CUDNN,
      load,
      host({ LD_LIBRARY_PATH: ld }, { ldconfig: { "libcudnn.so.9": sys } }),
    );
    expect(hit).toMatchObject({ path: sys, source: "loader cache (ldconfig -p)" });
    expect(asked).not.toContain("libcudnn.so.9");
    const inLd = touch("ld", "libcudnn.so.9");
    expect(
      loadLibrary(CUDNN, load, host({ LD_LIBRARY_PATH: ld }, { ldconfig: { "libcudnn.so.9": sys } })).path,
    ).toBe(inLd);
  });

  it("hands the driver to the loader by soname when no folder has it", () => {
    const { load, asked } = recorder([], ["libcuda.so.1"]);
    const hit = loadLibrary(DRIVER, load, host({ TORCHC_LIBRARY_PATH: dir("empty") }));
    expect(hit).toMatchObject({ path: "libcuda.so.1", source: "loader path" });
    expect(asked.at(-1)).toBe("libcuda.so.1");
  });
});

/** What loadLibrary threw. */
function missing(
  target: LibraryTarget,
  load: (path: string) => unknown,
  h: DiscoveryHost,
): LibraryMissingError {
  try {
    loadLibrary(target, load, h);
  } catch (e) {
    expect(e).toBeInstanceOf(LibraryMissingError);
    expect(e).toBeInstanceOf(NativeError);
    return e as LibraryMissingError;
  }
  throw new Error(`${target.title} loaded`);
}

describe("a missing library", () => {
  it("is one line naming the library, with every place searched kept in order on the error", () => {
    const empty = dir("missing", "own");
    const sp = dir("missing", "sp");
    const e = missing(
      CUDNN,
      recorder().load,
      host({ TORCHC_LIBRARY_PATH: empty, CUDA_HOME: "/nonexistent/cuda" }, { sp }),
    );
    expect(e.code).toBe("native.library-missing");
    expect(e.message).not.toContain("\n");
    expect(e.message).toMatch(
      /^cannot load cuDNN 9 \(libcudnn\.so\.9\): not found in 11 places \(TORCHC_VERBOSE=1/,
    );
    expect(e.message).toContain("set TORCHC_LIBRARY_PATH to the folder that holds libcudnn.so.9");
    expect(e.message).toContain("pip install nvidia-cudnn-cu13");
    expect(e.searched).toEqual([
      `TORCHC_LIBRARY_PATH: ${empty}/libcudnn.so.9 (not there)`,
      `PyTorch install (python3): ${sp}/torch/lib/libcudnn.so.9 (not there)`,
      `PyTorch install (python3): ${sp}/nvidia/cu13/lib/libcudnn.so.9 (not there)`,
      `PyTorch install (python3): ${sp}/nvidia/cudnn/lib/libcudnn.so.9 (not there)`,
      `PyTorch install (python3): ${sp}/nvidia/cublas/lib/libcudnn.so.9 (not there)`,
      `PyTorch install (python3): ${sp}/nvidia/cuda_nvrtc/lib/libcudnn.so.9 (not there)`,
      `PyTorch install (python3): ${sp}/nvidia/cusparselt/lib/libcudnn.so.9 (not there)`,
      "CUDA_HOME: /nonexistent/cuda/lib64/libcudnn.so.9 (not there)",
      "CUDA toolkit: /usr/local/cuda/lib64/libcudnn.so.9 (not there)",
      "CUDA toolkit: /usr/local/cuda/targets/x86_64-linux/lib/libcudnn.so.9 (not there)",
      "loader cache (ldconfig -p): libcudnn.so.9 (not listed)",
    ]);
  });

  it("lists every place in the message with TORCHC_VERBOSE=1", () => {
    const empty = dir("verbose", "own");
    const e = missing(CUDNN, recorder().load, host({ TORCHC_LIBRARY_PATH: empty, TORCHC_VERBOSE: "1" }));
    const lines = e.message.split("\n");
    expect(lines[0]).toMatch(/^cannot load cuDNN 9 \(libcudnn\.so\.9\): not found in \d+ places/);
    expect(lines.slice(1)).toEqual(e.searched.map((t, i) => `  ${i + 1}. ${t}`));
    expect(lines[1]).toBe(`  1. TORCHC_LIBRARY_PATH: ${empty}/libcudnn.so.9 (not there)`);
  });

  it("for the driver says no NVIDIA driver was found, and that it comes with the driver, not with PyTorch", () => {
    const e = missing(DRIVER, recorder().load, host({ TORCHC_PYTHON: "none" }));
    expect(e.message).not.toContain("\n");
    // The toolkit's two folders and the loader: the skipped PyTorch install is a note, not a place.
    expect(e.message).toMatch(
      /^no NVIDIA driver found: libcuda\.so\.1 is not in 3 places \(TORCHC_VERBOSE=1/,
    );
    expect(e.message).toContain("libcuda.so.1 comes with the NVIDIA driver");
    expect(e.message).toContain("--backend reference");
    expect(e.message).not.toContain("pip install");
  });

  it("names the pip package that brings each library, or TORCHC_LIBRARY_PATH", () => {
    const libs: [LibraryTarget, string][] = [
      [CUDNN, "pip install nvidia-cudnn-cu13 (PyTorch's CUDA 13 build brings it too)"],
      [
        { title: "cuBLASLt", files: ["libcublasLt.so.13", "libcublasLt.so.12"], absolute: true },
        "pip install nvidia-cublas (PyTorch's CUDA 13 build brings it too)",
      ],
      [NVRTC, "pip install nvidia-cuda-nvrtc (PyTorch's CUDA 13 build brings it too)"],
      [
        { title: "LibTorch (libtorch_cpu)", files: ["libtorch_cpu.so"], absolute: true },
        "install PyTorch built for CUDA 13 (pip install torch --index-url https://download.pytorch.org/whl/cu130)",
      ],
    ];
    const empty = dir("advice");
    for (const [target, advice] of libs) {
      const e = missing(target, recorder().load, host({ TORCHC_PYTHON: "none", TORCHC_LIBRARY_PATH: empty }));
      expect(e.message).not.toContain("\n");
      expect(e.message).toMatch(new RegExp(`^cannot load ${target.title.replace(/[()]/g, "\\$&")} \\(`));
      expect(e.message).toContain(
        `; ${advice}, or set TORCHC_LIBRARY_PATH to the folder that holds ${target.files[0]}`,
      );
      expect(e.message).not.toContain("NVIDIA driver");
    }
  });

  it("says where a driver library that exists failed to load, instead of 'no driver'", () => {
    const bad = touch("baddriver", "libcuda.so.1");
    const e = missing(DRIVER, recorder([bad]).load, host({ TORCHC_LIBRARY_PATH: join(root, "baddriver") }));
    expect(e.message).toMatch(
      /^cannot load the CUDA driver \(libcuda\.so\.1\): found .*libcuda\.so\.1 \(exists but failed to load/,
    );
    expect(e.message).toContain("comes with the NVIDIA driver");
  });

  it("names a file that exists but failed to load, with the loader's first line", () => {
    const bad = touch("broken", "libcudnn.so.9");
    const e = missing(CUDNN, recorder([bad]).load, host({ TORCHC_LIBRARY_PATH: join(root, "broken") }));
    expect(e.message).not.toContain("\n");
    expect(e.message).toContain(
      `found ${bad} (exists but failed to load: ${bad}: wrong ELF class: ELFCLASS32)`,
    );
  });

  it("says why the PyTorch install was not searched, and what the loader said", () => {
    const message = missing(
      DRIVER,
      recorder().load,
      host({ TORCHC_PYTHON: "/no/such/python" }),
    ).searched.join("\n");
    expect(message).toContain(
      "PyTorch install: /no/such/python gave no site-packages (/no/such/python: command not found)",
    );
    expect(message).toMatch(/loader path: dlopen\("libcuda.so.1"\) failed: libcuda.so.1: cannot open$/m);
    const skipped = missing(DRIVER, recorder().load, host({ TORCHC_PYTHON: "none" })).searched;
    expect(skipped).toContain("PyTorch install: skipped (TORCHC_PYTHON=none)");
    const own = dir("notes");
    const ordered = missing(
      CUDNN,
      recorder().load,
      host({ TORCHC_PYTHON: "none", TORCHC_LIBRARY_PATH: own }),
    );
    expect(ordered.searched.slice(0, 3)).toEqual([
      `TORCHC_LIBRARY_PATH: ${own}/libcudnn.so.9 (not there)`,
      "PyTorch install: skipped (TORCHC_PYTHON=none)",
      "CUDA toolkit: /usr/local/cuda/lib64/libcudnn.so.9 (not there)",
    ]);
  });
});

describe("the real host", () => {
  it("asks TORCHC_PYTHON for site-packages", () => {
    clearDiscoveryCache();
    const sp = dir("real", "site-packages");
    const script = join(root, "fake-python");
    writeFileSync(script, `#!/bin/sh\necho "${sp}"\n`);
    chmodSync(script, 0o755);
    const real: DiscoveryHost = { ...systemHost(), env: { TORCHC_PYTHON: script } };
    const { places } = searchPlaces(real);
    expect(places.find((p) => p.dir === join(sp, "torch/lib"))?.source).toBe(`PyTorch install (${script})`);
    const broken: DiscoveryHost = { ...systemHost(), env: { TORCHC_PYTHON: join(root, "nope") } };
    expect(searchPlaces(broken).notes[0]).toMatch(/^PyTorch install: .*nope gave no site-packages/);
  });

  it("parses ldconfig -p, preferring x86-64 entries", () => {
    const text = [
      "1234 libs found in cache `/etc/ld.so.cache'",
      "\tlibcudnn.so.9 (libc6) => /usr/lib32/libcudnn.so.9",
      "\tlibcudnn.so.9 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so.9",
      "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1",
      "Cache generated by: ldconfig",
    ].join("\n");
    const map = parseLdconfig(text);
    expect(map.get("libcudnn.so.9")).toBe("/usr/lib/x86_64-linux-gnu/libcudnn.so.9");
    expect(map.get("libcuda.so.1")).toBe("/usr/lib/x86_64-linux-gnu/libcuda.so.1");
    expect(map.size).toBe(2);
  });

  it("finds the CUDA headers folder NVRTC needs", () => {
    const sp = dir("inc", "sp");
    touch("inc", "sp", "nvidia", "cu13", "include", "cuda_fp16.h");
    expect(cudaIncludeDirs(host({}, { sp }))).toEqual([join(sp, "nvidia/cu13/include")]);
    expect(cudaIncludeDirs(host({}))).toEqual([]);
    const own = dir("inc", "own");
    touch("inc", "own", "cuda_fp16.h");
    expect(cudaIncludeDirs(host({ TORCHC_CUDA_INCLUDE_PATH: own }, { sp }))[0]).toBe(own);
  });
});
