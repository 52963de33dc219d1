"""summary.csv: one row per (run, metric), long form, as DESIGN.md's results contract says."""

import json
from pathlib import Path

import pandas as pd

from aqbench.config import bits_label
from aqbench.errors import AqbenchError
from aqbench.io import atomic_file

RUN_KEYS = ["task", "model", "method", "budget", "seed"]
COLUMNS = RUN_KEYS + ["metric", "value", "main", "size_mb", "avg_bits", "emb_bits", "act_bits", "pruned_frac",
                      "weight_mb", "overhead_mb", "avg_bits_total", "emb_mb", "compression", "grid", "run_dir"]
PACKED_COLUMNS = ["packed_mb", "packed_file_mb"]  # from the run's packed.json, where it was exported
METHOD_ORDER = ["fp", "distil", "qbert", "lq", "aciq", "ocs", "aq", "aq_distil"]
TASK_ORDER = ["sst2", "mnli", "conll03", "squad"]


PTQ_METHODS = ("lq", "aciq", "ocs")


def budget_bits(budget):
    """A budget label's bits, for sorting: fp32 -> 32, w4 -> 4, w4-r0.02 -> 4, b2.96 -> 2.96."""
    digits = bits_label(budget).lstrip("fpwb")
    try:
        return float(digits)
    except ValueError:
        return float("nan")


def series(method, budget):
    """The series a run belongs to in PTQ tables and figures: the method, with OCS's expand ratio."""
    suffix = budget.split("-", 1)[1] if "-" in budget else ""
    return f"{method} ({suffix.replace('r', 'r=', 1)})" if suffix else method


def rows(record, path):
    for metric, value in record["metrics"].items():
        yield {**{k: record[k] for k in RUN_KEYS}, "metric": metric, "value": value,
               "main": metric == record["main_metric"], **{k: record.get(k) for k in COLUMNS[8:-1]},
               "run_dir": str(Path(path).parent)}


def aggregate(paths, out=None, packed=()):
    records = []
    for p in paths:
        try:
            with open(p) as f:
                records.append((json.load(f), p))
        except (OSError, json.JSONDecodeError) as e:
            raise AqbenchError(f"cannot read metrics record {p}: {e}. Fix: delete it and rerun its evaluate job") from e
    frame = sort(pd.DataFrame([r for rec, p in records for r in rows(rec, p)], columns=COLUMNS))
    sizes = {str(Path(p).parent): json.loads(Path(p).read_text()) for p in packed}
    for col in PACKED_COLUMNS:
        frame[col] = [sizes.get(d, {}).get(col) for d in frame.run_dir]
    if out:
        with atomic_file(out) as tmp:
            frame.to_csv(tmp, index=False)
    return frame


def sort(frame):
    key = {
        "task": lambda s: s.map(lambda t: TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER)),
        "method": lambda s: s.map(lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER)),
        "budget": lambda s: -s.map(budget_bits),
    }
    frame = frame.copy()
    for col in ("task", "method", "budget"):
        frame[f"_{col}"] = key[col](frame[col])
    order = [c for c in ("_task", "model", "_method", "_budget", "seed") if c in frame]
    frame = frame.sort_values(order, kind="stable")
    return frame.drop(columns=[c for c in frame if c.startswith("_")]).reset_index(drop=True)


def load_summary(path):
    if not Path(path).is_file():
        raise AqbenchError(f"summary not found: {path}. Fix: run `snakemake --cores N all` (or the aggregate rule) first")
    return pd.read_csv(path, dtype={"budget": str})


def over_seeds(frame):
    """Mean, standard deviation and number of seeds of every (task, model, method, budget, metric) cell."""
    keys = ["task", "model", "method", "budget", "metric"]
    grouped = frame.groupby(keys, sort=False)
    out = grouped.agg(mean=("value", "mean"), std=("value", "std"), n=("value", "size"), main=("main", "first"),
                      size_mb=("size_mb", "mean"), avg_bits=("avg_bits", "mean"), emb_bits=("emb_bits", "first"),
                      act_bits=("act_bits", "first"), pruned_frac=("pruned_frac", "mean"),
                      **({"packed_mb": ("packed_mb", "mean")} if "packed_mb" in frame else {})).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return sort(out)
