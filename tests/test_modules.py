"""QuantLinear / activation calibration / model surgery on BERT and DistilBERT built from configs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aqbench.errors import AqbenchError
from aqbench.quant import (
    QuantEmbedding,
    QuantLinear,
    calibrating,
    encoder_linears,
    full_precision,
    quantize_model,
    uniform,
)
from aqbench.quant.quantizer import GRIDS, quantize_rows, quantize_tensor


def test_quantlinear_is_group_quantized_weight_on_quantized_input():
    torch.manual_seed(0)
    lin = nn.Linear(8, 6)
    q = QuantLinear(lin, [4, 2, 8], grid="sym", act_bits=8)
    x = torch.randn(5, 8)
    with calibrating(q):
        q(x)
    expected = F.linear(
        quantize_tensor(x, 8, x.min(), x.max(), GRIDS["asym"]),
        quantize_rows(lin.weight, [4, 2, 8], GRIDS["sym"]),
        lin.bias,
    )
    with torch.no_grad():
        assert torch.allclose(q.eval()(x), expected, atol=1e-6)


def test_evaluation_never_moves_calibrated_activation_ranges():
    torch.manual_seed(0)
    q = QuantLinear(nn.Linear(4, 4), [8], act_bits=8).eval()
    with calibrating(q):
        q(torch.rand(16, 4))  # ranges from the calibration set only: within [0, 1]
    lo, hi = q.act.lo.clone(), q.act.hi.clone()
    with torch.no_grad():
        q(100 * torch.randn(16, 4))  # evaluation data far outside
    assert torch.equal(q.act.lo, lo) and torch.equal(q.act.hi, hi)
    assert 0 <= lo < hi <= 1


def test_calibration_gathers_the_clipping_statistics_only_when_asked():
    torch.manual_seed(0)
    q = QuantLinear(nn.Linear(4, 4), [8], act_bits=8).eval()
    batches = [torch.randn(16, 4), 3 * torch.randn(8, 4) + 1]
    ranges = {}
    for stats in (False, True):
        with calibrating(q, stats=stats):
            for x in batches:
                q(x)
        ranges[stats] = (q.act.lo.clone(), q.act.hi.clone())
    assert torch.equal(ranges[False][0], ranges[True][0]) and torch.equal(ranges[False][1], ranges[True][1])
    x = torch.cat([b.reshape(-1) for b in batches]).double()
    assert ranges[True] == (x.min().float(), x.max().float())
    st = q.act.stats  # of the last pass, stats=True: what ACIQ fits
    assert st["n"] == x.numel()
    assert st["sum"] == pytest.approx(float(x.sum())) and st["sumsq"] == pytest.approx(float((x * x).sum()))
    assert st["absdev"] == pytest.approx(float(x.abs().sum()))  # center 0 on a first pass
    with calibrating(q):
        q(batches[0])
    assert q.act.stats == {}  # not gathered: every method but ACIQ


def test_uncalibrated_activations_fail_with_a_clear_error():
    q = QuantLinear(nn.Linear(4, 4), [8], act_bits=8).eval()
    with pytest.raises(AqbenchError, match="never calibrated"):
        q(torch.randn(2, 4))


def test_training_mode_tracks_ranges_with_a_moving_average():
    q = QuantLinear(nn.Linear(2, 2), [8], act_bits=8).train()
    q(torch.tensor([[0.0, 1.0]]))
    q(torch.tensor([[0.0, 2.0]]))
    assert torch.isclose(q.act.hi, torch.tensor(1.1))  # 1 + 0.1 * (2 - 1)


def test_cached_weight_follows_weight_updates():
    torch.manual_seed(0)
    q = QuantLinear(nn.Linear(4, 4), [4], act_bits=32).eval()
    x = torch.randn(2, 4)
    with torch.no_grad():
        before = q(x)
        q.weight.mul_(2.0)
        after = q(x)
    assert not torch.allclose(before, after)


def test_quantize_model_swaps_exactly_the_encoder_linears_and_embeddings(tiny_bert):
    a = uniform(tiny_bert, 4, 128, "asym", 8, 8)
    assert len(a.layers) == 2 * 6  # query, key, value, attention output, intermediate, output per layer
    assert all(l.groups == l.shape[0] for l in a.layers.values())  # 128 groups capped at the rows
    quantize_model(tiny_bert, a)
    assert all(isinstance(m, QuantLinear) for m in encoder_linears(tiny_bert).values())
    assert isinstance(tiny_bert.bert.pooler.dense, nn.Linear) and isinstance(tiny_bert.classifier, nn.Linear)
    assert isinstance(tiny_bert.bert.embeddings.word_embeddings, QuantEmbedding)
    with pytest.raises(AqbenchError, match="already quantized"):
        quantize_model(tiny_bert, a)


def test_full_precision_assignment_leaves_the_model_unchanged(tiny_bert):
    ids = torch.randint(0, 100, (2, 7))
    with torch.no_grad():
        before = tiny_bert(input_ids=ids).logits
        quantize_model(tiny_bert, full_precision(tiny_bert))
        assert torch.equal(tiny_bert(input_ids=ids).logits, before)
    assert not any(isinstance(m, QuantLinear) for m in tiny_bert.modules())


def test_an_assignment_for_another_model_is_refused(tiny_bert):
    a = uniform(tiny_bert, 4, 8)
    name = next(iter(a.layers))
    a.layers[name].shape = (999, 32)
    with pytest.raises(AqbenchError, match="shape"):
        quantize_model(tiny_bert, a)


def test_distilbert_blocks_are_found():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=50, dim=32, n_layers=3, n_heads=2, hidden_dim=64)
    )
    names = list(encoder_linears(model))
    assert len(names) == 3 * 6
    assert names[0] == "distilbert.transformer.layer.0.attention.q_lin"
