"""The tasks' official metrics: accuracy, entity-level F1 (seqeval, CoNLL style) and SQuAD v1.1 EM / F1."""

import collections
import re
import string


def accuracy(predictions, references):
    if not references:
        raise ValueError("accuracy of an empty evaluation set")
    return sum(int(p == r) for p, r in zip(predictions, references, strict=True)) / len(references)


def entity_f1(predictions, references):
    """Entity-level precision/recall/F1 over BIO tag sequences, as conlleval and seqeval's default mode count them.
    One call gives all three (f1_score, precision_score and recall_score each extract every entity again)."""
    from seqeval.metrics.sequence_labeling import precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(references, predictions, average="micro")
    return {"f1": f1, "precision": precision, "recall": recall}


# SQuAD v1.1: the official evaluate-v1.1.py normalization (lower case, strip punctuation, articles, whitespace).
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def squad_exact(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_f1(prediction, gold):
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions, gold_answers):
    """EM and F1 in percent-free [0, 1] form, each the max over the gold answers of a question, then averaged."""
    if not gold_answers:
        raise ValueError("SQuAD scores of an empty evaluation set")
    em = f1 = 0.0
    for pred, golds in zip(predictions, gold_answers, strict=True):
        em += max(squad_exact(pred, g) for g in golds)
        f1 += max(squad_f1(pred, g) for g in golds)
    n = len(gold_answers)
    return {"exact_match": em / n, "f1": f1 / n}
