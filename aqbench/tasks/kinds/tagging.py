"""BIO entity tagging (CoNLL-2003): the label sits on the first sub-token of each word; the other sub-tokens
are ignored in the loss and in decoding; entity-level F1 (seqeval)."""

import numpy as np

from aqbench.tasks.kinds.features import Features
from aqbench.tasks.metrics import entity_f1

HEAD = "AutoModelForTokenClassification"
METRICS = ("f1", "precision", "recall")
IGNORE = -100


def min_length(task):
    """The shortest max_length that keeps a word: [CLS] token [SEP]. Below it the tokenizer keeps only special
    tokens (nothing to tag), or cannot truncate and silently ignores max_length."""
    return 3


def featurize(task, examples, tokenizer, max_length, with_labels=True, **_):
    label_id = {t: i for i, t in enumerate(task.labels)}
    enc = tokenizer([ex["tokens"] for ex in examples], is_split_into_words=True, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    inputs, extra = [], []
    for i, ex in enumerate(examples):
        word_ids = enc.word_ids(i)
        first = [w is not None and (j == 0 or word_ids[j - 1] != w) for j, w in enumerate(word_ids)]
        row = {k: enc[k][i] for k in keys}
        if with_labels:
            row["labels"] = [label_id[ex["tags"][w]] if f else IGNORE for w, f in zip(word_ids, first)]
        inputs.append(row)
        extra.append({"first_subtoken_word": [w if f else None for w, f in zip(word_ids, first)]})
    return Features(inputs, list(range(len(examples))), extra)


def decode(task, features, outputs, examples, **_):
    """One tag per word from its first sub-token; words cut off by truncation are predicted 'O'."""
    predictions = []
    for out, ext, ex in zip(outputs, features.extra, examples, strict=True):
        tags = ["O"] * len(ex["tokens"])
        best = np.argmax(out["logits"], axis=-1)
        for j, w in enumerate(ext["first_subtoken_word"]):
            if w is not None:
                tags[w] = task.labels[int(best[j])]
        predictions.append(tags)
    return predictions


def score(task, predictions, examples):
    return {k: 100.0 * v for k, v in entity_f1(predictions, [ex["tags"] for ex in examples]).items()}


def outcomes(task, predictions, examples):
    """Per sentence, the entity counts corpus F1 sums: correct, predicted and gold entities (seqeval's entities,
    which never cross a sentence), so F1 can be recomputed on a resample of sentences."""
    from seqeval.metrics.sequence_labeling import get_entities

    counts = np.zeros((3, len(examples)), dtype=np.int32)
    for i, (pred, ex) in enumerate(zip(predictions, examples, strict=True)):
        p, g = set(get_entities(list(pred))), set(get_entities(list(ex["tags"])))
        counts[:, i] = len(p & g), len(p), len(g)
    return dict(zip(("correct_entities", "predicted_entities", "gold_entities"), counts))


def from_outcomes(outcomes):
    """score() recomputed from outcomes (seqeval's 0 where a denominator is 0); keeps a leading resample axis."""
    tp, n_pred, n_gold = (
        outcomes[k].sum(-1).astype(float) for k in ("correct_entities", "predicted_entities", "gold_entities")
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_pred > 0, tp / n_pred, 0.0)
        recall = np.where(n_gold > 0, tp / n_gold, 0.0)
        f1 = np.where(n_pred + n_gold > 0, 2 * tp / (n_pred + n_gold), 0.0)
    return {"f1": 100.0 * f1, "precision": 100.0 * precision, "recall": 100.0 * recall}
