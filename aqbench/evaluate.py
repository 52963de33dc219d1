"""The evaluate stage: one function serves every method, because every method ends in a run directory."""

import logging
import time

from aqbench.data import load_split
from aqbench.io import read_json, write_json
from aqbench.prediction import predict
from aqbench.quant.modules import embedding_modules
from aqbench.quant.size import embedding_size_mb, encoder_size
from aqbench.runs import load_run
from aqbench.tasks.kinds import featurize, get_kind
from aqbench.versions import versions

log = logging.getLogger(__name__)


def evaluate_model(task, model, tokenizer, data_dir, settings):
    """{metric: value in percent} over the task's eval splits (MNLI: accuracy_m, accuracy_mm) and split sizes."""
    metrics, counts = {}, {}
    for split, suffix, examples, features in eval_features(task, tokenizer, data_dir, settings):
        outputs = predict(
            model,
            features,
            settings.eval_batch_size,
            tokenizer.pad_token_id,
            settings.device,
            desc=f"eval {task.name} {split}",
            mixed_precision=settings.mixed_precision,
        )
        metrics.update(split_metrics(task, suffix, features, outputs, examples))
        counts[split] = len(examples)
    return metrics, counts


def eval_features(task, tokenizer, data_dir, settings, limit=None):
    """(split, metric suffix, examples, features) of each eval split; limit: its first examples only."""
    for split, suffix in task.eval_splits.items():
        examples = load_split(data_dir, split)[:limit]
        yield split, suffix, examples, featurize(task, examples, tokenizer, settings, with_labels=False)


def split_metrics(task, suffix, features, outputs, examples):
    """The task's metrics of one split's outputs, named as in the metrics record (accuracy_m for MNLI-m)."""
    kind = get_kind(task.kind)
    predictions = kind.decode(task, features, outputs, examples, **task.extra)
    return {
        f"{name}_{suffix}" if suffix else name: float(value)
        for name, value in kind.score(task, predictions, examples).items()
    }


def evaluate_run(task, data_dir, checkpoint_dir, run_dir, settings, labels, out_path):
    """Evaluate a run and write its metrics record (docs/outputs.md)."""
    start = time.time()
    model, tokenizer, assignment, info = load_run(task, checkpoint_dir, run_dir)
    metrics, counts = evaluate_model(task, model, tokenizer, data_dir, settings)
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
        "times_s": {
            "finetune": finetune_info.get("train", {}).get("seconds"),
            "method": info.get("seconds"),
            "evaluate": time.time() - start,
        },
        "versions": versions(),
    }
    write_json(out_path, record)
    shown = " ".join(
        f"{k}={v:.2f}" for k, v in metrics.items() if k in task.metric_names(get_kind(task.kind).METRICS[:2])
    )
    return record, (
        f"{labels['task']} {labels['model']} {labels['method']} {labels['budget']} seed{labels['seed']}: "
        f"{shown} | encoder {size['size_mb']:.3f} MB ({size['avg_bits']:.2f} bits/weight) | "
        f"emb {assignment.emb_bits}b act {assignment.act_bits}b"
    )
