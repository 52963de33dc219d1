"""The one uniform quantizer every method uses.

A tensor is split into groups of consecutive rows (for a Linear weight: groups of output neurons; 1 group =
per tensor, out_features groups = per channel). Each group has its own range [lo, hi] and its own bit-width,
so uniform, group-wise and mixed-precision quantization, and pruning (0 bits), are the same code path.

Grids (name them in config and results; at 2-4 bits the choice moves accuracy by points):
- "asym": AQ-BERT's asymmetric min-max grid, 2^b levels from the group's min to its max:
  q = (2^b - 1) / (max - min), Q(a) = round(q (a - min)), a_hat = Q / q + min. Zero is not exactly representable.
- "sym": symmetric grid +-(2^(b-1) - 1) steps around zero with step max|a| / (2^(b-1) - 1); zero is exact.
Both are the affine map a_hat = clamp(round((a - lo) / s), 0, n) * s + lo with n steps over [lo, hi]:
asym: lo, hi = min, max, n = 2^b - 1; sym: lo, hi = -max|a|, max|a|, n = 2^b - 2.
A method that clips (ACIQ) passes its own ranges; everything else stays the same.

Gradients use the straight-through estimator: d a_hat / d a = 1 (ranges are treated as constants).
Bits >= 16 mean "not quantized" (the tensor passes through unchanged).
"""

from dataclasses import dataclass

import torch

FULL_PRECISION = 16  # bit-widths at or above this are left in floating point


@dataclass(frozen=True)
class Grid:
    name: str
    symmetric: bool
    params_per_group: int  # stored numbers per group besides the integers: scale (+ offset for asym)

    def steps(self, bits):
        """Number of quantization steps n for a bit-width tensor (levels = n + 1)."""
        return (2.0**bits - 2.0) if self.symmetric else (2.0**bits - 1.0)

    def ranges(self, lo, hi):
        """The grid's [lo, hi] from a group's observed (or clipped) min and max."""
        if self.symmetric:
            m = torch.maximum(lo.abs(), hi.abs())
            return -m, m
        return lo, hi


GRIDS = {g.name: g for g in (Grid("asym", False, 2), Grid("sym", True, 1))}


def get_grid(name):
    from aqbench.errors import AqbenchError

    if name not in GRIDS:
        raise AqbenchError(f"unknown quantization grid {name!r}: use one of {', '.join(GRIDS)} (quant.grid)")
    return GRIDS[name]


def step_size(lo, hi, steps):
    """The grid's step over [lo, hi]: the one formula every rounding path (and the packed export) uses."""
    return ((hi - lo) / steps).clamp_min(1e-12)


def group_ranges(w, groups, grid, lo=None, hi=None):
    """Per-group grid range [lo, hi]: each group's min and max (or the given, e.g. clipped, ones) on the grid."""
    if lo is None or hi is None:
        lo, hi = group_minmax(w, groups)
    return grid.ranges(lo, hi)


def fake_quant(x, lo, hi, steps):
    """Round x onto `steps` equal steps over [lo, hi] (broadcastable tensors), values clamped to the range."""
    scale = step_size(lo, hi, steps)
    # in place on one new tensor: the arithmetic of round((x - lo) / scale), clamped, * scale + lo, in one buffer
    return (x - lo).div_(scale).round_().clamp_min_(0).clamp_max_(steps).mul_(scale).add_(lo)


class _RoundSTE(torch.autograd.Function):
    """fake_quant forward, identity backward (the straight-through estimator) as one recorded op."""

    @staticmethod
    def forward(ctx, x, lo, hi, steps):
        return fake_quant(x, lo, hi, steps)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None, None


def fake_quant_ste(x, lo, hi, steps):
    """fake_quant with the straight-through gradient (d x_hat / d x = 1): the rounding runs without recording its
    ops (training steps on small matrices spend more time recording and replaying them than computing them), in one
    new tensor, which is what the forward returns. lo, hi and steps are constants."""
    return _RoundSTE.apply(x, lo, hi, steps)


def group_index(rows, groups):
    """Group id of each row: `groups` contiguous, near-equal blocks of rows (capped at one row per group)."""
    groups = min(groups, rows)
    return torch.arange(rows) * groups // rows


def group_sizes(rows, groups):
    return torch.bincount(group_index(rows, groups)).tolist()


def group_minmax(w, groups):
    """Per-group min and max of a 2-D tensor whose rows are split into `groups` contiguous blocks."""
    rows = w.shape[0]
    groups = min(groups, rows)
    flat = w.detach().reshape(rows, -1)
    if rows % groups == 0:
        return torch.aminmax(flat.reshape(groups, -1), dim=1)
    idx = group_index(rows, groups).to(w.device)
    row_lo, row_hi = flat.amin(1), flat.amax(1)
    lo = torch.full((groups,), float("inf"), device=w.device, dtype=w.dtype).scatter_reduce(0, idx, row_lo, "amin")
    hi = torch.full((groups,), float("-inf"), device=w.device, dtype=w.dtype).scatter_reduce(0, idx, row_hi, "amax")
    return lo, hi


@dataclass(frozen=True)
class RowPlan:
    """What a bit-width vector means for a weight of `rows` rows, worked out once per vector: which group each
    row is in (None when the groups split the rows evenly and a view serves), the bits and grid steps per row (or
    per group), and whether any group is pruned or left in FP. Modules keep theirs while their bits stay."""

    groups: int
    index: torch.Tensor | None
    row_bits: torch.Tensor
    steps: torch.Tensor
    all_full: bool
    special: bool


def row_plan(bits, rows, grid, dtype=torch.float32, device=None):
    bits = torch.as_tensor(bits, device=device)
    groups = bits.numel()
    index = None if rows % groups == 0 else group_index(rows, groups).to(bits.device)
    row_bits = (bits if index is None else bits[index]).to(dtype).unsqueeze(1)
    return RowPlan(
        groups,
        index,
        row_bits,
        grid.steps(row_bits.clamp(1, FULL_PRECISION - 1)),
        bool((bits >= FULL_PRECISION).all()),
        bool(((bits == 0) | (bits >= FULL_PRECISION)).any()),
    )


def quantize_rows(w, bits, grid, lo=None, hi=None, plan=None):
    """Fake-quantize a 2-D tensor group-wise, with the STE.

    bits: one bit-width per group (a 1-D integer tensor or a list; its length is the number of groups).
    lo, hi: optional per-group ranges (e.g. clipped); default each group's min and max.
    plan: row_plan(bits, ...) when the caller keeps it (the same bits quantize the weight at every step).
    0 bits = the group is pruned (all zeros, no gradient); >= FULL_PRECISION = left as is.
    """
    if plan is None:
        plan = row_plan(bits, w.shape[0], grid, w.dtype, w.device)
    if plan.all_full:
        return w
    lo, hi = group_ranges(w, plan.groups, grid, lo, hi)
    if plan.index is None:  # a view per group: no per-row copies of the group parameters
        flat = w.reshape(plan.groups, -1)
    else:
        flat, lo, hi = w.reshape(w.shape[0], -1), lo[plan.index], hi[plan.index]
    lo, hi = lo.unsqueeze(1), hi.unsqueeze(1)
    q = fake_quant_ste(flat, lo, hi, plan.steps)  # records one op where gradients are on, none otherwise
    if plan.special:
        q = torch.where(plan.row_bits >= FULL_PRECISION, flat, q)
        q = torch.where(plan.row_bits == 0, torch.zeros_like(q), q)
    return q.reshape(w.shape)


def quantize_tensor(x, bits, lo, hi, grid, steps=None):
    """Per-tensor fake quantization with given scalar range (activations), with the STE. steps: the grid's
    steps at `bits` as a tensor, when the caller keeps it."""
    if bits >= FULL_PRECISION:
        return x
    lo, hi = grid.ranges(lo, hi)
    if steps is None:
        steps = grid.steps(torch.tensor(float(bits)))
    return fake_quant_ste(x, lo, hi, steps)
