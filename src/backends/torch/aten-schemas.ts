/**
 * PyTorch schemas of aten overloads outside torchc's op catalogue, so the LibTorch fallback can call them
 * (argument order, defaults, kinds and result count: what the dispatcher stack needs; output types come from
 * the exported graph). Keyed by dotted overload name; the value is the schema's argument list and its returns.
 *
 * Regenerate the full table with the installed PyTorch (every aten overload, exactly as that version declares
 * it) on a machine with torch: `python3 test/backends/torch/make_aten_schemas.py`. The entries below are a
 * hand-written seed of common ops, each copied from PyTorch's native_functions.yaml.
 */
export const ATEN_SCHEMAS_TORCH = "seed";

export const ATEN_SCHEMAS: Readonly<Record<string, string>> = {
  "aten.index_put.default": "Tensor self, Tensor?[] indices, Tensor values, bool accumulate=False -> Tensor",
  "aten.pixel_shuffle.default": "Tensor self, int upscale_factor -> Tensor",
  "aten.pixel_unshuffle.default": "Tensor self, int downscale_factor -> Tensor",
  "aten.grid_sampler_2d.default":
    "Tensor input, Tensor grid, int interpolation_mode, int padding_mode, bool align_corners -> Tensor",
  "aten.erfinv.default": "Tensor self -> Tensor",
  "aten.atan2.default": "Tensor self, Tensor other -> Tensor",
  "aten.lerp.Tensor": "Tensor self, Tensor end, Tensor weight -> Tensor",
  "aten.topk.default":
    "Tensor self, SymInt k, int dim=-1, bool largest=True, bool sorted=True -> (Tensor values, Tensor indices)",
  "aten.sort.default": "Tensor self, int dim=-1, bool descending=False -> (Tensor values, Tensor indices)",
};
