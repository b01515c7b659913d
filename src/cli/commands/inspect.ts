import { parseArgs } from "node:util";
import { loadModel } from "../../frontends/load-model.js";
import { printGraph } from "../../ir/printer.js";
import { formatSummary, summarizeGraph } from "../../ir/summary.js";
import { parseInputShapes } from "../options.js";
import type { Command } from "./command.js";

export const inspectCommand: Command = {
  name: "inspect",
  summary: "show a model's inputs, outputs, parameters, op histogram and graph",
  usage: `usage: torchc inspect <model.pt2|model.pt> [--json] [--graph] [--input-shape 1x3x224x224 ...]`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        json: { type: "boolean" },
        graph: { type: "boolean" },
        "input-shape": { type: "string", multiple: true },
      },
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${this.usage}\n`);
      return 2;
    }
    const model = await loadModel(positionals[0], { inputTypes: parseInputShapes(values["input-shape"]) });
    const summary = summarizeGraph(model.graph);
    if (values.json) {
      const out = { path: model.path, format: model.format, ...summary, graph: values.graph ? printGraph(model.graph) : undefined };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(`${model.path} (${model.format})\n${formatSummary(summary)}\n`);
    if (values.graph) process.stdout.write(`\n${printGraph(model.graph, { weights: false })}\n`);
    return 0;
  },
};
