"""Task kinds: how a kind of task turns examples into model inputs, logits into predictions, and predictions
into metrics. Each kind module has HEAD (the transformers Auto class), METRICS, featurize, decode, score, and
outcomes / from_outcomes (per-example results and the metrics recomputed from them, for the paired tests)."""

from aqbench.tasks.kinds import classification, span_qa, tagging

_KINDS = {"classification": classification, "tagging": tagging, "span_qa": span_qa}


def get_kind(name):
    return _KINDS[name]


def lengths(task, settings):
    """(max_length, doc_stride) of a run: the train settings' values, null = the task's usual ones."""
    return settings.max_length or task.max_length, settings.doc_stride or task.extra.get("doc_stride", 128)


def featurize(task, examples, tokenizer, settings, with_labels=True):
    """Features of examples with the run's max_length and doc stride (null = the task's usual values)."""
    max_length, doc_stride = lengths(task, settings)
    return get_kind(task.kind).featurize(task, examples, tokenizer, max_length, with_labels, doc_stride=doc_stride)
