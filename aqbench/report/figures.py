"""Figures: per task, the headline metric against the encoder size, every method a series (PNG + SVG)."""

import re
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


def hessian_figure(spectrum, out_stem):
    """Q-BERT's sensitivity: the top Hessian eigenvalue of each encoder block, a box over the subsamples, and
    Omega = |mean| + std as a marker."""
    blocks = spectrum["blocks"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=120)
    ax.boxplot([b["eigenvalues"] for b in blocks], positions=range(len(blocks)), widths=0.5)
    ax.plot(range(len(blocks)), [b["sensitivity"] for b in blocks], "D", color=method_colors()["qbert"],
            label="sensitivity |mean| + std")
    ax.set_xticks(range(len(blocks)), [str(i) for i in range(len(blocks))])
    ax.set_xlabel("encoder block")
    ax.set_ylabel("top Hessian eigenvalue")
    ax.set_title(f"{spectrum['task']}: Hessian spectrum ({len(blocks[0]['eigenvalues'])} subsamples of "
                 f"{spectrum['examples_per_subsample']} features)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_stem)


def allocation_figure(assignments, task, method, out_stem):
    """Bits per encoder block at each budget (the mean over a block's groups), from the runs' assignments."""
    import numpy as np

    budgets = list(assignments)
    rows = []
    for budget in budgets:
        per_block = {}
        for name, layer in assignments[budget]["layers"].items():
            block = re.match(r"(.*\.layers?\.\d+)\.", name).group(1)  # e.g. bert.encoder.layer.3
            per_block.setdefault(block, []).extend(layer["bits"])
        rows.append([float(np.mean(v)) for v in per_block.values()])
    grid = np.array(rows)
    fig, ax = plt.subplots(figsize=(5.5, 0.5 + 0.45 * len(budgets)), dpi=120)
    image = ax.imshow(grid, cmap="viridis", aspect="auto", vmin=0, vmax=8)
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8, color="white" if v < 5 else "black")
    ax.set_xticks(range(grid.shape[1]), [str(i) for i in range(grid.shape[1])])
    ax.set_yticks(range(len(budgets)), budgets)
    ax.set_xlabel("encoder block")
    ax.set_title(f"{task}: {method} bits per block", fontsize=9)
    fig.colorbar(image, ax=ax, label="bits")
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


def write_figures(summary, out_dir, spectra=(), tasks=None):
    """Every figure of the report. spectra: Q-BERT spectrum.json files (one per task is drawn: the first)."""
    import json

    cells = over_seeds(summary)
    out = {}
    for task in tasks or cells.task.unique():
        out[task] = metric_vs_size(cells, task, Path(out_dir) / f"{task}_metric_vs_size")
        out[task] += ptq_vs_bits(cells, task, Path(out_dir) / f"{task}_ptq_vs_bits")
        runs = summary[(summary.task == task) & (summary.method == "qbert")].drop_duplicates("run_dir")
        runs = runs[runs.seed == runs.seed.min()] if not runs.empty else runs
        if not runs.empty:
            assignments = {r.budget: json.loads((Path(r.run_dir) / "assignment.json").read_text())
                           for r in runs.sort_values("avg_bits", ascending=False).itertuples()}
            out[task] += allocation_figure(assignments, task, "qbert", Path(out_dir) / f"{task}_qbert_bits")
    drawn = set()
    for path in spectra:  # one spectrum per task: the first given (the first seed's)
        spectrum = json.loads(Path(path).read_text())
        if spectrum["task"] not in drawn:
            drawn.add(spectrum["task"])
            out.setdefault(spectrum["task"], []).extend(hessian_figure(spectrum, Path(out_dir) / f"{spectrum['task']}_hessian"))
    return out
