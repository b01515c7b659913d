// `torchc inspect model.torchc` (issue 12): a saved package described without building it (runtime/package-inspect.ts).
import { describePackage, formatPackage } from "../../runtime/package-inspect.js";

export function inspectPackage(path: string, json: boolean): number {
  const d = describePackage(path);
  process.stdout.write(`${json ? JSON.stringify(d, null, 2) : formatPackage(d)}\n`);
  return 0;
}
