"""summary.csv: one row per (run, metric), long form, as docs/outputs.md's results contract says."""

import json
import os
from pathlib import Path

import pandas as pd

from aqbench import registry
from aqbench.budget import label_bits
from aqbench.errors import AqbenchError
from aqbench.io import atomic_file, atomic_write_text

RUN_KEYS = ["task", "model", "method", "budget", "seed"]
COLUMNS = RUN_KEYS + [
    "metric",
    "value",
    "main",
    "size_mb",
    "avg_bits",
    "emb_bits",
    "act_bits",
    "pruned_frac",
    "weight_mb",
    "overhead_mb",
    "avg_bits_total",
    "emb_mb",
    "compression",
    "grid",
    "method_s",
    "tuned",
    "converged",
    "selected",
    "run_dir",
]
PACKED_COLUMNS = ["packed_mb", "packed_file_mb"]  # from the run's packed.json, where it was exported
# summary column <- the run's onnx.json (aqbench.deploy.export): the exact form's sizes and its check
ONNX_COLUMNS = {
    "onnx_mb": "onnx_mb",
    "onnx_file_mb": "onnx_file_mb",
    "onnx_max_abs_diff": "max_abs_diff",
    "onnx_changed": "changed",
    "onnx_near_ties": "near_ties",
}
DEPLOY_PREFIXES = ("onnx_", "latency_", "speedup_", "torch_")  # the columns of onnx.json and the latency records
TASK_ORDER = ["sst2", "mnli", "conll03", "squad"]


def rows(record, path):
    for metric, value in record["metrics"].items():
        yield {
            **{k: record[k] for k in RUN_KEYS},
            "metric": metric,
            "value": value,
            "main": metric == record["main_metric"],
            **{k: record.get(k) for k in COLUMNS[8:-5]},
            "method_s": (record.get("times_s") or {}).get("method"),  # the method's own cost, seconds per run
            "tuned": tuned(record.get("tuning")),
            "converged": converged(record.get("search")),
            "selected": selected(record.get("selected")),
            "run_dir": str(Path(path).parent),
        }


def tuned(tuning):
    """A run's search settings as chosen on the tuning split (aq.tune), e.g. "size_weight=0.3 of 4"; None
    without a sweep."""
    if not tuning or len(tuning["trials"]) < 2:
        return None
    return f"{tuning['chosen']} of {len(tuning['trials'])}"


def selected(chosen):
    """The training lengths the tuning split chose, in words, e.g. "fine-tuning: epoch 2 of 3 (accuracy 90.1);
    QAT: step 150 of 200 (accuracy 85.2)"; None where no stage chose (aqbench.evaluate.selected_lengths)."""
    parts = []
    for stage, name in (("finetune", "fine-tuning"), ("qat", "QAT")):
        s = (chosen or {}).get(stage)
        if not s:
            continue
        last, step = max(int(k) for k in s["scores"]), s["chosen_step"]
        per = s.get("steps_per_epoch")
        where = (
            f"epoch {-(-step // per)} of {-(-last // per)}"
            if s.get("every") == "epoch" and per
            else f"step {step} of {last}"
        )
        parts.append(f"{name}: {where} ({s['metric']} {s['scores'][str(step)]:.1f})")
    return "; ".join(parts) or None


def converged(search):
    """A searched run's convergence in words, e.g. "E[size] 1.004 V (in the 2% band), argmax 1.031 V, repair 7
    steps down, 0 up"; None without a search (or from a search before this was recorded)."""
    if not search or search.get("expected_mb") is None:
        return None
    v, eps = search["budget_mb"], search["epsilon"]
    ratio = search["expected_mb"] / v
    band = "in" if abs(ratio - 1) <= eps else "outside"
    return (
        f"E[size] {ratio:.3f} V ({band} the {100 * eps:g}% band), argmax {search['argmax_mb'] / v:.3f} V, "
        f"repair {search['steps_down']} steps down, {search['steps_up']} up"
    )


def _read(path, what, job):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise AqbenchError(f"cannot read {what} {path}: {e}. Fix: delete it and rerun its {job} job") from e


def _key(run_dir):
    return os.path.normpath(str(run_dir))


def onnx_columns(record, metric):
    """A run's ONNX Runtime columns for one metric row: the exact form's value and checks, every other form's value."""
    out = {column: record.get(key) for column, key in ONNX_COLUMNS.items()}
    out["onnx_value"] = record["metrics_onnx"].get(metric)
    for name, form in record["forms"].items():
        if name != record["form"]:
            out[f"onnx_{name}_value"] = form["metrics"].get(metric)
            out[f"onnx_{name}_mb"] = form["onnx_mb"]
    return out


def latency_columns(task_record, run_dir):
    """A run's latency columns per setting (b<batch>_t<1|all>): its fastest form's median and p90 ms, that form,
    its speed-up over the task's FP32 ONNX model, and the exact form's median; the fp row also PyTorch FP's."""
    run = task_record["runs"].get(run_dir)
    if run is None:
        return {}
    out = {
        "latency_cpu": task_record["cpu"],
        "latency_threads": task_record["threads"],
        "latency_length": task_record["length"],
        "latency_load": task_record["load_average_start"][0],
    }
    exact = next(iter(run["forms"]))
    for cell, best in run["best"].items():
        timed = run["forms"][best][cell]
        out.update(
            {
                f"latency_{cell}_ms": timed["median_ms"],
                f"latency_{cell}_p90_ms": timed["p90_ms"],
                f"latency_{cell}_form": best,
                f"speedup_{cell}": timed["speedup"],
                f"latency_{cell}_exact_ms": run["forms"][exact][cell]["median_ms"],
            }
        )
        out.update({f"latency_{cell}_{name}_speedup": form[cell]["speedup"] for name, form in run["forms"].items()})
        if _key(task_record["baseline"]) == run_dir:
            both = [task_record[k][cell]["median_ms"] for k in ("torch_fp_start", "torch_fp_end")]
            out[f"torch_{cell}_ms"] = sum(both) / len(both)
    return out


def provenance(records, configs=()):
    """What the runs came from: the distinct commits and machines their metrics records name, and the config
    files the workflow ran with (docs/outputs.md; aqbench tables-for-docs prints it under every table)."""
    machines = {json.dumps(r.get("machine"), sort_keys=True) for r in records}
    return {
        "commits": sorted({r.get("commit") or "" for r in records}),
        "machines": [json.loads(m) for m in sorted(machines) if m != "null"],
        "configs": list(configs),
        "runs": len(records),
    }


def aggregate(paths, out=None, packed=(), onnx=(), latency=(), configs=()):
    records = [(_read(p, "metrics record", "evaluate"), p) for p in paths]
    frame = sort(pd.DataFrame([r for rec, p in records for r in rows(rec, p)], columns=COLUMNS))
    sizes = {str(Path(p).parent): _read(p, "packed record", "export") for p in packed}
    for col in PACKED_COLUMNS:
        frame[col] = [sizes.get(d, {}).get(col) for d in frame.run_dir]
    exported = {_key(Path(p).parent): _read(p, "ONNX record", "onnx") for p in onnx}
    timings = [_read(p, "latency record", "latency") for p in latency]
    timings = {_key(run): t for t in timings for run in t["runs"]}
    extra = []
    for row in frame.itertuples():
        key = _key(row.run_dir)
        cols = onnx_columns(exported[key], row.metric) if key in exported else {}
        cols.update(latency_columns(timings[key], key) if key in timings else {})
        extra.append(cols)
    if any(extra):
        frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)
    if out:
        with atomic_file(out) as tmp:
            frame.to_csv(tmp, index=False)
        prov = provenance([rec for rec, _ in records], configs)
        atomic_write_text(Path(out).with_name("provenance.json"), json.dumps(prov, indent=1) + "\n")
    return frame


def sort(frame):
    key = {
        "task": lambda s: s.map(lambda t: TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER)),
        "method": lambda s: s.map(registry.order),
        "budget": lambda s: -s.map(label_bits),
    }
    frame = frame.copy()
    for col in ("task", "method", "budget"):
        frame[f"_{col}"] = key[col](frame[col])
    order = [c for c in ("_task", "model", "_method", "_budget", "seed") if c in frame]
    frame = frame.sort_values(order, kind="stable")
    return frame.drop(columns=[c for c in frame if c.startswith("_")]).reset_index(drop=True)


def load_summary(path):
    if not Path(path).is_file():
        raise AqbenchError(
            f"summary not found: {path}. Fix: run `snakemake --cores N all` (or the aggregate rule) first"
        )
    return pd.read_csv(path, dtype={"budget": str})


def over_seeds(frame):
    """Mean, standard deviation and number of seeds of every (task, model, method, budget, metric) cell."""
    keys = ["task", "model", "method", "budget", "metric"]
    grouped = frame.groupby(keys, sort=False)
    # the ONNX and latency columns: numbers averaged over seeds, the fastest form's name of the first seed
    deploy = {
        c: (c, "mean" if pd.api.types.is_numeric_dtype(frame[c]) else "first")
        for c in frame.columns
        if c.startswith(DEPLOY_PREFIXES)
    }
    out = grouped.agg(
        mean=("value", "mean"),
        std=("value", "std"),
        n=("value", "size"),
        main=("main", "first"),
        size_mb=("size_mb", "mean"),
        avg_bits=("avg_bits", "mean"),
        emb_bits=("emb_bits", "first"),
        act_bits=("act_bits", "first"),
        pruned_frac=("pruned_frac", "mean"),
        **({"method_s": ("method_s", "mean")} if "method_s" in frame else {}),
        **({"packed_mb": ("packed_mb", "mean")} if "packed_mb" in frame else {}),
        **deploy,
    ).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return sort(out)
