"""The evaluate stage: one function serves every method, because every method ends in a run directory."""

import logging
import os
import time
from pathlib import Path

from aqbench.data import load_split
from aqbench.errors import AqbenchError
from aqbench.io import read_json, write_json
from aqbench.outcomes import outcomes_path, write_outcomes
from aqbench.prediction import predict
from aqbench.quant.modules import embedding_modules
from aqbench.quant.size import embedding_size_mb, encoder_size
from aqbench.runs import load_run
from aqbench.tasks.kinds import featurize, get_kind
from aqbench.versions import commit, machine, versions

log = logging.getLogger(__name__)


def evaluate_model(task, model, tokenizer, data_dir, settings, splits=None):
    """({metric: value in percent} over the task's eval splits (MNLI: accuracy_m, accuracy_mm), {split: size},
    {outcome name: per-example array}); splits: {split: metric suffix} to evaluate instead (e.g. tuning)."""
    metrics, counts, per_example = {}, {}, {}
    for split, suffix, examples, features in eval_features(task, tokenizer, data_dir, settings, splits=splits):
        outputs = _predict(model, features, tokenizer, settings, f"eval {task.name} {split}")
        split_scores, split_outcomes = split_metrics(task, suffix, features, outputs, examples, with_outcomes=True)
        metrics.update(split_scores)
        per_example.update(split_outcomes)
        counts[split] = len(examples)
    return metrics, counts, per_example


def _predict(model, features, tokenizer, settings, desc):
    """The model's outputs on features as evaluation computes them: batches sorted by length."""
    return predict(
        model,
        features,
        settings.eval_batch_size,
        tokenizer.pad_token_id,
        settings.device,
        desc=desc,
        mixed_precision=settings.mixed_precision,
        sort=True,
    )


def tuning_metric(task):
    """The main metric's name on the one tuning split (MNLI's accuracy_m is accuracy there)."""
    suffix = task.metric_suffix(task.main_metric)
    return task.main_metric[: -len(suffix) - 1] if suffix else task.main_metric


def tuning_scorer(task, tokenizer, data_dir, settings):
    """model -> the task's main metric on the tuning split (data.tuning_fraction), the split that every choice
    the suite makes reads, never the evaluation split; its features are built once. The function's `metric`
    and `examples` say what it scores. Raises when the data has no tuning split."""
    if not (Path(data_dir) / "tuning.jsonl").is_file():
        raise AqbenchError(
            f"{data_dir} has no tuning split to choose on (never the evaluation split). Fix: set "
            "data.tuning_fraction above 0, or select_every to null"
        )
    ((split, suffix, examples, features),) = eval_features(task, tokenizer, data_dir, settings, splits={"tuning": ""})
    metric = tuning_metric(task)

    def score(model):
        outputs = _predict(model, features, tokenizer, settings, f"tuning {task.name}")
        return split_metrics(task, suffix, features, outputs, examples)[metric]

    score.metric, score.examples = metric, len(examples)
    return score


def eval_features(task, tokenizer, data_dir, settings, limit=None, splits=None):
    """(split, metric suffix, examples, features) of each eval split; limit: its first examples only."""
    for split, suffix in (splits or task.eval_splits).items():
        examples = load_split(data_dir, split)[:limit]
        yield split, suffix, examples, featurize(task, examples, tokenizer, settings, with_labels=False)


def suffixed(name, suffix):
    """A metric's or outcome's name in the records: accuracy_m for MNLI-m's accuracy."""
    return f"{name}_{suffix}" if suffix else name


def split_metrics(task, suffix, features, outputs, examples, with_outcomes=False):
    """The task's metrics of one split's outputs, named as in the metrics record (accuracy_m for MNLI-m);
    with_outcomes: also the per-example outcomes, named alike."""
    kind = get_kind(task.kind)
    predictions = kind.decode(task, features, outputs, examples, **task.extra)
    scores = {suffixed(name, suffix): float(value) for name, value in kind.score(task, predictions, examples).items()}
    if not with_outcomes:
        return scores
    return scores, {suffixed(k, suffix): v for k, v in kind.outcomes(task, predictions, examples).items()}


def search_convergence(meta):
    """A searched assignment's convergence: the expected size at the search's end and the argmax's, against the
    budget, and the repair's steps (None for a method without a search)."""
    if "steps_down" not in meta:
        return None
    keys = ("budget_mb", "expected_mb", "epsilon", "argmax_mb", "steps_down", "steps_up")
    return {k: meta.get(k) for k in keys}


def selected_lengths(finetune_info, method_info):
    """The training lengths chosen on the tuning split (select_every): {finetune, qat: selection record} of the
    stages that chose (aqbench.train.Selection); None where none did."""
    chosen = {
        "finetune": (finetune_info.get("train") or {}).get("selection"),
        "qat": (method_info.get("qat") or {}).get("selection"),
    }
    return {k: v for k, v in chosen.items() if v} or None


def evaluate_run(task, data_dir, checkpoint_dir, run_dir, settings, labels, out_path):
    """Evaluate a run and write its metrics record (docs/outputs.md)."""
    start = time.time()
    model, tokenizer, assignment, info = load_run(task, checkpoint_dir, run_dir)
    metrics, counts, per_example = evaluate_model(task, model, tokenizer, data_dir, settings)
    size = encoder_size(assignment)
    emb_shapes = [tuple(m.weight.shape) for m in embedding_modules(model).values()]
    finetune_info = read_json(f"{checkpoint_dir}/aqbench.json", what="fine-tuning record")
    record = {
        **labels,
        "metrics": metrics,
        "main_metric": task.main_metric,
        "grid": assignment.grid,
        "groups": sorted({l.groups for l in assignment.layers.values()}),
        "size_mb": size["size_mb"],
        "weight_mb": size["weight_mb"],
        "overhead_mb": size["overhead_mb"],
        "fp32_size_mb": size["fp32_mb"],
        "compression": size["fp32_mb"] / size["size_mb"] if size["size_mb"] else None,
        "avg_bits": size["avg_bits"],
        "avg_bits_total": size["avg_bits_total"],
        "pruned_frac": size["pruned_frac"],
        "encoder_weights": size["numel"],
        "emb_bits": assignment.emb_bits,
        "emb_mb": embedding_size_mb(emb_shapes, assignment.emb_bits, assignment.grid),
        "act_bits": assignment.act_bits,
        "eval_examples": counts,
        "tuning": assignment.meta.get("tuning"),  # the search settings a sweep (aq.tune) chose, on the tuning split
        "search": search_convergence(assignment.meta),
        "selected": selected_lengths(finetune_info, info),
        "times_s": {
            "finetune": finetune_info.get("train", {}).get("seconds"),
            "method": info.get("seconds"),
            "evaluate": time.time() - start,
        },
        "versions": versions(),
        "machine": machine(),
        "commit": commit(),
        "config": os.environ.get("AQBENCH_CONFIG"),  # the workflow's config files (set by its rules)
    }
    write_outcomes(outcomes_path(out_path), per_example)  # first: a metrics record always has its outcomes
    write_json(out_path, record)
    shown = " ".join(
        f"{k}={v:.2f}" for k, v in metrics.items() if k in task.metric_names(get_kind(task.kind).METRICS[:2])
    )
    return record, (
        f"{labels['task']} {labels['model']} {labels['method']} {labels['budget']} seed{labels['seed']}: "
        f"{shown} | encoder {size['size_mb']:.3f} MB ({size['avg_bits']:.2f} bits/weight) | "
        f"emb {assignment.emb_bits}b act {assignment.act_bits}b"
    )
