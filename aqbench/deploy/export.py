"""The ONNX stage of a run: model.onnx in the run directory, evaluated by ONNX Runtime beside PyTorch.

A quantized run's graph is built from its packed file alone (codes, scales, offsets; aqbench.export), an FP
run's from its checkpoint. Every form of the run (aqbench.deploy.forms) is evaluated on the task's eval splits
with the task's metric, on the same features as the PyTorch run; the exact forms must agree with it (metric
within MAX_GAP points unless near ties moved it, no changed prediction that rounding does not explain,
aqbench.deploy.parity; where 1% of the outputs' scale explains too little, one more PyTorch pass measures how
far rounding moves this model, aqbench.deploy.sensitivity), or the job fails and writes nothing. onnx.json
records the sizes, both backends' metrics and the differences.
"""

import json
import time
from pathlib import Path

from aqbench.errors import AqbenchError

MAX_GAP = 0.1  # points of a metric: ORT and PyTorch further apart than this means the export is wrong
MB = 2**20
# the parity record's fields when rounding's reach was measured (aqbench.deploy.parity.compare with perturbed)
MEASURED = ("perturbed_max_diff", "typical_diff", "perturbed_typical_diff")


def is_quantized(assignment):
    """Whether a run has anything quantized (then it has a packed file): FP runs are exported from the checkpoint."""
    from aqbench.quant.quantizer import FULL_PRECISION

    return (
        assignment.act_bits < FULL_PRECISION
        or assignment.emb_bits < FULL_PRECISION
        or any(b < FULL_PRECISION for layer in assignment.layers.values() for b in layer.bits)
    )


def load_source(task, checkpoint_dir, run_dir):
    """(tensors, config, assignment or None, the PyTorch model as the run evaluates it, tokenizer)."""
    from aqbench.export import read_packed
    from aqbench.models import load_checkpoint
    from aqbench.quant.assignment import Assignment
    from aqbench.runs import load_run

    run_dir = Path(run_dir)
    if is_quantized(Assignment.load(run_dir / "assignment.json")):
        packed = run_dir / "packed.safetensors"
        if not packed.is_file():
            raise AqbenchError(f"run {run_dir} has no packed.safetensors: run its export job first (snakemake does)")
        tensors, config, assignment = read_packed(packed)
        model, tokenizer, _, _ = load_run(task, checkpoint_dir, run_dir)
        return tensors, config, assignment, model, tokenizer
    model, tokenizer = load_checkpoint(task, checkpoint_dir)
    return dict(model.state_dict()), model.config, None, model, tokenizer


def export_onnx(task, checkpoint_dir, run_dir, data_dir, settings, threads=1, limit=None, forms=None):
    """Write run_dir/model.onnx (the exact form) and run_dir/onnx.json; returns the record."""
    from aqbench.deploy.forms import FORMS, forms_of
    from aqbench.deploy.graph import build_model
    from aqbench.deploy.parity import compare
    from aqbench.deploy.runtime import predict as ort_predict
    from aqbench.deploy.runtime import session
    from aqbench.deploy.sensitivity import perturbed_predict
    from aqbench.evaluate import eval_features, split_metrics
    from aqbench.io import atomic_file, write_json
    from aqbench.prediction import predict
    from aqbench.versions import cpu, versions

    start = time.time()
    run_dir = Path(run_dir)
    tensors, config, assignment, model, tokenizer = load_source(task, checkpoint_dir, run_dir)
    names = forms or forms_of(assignment)
    batch, pad = settings.eval_batch_size, tokenizer.pad_token_id
    splits, torch_metrics, counts = [], {}, {}
    for split, suffix, examples, features in eval_features(task, tokenizer, data_dir, settings, limit):
        outputs = predict(model, features, batch, pad, "cpu", desc=f"pytorch {task.name} {split}", sort=True)
        torch_metrics.update(split_metrics(task, suffix, features, outputs, examples))
        splits.append((split, suffix, examples, features, outputs))
        counts[split] = len(examples)
    meta = {
        "task": task.name,
        "run": str(run_dir),
        "assignment": json.dumps(assignment.to_json()) if assignment is not None else "",
    }
    results, exact_bytes, perturbed = {}, None, {}
    for name in names:
        graph, held = build_model(
            tensors, config, assignment, task.kind, name if assignment is not None else "exact", meta
        )
        data = graph.SerializeToString()
        sess = session(data, threads, what=f"the {name} ONNX model of {run_dir}")
        exact = assignment is None or FORMS[name].exact
        metrics, parity = {}, []
        for split, suffix, examples, features, reference in splits:
            outputs = ort_predict(sess, features, batch, pad, desc=f"onnx {name} {task.name} {split}", sort=True)
            metrics.update(split_metrics(task, suffix, features, outputs, examples))
            checked = compare(task.kind, features, reference, outputs, examples)
            if exact and checked["unexplained"]:
                # changes beyond 1% of the scale: measure how far rounding alone moves this model (one more pass)
                if split not in perturbed:
                    desc = f"perturbed pytorch {task.name} {split}"
                    perturbed[split] = perturbed_predict(model, features, batch, pad, desc=desc)
                checked = compare(task.kind, features, reference, outputs, examples, perturbed[split])
            parity.append(checked)
        results[name] = {
            "exact": exact,
            "onnx_mb": held["onnx_encoder_bytes"] / MB,
            "onnx_embedding_mb": held["onnx_embedding_bytes"] / MB,
            "bytes": len(data),
            "stored_weights": held["stored_weights"],
            "metrics": metrics,
            "gap": {k: metrics[k] - torch_metrics[k] for k in metrics},
            "max_abs_diff": max(p["max_abs_diff"] for p in parity),
            "max_abs_output": max(p["max_abs_output"] for p in parity),
            **{k: sum(p[k] for p in parity) for k in ("changed", "near_ties", "unexplained")},
            "cap": max(p["cap"] for p in parity),
        }
        measured = [p for p in parity if "perturbed_max_diff" in p]
        if measured:  # the rounding yardstick was measured (aqbench.deploy.sensitivity)
            for key in MEASURED:
                results[name][key] = max(p[key] for p in measured)
            results[name]["like_rounding"] = all(p["like_rounding"] for p in measured)
        if exact:
            _check(run_dir, name, results[name])
        if name == names[0]:
            exact_bytes = data
    first = results[names[0]]
    with atomic_file(run_dir / "model.onnx") as tmp:
        tmp.write_bytes(exact_bytes)
    record = {
        "run": str(run_dir),
        "form": names[0],
        "onnx_mb": first["onnx_mb"],
        "onnx_file_mb": len(exact_bytes) / MB,
        "onnx_embedding_mb": first["onnx_embedding_mb"],
        "stored_weights": first["stored_weights"],
        "metrics_torch": torch_metrics,
        "metrics_onnx": first["metrics"],
        **{k: first[k] for k in ("max_abs_diff", "max_abs_output", "changed", "near_ties", "unexplained", "cap")},
        **{k: first[k] for k in (*MEASURED, "like_rounding") if k in first},
        "forms": results,
        "eval_examples": counts,
        "seconds": time.time() - start,
        **cpu(),
        "versions": versions(),
    }
    write_json(run_dir / "onnx.json", record)
    return record


def _check(run_dir, form, result):
    """Every changed prediction must be a near tie. A metric further than MAX_GAP from PyTorch's fails too, unless
    near ties account for it (on 500 examples one changed prediction is 0.2 points of accuracy): a gap with no
    changed prediction at all means the decoding of the two backends differs, which is a bug."""
    gaps = {k: v for k, v in result["gap"].items() if abs(v) > MAX_GAP}
    if (gaps and not result["changed"]) or result["unexplained"]:
        shown = ", ".join(
            f"{k} {result['metrics'][k]:.2f} vs PyTorch {result['metrics'][k] - v:.2f}" for k, v in gaps.items()
        )
        moved = ""
        if "perturbed_max_diff" in result:
            moved = f" (a float perturbation of PyTorch's run moved its outputs by up to {result['perturbed_max_diff']:.3g})"
        raise AqbenchError(
            f"{run_dir}: ONNX Runtime ({form} form) disagrees with the PyTorch run: {shown or 'metrics within 0.1'}; "
            f"{result['unexplained']} changed predictions beyond rounding ties ({result['changed']} changed), largest "
            f"output difference {result['max_abs_diff']:.3g}{moved}. The ONNX export is wrong (nothing was written); "
            "please report it"
        )
