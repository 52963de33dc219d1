"""Paper-style tables (Markdown, LaTeX, CSV): per task, every method at every budget with its bits, size, metrics."""

from pathlib import Path

import pandas as pd

from aqbench.io import atomic_file, atomic_write_text
from aqbench.report.aggregate import over_seeds


def task_table(cells, task):
    """One task's table: a row per (model, method, budget), a column per metric (mean, +- std over seeds)."""
    t = cells[cells.task == task]
    index = ["model", "method", "budget"]
    first = t.groupby(index, sort=False).first().reset_index()
    table = first[index + ["avg_bits", "emb_bits", "act_bits", "size_mb", "n"]].rename(
        columns={"avg_bits": "w-bits", "emb_bits": "emb-bits", "act_bits": "act-bits", "size_mb": "size (MB)", "n": "seeds"})
    for metric in t.metric.unique():
        m = t[t.metric == metric].set_index(index)
        table[metric] = [_fmt(m.loc[tuple(r)]) for r in first[index].itertuples(index=False)]
    return table


def _fmt(cell):
    return f"{cell['mean']:.2f}" + (f" ± {cell['std']:.2f}" if cell["n"] > 1 else "")


def _num(v, digits=2):
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown(table):
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_num(v, 3 if c == "size (MB)" else 2) for c, v in zip(cols, row)) + " |")
    return "\n".join(lines)


def latex(table, caption):
    cols = list(table.columns)
    esc = lambda s: str(s).replace("_", r"\_").replace("±", r"$\pm$").replace("%", r"\%")
    body = [" & ".join(esc(_num(v, 3 if c == "size (MB)" else 2)) for c, v in zip(cols, row)) + r" \\"
            for row in table.itertuples(index=False)]
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\begin{tabular}{" + "l" * 3 + "r" * (len(cols) - 3) + "}",
                      r"\toprule", " & ".join(esc(c) for c in cols) + r" \\", r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}", rf"\caption{{{esc(caption)}}}", r"\end{table}"])


def write_tables(summary, out_dir):
    """reports/tables/results.{md,tex,csv}: one section per task. Returns {task: table}."""
    out_dir = Path(out_dir)
    cells = over_seeds(summary)
    tables = {task: task_table(cells, task) for task in cells.task.unique()}
    md = ["# Results", "", "Encoder size in MB (2^20 bytes) of the transformer blocks' weight matrices, group "
          "parameters included; w-bits = mean bits per encoder weight. Metrics in percent, mean ± std over seeds.", ""]
    tex = []
    for task, table in tables.items():
        md += [f"## {task}", "", markdown(table), ""]
        tex += [latex(table, f"{task}: every method at every budget"), ""]
    atomic_write_text(out_dir / "results.md", "\n".join(md))
    atomic_write_text(out_dir / "results.tex", "\n".join(tex))
    with atomic_file(out_dir / "results.csv") as tmp:
        pd.concat([t.assign(task=task) for task, t in tables.items()]).to_csv(tmp, index=False)
    return tables
