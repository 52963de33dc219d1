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
