"""Rounding layer by layer, in the encoder's order (GPTQ, AdaRound): each Linear is rounded on the inputs it gets
from the layers before it, already rounded, as both papers do. Activations pass through in FP while the
weights are rounded; their ranges are calibrated afterwards on the finished model, as every method's are."""

import torch

from aqbench.progress import Progress
from aqbench.quant.modules import QuantLinear, calibrating, encoder_linears
from aqbench.quant.quantizer import group_minmax


def fix_ranges(model):
    """Every clipped QuantLinear keeps its groups' min-max ranges of the weights before rounding, so rounding
    that moves a weight never moves its grid (and the packed export stores the same grid)."""
    for m in model.modules():
        if isinstance(m, QuantLinear) and m.w_lo is not None:
            lo, hi = group_minmax(m.weight.detach(), m.bits.numel())
            m.w_lo.copy_(lo)
            m.w_hi.copy_(hi)


def round_in_order(model, round_layer, desc):
    """For each quantized encoder Linear in order, replace its weight by round_layer(name, module) (which may
    run the model up to that layer); returns {name: whatever round_layer's second value is}."""
    layers = [(n, m) for n, m in encoder_linears(model).items() if isinstance(m, QuantLinear)]
    bar = Progress(len(layers), desc)
    records = {}
    with calibrating(model):
        for name, module in layers:
            weight, records[name] = round_layer(name, module)
            with torch.no_grad():
                module.weight.copy_(weight.to(module.weight.dtype))
            bar.update(1)
    bar.close()
    return records
