"""What a task is: the one place its shapes (hub, local files, synthetic), head, splits and metrics are defined."""

from collections.abc import Callable
from dataclasses import dataclass, field

from aqbench.errors import AqbenchError


@dataclass(frozen=True)
class HubSource:
    """Where the task lives on the HuggingFace Hub and how to turn its rows into our examples. path, name and
    revision can be overridden per task in the config (data.hub), e.g. to point at a mirror."""

    path: str
    name: str | None
    splits: dict  # our split name -> hub split name
    convert: Callable  # (hub dataset split) -> list of examples
    revision: str | None = None  # a branch, tag or commit; None = the repository's default branch

    def describe(self):
        return (
            self.path
            + (f" (config {self.name})" if self.name else "")
            + (f" at revision {self.revision}" if self.revision else "")
        )


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "classification" | "tagging" | "span_qa"; see aqbench.tasks.kinds
    description: str
    eval_splits: dict  # our split name -> metric suffix ("" when the task has one eval split)
    main_metric: str  # the headline metric in summaries and figures, e.g. "accuracy_m"
    hub: HubSource
    local_files: dict  # our split name -> default file name inside the task's local directory
    read_local: Callable  # (path of one file) -> list of examples
    synthesize: Callable  # (seed, n_train, n_eval) -> {split: examples}
    labels: tuple = ()  # class names (classification) or entity tags (tagging)
    text_fields: tuple = ()  # classification: ("sentence",) or ("premise", "hypothesis")
    max_length: int = 128  # default max sequence length of the real task
    group_key: str | None = None  # examples sharing this field's value (SQuAD: an article's title) split together
    extra: dict = field(default_factory=dict)

    @property
    def splits(self):
        return ["train", *self.eval_splits]

    def metric_suffix(self, metric):
        """The eval split's suffix a metric name carries ("m" for accuracy_m; "" for a task with one split)."""
        found = [s for s in self.eval_splits.values() if s and metric.endswith(f"_{s}")]
        return max(found, key=len) if found else ""

    def metric_names(self, base_metrics):
        """Metric names in the metrics record: MNLI's accuracy becomes accuracy_m and accuracy_mm."""
        return [f"{m}_{s}" if s else m for s in self.eval_splits.values() for m in base_metrics]


_REGISTRY: dict = {}


def register(task):
    _REGISTRY[task.name] = task
    return task


def get_task(name):
    if name not in _REGISTRY:
        raise AqbenchError(
            f"unknown task {name!r}: known tasks are {', '.join(sorted(_REGISTRY))}. Fix the 'tasks' list in the config."
        )
    return _REGISTRY[name]


def task_names():
    return sorted(_REGISTRY)
