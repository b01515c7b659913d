import type { Served, ServeOptions, Server } from "./server.js";

export type { Served, ServeOptions, Server };

/** serve() for the public entry: fastify, gRPC and prom-client (~230 ms to load) load on the first call, not on import. */
export async function serve(compiled: Served, opts?: ServeOptions): Promise<Server> {
  return (await import("./server.js")).serve(compiled, opts);
}
