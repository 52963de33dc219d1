"""Figures: per task, the headline metric against the encoder size and against the latency on ONNX Runtime,
every method a series (PNG + SVG); the PTQ study, Q-BERT's spectra and allocations, AQ-BERT's searches."""

import re
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from aqbench import paths, registry  # noqa: E402
from aqbench.budget import label_bits, series  # noqa: E402
from aqbench.io import atomic_file  # noqa: E402
from aqbench.report.aggregate import over_seeds  # noqa: E402
from aqbench.report.compare import main_cells, pareto_front  # noqa: E402


def method_colors():
    """Each method's colour: seaborn's colour-blind palette, then its dark one (aqbench.registry assigns the
    indices, 0-19)."""
    c = sns.color_palette("colorblind", 10) + sns.color_palette("dark", 10)
    return {name: c[spec.color] for name, spec in registry.METHODS.items()}


RATIO_STYLES = {"": "-", "r=0.01": ":", "r=0.02": "--", "r=0.05": "-."}


def _with_series(frame):
    frame = frame.copy()
    frame["series"] = [series(m, b) for m, b in zip(frame.method, frame.budget)]
    frame["bits"] = frame.budget.map(label_bits)
    return frame


def _style(method, name):
    """Colour and marker by method, line style by OCS expand ratio."""
    ratio = name[len(method) :].strip(" ()")
    return {
        "color": method_colors().get(method),
        "marker": registry.METHODS[method].marker if method in registry.METHODS else "o",
        "ls": RATIO_STYLES.get(ratio, "-"),
    }


def _fp_line(ax, t):
    fp = t[t.method == "fp"]
    if not fp.empty:
        ax.axhline(
            fp["mean"].iloc[0], ls="--", color=method_colors()["fp"], lw=1.2, label=f"fp ({fp['mean'].iloc[0]:.1f})"
        )


def metric_vs_size(cells, task, out_stem):
    """metric (mean, error bars = std over seeds) vs encoder size on a log axis; FP as a dashed line; the Pareto
    front (no run smaller and better) as a grey staircase through ringed points."""
    return _metric_vs(main_cells(cells, task), task, out_stem, "size_mb", "encoder size (MB, log scale)")


def latency_column(cells):
    """The latency the report plots and tabulates first: batch 1, one thread (the smallest batch measured)."""
    cols = sorted(
        (
            c
            for c in cells.columns
            if c.startswith("latency_") and c.endswith("_t1_ms") and not c.endswith(("_p90_ms", "_exact_ms"))
        ),
        key=lambda c: int(c.split("_")[1][1:]),
    )
    return cols[0] if cols else None


def metric_vs_latency(cells, task, out_stem):
    """metric vs the fastest ONNX Runtime form's median latency (batch 1, one thread), with its Pareto front."""
    col = latency_column(cells)
    t = main_cells(cells, task)
    t = t[t[col].notna()] if col else t.iloc[0:0]
    if t.empty:
        return []
    cell = col.removeprefix("latency_").removesuffix("_ms")
    return _metric_vs(t, task, out_stem, col, f"latency on ONNX Runtime (ms per batch, {cell}, log scale)")


def _metric_vs(t, task, out_stem, cost, xlabel):
    t = _with_series(t)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    _fp_line(ax, t)
    front = t[pareto_front(t, cost)].sort_values(cost)
    ax.step(front[cost], front["mean"], where="post", color="0.45", lw=2.5, alpha=0.35, zorder=0, label="Pareto front")
    ax.scatter(front[cost], front["mean"], s=150, facecolors="none", edgecolors="0.3", lw=1.0, zorder=3)
    for name, g in t.groupby("series", sort=False):
        g = g.sort_values(cost)
        method = g.method.iloc[0]
        ax.errorbar(
            g[cost],
            g["mean"],
            yerr=g["std"],
            lw=1.2,
            ms=6,
            capsize=3,
            label=None if method == "fp" and cost == "size_mb" else name,
            **_style(method, name),
        )
        if method == "lq" or (method != "fp" and t.method.nunique() <= 2):
            for _, r in g.iterrows():
                ax.annotate(r.budget, (r[cost], r["mean"]), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{t.metric.iloc[0]} (%)")
    ax.set_title(task)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, out_stem)


def ptq_vs_bits(cells, task, out_stem):
    """The PTQ study's figure: main metric against weight bits, a line per method (OCS per expand ratio)."""
    t = _with_series(cells[(cells.task == task) & cells["main"]])
    ptq = t[t.method.isin(registry.names(kind=registry.PTQ))]
    if ptq.empty:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    _fp_line(ax, t)
    for name, g in ptq.groupby("series", sort=False):
        g = g.sort_values("bits")
        ax.errorbar(
            g.bits, g["mean"], yerr=g["std"], lw=1.2, ms=5, capsize=3, label=name, **_style(g.method.iloc[0], name)
        )
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
    ax.plot(
        range(len(blocks)),
        [b["sensitivity"] for b in blocks],
        "D",
        color=method_colors()["qbert"],
        label="sensitivity |mean| + std",
    )
    ax.set_xticks(range(len(blocks)), [str(i) for i in range(len(blocks))])
    ax.set_xlabel("encoder block")
    ax.set_ylabel("top Hessian eigenvalue")
    ax.set_title(
        f"{spectrum['task']}: Hessian spectrum ({len(blocks[0]['eigenvalues'])} subsamples of "
        f"{spectrum['examples_per_subsample']} features)",
        fontsize=9,
    )
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


MATRIX_LABELS = {
    "attention.self.query": "Q",
    "attention.self.key": "K",
    "attention.self.value": "V",
    "attention.output.dense": "attn out",
    "intermediate.dense": "FFN in",
    "output.dense": "FFN out",
    "attention.q_lin": "Q",
    "attention.k_lin": "K",
    "attention.v_lin": "V",
    "attention.out_lin": "attn out",
    "ffn.lin1": "FFN in",
    "ffn.lin2": "FFN out",
}


def _block_and_matrix(name):
    m = re.match(r"(.*\.layers?\.(\d+))\.(.*)$", name)
    return int(m.group(2)), MATRIX_LABELS.get(m.group(3), m.group(3))


def aq_allocation_figure(assignments, task, out_stem):
    """AQ-BERT's allocation: for each run (a row of panels) and each candidate bit-width (a panel, 0 = pruned),
    the share of each matrix's groups at that bit-width, block x matrix."""
    import numpy as np

    labels = list(assignments)
    bits = sorted({b for a in assignments.values() for layer in a["layers"].values() for b in layer["bits"]})
    fig, axes = plt.subplots(
        len(labels),
        len(bits),
        figsize=(1.9 * len(bits) + 1.2, 0.4 + 1.6 * len(labels)),
        dpi=120,
        squeeze=False,
        layout="constrained",
    )
    image = None
    for i, label in enumerate(labels):
        layers = assignments[label]["layers"]
        where = {name: _block_and_matrix(name) for name in layers}
        blocks = sorted({b for b, _ in where.values()})
        matrices = list(dict.fromkeys(m for _, m in where.values()))
        for j, b in enumerate(bits):
            grid = np.full((len(blocks), len(matrices)), np.nan)
            for name, (block, matrix) in where.items():
                grid[blocks.index(block), matrices.index(matrix)] = np.mean([x == b for x in layers[name]["bits"]])
            ax = axes[i, j]
            image = ax.imshow(grid, cmap="cividis", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks(range(len(matrices)), matrices, rotation=90, fontsize=6)
            ax.set_yticks(range(len(blocks)), [str(x) for x in blocks], fontsize=6)
            if i == 0:
                ax.set_title("pruned" if b == 0 else f"{b}-bit", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{label}\nblock", fontsize=7)
    fig.suptitle(f"{task}: share of each matrix's groups at each bit-width", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label="share of groups")
    return _save(fig, out_stem)


def aq_search_figure(traces, task, out_stem):
    """AQ-BERT's search traces: expected and argmax size against the budget, and the losses, per epoch."""
    fig, (size_ax, loss_ax) = plt.subplots(1, 2, figsize=(8, 3.4), dpi=120)
    palette = sns.color_palette("colorblind", max(3, len(traces)))
    for color, (label, record) in zip(palette, traces.items()):
        trace = record["trace"]
        epochs = [t["epoch"] for t in trace]
        size_ax.plot(
            epochs,
            [t["expected_mb"] / t["target_mb"] for t in trace],
            "-o",
            ms=4,
            color=color,
            label=f"{label} E[size]",
        )
        size_ax.plot(
            epochs,
            [float("nan") if t["argmax_mb"] is None else t["argmax_mb"] / t["target_mb"] for t in trace],
            ":",
            marker="x",
            ms=4,
            color=color,
            label=f"{label} argmax",
        )
        loss_ax.plot(epochs, [t["train_loss"] for t in trace], "--", color=color, label=f"{label} train")
        loss_ax.plot(
            epochs,
            [t["heldout_ce"] if t["heldout_ce"] is not None else float("nan") for t in trace],
            "-o",
            ms=4,
            color=color,
            label=f"{label} held-out CE",
        )
    first = next(iter(traces.values()))
    eps = first["settings"]["epsilon"]
    size_ax.axhspan(1 - eps, 1 + eps, color="grey", alpha=0.25, lw=0, label="budget band")
    size_ax.set_xlabel("epoch")
    size_ax.set_ylabel("size / budget")
    size_ax.set_title(
        f"{task}: expected size (temperature {first['trace'][0]['temperature']:g} to "
        f"{first['trace'][-1]['temperature']:.2g})",
        fontsize=9,
    )
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title(f"{task}: losses", fontsize=9)
    for ax in (size_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
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


def write_figures(summary, out_dir, spectra=(), tasks=None, traces=()):
    """Every figure of the report. spectra: Q-BERT spectrum.json files; traces: AQ-BERT search trace.json files.
    The allocation, search and Hessian figures draw one run each: the lowest seed's."""
    import json

    # .../seed<s>/<file>.json; then by path, so a series keeps its colour whatever the order given
    by_seed = lambda path: (int(Path(path).parent.name.removeprefix("seed")), str(path))

    cells = over_seeds(summary)
    out = {}
    for task in tasks or cells.task.unique():
        out[task] = metric_vs_size(cells, task, Path(out_dir) / f"{task}_metric_vs_size")
        out[task] += metric_vs_latency(cells, task, Path(out_dir) / f"{task}_metric_vs_latency")
        out[task] += ptq_vs_bits(cells, task, Path(out_dir) / f"{task}_ptq_vs_bits")
        runs = summary[(summary.task == task) & (summary.method == "qbert")].drop_duplicates("run_dir")
        runs = runs[runs.seed == runs.seed.min()] if not runs.empty else runs
        if not runs.empty:
            assignments = {
                r.budget: json.loads((Path(r.run_dir) / "assignment.json").read_text())
                for r in runs.sort_values("avg_bits", ascending=False).itertuples()
            }
            out[task] += allocation_figure(assignments, task, "qbert", Path(out_dir) / f"{task}_qbert_bits")
        aq = summary[
            (summary.task == task) & summary.method.isin(registry.names(kind=registry.SEARCH, trains=True))
        ].drop_duplicates("run_dir")  # aq_gptq's assignments are aq's
        aq = aq[aq.seed == aq.seed.min()] if not aq.empty else aq
        if not aq.empty:
            assignments = {
                f"{r.method} {r.budget}": json.loads((Path(r.run_dir) / "assignment.json").read_text())
                for r in aq.sort_values(["method", "avg_bits"], ascending=[True, False]).itertuples()
            }
            out[task] += aq_allocation_figure(assignments, task, Path(out_dir) / f"{task}_aq_bits")
    by_task = {}
    for path in sorted(traces, key=by_seed):
        record = json.loads(Path(path).read_text())
        model = paths.match(paths.TRACE, path)["model"]
        method = next(m for m in registry.names(kind=registry.SEARCH) if registry.METHODS[m].model == model)
        by_task.setdefault(record["task"], {}).setdefault(f"{method} {record['budget']}", record)
    for task, records in by_task.items():
        out.setdefault(task, []).extend(aq_search_figure(records, task, Path(out_dir) / f"{task}_aq_search"))
    drawn = set()
    for path in sorted(spectra, key=by_seed):
        spectrum = json.loads(Path(path).read_text())
        if spectrum["task"] not in drawn:
            drawn.add(spectrum["task"])
            out.setdefault(spectrum["task"], []).extend(
                hessian_figure(spectrum, Path(out_dir) / f"{spectrum['task']}_hessian")
            )
    return out
