"""Figures: per task, the headline metric against the encoder size, every method a series (PNG + SVG)."""

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from aqbench.io import atomic_file  # noqa: E402
from aqbench.report.aggregate import METHOD_ORDER, PTQ_METHODS, budget_bits, over_seeds, series  # noqa: E402

MARKERS = dict(zip(METHOD_ORDER, "*oDsv^Ph"))


def method_colors():
    """seaborn's colour-blind palette, assigned so that methods compared with each other are far apart."""
    c = sns.color_palette("colorblind", 10)
    return {"fp": c[0], "lq": c[3], "aciq": c[4], "ocs": c[2], "qbert": c[1], "aq": c[9], "aq_distil": c[7], "distil": c[5]}


RATIO_STYLES = {"": "-", "r=0.01": ":", "r=0.02": "--", "r=0.05": "-."}


def _with_series(frame):
    frame = frame.copy()
    frame["series"] = [series(m, b) for m, b in zip(frame.method, frame.budget)]
    frame["bits"] = frame.budget.map(budget_bits)
    return frame


def _style(method, name):
    """Colour and marker by method, line style by OCS expand ratio."""
    ratio = name[len(method):].strip(" ()")
    return {"color": method_colors().get(method), "marker": MARKERS.get(method, "o"), "ls": RATIO_STYLES.get(ratio, "-")}


def _fp_line(ax, t):
    fp = t[t.method == "fp"]
    if not fp.empty:
        ax.axhline(fp["mean"].iloc[0], ls="--", color=method_colors()["fp"], lw=1.2, label=f"fp ({fp['mean'].iloc[0]:.1f})")


def metric_vs_size(cells, task, out_stem):
    """metric (mean, error bars = std over seeds) vs encoder size on a log axis; FP as a dashed line."""
    t = _with_series(cells[(cells.task == task) & cells["main"]])
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    _fp_line(ax, t)
    for name, g in t.groupby("series", sort=False):
        g = g.sort_values("size_mb")
        method = g.method.iloc[0]
        ax.errorbar(g.size_mb, g["mean"], yerr=g["std"], lw=1.2, ms=6, capsize=3,
                    label=None if method == "fp" else name, **_style(method, name))
        if method == "lq" or (method != "fp" and t.method.nunique() <= 2):
            for _, r in g.iterrows():
                ax.annotate(r.budget, (r.size_mb, r["mean"]), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("encoder size (MB, log scale)")
    ax.set_ylabel(f"{t.metric.iloc[0]} (%)")
    ax.set_title(task)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, out_stem)


def ptq_vs_bits(cells, task, out_stem):
    """The PTQ study's figure: main metric against weight bits, a line per method (OCS per expand ratio)."""
    t = _with_series(cells[(cells.task == task) & cells["main"]])
    ptq = t[t.method.isin(PTQ_METHODS)]
    if ptq.empty:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    _fp_line(ax, t)
    for name, g in ptq.groupby("series", sort=False):
        g = g.sort_values("bits")
        ax.errorbar(g.bits, g["mean"], yerr=g["std"], lw=1.2, ms=5, capsize=3, label=name, **_style(g.method.iloc[0], name))
    ax.set_xlabel("weight bits (8-bit activations and embedding)")
    ax.set_ylabel(f"{t.metric.iloc[0]} (%)")
    ax.set_xticks(sorted(ptq.bits.unique()))
    ax.set_title(f"{task}: post-training quantization")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, out_stem)


def _save(fig, out_stem):
    paths = []
    for ext in ("png", "svg"):
        path = Path(f"{out_stem}.{ext}")
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format=ext)
        paths.append(path)
    plt.close(fig)
    return paths


def write_figures(summary, out_dir, tasks=None):
    cells = over_seeds(summary)
    out = {}
    for task in tasks or cells.task.unique():
        out[task] = metric_vs_size(cells, task, Path(out_dir) / f"{task}_metric_vs_size")
        out[task] += ptq_vs_bits(cells, task, Path(out_dir) / f"{task}_ptq_vs_bits")
    return out
