import { parseArgs } from "node:util";
import { describeCoverage, formatCoverage } from "../../converters/coverage.js";
import { defaultRegistry } from "../../converters/index.js";
import type { Command } from "./command.js";

export const convertersCommand: Command = {
  name: "converters",
  summary: "list every aten op with its converter candidates, priorities and notes",
  usage: "usage: torchc converters [--json]",
  async run(argv) {
    const { values } = parseArgs({ args: [...argv], options: { json: { type: "boolean" } } });
    const rows = describeCoverage(defaultRegistry());
    process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatCoverage(rows)}\n`);
    return 0;
  },
};
