"""The uniform quantizer: error bounds, grids, per-group ranges, STE gradients, pruning, reference agreement."""

import pytest
import torch

from aqbench.quant.quantizer import FULL_PRECISION, GRIDS, group_index, group_minmax, quantize_rows, quantize_tensor


def steps_of(grid, bits):
    return float(GRIDS[grid].steps(torch.tensor(float(bits))))


@pytest.mark.parametrize("grid", ["asym", "sym"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("groups", [1, 4, 12])
def test_error_within_half_a_step_of_each_group(grid, bits, groups):
    torch.manual_seed(0)
    w = torch.randn(24, 16) * torch.linspace(0.1, 5, 24).unsqueeze(1)  # groups of very different scales
    q = quantize_rows(w, [bits] * groups, GRIDS[grid])
    lo, hi = group_minmax(w, groups)
    lo, hi = GRIDS[grid].ranges(lo, hi)
    step = ((hi - lo) / steps_of(grid, bits))[group_index(24, groups)].unsqueeze(1)
    assert ((q - w).abs() <= step / 2 + 1e-6).all()


@pytest.mark.parametrize("grid,levels", [("asym", lambda b: 2**b), ("sym", lambda b: 2**b - 1)])
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_number_of_levels_and_idempotence(grid, levels, bits):
    w = torch.linspace(-3.0 if grid == "sym" else -1.0, 3.0, 1000).reshape(1, -1)
    q = quantize_rows(w, [bits], GRIDS[grid])
    assert torch.round(q * 1e5).unique().numel() == levels(bits)  # same level may differ in the last float bit
    assert torch.allclose(quantize_rows(q, [bits], GRIDS[grid]), q, atol=1e-6)  # on-grid values stay put


def test_sym_grid_keeps_zero_exact_and_asym_spans_min_to_max():
    w = torch.tensor([[-0.9, -0.2, 0.0, 0.05, 1.7]])
    assert quantize_rows(w, [3], GRIDS["sym"])[0, 2] == 0.0
    q = quantize_rows(w, [3], GRIDS["asym"])
    assert q.min() == w.min() and torch.isclose(q.max(), w.max())


def test_sym_matches_torch_reference_per_channel():
    torch.manual_seed(1)
    w = torch.randn(8, 32)
    bits = 4
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().amax(1) / qmax
    ref = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(8, dtype=torch.int32), 0, -qmax, qmax)
    assert torch.allclose(quantize_rows(w, [bits] * 8, GRIDS["sym"]), ref, atol=1e-6)


def test_per_group_ranges_are_independent():
    w = torch.cat([torch.rand(4, 8), 100 * torch.randn(4, 8)])  # a small group beside a huge one
    per_group = quantize_rows(w, [4, 4], GRIDS["asym"])
    per_tensor = quantize_rows(w, [4], GRIDS["asym"])
    small = slice(0, 4)
    assert (per_group[small] - w[small]).abs().max() < 1 / 15 / 2 + 1e-6
    assert (per_tensor[small] - w[small]).abs().max() > 1.0  # one range for all would wipe the small group out


def test_uneven_groups_match_a_brute_force_minmax():
    torch.manual_seed(2)
    w = torch.randn(10, 5)
    lo, hi = group_minmax(w, 4)
    idx = group_index(10, 4)
    assert idx.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    for g in range(4):
        rows = w[idx == g]
        assert lo[g] == rows.min() and hi[g] == rows.max()


def test_groups_are_capped_at_one_row_each():
    assert group_index(3, 128).tolist() == [0, 1, 2]


def test_zero_bits_prunes_the_group_and_full_precision_passes_through():
    torch.manual_seed(3)
    w = torch.randn(6, 4)
    q = quantize_rows(w, [0, 4, FULL_PRECISION], GRIDS["asym"])
    assert (q[:2] == 0).all()
    assert torch.equal(q[4:], w[4:])
    assert not torch.equal(q[2:4], w[2:4])
    assert quantize_rows(w, [32, 32], GRIDS["asym"]) is w


def test_straight_through_gradient_is_identity_except_pruned_groups():
    torch.manual_seed(4)
    w = torch.randn(6, 4, requires_grad=True)
    upstream = torch.randn(6, 4)
    (quantize_rows(w, [2, 0, 8], GRIDS["sym"]) * upstream).sum().backward()
    expected = upstream.clone()
    expected[2:4] = 0  # the pruned group gets no gradient
    assert torch.allclose(w.grad, expected)


def test_activation_quantizer_clamps_to_its_range_with_ste():
    x = torch.tensor([-5.0, 0.0, 0.5, 1.0, 9.0], requires_grad=True)
    q = quantize_tensor(x, 8, torch.tensor(0.0), torch.tensor(1.0), GRIDS["asym"])
    assert q[0] == 0.0 and q[-1] == 1.0
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones(5))


@pytest.mark.parametrize("grid", ["asym", "sym"])
def test_the_no_grad_path_equals_the_training_path(grid):
    """Without gradients (evaluation, PTQ, the search's candidates) the rounding runs without the STE; with them,
    under it (whose forward returns the rounded tensor itself). Both must give the same weights to the bit (ties
    included), mixed bit-widths and uneven groups too."""
    torch.manual_seed(5)
    w = torch.randn(30, 17) * 3
    for bits in ([4], [2, 3, 8, 12], [0, 5, 32], [2] * 7):
        with torch.no_grad():
            evaluated = quantize_rows(w, bits, GRIDS[grid])
        trained = quantize_rows(w.clone().requires_grad_(), bits, GRIDS[grid]).detach()
        assert torch.equal(evaluated, trained), bits


def test_a_rounding_tie_goes_the_same_way_in_evaluation_and_training():
    """0.12757206 / (0.7654323 / 15) is 2.5 in float32 and rounds (half to even) to 2; multiplied by the inverse
    step instead (PyTorch's fused fake-quantize kernels) it rounds to 3. Evaluation used that kernel until
    2026-12-07: every path now divides."""
    w = torch.tensor([[0.0, 0.12757205963134766, 0.7654322981834412]])
    step = 0.7654322981834412 / 15
    with torch.no_grad():
        evaluated = quantize_rows(w, [4], GRIDS["asym"])
    trained = quantize_rows(w.clone().requires_grad_(), [4], GRIDS["asym"]).detach()
    assert round(evaluated[0, 1].item() / step) == round(trained[0, 1].item() / step) == 2
