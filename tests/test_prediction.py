"""Batched prediction: batching by length (evaluation) gives every feature the output it gets in feature order."""

import numpy as np
import torch
from conftest import tiny_architecture
from transformers import BertConfig, BertForTokenClassification

from aqbench.batching import by_length
from aqbench.prediction import predict
from aqbench.tasks.kinds.features import Features


def features_of(lengths, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for n in lengths:
        ids = rng.integers(5, 100, size=n).tolist()
        rows.append({"input_ids": ids, "attention_mask": [1] * n, "token_type_ids": [0] * n})
    return Features(rows, list(range(len(rows))))


def test_by_length_orders_shortest_first_and_keeps_every_index():
    features = features_of([7, 3, 12, 3, 9])
    order = by_length(features)
    assert sorted(order) == list(range(5))
    assert [len(features.inputs[i]["input_ids"]) for i in order] == [3, 3, 7, 9, 12]


def test_sorted_batches_give_each_feature_its_own_output(tiny_bert):
    features = features_of([30, 2, 17, 5, 30, 9, 1, 22, 14, 3, 26])
    plain = predict(tiny_bert, features, 4, 0, "cpu")
    sorted_ = predict(tiny_bert, features, 4, 0, "cpu", sort=True)
    assert len(sorted_) == len(features)
    for a, b in zip(plain, sorted_):
        np.testing.assert_allclose(a["logits"], b["logits"], atol=1e-5)
    one_by_one = predict(tiny_bert, features, 1, 0, "cpu")
    for a, b in zip(one_by_one, sorted_):
        np.testing.assert_allclose(a["logits"], b["logits"], atol=1e-5)
    # the outputs differ between features, so a mix-up of the order would show
    logits = np.stack([o["logits"] for o in plain])
    assert np.abs(logits - logits[0]).max() > 1e-4


def test_sorted_batches_trim_token_outputs_to_each_feature():
    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(vocab_size=100, num_labels=5, **tiny_architecture())).eval()
    lengths = [12, 3, 8, 1, 12, 6]
    features = features_of(lengths, seed=1)
    plain = predict(model, features, 4, 0, "cpu")
    sorted_ = predict(model, features, 4, 0, "cpu", sort=True)
    for n, a, b in zip(lengths, plain, sorted_):
        assert b["logits"].shape == (n, 5)
        np.testing.assert_allclose(a["logits"], b["logits"], atol=1e-5)
