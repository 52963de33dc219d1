"""AQ-BERT: the super-network's mix, the size loss, derive + repair, the search itself, and the student.

Every test is seeded (torch.manual_seed / generators), so CPU runs are reproducible."""

import dataclasses
import json

import pytest
import torch
from torch import nn

from aqbench.errors import AqbenchError
from aqbench.quant.quantizer import quantize_rows
from aqbench.quant.size import MB, encoder_size
from aqbench.quant.supernet import SearchLinear, derive, expected_size_bits, search_layers, set_temperature, to_supernet
from aqbench.search import bilevel_search, size_loss, split_heldout, temperature
from aqbench.settings import Aq, Data, MethodSettings, Quant
from aqbench.tasks.kinds.features import Features

QUANT = Quant(grid="sym", act_grid="asym", groups=4, act_bits=8, emb_bits=8)
SEARCH = {
    "epochs": 4,
    "steps_per_epoch": 25,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "grad_clip": 1.0,
    "warmup_epochs": 1,
    "arch_optimizer": "adam",
    "arch_lr": 0.05,
    "arch_momentum": 0.9,
    "size_weight": 1.0,
    "epsilon": 0.02,
    "t0": 5.0,
    "eta": 0.5,
    "n0": 1,
}


def naive_mix(layer, p):
    """sum_c p_c Q_c(w) with one straight-through quantizer per candidate: the definition the layer must match."""
    w, rows = layer.weight, layer.row_group
    out = 0.0
    for k, bits in enumerate(layer.candidates):
        if bits:
            out = out + p[rows, k : k + 1] * quantize_rows(w, [bits] * layer.groups, layer.grid)
    return out


def test_the_shared_weight_mix_equals_the_mix_of_quantized_copies_in_value_and_gradients():
    torch.manual_seed(0)
    layer = SearchLinear(nn.Linear(12, 8), groups=4, candidates=[0, 2, 4, 8], grid="sym")
    with torch.no_grad():
        layer.alpha.normal_()
    layer.temperature = 0.7
    layer.eval()  # noise-free probabilities: the same p on both sides
    target = torch.randn(8, 12)
    fast = layer.mixed_weight()
    (fast * target).sum().backward()
    g_w, g_a = layer.weight.grad.clone(), layer.alpha.grad.clone()
    layer.weight.grad = layer.alpha.grad = None
    slow = naive_mix(layer, layer.probabilities())
    (slow * target).sum().backward()
    assert torch.allclose(fast, slow, atol=1e-6)
    assert torch.allclose(g_w, layer.weight.grad, atol=1e-6)
    assert torch.allclose(g_a, layer.alpha.grad, atol=1e-6)


def test_gumbel_softmax_gradient_reaches_the_architecture_parameters():
    torch.manual_seed(0)
    layer = SearchLinear(nn.Linear(16, 8), groups=4, candidates=[0, 2, 4, 8], grid="asym").train()
    layer.act.lo.fill_(-3.0)
    layer.act.hi.fill_(3.0)
    out = layer(torch.randn(5, 16))
    ((out - torch.randn(5, 8)) ** 2).mean().backward()
    assert layer.alpha.grad is not None and torch.isfinite(layer.alpha.grad).all()
    assert (layer.alpha.grad.abs().sum(1) > 0).all(), "every group's architecture parameters get a gradient"
    # noise: two forward passes in training mode draw different mixes
    assert not torch.equal(layer.mixed_weight(), layer.mixed_weight())


def test_expected_size_is_the_size_accounting_of_each_choice_at_low_temperature(tiny_bert):
    layers = to_supernet(tiny_bert, QUANT, [0, 2, 4, 8])
    torch.manual_seed(1)
    for m in layers.values():
        with torch.no_grad():
            m.alpha.normal_(0, 3)
    set_temperature(tiny_bert, 1e-4)  # softmax(alpha / t) = the argmax
    assignment, info = derive(tiny_bert, budget_bits=1e12, settings=QUANT, eps=1.0)  # band [0, V]: the argmax itself
    assert info["steps_down"] == info["steps_up"] == 0
    expected = float(expected_size_bits(tiny_bert).detach()) / 8 / MB
    assert expected == pytest.approx(encoder_size(assignment)["size_mb"], rel=1e-6)
    assert info["size_bits"] / 8 / MB == pytest.approx(encoder_size(assignment)["size_mb"], rel=1e-9)


@pytest.mark.parametrize("avg_bits", [0.8, 1.97, 2.47, 3.5, 6.0])
def test_derived_assignment_fits_the_budget_and_is_within_epsilon_when_it_binds(tiny_bert, avg_bits):
    layers = to_supernet(tiny_bert, QUANT, [0, 2, 4, 8])
    torch.manual_seed(2)
    for m in layers.values():
        with torch.no_grad():
            m.alpha.normal_(0, 1)
    numel = sum(m.out_features * m.in_features for m in layers.values())
    budget = avg_bits * numel
    eps = 0.02
    assignment, info = derive(tiny_bert, budget, QUANT, eps=eps)
    size = encoder_size(assignment)["size_mb"] * 8 * MB
    assert size <= budget + 1e-6
    # a repaired assignment lands in the band [(1 - eps) V, V], or within one group's step of V where one step
    # is more than eps V (here at 0.8 bits: a group is 4% of the budget; on BERT-base it is 1/9216 of it)
    step = max(float((m.cost_bits[:, 1:] - m.cost_bits[:, :-1]).max()) for m in layers.values())
    if info["argmax_bits"] > budget or info["argmax_bits"] < (1 - eps) * budget:
        assert size >= min((1 - eps) * budget, budget - step)
        if step < eps * budget:
            assert size >= (1 - eps) * budget
    assert info["steps_down"] > 0 or info["steps_up"] > 0 or (1 - eps) * budget <= info["argmax_bits"] <= budget


def test_repair_steps_down_the_least_certain_group_first():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2))
    layers = to_supernet(model, dataclasses.replace(QUANT, groups=2), [0, 2, 4], names=["0"])
    with torch.no_grad():  # both groups choose 4 bits; group 1 is nearly undecided between 2 and 4
        layers["0"].alpha.copy_(torch.tensor([[0.0, 0.0, 5.0], [0.0, 1.9, 2.0]]))
    cost4 = float(layers["0"].cost_bits[0, 2])
    cost2 = float(layers["0"].cost_bits[0, 1])
    assignment, info = derive(model, budget_bits=cost4 + cost2, settings=dataclasses.replace(QUANT, groups=2))
    assert assignment.layers["0"].bits == [4, 2]
    assert info["steps_down"] == 1


def test_a_budget_no_choice_can_meet_is_refused():
    model = nn.Sequential(nn.Linear(4, 2))
    to_supernet(model, dataclasses.replace(QUANT, groups=2), [2, 4], names=["0"])
    with pytest.raises(AqbenchError, match="cannot be met"):
        derive(model, budget_bits=8.0, settings=dataclasses.replace(QUANT, groups=2))


def test_size_loss_is_flat_in_the_band_and_pushes_towards_it():
    target = 10.0
    for value, sign in ((12.0, 1), (10.1, 0), (9.9, 0), (8.0, -1)):
        e = torch.tensor(value, requires_grad=True)
        size_loss(e, target, 0.02).backward()
        assert (e.grad > 0) == (sign > 0) and (e.grad < 0) == (sign < 0) and (e.grad == 0) == (sign == 0)
    assert temperature(0, 5.0, 0.5, 1) == temperature(1, 5.0, 0.5, 1) == 5.0
    assert temperature(3, 5.0, 0.5, 1) == pytest.approx(5.0 * torch.exp(torch.tensor(-1.0)).item())


def test_heldout_split_is_disjoint_and_seeded():
    examples = [{"i": i} for i in range(100)]
    train, held = split_heldout(examples, 0.1, seed=3)
    assert len(held) == 10 and len(train) == 90
    assert not {e["i"] for e in train} & {e["i"] for e in held}
    assert held == split_heldout(examples, 0.1, seed=3)[1]


# --- the search on a constructed model -----------------------------------------------------------------------


class DeadFeatures(nn.Module):
    """x -> relu(hidden(x)) * mask -> out: the hidden features with mask 0 have no effect on the loss, so the
    groups of `hidden` that compute them are free to prune."""

    def __init__(self, dead_groups, groups=8, width=32):
        super().__init__()
        self.hidden = nn.Linear(16, width)
        self.out = nn.Linear(width, 3)
        mask = torch.ones(width)
        rows = width // groups
        for g in dead_groups:
            mask[g * rows : (g + 1) * rows] = 0
        self.register_buffer("mask", mask)

    def forward(self, x, y):
        logits = self.out(torch.relu(self.hidden(x)) * self.mask)
        return nn.functional.cross_entropy(logits, y)


def toy_features(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = (x[:, :3].argmax(1)).tolist()
    return Features([{"input_ids": [0], "x": x[i].tolist(), "y": y[i]} for i in range(n)], list(range(n)))


def toy_search(size_weight, avg_bits=1.4, dead=(1, 4, 6), seed=0):
    torch.manual_seed(seed)
    model = DeadFeatures(dead)
    quant = dataclasses.replace(QUANT, groups=8)
    to_supernet(model, quant, [0, 2, 4, 8], names=["hidden"])
    layer = search_layers(model)["hidden"]
    layer.act.lo.fill_(-4.0)
    layer.act.hi.fill_(4.0)
    budget = avg_bits * layer.out_features * layer.in_features
    trace = bilevel_search(
        model,
        toy_features(512, seed),
        toy_features(128, seed + 1),
        0,
        budget,
        Aq.from_dict({**SEARCH, "size_weight": size_weight, "epochs": 6, "steps_per_epoch": 50, "lr": 3e-3}),
        seed,
        torch.device("cpu"),
        loss_fn=lambda m, b: m(b["x"], b["y"]),
    )
    return model, layer, budget, trace


def test_search_prunes_the_groups_that_do_not_affect_the_loss():
    # 1.4 bits per weight: 2 bits for every group is over the budget, so about 3 of the 8 groups must go; the
    # search must pick the 3 whose features the loss never sees
    model, layer, budget, trace = toy_search(size_weight=0.1)
    chosen = layer.chosen_bits()
    assert [chosen[g] for g in (1, 4, 6)] == [0, 0, 0], chosen
    assert all(chosen[g] > 0 for g in (0, 2, 3, 5, 7)), chosen
    assignment, _ = derive(model, budget, dataclasses.replace(QUANT, groups=8), eps=0.02)
    assert [assignment.layers["hidden"].bits[g] for g in (1, 4, 6)] == [0, 0, 0]


def test_a_stronger_size_penalty_gives_a_smaller_expected_size():
    sizes = {w: toy_search(size_weight=w, avg_bits=1.5, dead=())[3][-1]["expected_mb"] for w in (0.01, 3.0)}
    assert sizes[3.0] < sizes[0.01], sizes
    trace = toy_search(size_weight=3.0, avg_bits=1.5, dead=())[3]
    assert trace[-1]["expected_mb"] < trace[0]["expected_mb"]  # and it moved towards the budget


def test_search_of_a_tiny_bert_derives_assignments_within_the_budget(tmp_path):
    from aqbench import config as aqconfig
    from aqbench.data import prepare
    from aqbench.finetune import finetune
    from aqbench.search import search
    from aqbench.tasks import get_task

    task = get_task("sst2")
    cfg = aqconfig.load(
        {
            "tasks": ["sst2"],
            "methods": ["aq"],
            "budgets": [1.97],
            "data": {"synthetic": {"n_train": 300, "n_eval": 40}},
            "models": {
                "bert": {
                    "source": "config",
                    "tokenizer_vocab_size": 300,
                    "architecture": {
                        "hidden_size": 32,
                        "num_hidden_layers": 2,
                        "num_attention_heads": 2,
                        "intermediate_size": 64,
                    },
                }
            },
            "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "max_length": 32, "device": "cpu"},
            "quant": {"groups": 4, "calibration_examples": 32},
            "aq": {"epochs": 2, "steps_per_epoch": 5, "batch_size": 16, "lr": 1e-4},
        }
    )
    prepare(task, Data.from_dict(cfg["data"]), tmp_path / "data")
    finetune(task, tmp_path / "data", cfg["models"]["bert"], cfg["train"], 0, tmp_path / "model")
    for bits in (1.0, 1.97, 4.0):
        record = search(
            task,
            tmp_path / "model",
            tmp_path / "data",
            bits,
            MethodSettings.from_dict(aqconfig.search_settings(cfg, "sst2")),
            0,
            tmp_path / f"search{bits}",
            label=f"b{bits:g}",
        )
        assert record["derived"]["size_mb"] <= record["budget_mb"] + 1e-12
        assert (tmp_path / f"search{bits}" / "assignment.json").is_file()
        assert [t["epoch"] for t in record["trace"]] == [1, 2]
        assert record["trace"][0]["heldout_ce"] is None and record["trace"][1]["heldout_ce"] is not None
        # scored on the tuning split (10% of the 300 training examples), which no step trained on
        assert record["tuning"]["examples"] == 30 and record["train_examples"] + record["heldout_examples"] == 270
        assert record["tuning"]["metric"] == "accuracy" and 0 <= record["tuning"]["value"] <= 100
    # a group-study label replaces quant.groups (4) for its run only
    record = search(
        task,
        tmp_path / "model",
        tmp_path / "data",
        2.47,
        MethodSettings.from_dict(aqconfig.search_settings(cfg, "sst2")),
        0,
        tmp_path / "search-g2",
        label="b2.47-g2",
    )
    layers = json.loads((tmp_path / "search-g2" / "assignment.json").read_text())["layers"]
    assert {len(layer["bits"]) for layer in layers.values()} == {2} and record["groups"] == 2 * len(layers)


# --- the student -----------------------------------------------------------------------------------------------


def test_student_takes_every_other_block_of_the_teacher():
    from transformers import BertConfig, BertForSequenceClassification

    from aqbench.distill import make_student

    torch.manual_seed(0)
    teacher = BertForSequenceClassification(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=5,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=3,
        )
    )
    student = make_student(teacher)
    assert student.config.num_hidden_layers == 3 and teacher.config.num_hidden_layers == 5
    for i, j in enumerate((0, 2, 4)):
        for a, b in zip(student.bert.encoder.layer[i].parameters(), teacher.bert.encoder.layer[j].parameters()):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    dropped = sum(p.numel() for j in (1, 3) for p in teacher.bert.encoder.layer[j].parameters())
    assert sum(p.numel() for p in student.parameters()) == sum(p.numel() for p in teacher.parameters()) - dropped


def test_the_mix_is_the_same_when_the_rows_do_not_split_evenly_into_groups():
    torch.manual_seed(0)
    layer = SearchLinear(nn.Linear(6, 10), groups=4, candidates=[0, 2, 3, 8], grid="asym").eval()
    with torch.no_grad():
        layer.alpha.normal_()
    fast = layer.mixed_weight()
    assert torch.allclose(fast, naive_mix(layer, layer.probabilities()), atol=1e-6)
