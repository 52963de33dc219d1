"""Paper-style tables (Markdown, LaTeX, CSV): per task, every method at every budget with its bits, size, metrics."""

from pathlib import Path

import pandas as pd

from aqbench.io import atomic_file, atomic_write_text
from aqbench.report.aggregate import PTQ_METHODS, budget_bits, over_seeds, series


def task_table(cells, task):
    """One task's table: a row per (model, method, budget), a column per metric (mean, +- std over seeds)."""
    t = cells[cells.task == task]
    index = ["model", "method", "budget"]
    first = t.groupby(index, sort=False).first().reset_index()
    packed = ["packed_mb"] if "packed_mb" in first and first["packed_mb"].notna().any() else []
    table = first[index + ["avg_bits", "emb_bits", "act_bits", "size_mb", *packed, "n"]].rename(
        columns={"avg_bits": "w-bits", "emb_bits": "emb-bits", "act_bits": "act-bits", "size_mb": "size (MB)",
                 "packed_mb": "packed (MB)", "n": "seeds"})
    for metric in t.metric.unique():
        m = t[t.metric == metric].set_index(index)
        table[metric] = [_fmt(m.loc[tuple(r)]) for r in first[index].itertuples(index=False)]
    return table


def ptq_table(cells, task):
    """The PTQ study's table for one task: a row per method (OCS per expand ratio), a column per weight bit-width,
    the task's main metric in each cell, and the FP score each method starts from in the first column."""
    t = cells[(cells.task == task) & cells["main"]]
    ptq = t[t.method.isin(PTQ_METHODS)]
    if ptq.empty:
        return None
    fp = t[t.method == "fp"]
    rows = []
    for name, g in ptq.assign(series=[series(m, b) for m, b in zip(ptq.method, ptq.budget)]).groupby("series", sort=False):
        row = {"method": name, **({"fp32": _fmt(fp.iloc[0])} if not fp.empty else {})}
        row.update({f"w{int(budget_bits(c.budget))}": _fmt(c) for _, c in g.iterrows()})
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    bit_cols = sorted((c for c in table.columns if c.startswith("w")), key=lambda c: -int(c[1:]))
    return table[["method"] + (["fp32"] if "fp32" in table else []) + bit_cols]


def _fmt(cell):
    return f"{cell['mean']:.2f}" + (f" ± {cell['std']:.2f}" if cell["n"] > 1 else "")


def format_number(v, digits=2):
    """A table cell: floats with `digits` decimals, a dash for a missing value."""
    if isinstance(v, float) and v != v:
        return "–"  # not applicable (e.g. no packed file for an FP run)
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown(table):
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(format_number(v, 4 if c in ("size (MB)", "packed (MB)") else 2) for c, v in zip(cols, row)) + " |")
    return "\n".join(lines)


def latex(table, caption):
    cols = list(table.columns)
    esc = lambda s: str(s).replace("_", r"\_").replace("±", r"$\pm$").replace("%", r"\%")
    body = [" & ".join(esc(format_number(v, 4 if c in ("size (MB)", "packed (MB)") else 2)) for c, v in zip(cols, row)) + r" \\"
            for row in table.itertuples(index=False)]
    text_cols = sum(1 for c in cols if table[c].map(lambda v: isinstance(v, str) and not v[:1].isdigit()).all())
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\begin{tabular}{" + "l" * text_cols + "r" * (len(cols) - text_cols) + "}",
                      r"\toprule", " & ".join(esc(c) for c in cols) + r" \\", r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}", rf"\caption{{{esc(caption)}}}", r"\end{table}"])


def write_tables(summary, out_dir):
    """reports/tables/results.{md,tex,csv}: one section per task. Returns {task: table}."""
    out_dir = Path(out_dir)
    cells = over_seeds(summary)
    tables = {task: task_table(cells, task) for task in cells.task.unique()}
    md = ["# Results", "", "Encoder size in MB (2^20 bytes) of the transformer blocks' weight matrices, group "
          "parameters included (fp16 each, as accounted); packed = the same matrices in the run's bit-packed file "
          "(float32 group parameters and a bit table, docs/outputs.md). w-bits = mean bits per encoder weight. Metrics "
          "in percent, mean ± std over seeds.", ""]
    tex = []
    for task, table in tables.items():
        md += [f"## {task}", "", markdown(table), ""]
        tex += [latex(table, f"{task}: every method at every budget"), ""]
    atomic_write_text(out_dir / "results.md", "\n".join(md))
    atomic_write_text(out_dir / "results.tex", "\n".join(tex))
    with atomic_file(out_dir / "results.csv") as tmp:
        pd.concat([t.assign(task=task) for task, t in tables.items()]).to_csv(tmp, index=False)
    write_ptq_tables(cells, out_dir)
    return tables


def write_ptq_tables(cells, out_dir):
    """reports/tables/ptq.{md,tex,csv}: the PTQ study per task (main metric by method and weight bits)."""
    md = ["# Post-training quantization", "", "Main metric of each task (percent) by method and weight bits; 8-bit "
          "activations and embedding. OCS per expand ratio r.", ""]
    tex, frames = [], []
    for task in cells.task.unique():
        table = ptq_table(cells, task)
        if table is None:
            continue
        metric = cells[(cells.task == task) & cells["main"]].metric.iloc[0]
        md += [f"## {task} ({metric})", "", markdown(table), ""]
        tex += [latex(table, f"{task}: post-training quantization, {metric}"), ""]
        frames.append(table.assign(task=task, metric=metric))
    if not frames:
        md.append("No PTQ runs in this configuration.")
    atomic_write_text(Path(out_dir) / "ptq.md", "\n".join(md))
    atomic_write_text(Path(out_dir) / "ptq.tex", "\n".join(tex))
    with atomic_file(Path(out_dir) / "ptq.csv") as tmp:
        (pd.concat(frames) if frames else pd.DataFrame(columns=["method", "task", "metric"])).to_csv(tmp, index=False)
