"""Training loop behaviour: NaN losses stop with a clear message and nothing saved; fine-tuning learns."""

import pytest
import torch

from aqbench.errors import AqbenchError
from aqbench.tasks.kinds import featurize
from aqbench.train import train_loop
from conftest import build_tiny

SETTINGS = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "grad_clip": 1.0,
            "max_length": 64, "device": "cpu", "eval_batch_size": 64}


def test_a_nan_loss_stops_training_with_the_fix_named():
    task, splits, model, tok = build_tiny("sst2")
    features = featurize(task, splits["train"], tok, SETTINGS)
    with pytest.raises(AqbenchError, match="loss became nan at step 1 .* lower the learning rate"):
        train_loop(model, features, SETTINGS, tok.pad_token_id, 0, loss_fn=lambda m, b: m(**b).loss * float("nan"))


def test_finetune_writes_a_loadable_checkpoint_and_fails_cleanly(tmp_path):
    from aqbench.data import prepare
    from aqbench.models import load_checkpoint
    from aqbench.tasks import get_task
    from aqbench.train import finetune
    from conftest import tiny_architecture

    task = get_task("sst2")
    prepare(task, {"source": "synthetic", "seed": 0, "synthetic": {"n_train": 64, "n_eval": 16}}, tmp_path / "data")
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
