"""reports/report.html: one self-contained page (figures inlined, no network requests), rendered by jinja2 with
autoescaping: the winners at each budget, every table (sortable) with links to each run's log and assignment,
every figure, the configuration and the software versions."""

import base64
import os
import time
import urllib.parse
from pathlib import Path

import jinja2
import yaml

from aqbench import paths, registry
from aqbench.config import report_settings, stage_settings
from aqbench.io import atomic_write_text
from aqbench.report import published as pub
from aqbench.report.aggregate import load_summary, over_seeds
from aqbench.report.compare import front_marks, interval, main_cells, paper_lines
from aqbench.report.paired import load_paired
from aqbench.report.tables import ABOUT, all_tables, cell_text
from aqbench.settings import TableSettings
from aqbench.versions import versions


def _inline_png(path):
    path = Path(path)
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode() if path.is_file() else None


def run_files(run_dir, method):
    """[(label, path)] of what documents a run, where it exists: the log of the job that made it (the paths
    workflow/rules/*.smk give), the search's log for AQ, the assignment, the metrics and the packed-file record."""
    run_dir = Path(run_dir)
    files = [
        ("bits", run_dir / "assignment.json"),
        ("metrics", run_dir / "metrics.json"),
        ("packed", run_dir / "packed.json"),
        ("onnx", run_dir / "onnx.json"),
    ]
    fields = paths.match(paths.RUN, run_dir)
    if fields and method in registry.METHODS:
        logs = paths.RUN_LOGS[registry.METHODS[method].kind]
        files[:0] = [(label, Path(paths.fill(template, **fields))) for label, template in logs]
    return [(label, path) for label, path in files if path.is_file()]


def _href(path, out_dir):
    """A link from the report to a file: relative, percent-encoded (results paths may hold spaces or `$`)."""
    return urllib.parse.quote(os.path.relpath(Path(path).resolve(), out_dir))


def _links(summary, task, table, out_dir):
    """Per table row: [{seed, files: [{label, href}]}], hrefs relative to the report."""
    runs = summary[summary.task == task].drop_duplicates("run_dir")
    out = []
    for r in table[["model", "method", "budget"]].itertuples(index=False):
        mine = runs[(runs.model == r.model) & (runs.method == r.method) & (runs.budget == r.budget)]
        out.append(
            [
                {
                    "seed": int(run.seed),
                    "files": [
                        {"label": label, "href": _href(path, out_dir)}
                        for label, path in run_files(run.run_dir, r.method)
                    ],
                }
                for run in mine.itertuples()
            ]
        )
    return out


def _table(table, links=None):
    """A table for the template: columns, rows of cell texts, which columns hold published numbers, row links."""
    cols = list(table.columns)
    rows = [[cell_text(c, v) for c, v in zip(cols, row)] for row in table.itertuples(index=False)]
    text = [not any(v[:1].isdigit() for v in column) for column in zip(*rows)] if rows else [False] * len(cols)
    return {
        "columns": cols,
        "rows": rows,
        "published": [c.endswith(pub.SUFFIX) for c in cols],
        "text": text,
        "links": links,
    }


def highlights(cells, task):
    """Plain sentences on one task: the FP score and, per method, its best compressed run within 1 point of FP."""
    t = main_cells(cells, task)
    fp = t[t.method == "fp"]
    if fp.empty:
        return []
    ref = fp["mean"].iloc[0]
    lines = [f"FP {t.metric.iloc[0]} = {ref:.2f} at {fp.size_mb.iloc[0]:.3f} MB."]
    for method, m in t[t.method != "fp"].groupby("method", sort=False):
        ok = m[m["mean"] >= ref - 1.0].sort_values("size_mb")
        smallest = m.sort_values("size_mb").iloc[0]
        if len(m) == 1:
            lines.append(f"{method}: {smallest.budget} ({smallest.size_mb:.3f} MB) scores {smallest['mean']:.2f}.")
        elif not ok.empty:
            best = ok.iloc[0]
            lines.append(
                f"{method}: smallest within 1 point of FP is {best.budget} ({best.size_mb:.3f} MB, "
                f"{best['mean']:.2f}); at {smallest.budget} ({smallest.size_mb:.3f} MB) it scores {smallest['mean']:.2f}."
            )
        else:
            lines.append(
                f"{method}: no budget within 1 point of FP; at {smallest.budget} it scores {smallest['mean']:.2f}."
            )
    return lines


def deploy_notes(cells, task):
    """(notes, slow): sentences on a task's ONNX Runtime results — where it was measured, the noise of one
    speed-up, whether every exact form agreed with PyTorch, or, where no quantized form beats FP32 anywhere, that
    in one sentence — and one per run whose own widths are slower than FP32 somewhere, with what it runs at
    re-stored at 4 bits (fast4) and at 8 bits (w8a8) and the sizes (the page folds these away)."""
    from aqbench.report.tables import latency_cells

    t = main_cells(cells, task)
    if "onnx_value" not in t or t.onnx_value.isna().all():
        return [], []
    lines, slow_runs = [], []
    if "latency_cpu" in t and t.latency_cpu.notna().any():
        r = t[t.latency_cpu.notna()].iloc[0]
        lines.append(
            f"Latency measured on {r.latency_cpu}, sequence length {int(r.latency_length)}, 1 and "
            f"{int(r.latency_threads)} threads, each run beside the FP32 ONNX model in the same window "
            f"(load average {r.latency_load:.2f} at the start of the job)."
        )
    # the fp run's own model.onnx is timed as a second model beside the FP32 baseline (the same file): how far
    # its ratio strays from 1 is the noise of one speed-up
    settings = latency_cells(t)
    own = t.loc[t.method == "fp", [f"speedup_{c}" for c in settings]].to_numpy().ravel()
    own = own[own == own]
    if own.size:
        lines.append(
            f"The FP run's own ONNX model, timed as if it were another run, came out at x{own.min():.2f} to "
            f"x{own.max():.2f} of the FP32 baseline: speed-ups within that range are noise."
        )
    gap = (t.onnx_value - t["mean"]).abs().max()
    changed = int(t.onnx_changed.fillna(0).sum()) if "onnx_changed" in t else 0
    ties = int(t.onnx_near_ties.fillna(0).sum()) if "onnx_near_ties" in t else 0
    lines.append(
        f"Every exact ONNX form was checked against its PyTorch run on the whole eval split: the largest "
        f"metric difference is {gap:.2f} points; {changed} predictions changed in all, {ties} of them near "
        "ties (the check fails a run on any other change or on more than 0.1 points)."
    )
    quantized = t[~t.method.isin(registry.names(kind=registry.FP))]
    if not settings or quantized.empty:
        return lines, slow_runs
    speed = lambda r, cell, form: getattr(r, f"latency_{cell}_{form}_speedup", float("nan"))
    best = max(
        (
            (speed(r, c, f), f"{r.method} {r.budget} ({f})", c)
            for r in quantized.itertuples()
            for c in settings
            for f in ("exact", "fast", "fast4", "w8a8")
            if speed(r, c, f) == speed(r, c, f)
        ),
        default=None,
    )
    if best is not None and best[0] < 1:
        lines.append(
            f"No quantized form is faster than the FP32 ONNX model at any measured setting (the fastest: "
            f"{best[1]} at {best[2]}, x{best[0]:.2f}): on matrices this small the fixed cost of each kernel "
            "call outweighs the smaller weights (BERT-base's shape: docs/deploy.md)."
        )
        return lines, slow_runs
    for r in quantized.itertuples():
        slow = [
            c
            for c in settings
            if max((v for v in (speed(r, c, "exact"), speed(r, c, "fast")) if v == v), default=1) < 1
        ]
        if not slow:
            continue
        own = ", ".join(
            f"{c} (x{max(v for v in (speed(r, c, 'exact'), speed(r, c, 'fast')) if v == v):.2f})" for c in slow
        )
        restored = [
            f"{label} ({form}, {getattr(r, f'onnx_{form}_mb'):.4g} MB): "
            + ", ".join(f"x{speed(r, c, form):.2f}" for c in slow)
            for form, label in (("fast4", "at 4 bits"), ("w8a8", "at 8 bits"))
            if speed(r, slow[0], form) == speed(r, slow[0], form)
        ]
        slow_runs.append(
            f"{r.method} {r.budget} ({r.size_mb:.4g} MB as accounted, {r.onnx_mb:.4g} MB as ORT holds "
            f"it): slower than FP32 in its own widths at {own}"
            + (f"; re-stored {'; '.join(restored)}." if restored else ".")
        )
    return lines, slow_runs


def front_text(cells, task, paired=None):
    """The Pareto front, smallest first; a point not significantly better than the smaller one before it is
    marked "≈" with the test's interval."""
    out = []
    for r, test, better in front_marks(cells, task, paired):
        text = f"{r.method} {r.budget} ({r.size_mb:.4g} MB, {r['mean']:.2f})"
        if not better:
            text = f"≈ {text}: {test['diff']:+.2f}, {interval(test)}"
        out.append(text)
    return out


def run_lines(summary, task, column):
    """One line per run of the task that has a `column` of summary.csv in words: tuned (the search settings a
    sweep chose on the tuning split), converged (how far its search converged), selected (the training lengths
    the tuning split chose)."""
    if column not in summary:
        return []
    t = summary[(summary.task == task) & summary["main"] & summary[column].notna()]
    return [f"{r.method} {r.budget} seed {r.seed}: {getattr(r, column)}" for r in t.itertuples()]


def deviation(settings, task):
    """The task's deviation from the papers' data, in words (data.train_from_eval), or None."""
    share = stage_settings({"data": {}, "task_overrides": {}, **settings}, "data", task).get("train_from_eval")
    if not share:
        return None
    return (
        f"Deviation from the papers: only {task}'s evaluation file is used. A seeded {100 * share:g}% of its "
        "groups (SQuAD: whole articles) trained the models and the rest is the evaluation split shown here, "
        "so these numbers are not comparable with scores on the full dev set."
    )


def build_report(summary_path, figures_dir, out_path, settings, paired_path=None):
    """Render the report from summary.csv, the figures' PNGs, the run's configuration (settings) and the paired
    tests' CSV (None: ties by the seeds' spread alone)."""
    settings = settings or {}
    summary = load_summary(summary_path)
    cells = over_seeds(summary)
    paired = load_paired(paired_path)
    tables, shown = all_tables(cells, TableSettings.from_dict(report_settings(settings)), paired)
    winners = tables["winners"][0][1] if tables["winners"] else None
    out_dir = Path(out_path).resolve().parent
    figure = lambda task, kind: _inline_png(Path(figures_dir) / f"{task}_{kind}.png")
    ptq = {heading: table for heading, table, _ in tables["ptq"]}
    deploy = {heading: table for heading, table, _ in tables["deploy"]}
    sections = []
    for heading, table, _ in tables["results"]:
        task = heading
        sections.append(
            {
                "task": task,
                "table": _table(table, _links(summary, task, table, out_dir)),
                "figure": figure(task, "metric_vs_size"),
                "ptq": None if task not in ptq else {**_table(ptq[task]), "figure": figure(task, "ptq_vs_bits")},
                "deploy": None
                if task not in deploy
                else {
                    **_table(deploy[task]),
                    "figure": figure(task, "metric_vs_latency"),
                    **dict(zip(("notes", "slow"), deploy_notes(cells, task))),
                },
                "front": front_text(cells, task, paired),
                "highlights": highlights(cells, task),
                "winners": [] if winners is None else winners[winners.task == task].to_dict("records"),
                "metric": cells[(cells.task == task) & cells["main"]].metric.iloc[0],
                "qbert": [f for f in (figure(task, "hessian"), figure(task, "qbert_bits")) if f],
                "aq": [f for f in (figure(task, "aq_search"), figure(task, "aq_bits")) if f],
                "tuned": run_lines(summary, task, "tuned"),
                "converged": run_lines(summary, task, "converged"),
                "selected": run_lines(summary, task, "selected"),
                "papers": paper_lines(paired, task),
                "deviation": deviation(settings, task),
            }
        )
    extra = [
        {"id": name, "title": ABOUT[name][0], "note": ABOUT[name][1], "table": _table(tables[name][0][1])}
        for name in ("distil", "groups")
        if tables[name]
    ]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("aqbench.report", "templates"), autoescape=jinja2.select_autoescape(["html", "j2"])
    )
    html = env.get_template("report.html.j2").render(
        sections=sections,
        extra=extra,
        published=shown,
        paired=paired is not None,
        deploy_about=ABOUT["deploy"][1],
        config=yaml.safe_dump(settings, sort_keys=False) if settings else "",
        versions=versions(),
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        runs=summary[["task", "model", "method", "budget", "seed"]].drop_duplicates().shape[0],
        seeds=sorted(summary.seed.unique().tolist()),
    )
    atomic_write_text(out_path, html)
    return out_path
