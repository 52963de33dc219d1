"""Quantization core shared by every method: quantizer, fake-quantized modules, assignments, sizes."""

from aqbench.quant.assignment import Assignment, LayerBits, full_precision, uniform  # noqa: F401
from aqbench.quant.modules import (  # noqa: F401
    ActQuantizer,
    QuantEmbedding,
    QuantLinear,
    calibrating,
    embedding_modules,
    encoder_blocks,
    encoder_linears,
    quantize_model,
)
from aqbench.quant.quantizer import GRIDS, fake_quant, get_grid, group_index, group_minmax, quantize_rows  # noqa: F401
from aqbench.quant.size import budget_mb, embedding_size_mb, encoder_size  # noqa: F401
