import { writeFileSync } from "node:fs";
import { OPS } from "../../src/ops/index.js";

const out = Object.values(OPS).map((d) => ({ name: d.name, returns: d.returns, schema: d.schema }));
writeFileSync("test/ops/_schemas.json", JSON.stringify(out));
