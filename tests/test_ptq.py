"""The PTQ study's methods: ACIQ's analytic clipping, OCS's function-preserving splits, and their error
against LQ on heavy-tailed weights; runs of every PTQ method rebuild exactly from disk."""

import json

import pytest
import torch
from torch import nn

from aqbench.quant import Assignment, LayerBits, QuantLinear, encoder_size
from aqbench.quant.clipping import optimal_alpha, weight_clip_ranges
from aqbench.quant.ocs import expand, plan_activation_splits, plan_weight_splits
from aqbench.quant.quantizer import GRIDS, quantize_rows

# --- ACIQ ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dist,published", [("laplace", [2.83, 3.89, 5.03, 9.89]), ("gaussian", [1.71, 2.15, 2.55, 3.92])]
)
def test_aciq_alpha_matches_the_published_values(dist, published):
    """ACIQ's grid has 2^M levels; alpha*/b (Laplace) and alpha*/sigma (Gaussian) for M = 2, 3, 4, 8."""
    for bits, value in zip([2, 3, 4, 8], published):
        assert optimal_alpha(dist, 2**bits) == pytest.approx(value, abs=0.01)


def test_aciq_alpha_minimises_the_analytic_mse():
    import math

    def laplace_mse(a, steps):
        return 2 * math.exp(-a) + (2 * a / steps) ** 2 / 12

    for steps in (3, 7, 15):
        a = optimal_alpha("laplace", steps)
        assert laplace_mse(a, steps) < min(laplace_mse(a * 0.97, steps), laplace_mse(a * 1.03, steps))


def test_auto_fit_tells_laplace_from_gaussian():
    torch.manual_seed(0)
    values = torch.stack([torch.distributions.Laplace(0.0, 1.0).sample((20000,)), torch.randn(20000)])
    _, _, used_laplace = weight_clip_ranges(values, 2, 7.0, "auto")
    assert used_laplace.tolist() == [True, False]


# --- OCS ----------------------------------------------------------------------------------------------------


def test_weight_splits_halve_the_largest_column_and_may_split_it_again():
    w = torch.tensor([[8.0, 1.0], [0.5, -1.0]])
    splits = plan_weight_splits(w, 1.0)  # ceil(1.0 * 2) = 2 splits
    assert splits == [("w", 0), ("w", 0)]  # 8 -> 4 (+ copy 4), the column is still the largest -> 2 (+ copy 2)
    w2, index, scale = expand(w, splits)
    assert w2[0].tolist() == [2.0, 1.0, 4.0, 2.0] and index.tolist() == [0, 1, 0, 0]
    assert scale.tolist() == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("ratio,act_ratio", [(0.05, 0.0), (0.3, 0.0), (0.1, 0.1)])
def test_a_split_layer_computes_the_same_function(ratio, act_ratio):
    torch.manual_seed(1)
    lin = nn.Linear(20, 7)
    lin.weight.data = torch.distributions.StudentT(2.0).sample((7, 20))
    x = torch.randn(16, 20) * torch.linspace(0.1, 5, 20)  # some inputs with large ranges
    splits = plan_weight_splits(lin.weight, ratio)
    if act_ratio:
        _, index, scale = expand(lin.weight, splits)
        splits += plan_activation_splits(x.abs().amax(0)[index] * scale, act_ratio, 20)
    q = QuantLinear(lin, [32], act_bits=32, splits=splits)  # no quantization: only the split
    assert q.weight.shape == (7, 20 + len(splits))
    with torch.no_grad():
        assert torch.allclose(q(x), lin(x), atol=1e-5)
    assert q.weight.abs().max() < lin.weight.abs().max()


def test_activation_splits_shrink_the_input_range():
    x_absmax = torch.tensor([1.0, 10.0, 2.0])
    splits = plan_activation_splits(x_absmax, 0.5, 3)  # 2 splits: feature 1 (10 -> 5, 5), then again (5 -> 2.5)
    assert splits == [("a", 1), ("a", 1)]
    _, index, scale = expand(torch.ones(2, 3), splits)
    assert (x_absmax[index] * scale).max() == 5.0


def test_split_channels_are_counted_in_the_size():
    a = Assignment("sym", 8, 8, {"m": LayerBits((4, 10), [4, 4], {"splits": [["w", 3], ["w", 3]]})})
    size = encoder_size(a)
    assert size["weight_mb"] * 8 * 2**20 == 4 * 12 * 4  # 12 stored columns at 4 bits
    assert size["overhead_mb"] * 8 * 2**20 == 2 * 16 + 2 * 16  # two group scales + two 16-bit split indexes
    assert size["avg_bits"] == pytest.approx(4 * 12 / 10)  # per original weight


# --- error on heavy-tailed weights ---------------------------------------------------------------------------


def mse(w, q):
    return float((w - q).pow(2).mean())


@pytest.mark.parametrize("grid", ["asym", "sym"])
@pytest.mark.parametrize("bits", [3, 4])
def test_on_heavy_tailed_weights_aciq_and_ocs_beat_lq(grid, bits):
    torch.manual_seed(2)
    w = torch.distributions.StudentT(3.0).sample((64, 256))
    groups, g = 8, GRIDS[grid]
    steps = float(g.steps(torch.tensor(float(bits))))
    lq = mse(w, quantize_rows(w, [bits] * groups, g))
    lo, hi, _ = weight_clip_ranges(w, groups, steps, "auto")
    aciq = mse(w, quantize_rows(w, [bits] * groups, g, lo, hi))
    w2, index, scale = expand(w, plan_weight_splits(w, 0.05))
    # OCS's error is the error of the function: quantize the split matrix, fold the copies back onto their inputs
    folded = torch.zeros_like(w).index_add_(1, index, quantize_rows(w2, [bits] * groups, g) * scale)
    ocs = mse(w, folded)
    assert aciq < lq and ocs < lq


# --- whole runs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,budget,extra",
    [
        ("lq", "w3", {}),
        ("aciq", "w3", {}),
        ("ocs", "w3-r0.05", {"act_expand_ratio": 0.05, "clip": "aciq"}),
        ("mse", "w3", {}),
        ("gptq", "w3", {}),
        ("adaround", "w3", {}),
        ("smoothquant", "w4", {}),
    ],
)
def test_a_ptq_run_reloads_to_the_same_model_and_evaluation_data_never_moves_its_ranges(
    tmp_path, method, budget, extra
):
    from conftest import tiny_architecture

    from aqbench.data import prepare
    from aqbench.finetune import finetune
    from aqbench.methods import run_method
    from aqbench.runs import load_run
    from aqbench.settings import Data, MethodSettings
    from aqbench.tasks import get_task

    task = get_task("sst2")
    train = {
        "epochs": 1,
        "batch_size": 16,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "warmup_ratio": 0.0,
        "grad_clip": 1.0,
        "max_length": 48,
        "device": "cpu",
        "eval_batch_size": 32,
    }
    prepare(
        task,
        Data.from_dict({"source": "synthetic", "seed": 0, "synthetic": {"n_train": 64, "n_eval": 16}}),
        tmp_path / "data",
    )
    finetune(
        task,
        tmp_path / "data",
        {"source": "config", "tokenizer_vocab_size": 300, "architecture": tiny_architecture()},
        train,
        0,
        tmp_path / "ckpt",
    )
    settings = {
        "quant": {
            "grid": "sym",
            "act_grid": "asym",
            "groups": 4,
            "act_bits": 8,
            "emb_bits": 8,
            "calibration_examples": 16,
        },
        "train": train,
        "aciq": {"bits": [3], "distribution": "auto", "activations": True},
        "ocs": {"bits": [3], "expand_ratios": [0.05], "clip": "none", "act_expand_ratio": 0.0, **extra},
        "lq": {"bits": [3]},
        "mse": {"bits": [3], "grid_points": 20},
        "gptq": {"bits": [3], "block_size": 16},
        "adaround": {"bits": [3], "iters": 100},
        "smoothquant": {"bits": [4]},
    }
    info = run_method(
        method,
        task,
        tmp_path / "ckpt",
        tmp_path / "data",
        budget,
        0,
        MethodSettings.from_dict(settings),
        tmp_path / "run",
    )
    model, tok, assignment, _ = load_run(task, tmp_path / "ckpt", tmp_path / "run")
    again, _, _, _ = load_run(task, tmp_path / "ckpt", tmp_path / "run")
    ids = tok(["the film was not dull ."], return_tensors="pt")
    model.eval(), again.eval()
    ranges = {n: (b.clone()) for n, b in model.named_buffers() if n.endswith((".lo", ".hi"))}
    with torch.no_grad():
        out = model(**ids).logits
        model(input_ids=torch.randint(0, len(tok), (8, 30)))  # other data: must not move calibrated ranges
        assert torch.equal(again(**ids).logits, out)
    assert all(torch.equal(b, ranges[n]) for n, b in model.named_buffers() if n in ranges)
    if method in ("lq", "aciq", "ocs", "mse"):  # ranges only, no weight copies
        assert (tmp_path / "run" / "state.safetensors").stat().st_size < 50_000
    if method == "smoothquant":  # factors where they cannot be folded, stored and counted; the file runs the same
        from aqbench.export import export_run, load_packed
        from aqbench.quant.size import SMOOTH_FACTOR_BITS, encoder_size

        factored = [l for l in assignment.layers.values() if l.extra["smooth"]]
        assert 0 < len(factored) < len(assignment.layers)  # the attention outputs are folded into the values
        record = export_run(task, tmp_path / "ckpt", tmp_path / "run", tmp_path / "packed.safetensors")
        assert record["packed_smooth_bytes"] == 4 * sum(l.shape[1] for l in factored)
        assert encoder_size(assignment)["overhead_mb"] * 8 * 2**20 >= SMOOTH_FACTOR_BITS * sum(
            l.shape[1] for l in factored
        )
        packed, _ = load_packed(task, tmp_path / "packed.safetensors")
        with torch.no_grad():
            got = packed.eval()(**ids).logits
        assert torch.allclose(got, out, rtol=0, atol=1e-6)  # measured 2e-9: float rounding of the smoothed inputs
    if method in ("gptq", "adaround"):  # the rounding is recorded against round-to-nearest's on the same inputs
        assert 0 < info["output_error"] < info["nearest_output_error"] and info["layers_worse_than_nearest"] == 0
    saved = json.loads((tmp_path / "run" / "assignment.json").read_text())
    if method == "ocs":
        kinds = {s[0] for l in saved["layers"].values() for s in l["extra"]["splits"]}
        assert kinds == {"w", "a"}
