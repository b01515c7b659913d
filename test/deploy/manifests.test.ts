/**
 * deploy/: the Dockerfile and the KServe manifests agree with torchc itself. The container's arguments parse
 * with `torchc serve`'s own flags, the ports and probe paths are the ones the server answers on, and the
 * InferenceService names a runtime and model format the ServingRuntime declares. (Not checked here: KServe's
 * published CRD schemas themselves; those need the cluster's CRDs, e.g. `kubectl apply --dry-run=server`.)
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { SERVE_FLAGS } from "../../src/cli/commands/serve.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { compile } from "../../src/runtime/compile.js";
import { type Server, serve } from "../../src/serve/server.js";
import { MODELS, ROOT } from "../helpers.js";

const read = (f: string) => parse(readFileSync(join(ROOT, "deploy", f), "utf8"));
const runtime = read("kserve-servingruntime.yaml");
const isvc = read("kserve-inferenceservice.yaml");
const container = runtime.spec.containers[0];

let server: Server | undefined;
afterAll(async () => server?.drain());

describe("deploy/ manifests", () => {
  it("declare the resources KServe expects", () => {
    expect(runtime).toMatchObject({ apiVersion: "serving.kserve.io/v1alpha1", kind: "ServingRuntime" });
    expect(runtime.spec.protocolVersions).toEqual(expect.arrayContaining(["v2", "grpc-v2"]));
    expect(container).toMatchObject({ name: "kserve-container" });
    expect(typeof container.image).toBe("string");
    expect(container.resources.limits["nvidia.com/gpu"]).toBe("1");
    expect(isvc).toMatchObject({ apiVersion: "serving.kserve.io/v1beta1", kind: "InferenceService" });
    const model = isvc.spec.predictor.model;
    expect(model.runtime).toBe(runtime.metadata.name);
    expect(runtime.spec.supportedModelFormats.map((f: { name: string }) => f.name)).toContain(
      model.modelFormat.name,
    );
    expect(model.protocolVersion).toBe("v2");
  });

  it("the container's arguments are a valid `torchc serve` command whose ports match the container's", () => {
    const [command, ...rest] = container.args as string[];
    expect(command).toBe("serve");
    const { values, positionals } = parseArgs({
      args: rest,
      options: SERVE_FLAGS,
      allowPositionals: true,
      strict: true,
    });
    expect(positionals).toEqual(["/mnt/models/model.pt2"]);
    expect(container.ports.map((p: { containerPort: number }) => String(p.containerPort))).toContain(
      values.port,
    );
    expect(container.readinessProbe.httpGet.port).toBe(Number(values.port));
    expect(runtime.spec.annotations["prometheus.kserve.io/port"]).toBe(values.port);
    expect(values.host).toBe("0.0.0.0");
  });

  it("the probe and metrics paths are ones the server answers 200 on", async () => {
    const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
    server = await serve(compiled, { port: 0, log: false });
    const paths = [
      container.readinessProbe.httpGet.path,
      container.livenessProbe.httpGet.path,
      runtime.spec.annotations["prometheus.kserve.io/path"],
    ];
    for (const p of paths) expect((await fetch(new URL(p, server.url))).status, p).toBe(200);
  });

  it("the Dockerfile copies what the package ships and exposes serve's default ports", () => {
    const docker = readFileSync(join(ROOT, "deploy", "Dockerfile"), "utf8");
    for (const m of docker.matchAll(/^COPY (\S+)/gm)) {
      const path = m[1] === "package.json" ? "package.json" : m[1];
      if (path !== "dist") expect(existsSync(join(ROOT, path)), path).toBe(true);
    }
    expect(docker).toMatch(/^EXPOSE 8000 8001$/m);
    expect(docker).toMatch(/^ENTRYPOINT \["torchc"\]$/m);
  });
});
