"""Single-sentence and sentence-pair classification (SST-2, MNLI): [CLS] pooled head, accuracy."""

import numpy as np

from aqbench.tasks.kinds.features import Features
from aqbench.tasks.metrics import accuracy

HEAD = "AutoModelForSequenceClassification"
METRICS = ("accuracy",)


def min_length(task):
    """The shortest max_length that keeps a token of every text: [CLS] text [SEP], plus text [SEP] for a pair.
    Below it the tokenizer keeps only special tokens, or cannot truncate and silently ignores max_length."""
    return 2 * len(task.text_fields) + 1


def featurize(task, examples, tokenizer, max_length, with_labels=True, **_):
    first = [ex[task.text_fields[0]] for ex in examples]
    second = [ex[task.text_fields[1]] for ex in examples] if len(task.text_fields) > 1 else None
    enc = tokenizer(first, second, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    inputs = []
    for i, ex in enumerate(examples):
        row = {k: enc[k][i] for k in keys}
        if with_labels:
            row["labels"] = ex["label"]
        inputs.append(row)
    return Features(inputs, list(range(len(examples))))


def decode(task, features, outputs, examples, **_):
    """outputs: one logits vector per feature (one feature per example)."""
    return [int(np.argmax(o["logits"])) for o in outputs]


def score(task, predictions, examples):
    return {"accuracy": 100.0 * accuracy(predictions, [ex["label"] for ex in examples])}


def outcomes(task, predictions, examples):
    """Per example, what the metric averages: 1 where the prediction is right (the paired tests' input)."""
    return {"correct": np.array([p == ex["label"] for p, ex in zip(predictions, examples, strict=True)], dtype=bool)}


def from_outcomes(outcomes):
    """score() recomputed from outcomes; a leading axis of resamples is kept (shape (..., examples))."""
    return {"accuracy": 100.0 * outcomes["correct"].mean(-1)}
