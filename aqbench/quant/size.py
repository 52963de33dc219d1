"""Size accounting as the papers report it (docs/outputs.md, "Size").

- Encoder size = the weight matrices of every Linear in the transformer blocks, in MB = 2^20 bytes. The
  embedding is counted separately; biases, LayerNorm, pooler and task head are not counted (as in the papers).
- A quantized group costs rows x in_features x bits for its integers plus its parameters: one fp16 scale, and
  for the asymmetric grid one fp16 offset (the group minimum), i.e. 32 bits per group (asym) or 16 (sym).
  A pruned group (0 bits) costs nothing; an FP layer costs 32 (or 16) bits per weight and no parameters.
- OCS's split channels are stored columns: they cost their weights at the layer's bits, plus a 16-bit index
  each (which input feature they copy). avg_bits stays per original weight, so it shows what splitting costs.
- SmoothQuant's per-input-feature factors, where they cannot be folded into the layer before, are stored: a
  16-bit factor per input feature of the layer.
- The embedding tables are quantized per row: rows x dim x bits + one group's parameters per row.
Budgets are average bits per encoder weight of the model compressed (b1.97 is 20 MB on BERT-base, 10 MB on
DistilBERT, as AQ-BERT's Table 3); `budget_mb` turns one into MB for a model.
"""

from aqbench.quant.quantizer import FULL_PRECISION, GRIDS

MB = 2**20
PARAM_BITS = 16  # each per-group scale / offset is stored as fp16
SPLIT_INDEX_BITS = 16  # each OCS split channel stores the index of the input feature it copies
SMOOTH_FACTOR_BITS = 16  # each SmoothQuant factor not folded into a preceding layer is stored as fp16


def group_param_bits(grid_name):
    return GRIDS[grid_name].params_per_group * PARAM_BITS


def layer_bits(layer, grid_name):
    """(integer bits, per-group parameter bits) of one LayerBits."""
    weight = overhead = 0
    for numel, bits in zip(layer.group_numels(), layer.bits):
        weight += numel * bits
        if 0 < bits < FULL_PRECISION:
            overhead += group_param_bits(grid_name)
    overhead += SPLIT_INDEX_BITS * len(layer.extra.get("splits", ()))
    if layer.extra.get("smooth"):
        overhead += SMOOTH_FACTOR_BITS * layer.shape[1]
    return weight, overhead


def encoder_size(assignment):
    """Size of the encoder's weight matrices under an assignment."""
    numel = weight = overhead = pruned = 0
    for layer in assignment.layers.values():
        w, o = layer_bits(layer, assignment.grid)
        numel += layer.shape[0] * layer.shape[1]
        weight += w
        overhead += o
        pruned += sum(rows * layer.shape[1] for rows, b in zip(layer.group_rows(), layer.bits) if b == 0)
    return {
        "numel": numel,
        "size_mb": (weight + overhead) / 8 / MB,
        "weight_mb": weight / 8 / MB,
        "overhead_mb": overhead / 8 / MB,
        "avg_bits": weight / numel,  # mean bit-width of the encoder weights (pruned = 0), parameters excluded
        "avg_bits_total": (weight + overhead) / numel,  # everything stored, per weight
        "pruned_frac": pruned / numel,
        "fp32_mb": numel * 32 / 8 / MB,
    }


def embedding_size_mb(shapes, bits, grid_name="asym"):
    """Size of the embedding tables [(rows, dim), ...] at `bits` (per-row parameters), in MB."""
    total = 0
    for rows, dim in shapes:
        total += rows * dim * bits
        if bits < FULL_PRECISION:
            total += rows * group_param_bits(grid_name)
    return total / 8 / MB


def budget_mb(avg_bits, numel):
    """A budget in average bits per weight as MB for an encoder of `numel` weights."""
    return avg_bits * numel / 8 / MB
