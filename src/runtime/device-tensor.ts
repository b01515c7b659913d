// DeviceTensor is a contract between the runtime and the backends: it lives in src/core, re-exported here.
export { type DeviceTensor, isDeviceTensor } from "../core/device-tensor.js";
