// vitest setupFiles: every fast-check property in this worker draws from the run's seed (see fast-check-seed.ts).
import fc from "fast-check";
import { resolveRuns, resolveSeed } from "./fast-check-seed.js";

const seed = resolveSeed(process.env.TORCHC_FC_SEED);
const numRuns = resolveRuns(process.env.TORCHC_FC_RUNS);
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed, ...(numRuns !== undefined ? { numRuns } : {}) });
