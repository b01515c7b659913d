import { TorchcError } from "../errors.js";
import { COMMANDS, usage } from "./commands/index.js";

/** The `torchc` command: user errors print one line and exit 1; anything else is a torchc bug. */
export async function main(argv: readonly string[]): Promise<number> {
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
    return await command.run(rest);
  } catch (e) {
    if (e instanceof TorchcError) {
      process.stderr.write(`error: ${e.message}\n`);
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
