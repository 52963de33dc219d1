"""The post-training methods the current toolkits ship: MSE clipping, GPTQ, AdaRound, SmoothQuant. Each test
checks a property that fails if the method is wrong: an error no larger than the alternatives it must beat, a
reduction to round-to-nearest where the method has nothing to exploit, rounding to a neighbouring grid point,
a smoothed model computing the same function."""

import pytest
import torch

from aqbench.quant.adaround import adaround_weight
from aqbench.quant.gptq import gptq_weight, output_error
from aqbench.quant.mse import group_errors, shrink_factors, weight_ranges
from aqbench.quant.quantizer import GRIDS, group_minmax, quantize_rows
from aqbench.quant.rounding import RowGrid


def correlated_layer(seed=0, rows=32, cols=64, tokens=2000):
    """A heavy-tailed weight and correlated inputs with per-feature offsets (as a transformer's are)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.distributions.StudentT(3.0).sample((rows, cols)) * 0.05
    x = (
        torch.randn(tokens, cols, generator=g) @ torch.randn(cols, cols, generator=g) * 0.3
        + torch.randn(cols, generator=g)
    ) * 0.3
    return w, x, 2 * x.double().T @ x.double() / tokens


# --- MSE clipping ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", ["asym", "sym"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_mse_range_is_no_worse_than_min_max_or_any_range_on_its_grid(grid, bits):
    torch.manual_seed(3)
    w = torch.distributions.StudentT(3.0).sample((24, 40))
    g, b = GRIDS[grid], torch.tensor([bits, bits, bits, 0])  # a pruned group keeps its range, costs nothing
    factors = shrink_factors(30, 0.2)
    lo, hi, chosen = weight_ranges(w, b, g, factors)
    best = group_errors(w, quantize_rows(w, b, g, lo, hi), 4)
    mlo, mhi = group_minmax(w, 4)
    for c in factors:
        assert (best <= group_errors(w, quantize_rows(w, b, g, mlo * c, mhi * c), 4) + 1e-9).all()
    if bits <= 4:  # heavy tails at few levels: clipping helps (at 8 bits min-max may already be the best)
        assert (best[:3] < group_errors(w, quantize_rows(w, b, g), 4)[:3]).all()
    assert chosen[3] == 1.0


# --- GPTQ -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", ["asym", "sym"])
def test_gptq_with_identity_hessian_is_round_to_nearest(grid):
    w, _, _ = correlated_layer(1)
    bits = [2, 3, 4, 8]
    got = gptq_weight(w, torch.eye(w.shape[1]), bits, GRIDS[grid], block_size=16)
    assert torch.allclose(got, quantize_rows(w, bits, GRIDS[grid]), rtol=0, atol=1e-6)
    rg = RowGrid.of(w.double(), bits, GRIDS[grid])
    assert torch.equal(torch.round(rg.position(got.double())), torch.round(rg.position(w.double())))  # same codes


@pytest.mark.parametrize("grid", ["asym", "sym"])
@pytest.mark.parametrize("bits", [3, 4])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_output_error_is_below_round_to_nearest(grid, bits, act_order):
    w, _, h = correlated_layer(2)
    g = GRIDS[grid]
    got = gptq_weight(w, h, [bits] * 4, g, block_size=16, act_order=act_order)
    assert output_error(h, w, got) < 0.8 * output_error(h, w, quantize_rows(w, [bits] * 4, g))
    rg = RowGrid.of(w, [bits] * 4, g)
    assert torch.allclose(rg.nearest(got), got, atol=1e-6)  # on the grid: re-quantizing changes nothing


def test_gptq_keeps_pruned_groups_zero_and_mixed_groups_on_their_own_grid():
    w, _, h = correlated_layer(3)
    bits = [0, 2, 4, 8]
    got = gptq_weight(w, h, bits, GRIDS["sym"])
    assert (got[:8] == 0).all()
    for i, b in enumerate(bits[1:], start=1):
        rows = slice(8 * i, 8 * (i + 1))
        levels = torch.unique(torch.round(RowGrid.of(w, bits, GRIDS["sym"]).position(got)[rows]))
        assert levels.min() >= 0 and levels.max() <= 2**b - 2


# --- AdaRound -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [3, 4])
def test_adaround_rounds_each_weight_to_a_neighbour_and_beats_nearest(bits):
    w, x, h = correlated_layer(4)
    g = GRIDS["sym"]
    got, base, up, soft = adaround_weight(w, x, [bits] * 4, g, iters=400)
    assert set(up.unique().tolist()) <= {0.0, 1.0}  # hard at the end
    rg = RowGrid.of(w, [bits] * 4, g)
    codes = torch.round(rg.position(got))
    assert ((codes == base) | (codes == base + 1) | (codes == rg.steps)).all()  # down or up, never further
    assert torch.equal(torch.floor(rg.position(w)), base)
    assert output_error(h, w, got) < 0.9 * output_error(h, w, quantize_rows(w, [bits] * 4, g))
    assert soft < 1.0


# --- SmoothQuant ----------------------------------------------------------------------------------------------


def test_smoothing_factors_balance_input_and_weight_ranges():
    from aqbench.quant.smooth import factors

    x_absmax, w = torch.tensor([8.0, 1.0, 0.0]), torch.tensor([[0.5, 2.0, 1.0], [-1.0, 1.0, 3.0]])
    s = factors(x_absmax, w, 0.5)
    assert torch.allclose(s[:2], torch.tensor([(8 / 1.0) ** 0.5, (1 / 2.0) ** 0.5]))
    assert s[2] == 1.0  # an input never active keeps its weight
    assert torch.allclose(x_absmax[:2] / s[:2], w.abs().amax(0)[:2] * s[:2])  # alpha 0.5: equal ranges


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_a_smoothed_model_computes_the_same_function(arch):
    """Before quantization (weights at 16 bits: unquantized; activations passed through), the smoothed model's
    logits equal the FP model's on real batches of a task."""
    from conftest import build_tiny

    from aqbench.batching import MODEL_KEYS, batches
    from aqbench.quant.assignment import uniform
    from aqbench.quant.calibration import input_absmax
    from aqbench.quant.modules import calibrating, encoder_linears, quantize_model
    from aqbench.quant.smooth import fold_source, smooth
    from aqbench.settings import Train
    from aqbench.tasks.kinds import featurize

    task, splits, model, tok = build_tiny("sst2")
    if arch == "distilbert":
        import transformers

        torch.manual_seed(0)
        model = transformers.DistilBertForSequenceClassification(
            transformers.DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64)
        ).eval()
    with torch.no_grad():  # large input outliers on a few features, as BERT's LayerNorm outputs have
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight[:3] *= 20
    settings = Train.from_dict({"device": "cpu", "eval_batch_size": 16, "max_length": 32})
    features = featurize(task, splits["train"][:32], tok, settings, with_labels=False)
    batch = {k: v for k, v in next(batches(features, 32, tok.pad_token_id)).items() if k in MODEL_KEYS}
    with torch.no_grad():
        expected = model(**batch).logits
    assignment = uniform(model, 16, 4, "sym", act_bits=8, emb_bits=32)
    absmax = input_absmax(model, list(assignment.layers), features, tok.pad_token_id, settings)
    for name, layer in assignment.layers.items():
        layer.extra["smooth"] = fold_source(name, assignment.layers) is None
    quantize_model(model, assignment)
    how = smooth(encoder_linears(model), absmax, 0.5)
    assert sorted(set(how.values())) == ["factor", "folded"] and list(how.values()).count("folded") == 2
    with calibrating(model), torch.no_grad():
        got = model(**batch).logits
    assert (got - expected).abs().max() <= 1e-4
    smoothed = max(
        float((absmax[n] * m.in_factor).max()) for n, m in encoder_linears(model).items() if how[n] == "factor"
    )
    assert smoothed < max(float(absmax[n].max()) for n in how)  # the input ranges shrink


# --- whole runs on a trained model: a mixed assignment rounded by GPTQ ---------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import tiny_architecture

    from aqbench.data import prepare
    from aqbench.finetune import finetune
    from aqbench.settings import Data
    from aqbench.tasks import get_task

    tmp = tmp_path_factory.mktemp("trained")
    task = get_task("sst2")
    train = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 48, "device": "cpu", "eval_batch_size": 32}
    prepare(
        task,
        Data.from_dict({"source": "synthetic", "seed": 0, "synthetic": {"n_train": 160, "n_eval": 16}}),
        tmp / "data",
    )
    spec = {"source": "config", "tokenizer_vocab_size": 300, "architecture": tiny_architecture()}
    finetune(task, tmp / "data", spec, train, 0, tmp / "ckpt")
    quant = {"grid": "sym", "groups": 4, "calibration_examples": 32}
    return task, tmp, {"train": train, "quant": quant, "gptq": {"block_size": 16}, "qbert": {"bits": [2, 4, 8]}}


def test_a_searched_assignment_rounded_by_gptq_keeps_its_bits_and_beats_nearest(trained, tmp_path):
    """aq_gptq: the search's per-group bits (pruned groups included) stay as they are; every layer's output error
    is at most round-to-nearest's on the same grid; the run reloads to the same model."""
    from aqbench.methods import run_method
    from aqbench.models import load_checkpoint
    from aqbench.quant.assignment import uniform
    from aqbench.runs import load_run
    from aqbench.settings import MethodSettings

    task, tmp, settings = trained
    model, tok = load_checkpoint(task, tmp / "ckpt")
    searched = uniform(model, 4, 4, "sym")
    cycle = [0, 2, 4, 8]
    for i, layer in enumerate(searched.layers.values()):
        layer.bits = [cycle[(i + g) % 4] for g in range(layer.groups)]
    searched.save(tmp_path / "searched.json")
    info = run_method(
        "aq_gptq", task, tmp / "ckpt", tmp / "data", "b3.5", 0, MethodSettings.from_dict(settings), tmp_path / "run",
        {"assignment": str(tmp_path / "searched.json")},
    )  # fmt: skip
    assert info["layers_worse_than_nearest"] == 0 and info["output_error"] < info["nearest_output_error"]
    model, _, assignment, _ = load_run(task, tmp / "ckpt", tmp_path / "run")
    assert {n: l.bits for n, l in assignment.layers.items()} == {n: l.bits for n, l in searched.layers.items()}
    for name, m in model.named_modules():
        if name in assignment.layers and hasattr(m, "bits"):
            w = m.quantized_weight()
            rows = torch.repeat_interleave(torch.tensor(assignment.layers[name].bits), w.shape[0] // m.bits.numel())
            assert (w[rows == 0] == 0).all()  # pruned groups stay pruned


def test_qbert_assignment_rounded_by_gptq(trained, tmp_path):
    """qbert_gptq: Q-BERT's block bits from a spectrum (the more sensitive block gets more bits), then GPTQ."""
    import json

    from aqbench.methods import run_method
    from aqbench.settings import MethodSettings

    task, tmp, settings = trained
    spectrum = {
        "blocks": [
            {"name": "bert.encoder.layer.0", "sensitivity": 5.0},
            {"name": "bert.encoder.layer.1", "sensitivity": 1.0},
        ]
    }
    (tmp_path / "spectrum.json").write_text(json.dumps(spectrum))
    info = run_method(
        "qbert_gptq", task, tmp / "ckpt", tmp / "data", "b3.5", 0, MethodSettings.from_dict(settings), tmp_path / "run",
        {"spectrum": str(tmp_path / "spectrum.json")},
    )  # fmt: skip
    assert info["block_bits"]["bert.encoder.layer.0"] > info["block_bits"]["bert.encoder.layer.1"]
    assert info["layers_worse_than_nearest"] == 0 and info["output_error"] < info["nearest_output_error"]
