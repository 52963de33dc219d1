"""The papers' published numbers, put beside the measured ones when the run is the paper configuration.

AQ-BERT (Zhao et al.) Table 1: BERT-base, 8-bit activations and embedding, 128 groups, at 30 / 25 / 20 MB, which
config/paper.yaml runs as b2.96 / b2.47 / b1.97 (Q-BERT's 20 MB model is its uniform w2); Table 3: DistilBERT and
AQ-BERT on DistilBERT at 15 / 12.5 / 10 MB (the same bits on half the weights). Metrics in percent.
"""

import logging

log = logging.getLogger(__name__)

SOURCE = "AQ-BERT Tables 1 and 3"
BERT_BASE_ENCODER_MB = 324.0  # 84,934,656 encoder weights in fp32; the tables say 324.5


def _table1(sst2, mnli_m, mnli_mm, em, f1, conll):
    return {
        "sst2": {"accuracy": sst2},
        "mnli": {"accuracy_m": mnli_m, "accuracy_mm": mnli_mm},
        "squad": {"exact_match": em, "f1": f1},
        "conll03": {"f1": conll},
    }


# (model, method, budget) -> {task: {metric: value}}
PUBLISHED = {
    ("bert", "fp", "fp32"): _table1(93.50, 84.00, 84.40, 81.54, 88.69, 95.00),
    ("bert", "qbert", "b2.96"): _table1(92.50, 83.50, 83.50, 79.07, 87.49, 94.55),
    ("bert", "aq", "b2.96"): _table1(92.70, 83.50, 83.70, 79.85, 87.00, 94.50),
    ("bert", "qbert", "b2.47"): _table1(92.00, 81.75, 82.20, 79.00, 86.95, 94.37),
    ("bert", "aq", "b2.47"): _table1(92.50, 82.90, 82.90, 79.25, 87.00, 94.40),
    ("bert", "qbert", "w2"): _table1(84.60, 76.50, 77.00, 69.68, 79.60, 91.06),
    ("bert", "aq", "b1.97"): _table1(91.10, 81.80, 81.90, 75.00, 83.50, 93.20),
    ("distil", "distil", "fp32"): {
        "sst2": {"accuracy": 91.30},
        "mnli": {"accuracy_m": 82.20},
        "squad": {"exact_match": 77.70, "f1": 85.80},
    },
    ("distil", "aq_distil", "b2.96"): {"sst2": {"accuracy": 91.2}},
    ("distil", "aq_distil", "b2.47"): {"sst2": {"accuracy": 90.7}},
    ("distil", "aq_distil", "b1.97"): {"sst2": {"accuracy": 89.7}},
}


def published(model, method, budget, task, metric):
    """The published number of a cell, or None."""
    return PUBLISHED.get((model, method, budget), {}).get(task, {}).get(metric)


def applies(cells, enabled):
    """Whether to show published numbers: the config asks (report.published, set in config/paper.yaml) and the
    measured FP model is BERT-base; other models' numbers are not comparable, so they are not put side by side."""
    if not enabled:
        return False
    fp = cells[(cells.model == "bert") & (cells.method == "fp")]
    if fp.empty:
        log.warning("published numbers not shown: no fp run of bert to check it is BERT-base")
        return False
    size = float(fp["size_mb"].iloc[0])
    if abs(size - BERT_BASE_ENCODER_MB) > 0.01 * BERT_BASE_ENCODER_MB:
        log.warning(
            "published numbers not shown: the FP encoder is %.1f MB, BERT-base's is %.1f MB", size, BERT_BASE_ENCODER_MB
        )
        return False
    return True


SUFFIX = " (published)"


def column(metric):
    """The name of the column that holds a metric's published numbers."""
    return metric + SUFFIX
