"""reports/report.html: one self-contained page (figures inlined, no network requests), rendered by jinja2."""

import base64
import time
from pathlib import Path

import jinja2
import yaml

from aqbench.io import atomic_write_text
from aqbench.report.aggregate import load_summary, over_seeds
from aqbench.report.tables import format_number, ptq_table, task_table
from aqbench.versions import versions


def _inline_png(path):
    path = Path(path)
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode() if path.is_file() else None


def _rows(table):
    return [[format_number(v, 4 if c in ("size (MB)", "packed (MB)") else 2) for c, v in zip(table.columns, row)]
            for row in table.itertuples(index=False)]


def highlights(cells, task):
    """Plain sentences on one task: the FP score and, per method, its best compressed run within 1 point of FP."""
    t = cells[(cells.task == task) & cells["main"]]
    fp = t[t.method == "fp"]
    if fp.empty:
        return []
    ref = fp["mean"].iloc[0]
    lines = [f"FP {t.metric.iloc[0]} = {ref:.2f} at {fp.size_mb.iloc[0]:.3f} MB."]
    for method, m in t[t.method != "fp"].groupby("method", sort=False):
        ok = m[m["mean"] >= ref - 1.0].sort_values("size_mb")
        smallest = m.sort_values("size_mb").iloc[0]
        if not ok.empty:
            best = ok.iloc[0]
            lines.append(f"{method}: smallest within 1 point of FP is {best.budget} ({best.size_mb:.3f} MB, "
                         f"{best['mean']:.2f}); at {smallest.budget} ({smallest.size_mb:.3f} MB) it scores {smallest['mean']:.2f}.")
        else:
            lines.append(f"{method}: no budget within 1 point of FP; at {smallest.budget} it scores {smallest['mean']:.2f}.")
    return lines


def build_report(summary_path, figures_dir, out_path, settings):
    summary = load_summary(summary_path)
    cells = over_seeds(summary)
    sections = []
    for task in cells.task.unique():
        table, ptq = task_table(cells, task), ptq_table(cells, task)
        sections.append({
            "task": task,
            "columns": list(table.columns),
            "rows": _rows(table),
            "figure": _inline_png(Path(figures_dir) / f"{task}_metric_vs_size.png"),
            "ptq": None if ptq is None else {"columns": list(ptq.columns), "rows": _rows(ptq),
                                             "figure": _inline_png(Path(figures_dir) / f"{task}_ptq_vs_bits.png")},
            "highlights": highlights(cells, task),
            "qbert": [f for f in (_inline_png(Path(figures_dir) / f"{task}_hessian.png"),
                                  _inline_png(Path(figures_dir) / f"{task}_qbert_bits.png")) if f],
            "aq": [f for f in (_inline_png(Path(figures_dir) / f"{task}_aq_search.png"),
                               _inline_png(Path(figures_dir) / f"{task}_aq_bits.png")) if f],
        })
    env = jinja2.Environment(loader=jinja2.PackageLoader("aqbench.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        sections=sections, config=yaml.safe_dump(settings, sort_keys=False) if settings else "",
        versions=versions(), generated=time.strftime("%Y-%m-%d %H:%M:%S"), runs=summary[["task", "model", "method", "budget", "seed"]].drop_duplicates().shape[0])
    atomic_write_text(out_path, html)
    return out_path
