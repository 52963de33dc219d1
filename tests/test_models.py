"""Models and tokenizers: local training is deterministic; hub and local-dir problems fail fast and clearly."""

import time

import pytest

from aqbench import models
from aqbench.errors import AqbenchError
from aqbench.tasks import get_task


def test_tokenizer_training_is_deterministic_and_falls_back_to_characters():
    corpus = [ex["sentence"] for ex in get_task("sst2").synthesize(0, 300, 1)["train"]]
    a = models.train_tokenizer(corpus, 300)
    assert all(models.train_tokenizer(corpus, 300).get_vocab() == a.get_vocab() for _ in range(3))
    ids = a("The plot is NOT dull .")["input_ids"]
    assert ids[0] == a.cls_token_id and ids[-1] == a.sep_token_id and a.unk_token_id not in ids
    assert a.tokenize("dullest") == ["dull", "##e", "##s", "##t"]  # unseen word: known prefix + characters


def test_unreachable_hub_fails_at_once_naming_the_offline_fix(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.time()
    with pytest.raises(AqbenchError, match=r"cannot load model 'bert-base-uncased' .* not reachable.*source: local"):
        models.build(get_task("sst2"), {"source": "hub", "path": "bert-base-uncased"}, [], 0)
    assert time.time() - start < 10


def test_a_local_model_directory_without_config_is_named(tmp_path):
    with pytest.raises(AqbenchError, match="has no config.json"):
        models.build(get_task("sst2"), {"source": "local", "path": str(tmp_path)}, [], 0)


def test_a_local_model_directory_loads_with_a_new_head(tmp_path, tiny_bert):
    from transformers import BertTokenizerFast

    tokenizer = models.train_tokenizer(["a b c"], 100)
    tiny_bert.resize_token_embeddings(len(tokenizer))  # a model and its own tokenizer (the load checks they match)
    tiny_bert.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, tok = models.build(get_task("mnli"), {"source": "local", "path": str(tmp_path)}, [], 0)  # 2 -> 3 labels
    assert model.config.num_labels == 3 and isinstance(tok, BertTokenizerFast)
