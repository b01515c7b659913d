/** What `--ingest-threads` (./ingest.ts) accepts, checked before anything is loaded or compiled. */

/** Most ingest threads (each holds a V8 isolate and its bodies in flight). */
export const MAX_INGEST_THREADS = 64;

/** Whether this Node can listen on one port from several threads (net.Server's reusePort: 22.12+, 23.1+). */
export function reusePortSupported(version = process.versions.node): boolean {
  const [major, minor] = version.split(".").map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** Why `n` ingest threads cannot run here, or undefined. */
export function ingestThreadsRefusal(n: number, version = process.versions.node): string | undefined {
  if (!Number.isInteger(n) || n < 1 || n > MAX_INGEST_THREADS)
    return `--ingest-threads must be an integer from 1 to ${MAX_INGEST_THREADS}, got ${n}`;
  if (n > 1 && !reusePortSupported(version))
    return `--ingest-threads ${n} needs Node 22.12 or newer (several threads on one port need SO_REUSEPORT); this is Node ${version}: use --ingest-threads 1 or --processes`;
  return undefined;
}
