/**
 * Errors a user can act on. The CLI prints `error: <message>` for these and exits non-zero, without a stack
 * trace; anything else is a bug in torchc and is reported as one.
 */
export class TorchcError extends Error {
  constructor(
    message: string,
    /** A stable code for tests and tools: `archive.not-zip`, `op.unsupported`, `input.shape`, … */
    readonly code: string,
  ) {
    super(message);
    this.name = "TorchcError";
  }
}

/** A model archive that cannot be read (missing, not a zip, truncated, malformed metadata). */
export class ArchiveError extends TorchcError {
  constructor(
    readonly file: string,
    detail: string,
    code = "archive.invalid",
  ) {
    super(`${file}: ${detail}`, code);
    this.name = "ArchiveError";
  }
}

/** An op the compiler or an interpreter cannot execute. */
export class UnsupportedOpError extends TorchcError {
  constructor(
    message: string,
    readonly op: string,
  ) {
    super(message, "op.unsupported");
    this.name = "UnsupportedOpError";
  }
}

/** Inputs that disagree with what the model expects. */
export class InputError extends TorchcError {
  constructor(message: string, code = "input.invalid") {
    super(message, code);
    this.name = "InputError";
  }
}

/** A native library that could not be found, loaded, or that returned an error status. */
export class NativeError extends TorchcError {
  constructor(message: string, code = "native.error") {
    super(message, code);
    this.name = "NativeError";
  }
}
