"""Figures: per task, the headline metric against the encoder size, every method a series (PNG + SVG)."""

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from aqbench.io import atomic_file  # noqa: E402
from aqbench.report.aggregate import METHOD_ORDER, over_seeds  # noqa: E402

MARKERS = dict(zip(METHOD_ORDER, "*oDsv^Ph"))


def method_colors():
    return dict(zip(METHOD_ORDER, sns.color_palette("colorblind", len(METHOD_ORDER))))


def metric_vs_size(cells, task, out_stem):
    """metric (mean, error bars = std over seeds) vs encoder size on a log axis; FP as a dashed line."""
    t = cells[(cells.task == task) & cells["main"]]
    metric = t.metric.iloc[0]
    colors = method_colors()
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for method, m in t.groupby("method", sort=False):
        m = m.sort_values("size_mb")
        if method == "fp":
            ax.axhline(m["mean"].iloc[0], ls="--", color=colors["fp"], lw=1.2, label=f"fp ({m['mean'].iloc[0]:.1f})")
        ax.errorbar(m.size_mb, m["mean"], yerr=m["std"], marker=MARKERS.get(method, "o"), color=colors.get(method),
                    lw=1.2, ms=6, capsize=3, label=None if method == "fp" else method)
        for _, r in m.iterrows():
            if method != "fp":
                ax.annotate(r.budget, (r.size_mb, r["mean"]), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("encoder size (MB, log scale)")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(task)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
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
    return {task: metric_vs_size(cells, task, Path(out_dir) / f"{task}_metric_vs_size")
            for task in (tasks or cells.task.unique())}
