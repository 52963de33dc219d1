"""A weight's grid per row, for the methods that choose how each weight rounds (GPTQ, AdaRound): the same
ranges, steps and formula as aqbench.quant.quantizer, spread from groups of rows to rows."""

from dataclasses import dataclass

import torch

from aqbench.quant.quantizer import FULL_PRECISION, group_index, group_ranges, step_size


@dataclass
class RowGrid:
    lo: torch.Tensor  # (rows, 1) the grid's lower end
    scale: torch.Tensor  # (rows, 1) its step
    steps: torch.Tensor  # (rows, 1) number of steps (levels - 1)
    pruned: torch.Tensor  # (rows,) 0 bits: the row is zero
    full: torch.Tensor  # (rows,) >= 16 bits: the row is left as it is

    @classmethod
    def of(cls, w, bits, grid, lo=None, hi=None):
        """The grid of weight w (rows, cols) at per-group bits, on each group's min-max (or the given) range."""
        bits = torch.as_tensor(bits)
        lo, hi = group_ranges(w.detach(), bits.numel(), grid, lo, hi)
        rows = group_index(w.shape[0], bits.numel())
        row_bits = bits[rows].to(w.dtype)
        steps = grid.steps(row_bits.clamp(1, FULL_PRECISION - 1)).unsqueeze(1)
        lo, hi = lo[rows].unsqueeze(1), hi[rows].unsqueeze(1)
        return cls(lo, step_size(lo, hi, steps), steps, row_bits == 0, row_bits >= FULL_PRECISION)

    def position(self, w):
        """Each weight's position on its row's grid, in steps from the lower end (not rounded)."""
        return (w - self.lo) / self.scale

    def value(self, codes, w):
        """The weights of integer (or relaxed) codes, clamped to the grid; pruned rows 0, full rows w."""
        v = torch.minimum(codes.clamp_min(0), self.steps) * self.scale + self.lo
        v = torch.where(self.full.unsqueeze(1), w, v)
        return torch.where(self.pruned.unsqueeze(1), torch.zeros_like(v), v)

    def nearest(self, w):
        """Round-to-nearest: what quantize_rows gives."""
        return self.value(torch.round(self.position(w)), w)
