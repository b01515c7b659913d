import { benchCommand } from "./bench.js";
import type { Command } from "./command.js";
import { compileCommand } from "./compile.js";
import { convertersCommand } from "./converters.js";
import { demoCommand } from "./demo.js";
import { inspectCommand } from "./inspect.js";
import { runCommand } from "./run.js";
import { serveCommand } from "./serve.js";
import { verifyCommand } from "./verify.js";

export const COMMANDS: readonly Command[] = [
  inspectCommand,
  compileCommand,
  runCommand,
  convertersCommand,
  benchCommand,
  verifyCommand,
  serveCommand,
  demoCommand,
];

export function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `torchc — compile trained PyTorch models for NVIDIA GPUs\n\nusage: torchc <command> [options]\n\ncommands:\n${COMMANDS.map(
    (c) => `  ${c.name.padEnd(width)}  ${c.summary}`,
  ).join(
    "\n",
  )}\n\nEvery command takes --max-memory <size> (default 4g, or TORCHC_MAX_MEMORY): the most memory that reading\nuntrusted files may take (archives, inputs, packages); larger files are refused in one line.\nRun 'torchc <command> --help' for a command's options.\n`;
}
