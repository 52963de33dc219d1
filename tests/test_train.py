"""Training loop behaviour: NaN losses stop with a clear message and nothing saved; fine-tuning learns."""

import pytest
import torch
from conftest import build_tiny

from aqbench.errors import AqbenchError
from aqbench.settings import Data, Train
from aqbench.tasks.kinds import featurize
from aqbench.train import train_loop

SETTINGS = {
    "epochs": 1,
    "batch_size": 16,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "warmup_ratio": 0.0,
    "grad_clip": 1.0,
    "max_length": 64,
    "device": "cpu",
    "eval_batch_size": 64,
}


def test_a_nan_loss_stops_training_with_the_fix_named():
    task, splits, model, tok = build_tiny("sst2")
    features = featurize(task, splits["train"], tok, Train.from_dict(SETTINGS))
    with pytest.raises(AqbenchError, match="loss became nan at step 1 .* lower the learning rate"):
        train_loop(
            model,
            features,
            Train.from_dict(SETTINGS),
            tok.pad_token_id,
            0,
            loss_fn=lambda m, b: m(**b).loss * float("nan"),
        )


def test_finetune_writes_a_loadable_checkpoint_and_fails_cleanly(tmp_path):
    from conftest import tiny_architecture

    from aqbench.data import prepare
    from aqbench.finetune import finetune
    from aqbench.models import load_checkpoint
    from aqbench.tasks import get_task

    task = get_task("sst2")
    prepare(
        task,
        Data.from_dict({"source": "synthetic", "seed": 0, "synthetic": {"n_train": 64, "n_eval": 16}}),
        tmp_path / "data",
    )
    spec = {"source": "config", "tokenizer_vocab_size": 300, "architecture": tiny_architecture()}
    stats = finetune(task, tmp_path / "data", spec, SETTINGS, 0, tmp_path / "ckpt")
    assert stats["steps"] == 4
    model, tok = load_checkpoint(task, tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "model.safetensors").is_file() and (tmp_path / "ckpt" / "aqbench.json").is_file()
    with pytest.raises(AqbenchError):
        finetune(task, tmp_path / "data", spec, {**SETTINGS, "lr": float("inf")}, 0, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_same_seed_same_model():
    a = build_tiny("sst2", seed=3)[2].state_dict()
    b = build_tiny("sst2", seed=3)[2].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_autocast_is_for_cuda_only_and_a_cpu_run_ignores_it():
    from aqbench.devices import uses_bf16

    assert uses_bf16(torch.device("cuda"), "bf16") and not uses_bf16(torch.device("cuda"), "none")
    assert not uses_bf16(torch.device("cpu"), "bf16")
    states = []
    for precision in ("none", "bf16"):
        task, splits, model, tok = build_tiny("sst2")
        features = featurize(task, splits["train"][:64], tok, Train.from_dict(SETTINGS))
        train_loop(model, features, Train.from_dict({**SETTINGS, "mixed_precision": precision}), tok.pad_token_id, 0)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_quantized_linears_compute_in_fp32_under_bf16_autocast():
    """What train.mixed_precision does on a GPU, checked with the CPU's autocast: the FP layers run in bf16,
    the fake-quantized ones keep the grid's fp32 numbers."""
    from aqbench.quant.modules import QuantLinear

    torch.manual_seed(0)
    layer = QuantLinear(torch.nn.Linear(64, 32), [4] * 8, "sym", act_bits=8).eval()
    x = torch.randn(16, 64)
    layer.act.lo.fill_(x.min())
    layer.act.hi.fill_(x.max())
    with torch.no_grad():
        exact = layer(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = layer(x.bfloat16())
            assert torch.nn.functional.linear(x, layer.weight).dtype == torch.bfloat16  # autocast is on around it
    assert mixed.dtype == torch.float32 and torch.equal(mixed, layer(x.bfloat16().float()))
    assert torch.allclose(mixed, exact, atol=0.1)


def _snapshots_and_scores(values):
    """A scorer that returns `values` in turn and keeps a copy of the model's state at each call."""
    seen = []

    def score(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return values[len(seen) - 1]

    score.metric = "accuracy"
    return score, seen


def test_select_every_keeps_the_state_that_scored_best_and_leaves_the_trajectory_alone():
    task, splits, _, tok = build_tiny("sst2")
    features = featurize(task, splits["train"], tok, Train.from_dict(SETTINGS))  # 200 examples: 13 steps
    settings = Train.from_dict({**SETTINGS, "epochs": 2, "select_every": 5})

    def trained(score, settings):
        model = build_tiny("sst2")[2]
        return model, train_loop(model, features, settings, tok.pad_token_id, 0, score=score)

    plain, plain_stats = trained(None, Train.from_dict({**SETTINGS, "epochs": 2}))
    assert "selection" not in plain_stats
    score, seen = _snapshots_and_scores([1.0, 3.0, 2.0, 3.0, 0.5, 2.5])  # steps 5, 10, ..., 25 and the last (26)
    model, stats = trained(score, settings)
    assert stats["selection"]["scores"] == {"5": 1.0, "10": 3.0, "15": 2.0, "20": 3.0, "25": 0.5, "26": 2.5}
    assert stats["selection"]["chosen_step"] == 10  # the earliest of equals
    final = model.state_dict()
    assert all(torch.equal(final[k], seen[1][k]) for k in final)
    # scoring draws no random numbers: the last step's state is the one a loop without scoring ends with
    assert all(torch.equal(seen[-1][k], plain.state_dict()[k]) for k in final)
    last, _ = trained(_snapshots_and_scores([0, 0, 0, 0, 0, 1])[0], settings)
    assert all(torch.equal(last.state_dict()[k], plain.state_dict()[k]) for k in final)


def test_select_every_epoch_scores_at_each_epochs_end():
    task, splits, model, tok = build_tiny("sst2")
    features = featurize(task, splits["train"], tok, Train.from_dict(SETTINGS))
    score, seen = _snapshots_and_scores([2.0, 1.0, 0.0])
    stats = train_loop(
        model, features, Train.from_dict({**SETTINGS, "epochs": 3, "select_every": "epoch"}), 0, 0, score=score
    )
    assert stats["selection"]["scores"] == {"13": 2.0, "26": 1.0, "39": 0.0}
    assert stats["selection"]["chosen_step"] == 13 and stats["selection"]["metric"] == "accuracy"
    with pytest.raises(AqbenchError, match="select_every is set but nothing scores"):
        train_loop(model, features, Train.from_dict({**SETTINGS, "select_every": 2}), 0, 0)


def test_finetune_chooses_its_epoch_on_the_tuning_split_and_records_it(tmp_path):
    import json

    from conftest import tiny_architecture

    from aqbench.data import prepare
    from aqbench.evaluate import evaluate_model, tuning_scorer
    from aqbench.finetune import finetune
    from aqbench.models import load_checkpoint
    from aqbench.tasks import get_task

    task = get_task("sst2")
    data = Data.from_dict({"source": "synthetic", "seed": 0, "synthetic": {"n_train": 80, "n_eval": 16}})
    prepare(task, data, tmp_path / "data")
    spec = {"source": "config", "tokenizer_vocab_size": 300, "architecture": tiny_architecture()}
    settings = {**SETTINGS, "epochs": 3, "select_every": "epoch"}
    finetune(task, tmp_path / "data", spec, settings, 0, tmp_path / "ckpt")
    selection = json.loads((tmp_path / "ckpt" / "aqbench.json").read_text())["train"]["selection"]
    assert selection["metric"] == "accuracy" and list(selection["scores"]) == ["5", "10", "15"]
    model, tok = load_checkpoint(task, tmp_path / "ckpt")
    kept = selection["scores"][str(selection["chosen_step"])]
    assert kept == max(selection["scores"].values())
    # the saved model scores what the choice read, and the scorer is evaluate_model on the tuning split
    train = Train.from_dict(settings)
    assert tuning_scorer(task, tok, tmp_path / "data", train)(model) == pytest.approx(kept)
    metrics, counts, _ = evaluate_model(task, model, tok, tmp_path / "data", train, splits={"tuning": ""})
    assert metrics["accuracy"] == pytest.approx(kept) and counts["tuning"] == 8
    (tmp_path / "data" / "tuning.jsonl").unlink()
    with pytest.raises(AqbenchError, match="no tuning split to choose on"):
        finetune(task, tmp_path / "data", spec, settings, 0, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
