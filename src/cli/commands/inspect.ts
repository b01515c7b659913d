import { parseArgs } from "node:util";
import { defaultRegistry } from "../../converters/index.js";
import { InputError } from "../../errors.js";
import { loadModel } from "../../frontends/load-model.js";
import { printGraph } from "../../ir/printer.js";
import { formatSummary, summarizeGraph } from "../../ir/summary.js";
import { formatPartitionReport, partitionGraph } from "../../partition/index.js";
import { defaultPipeline, runPipeline } from "../../passes/pipeline.js";
import { formatTrace } from "../../passes/rewrite/trace.js";
import { normalizePrecisions } from "../../runtime/options.js";
import { isPackageFile } from "../../runtime/package.js";
import { COMPILE_FLAGS, COMPILE_USAGE, compileOptionsFrom } from "../compile-options.js";
import { writePartitionHtml } from "../partition-html.js";
import type { Command } from "./command.js";
import { inspectPackage } from "./inspect-package.js";

export const inspectCommand: Command = {
  name: "inspect",
  summary: "show a model's inputs, outputs, parameters, op histogram and graph; --partition is the dry run",
  usage:
    "usage: torchc inspect <model.pt2|model.pt|model.torchc> [--json] [--graph] [--lowered] [--trace-passes] [--partition [--html out.html]] [options]\n" +
    "  --graph          print the graph, one node a line\n" +
    "  --lowered        summarize (and with --graph print) the graph after the lowering passes\n" +
    "  --trace-passes   print every rewrite rule that fired, where, and why\n" +
    "  --partition      the dry run: engine and fallback segments, and the reason for every fallback node\n" +
    "  --html out.html  with --partition: also write the partition as a self-contained page (graph, segments,\n" +
    "                   each engine's layers and kernel schedule, each fallback node's reason)\n" +
    COMPILE_USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        ...COMPILE_FLAGS,
        json: { type: "boolean" },
        graph: { type: "boolean" },
        lowered: { type: "boolean" },
        "trace-passes": { type: "boolean" },
        partition: { type: "boolean" },
        html: { type: "string" },
      },
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${this.usage}\n`);
      return 2;
    }
    if (isPackageFile(positionals[0])) return inspectPackage(positionals[0], values.json === true);
    if (values.html !== undefined && !values.partition)
      throw new InputError("--html writes the partition report: use it with --partition", "cli.usage");
    const options = compileOptionsFrom(values);
    const model = await loadModel(positionals[0], { inputTypes: options.inputs });
    const lower = values.lowered || values["trace-passes"] || values.partition;
    const lowered = lower
      ? runPipeline(
          model.graph,
          defaultPipeline({ enabledPrecisions: normalizePrecisions(options.enabledPrecisions) }),
        )
      : undefined;
    const graph = values.lowered && lowered ? lowered.graph : model.graph;
    const partition =
      values.partition && lowered
        ? partitionGraph(lowered.graph, {
            registry: defaultRegistry(),
            minBlockSize: options.minBlockSize,
            torchExecutedOps: options.torchExecutedOps,
            requireFullCompilation: options.requireFullCompilation,
          })
        : undefined;
    if (partition && values.html !== undefined) {
      const fp16 = normalizePrecisions(options.enabledPrecisions).includes("float16");
      writePartitionHtml(values.html, model.path, partition, defaultRegistry(), fp16 ? "fp16" : "fp32");
    }
    const summary = summarizeGraph(graph);
    if (values.json) {
      const out = {
        path: model.path,
        format: model.format,
        ...summary,
        graph: values.graph ? printGraph(graph) : undefined,
        trace: values["trace-passes"] ? lowered?.trace : undefined,
        partition: partition?.report,
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(
      `${model.path} (${model.format}${values.lowered ? ", after lowering" : ""})\n${formatSummary(summary)}\n`,
    );
    if (values.graph) process.stdout.write(`\n${printGraph(graph, { weights: false })}\n`);
    if (values["trace-passes"] && lowered) process.stdout.write(`\n${formatTrace(lowered.trace)}\n`);
    if (partition) process.stdout.write(`\n${formatPartitionReport(partition.report)}\n`);
    return 0;
  },
};
