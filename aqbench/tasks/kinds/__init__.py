"""Task kinds: how a kind of task turns examples into model inputs, logits into predictions, and predictions
into metrics. Each kind module has HEAD (the transformers Auto class), METRICS, featurize, decode, score."""

from dataclasses import dataclass

from aqbench.tasks.kinds import classification, span_qa, tagging

_KINDS = {"classification": classification, "tagging": tagging, "span_qa": span_qa}


@dataclass
class Features:
    """Model inputs (one dict per feature) and, per feature, the example it came from and what decoding needs."""

    inputs: list
    example_index: list
    extra: list | None = None

    def __len__(self):
        return len(self.inputs)


def get_kind(name):
    return _KINDS[name]


def lengths(task, settings):
    """(max_length, doc_stride) of a run: the train settings' values, null = the task's usual ones."""
    return settings.get("max_length") or task.max_length, settings.get("doc_stride") or task.extra.get(
        "doc_stride", 128
    )


def featurize(task, examples, tokenizer, settings, with_labels=True):
    """Features of examples with the run's max_length and doc stride (null = the task's usual values)."""
    max_length, doc_stride = lengths(task, settings)
    return get_kind(task.kind).featurize(task, examples, tokenizer, max_length, with_labels, doc_stride=doc_stride)
