import { useHostCopyThreads } from "../backends/cuda/device/host-copy.js";
import { TorchcError } from "../errors.js";
import { parseByteSize, setLimits } from "../frontends/limits.js";
import { COMMANDS, usage } from "./commands/index.js";
import { expandSparseWeightsFlag } from "./compile-options.js";
import { oneLine } from "./escape.js";

/**
 * `--max-memory 8g` (or `--max-memory=8g`) is accepted by every command: it sets the memory budget for reading
 * untrusted files (archives, inputs, packages). Returns the arguments without it.
 */
export function takeMaxMemory(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--max-memory" || a.startsWith("--max-memory=")) {
      const v = a === "--max-memory" ? argv[++i] : a.slice("--max-memory=".length);
      if (v === undefined)
        throw new TorchcError("--max-memory needs a size, like 8g or 512m", "limits.invalid");
      setLimits({ maxMemory: parseByteSize(v) });
    } else out.push(a);
  }
  return out;
}

/** The `torchc` command: user errors print one line and exit 1; anything else is a torchc bug. */
export async function main(argv: readonly string[]): Promise<number> {
  useHostCopyThreads();
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name ? 0 : 1;
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write("torchc 0.1.0\n");
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`error: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${command.summary}\n\n${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(expandSparseWeightsFlag(takeMaxMemory(rest)));
  } catch (e) {
    if (e instanceof TorchcError) {
      process.stderr.write(`error: ${oneLine(e.message)}\n`);
      return 1;
    }
    const resource = resourceError(e);
    if (resource) {
      process.stderr.write(`error: ${resource}\n`);
      return 1;
    }
    if (e instanceof TypeError && (e as NodeJS.ErrnoException).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      process.stderr.write(`error: ${e.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (e instanceof TypeError && String((e as NodeJS.ErrnoException).code).startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`error: ${e.message}\n\n${command.usage}\n`);
      return 2;
    }
    process.stderr.write(
      `internal error in torchc (please report it with the command you ran):\n${(e as Error).stack ?? e}\n`,
    );
    return 70;
  }
}

/**
 * Running out of memory or stack is refused as one line: the budgets (limits.ts) stop hostile files before
 * this, and this is the last line of defence for whatever a budget does not cover.
 */
function resourceError(e: unknown): string | undefined {
  if (!(e instanceof RangeError)) return undefined;
  if (/Array buffer allocation failed|Invalid (typed )?array length|Invalid string length/.test(e.message))
    return `out of memory (${oneLine(e.message)}); the model or input is too large for this machine`;
  if (/Maximum call stack size exceeded/.test(e.message))
    return "the model nests too deeply to process (maximum call stack size exceeded)";
  return undefined;
}

/**
 * A reader that stops early (`torchc inspect --graph | head -1`) closes the pipe; the rest of the output has
 * nowhere to go, so the command ends quietly with status 0 instead of printing an EPIPE stack trace.
 */
export function endQuietlyOnClosedPipe(stream: NodeJS.WritableStream, exit: (code: number) => void): void {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") exit(0);
    else throw e;
  });
}

const isEntry = process.argv[1] && /(?:^|[/\\])(main\.(?:ts|js)|torchc(?:\.js)?)$/.test(process.argv[1]);
if (isEntry || process.env.TORCHC_CLI_ENTRY === "1") {
  endQuietlyOnClosedPipe(process.stdout, (code) => process.exit(code));
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
