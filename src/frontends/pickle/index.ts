export { dataGlobals } from "./builtins.js";
export { opcodeName } from "./opcodes.js";
export {
  DTypeMarker,
  PickledStorage,
  PickledTensor,
  PyDevice,
  type StorageSource,
  torchGlobals,
  torchPersistentLoad,
  torchUnpickleOptions,
} from "./torch.js";
export * from "./values.js";
export { type GlobalHandler, isAllowedGlobal, PickleError, type UnpickleOptions, unpickle } from "./vm.js";
