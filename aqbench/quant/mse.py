"""MSE range search (the "MSE" observers of MQBench, AIMET and Brevitas): the clipping range that minimises the
squared quantization error, searched over shrink factors c of the min-max range ([c lo, c hi] for c from 1 down
to min_factor). c = 1 is on the search grid, so the chosen range is never worse than min-max's.

Weights: per group of output rows, on the group's own bit-width. Activations: per tensor, the error summed over
the calibration set (aqbench.methods.mse runs the pass).
"""

import torch

from aqbench.quant.quantizer import FULL_PRECISION, group_index, group_minmax, quantize_rows, quantize_tensor


def shrink_factors(points, min_factor):
    """points factors from 1.0 (min-max) down to min_factor, evenly spaced."""
    return torch.linspace(1.0, float(min_factor), int(points)).tolist()


def group_errors(w, w_hat, groups):
    """Per group of rows, the summed squared error ||w_hat - w||^2."""
    rows = (w_hat - w).pow(2).reshape(w.shape[0], -1).sum(1)
    return torch.zeros(min(groups, w.shape[0]), dtype=rows.dtype).index_add_(0, group_index(w.shape[0], groups), rows)


@torch.no_grad()
def weight_ranges(w, bits, grid, factors):
    """Per-group (lo, hi): each group's [c lo, c hi] of its min and max with the c in factors of least squared
    error at the group's bits (pruned and full-precision groups keep c = 1); and the chosen c per group."""
    w = w.detach().float()
    bits = torch.as_tensor(bits)
    lo, hi = group_minmax(w, bits.numel())
    best_err = torch.full_like(lo, float("inf"))
    best_c = torch.ones_like(lo)
    for c in factors:
        err = group_errors(w, quantize_rows(w, bits, grid, lo * c, hi * c), bits.numel())
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_c = torch.where(better, torch.full_like(best_c, c), best_c)
    best_c = torch.where((bits == 0) | (bits >= FULL_PRECISION), torch.ones_like(best_c), best_c)
    return lo * best_c, hi * best_c, best_c


class ActivationErrors:
    """Accumulates, for one activation quantizer, the squared error of each shrink factor over the batches it sees
    (a forward pre-hook on the quantizer while it passes activations through unchanged)."""

    def __init__(self, quantizer, factors):
        self.q, self.factors = quantizer, factors
        self.lo, self.hi = quantizer.lo.clone(), quantizer.hi.clone()
        self.errors = torch.zeros(len(factors), dtype=torch.float64)

    def __call__(self, module, args):
        x = args[0].detach().float()
        for i, c in enumerate(self.factors):
            x_hat = quantize_tensor(x, self.q.bits, self.lo * c, self.hi * c, self.q.grid)
            self.errors[i] += (x_hat - x).double().pow(2).sum()

    def best(self):
        """(lo, hi, factor) of the factor with the least total error."""
        c = self.factors[int(torch.argmin(self.errors))]
        return self.lo * c, self.hi * c, c
