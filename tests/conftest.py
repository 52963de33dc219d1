"""Shared fixtures. Everything is built locally (no hub) and seeded, so CPU runs are reproducible."""

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
# real SST-2 / CoNLL-2003 / SQuAD copies (not part of the project); tests that need them skip where absent
SHARED_DATA = Path(os.environ.get("AQBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def tiny_architecture(**kw):
    return {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
        **kw,
    }


@pytest.fixture
def tiny_bert():
    """A 2-layer BERT sequence classifier built from a config (random weights, seed 0)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=100, num_labels=2, **tiny_architecture())).eval()


def build_tiny(task_name, n_train=200, seed=0):
    """(task, examples by split, model, tokenizer): a synthetic task with a tokenizer trained on it."""
    from aqbench import models
    from aqbench.tasks import get_task

    task = get_task(task_name)
    splits = task.synthesize(seed, n_train, 40)
    model, tokenizer = models.build(
        task,
        {"source": "config", "tokenizer_vocab_size": 400, "architecture": tiny_architecture()},
        splits["train"],
        seed,
    )
    return task, splits, model.eval(), tokenizer
