export { unpickle, isAllowedGlobal, PickleError, type GlobalHandler, type UnpickleOptions } from "./vm.js";
export * from "./values.js";
export {
  DTypeMarker,
  PickledStorage,
  PickledTensor,
  PyDevice,
  torchGlobals,
  torchPersistentLoad,
  torchUnpickleOptions,
  type StorageSource,
} from "./torch.js";
export { opcodeName } from "./opcodes.js";
export { dataGlobals } from "./builtins.js";
