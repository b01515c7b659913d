/**
 * Where a long compile is, for whoever listens (`torchc`'s progress line on a terminal). Published on a
 * `node:diagnostics_channel` channel, so the compiler needs no option or callback threaded through its phases,
 * and a report costs one check when nobody listens (a library user, a pipe).
 */
import { channel } from "node:diagnostics_channel";

/**
 * A phase of the compile and, when it counts something, how far it is (`done` of `total`). A `sub` step belongs
 * to the phase before it (the engine being built: its kernels, its convolution tuning).
 */
export interface ProgressEvent {
  /** "load", "passes", "partition", "segment", "compile kernels", "tune convs", "capture", … */
  readonly phase: string;
  readonly sub?: boolean;
  readonly done?: number;
  readonly total?: number;
  /** A few words: the segment, the kernel count. */
  readonly detail?: string;
}

const PROGRESS = channel("torchc:progress");

export function reportProgress(event: ProgressEvent): void {
  if (PROGRESS.hasSubscribers) PROGRESS.publish(event);
}

/** Listens until the returned function is called. */
export function onProgress(listener: (event: ProgressEvent) => void): () => void {
  const handler = (message: unknown) => listener(message as ProgressEvent);
  PROGRESS.subscribe(handler);
  return () => {
    PROGRESS.unsubscribe(handler);
  };
}
