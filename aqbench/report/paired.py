"""The paired-tests stage: every comparison the winners table and the Pareto front make (aqbench.report.compare),
tested on the runs' per-example outcomes (outcomes.npz beside each metrics.json), Holm-corrected per task and
family, written as one CSV (docs/outputs.md)."""

import logging

import pandas as pd

from aqbench.errors import AqbenchError
from aqbench.io import atomic_file
from aqbench.outcomes import FILE, read_outcomes
from aqbench.report.aggregate import over_seeds
from aqbench.report.compare import comparisons
from aqbench.report.stats import RESAMPLES, compare, holm, pool
from aqbench.tasks import get_task

log = logging.getLogger(__name__)

COLUMNS = [
    "task",
    "family",
    "metric",
    *(f"{side}_{k}" for side in "ab" for k in ("model", "method", "budget")),
    "seeds",
    "n",
    "diff",
    "low",
    "high",
    "test",
    "p",
    "p_holm",
]


def run_outcomes(summary, task, cell, cache):
    """{seed: outcomes} of one cell's runs (the main metric's rows of summary.csv name their directories)."""
    model, method, budget = cell
    rows = summary[
        (summary.task == task)
        & (summary.model == model)
        & (summary.method == method)
        & (summary.budget == budget)
        & summary["main"]
    ]
    out = {}
    for row in rows.itertuples():
        path = f"{row.run_dir}/{FILE}"
        if path not in cache:
            try:
                cache[path] = read_outcomes(path)
            except OSError as e:
                raise AqbenchError(
                    f"cannot read the per-example outcomes {path}: {e}. Fix: rerun the run's evaluation "
                    "(delete its metrics.json and run snakemake again)"
                ) from e
        out[int(row.seed)] = cache[path]
    return out


def paired_tests(summary, resamples=RESAMPLES, seed=0, out=None):
    """One row per comparison (COLUMNS); a and b pooled over the seeds both ran."""
    cells, cache, rows = over_seeds(summary), {}, []
    for task_name in cells.task.unique():
        task = get_task(task_name)
        metric = cells[(cells.task == task_name) & cells["main"]].metric.iloc[0]
        family_rows = []
        for c in comparisons(cells, task_name):
            a, b = run_outcomes(summary, task_name, c["a"], cache), run_outcomes(summary, task_name, c["b"], cache)
            seeds = sorted(set(a) & set(b))
            if not seeds:
                continue
            result = compare(
                task.kind,
                metric,
                pool({s: a[s] for s in seeds}),
                pool({s: b[s] for s in seeds}),
                task.metric_suffix(metric),
                resamples,
                seed,
            )
            family_rows.append(
                {
                    "task": task_name,
                    "family": c["family"],
                    "metric": metric,
                    **{f"a_{k}": v for k, v in zip(("model", "method", "budget"), c["a"])},
                    **{f"b_{k}": v for k, v in zip(("model", "method", "budget"), c["b"])},
                    "seeds": len(seeds),
                    **result,
                }
            )
        for family in ("winners", "front", "papers"):
            group = [r for r in family_rows if r["family"] == family]
            for r, adjusted in zip(group, holm([r["p"] for r in group])):
                r["p_holm"] = adjusted
            rows += group
        log.info("paired tests %s: %d comparisons", task_name, len(family_rows))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if out:
        with atomic_file(out) as tmp:
            frame.to_csv(tmp, index=False)
    return frame


def load_paired(path):
    """The paired tests' CSV (None: no path given, so verdicts fall back to the seeds' spread alone)."""
    if path is None:
        return None
    try:
        return pd.read_csv(path, dtype={"a_budget": str, "b_budget": str})
    except (OSError, pd.errors.EmptyDataError) as e:
        raise AqbenchError(f"cannot read the paired tests {path}: {e}. Fix: rerun the paired_tests rule") from e
