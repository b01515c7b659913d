// compareTensors lives in src/util/compare.ts (verify and the CLI both use it); kept here for existing imports.
export { type Agreement, compareTensors } from "../util/compare.js";
