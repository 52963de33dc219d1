"""Paper-style tables (Markdown, LaTeX, CSV) in reports/tables/:

results   per task, every method at every budget: bits, sizes, metrics (AQ-BERT Table 1 / Q-BERT Table 1)
deploy    per task, every run on ONNX Runtime: sizes as held, metrics beside PyTorch's, latency per setting
ptq       per task, the PTQ methods by weight bits
distil    FP BERT, FP DistilBERT and AQ on DistilBERT at each budget, across tasks (AQ-BERT Table 3)
groups    Q-BERT and AQ at each number of groups per matrix, across tasks (AQ-BERT Table 2), when configured
winners   per task and budget, who wins: ties where the difference is within the seeds' spread or not significant
"""

from pathlib import Path

import pandas as pd

from aqbench import registry
from aqbench.budget import base_label, label_bits, label_groups, series
from aqbench.io import atomic_file, atomic_write_text
from aqbench.report import published as pub
from aqbench.report.aggregate import TASK_ORDER, over_seeds
from aqbench.report.compare import main_cells, pareto_front, verdict, winners
from aqbench.settings import TableSettings

SIZE_COLUMNS = ("size (MB)", "packed (MB)", "onnx (MB)")
HEADLINE = ("accuracy", "accuracy_m", "accuracy_mm", "exact_match", "f1")  # the papers' columns (not CoNLL's P/R)
# name -> (title, what the table shows): the files' headings and intros, and the HTML page's sections
ABOUT = {
    "results": (
        "Results",
        "Encoder size in MB (2^20 bytes) of the transformer blocks' weight matrices, group "
        "parameters included (fp16 each, as accounted); packed = the same matrices in the run's bit-packed "
        "file (float32 group parameters and a bit table, docs/outputs.md); onnx = as ONNX Runtime holds them "
        "(the deploy table). w-bits = mean bits per encoder weight. Metrics in percent, mean ± std over seeds. "
        "ms / xFP = the fastest ONNX Runtime form's median latency per batch at the smallest batch, one "
        "thread, and its speed-up over the FP32 ONNX model. front = on the Pareto front of the main metric "
        "against size.",
    ),
    "deploy": (
        "Deployment on ONNX Runtime",
        "Every run exported as an ONNX model on ONNX Runtime's CPU kernels "
        "(docs/deploy.md) and evaluated on the whole eval split. onnx (MB): the encoder's weight matrices as ORT "
        "holds them in the exact form (codes at 2, 4 or 8 bits, a scale and zero point per block, per-row "
        "offsets). pytorch / onnx: the main metric of the PyTorch run and of the exact form, which computes the "
        "run's arithmetic; max |diff|: the largest output difference; changed (ties): predictions that differ "
        "(those where the run's own margin was within rounding). fast / fast4 / w8a8: the other forms' metric "
        "and size. Per latency setting (b<batch>_t<1 or all threads>, sequences of onnx.latency.length tokens): the fastest form's "
        "median ms per batch, which form, its speed-up over the FP32 ONNX model measured in the same window "
        "(xFP), and the exact form's ms.",
    ),
    "ptq": (
        "Post-training quantization",
        "Main metric of each task (percent) by method and weight bits; 8-bit "
        "activations and embedding. OCS per expand ratio r. s/run: the method's mean seconds per run (loading, "
        "calibration, clipping or rounding; no evaluation), on the machine that ran it.",
    ),
    "distil": (
        "DistilBERT (as AQ-BERT Table 3)",
        "FP BERT, the FP distilled student and AQ-BERT on the student, each "
        "task's metrics (percent, mean ± std over seeds); the student's budgets are bits per weight of the "
        "student, so the same label is half the MB.",
    ),
    "groups": (
        "Groups per matrix (as AQ-BERT Table 2)",
        "Q-BERT and AQ-BERT at each study budget with each number "
        "of groups of output neurons per matrix (each group has its own scale and offset, counted in the "
        "size); main metric of each task.",
    ),
    "winners": (
        "Winners",
        "Per task, model and budget (the bits label, OCS's expand ratios together) that two or "
        "more series ran: the best mean of the main metric. A difference smaller than the seeds' spread (the "
        "larger standard deviation of the two), or not significant in the paired test on the runs' per-example "
        "outcomes (exact McNemar for accuracy, paired bootstrap otherwise; p < 0.05 after Holm's correction over "
        "the task's comparisons), is a tie; with one seed the seeds' spread is not measured.",
    ),
}
EMPTY = {
    "results": "No runs.",
    "deploy": "No ONNX export in this configuration (onnx.export).",
    "ptq": "No PTQ runs in this configuration.",
    "distil": "No distil or aq_distil runs in this configuration.",
    "groups": "No group study in this configuration (group_study in the config).",
    "winners": "No budget was run by two or more series.",
}
NAMES = list(ABOUT)  # every file the tables stage writes, as .md/.tex/.csv


def _fmt(cell):
    return f"{cell['mean']:.2f}" + (f" ± {cell['std']:.2f}" if cell["n"] > 1 else "")


def _published_values(rows, task, metric):
    return [pub.published(r.model, r.method, r.budget, task, metric) for r in rows.itertuples()]


def task_table(cells, task, published=False):
    """One task's table: a row per (model, method, budget), a column per metric (mean ± std over seeds), whether
    the run is on the Pareto front of the main metric against size, and the published number where asked."""
    t = cells[cells.task == task]
    index = ["model", "method", "budget"]
    first = t.groupby(index, sort=False).first().reset_index()
    shown = lambda c: c in first and first[c].notna().any()
    packed = [c for c in ("packed_mb", "onnx_mb") if shown(c)]
    table = first[index + ["avg_bits", "emb_bits", "act_bits", "size_mb", *packed, "n"]].rename(
        columns={
            "avg_bits": "w-bits",
            "emb_bits": "emb-bits",
            "act_bits": "act-bits",
            "size_mb": "size (MB)",
            "packed_mb": "packed (MB)",
            "onnx_mb": "onnx (MB)",
            "n": "seeds",
        }
    )
    latency = latency_cells(first)[:1]  # the smallest batch, one thread: the fastest form's ms and speed-up over FP
    for cell in latency:
        table[f"ms {cell}"] = first[f"latency_{cell}_ms"].to_numpy()
        table[f"xFP {cell}"] = first[f"speedup_{cell}"].to_numpy()
    for metric in t.metric.unique():
        m = t[t.metric == metric].set_index(index)
        table[metric] = [_fmt(m.loc[tuple(r)]) for r in first[index].itertuples(index=False)]
        if published:
            table[pub.column(metric)] = _published_values(first, task, metric)
    main = main_cells(cells, task)
    on_front = set(map(tuple, main[pareto_front(main)][index].itertuples(index=False)))
    table["front"] = ["yes" if tuple(r) in on_front else "" for r in first[index].itertuples(index=False)]
    return table


def latency_cells(frame):
    """The latency settings measured (b<batch>_t<1|all>), one thread first, then by batch size."""
    cells = [c.removeprefix("speedup_") for c in frame.columns if c.startswith("speedup_") and frame[c].notna().any()]
    return sorted(cells, key=lambda c: (c.split("_")[1] != "t1", int(c.split("_")[0][1:])))


def deploy_table(cells, task):
    """ONNX Runtime for one task: per run its true size and what ORT holds, the main metric of PyTorch and of the
    exact ONNX form with their largest output difference and the predictions that changed (near ties in
    brackets), the other forms' metric, and per latency setting the fastest form's median ms, which form, its
    speed-up over the FP32 ONNX model, and the exact form's ms. None without ONNX results."""
    t = main_cells(cells, task)
    if "onnx_value" not in t or t.onnx_value.isna().all():
        return None
    metric = t.metric.iloc[0]
    rows = []
    for r in t.itertuples():
        get = lambda c: getattr(r, c, None)  # noqa: B023 - used within this iteration
        row = {
            "model": r.model,
            "method": r.method,
            "budget": r.budget,
            "size (MB)": r.size_mb,
            "onnx (MB)": get("onnx_mb"),
            f"{metric} pytorch": r.mean,
            f"{metric} onnx": get("onnx_value"),
            "max |diff|": get("onnx_max_abs_diff"),
            "changed (ties)": ""
            if get("onnx_changed") is None or pd.isna(get("onnx_changed"))
            else f"{int(get('onnx_changed'))} ({int(get('onnx_near_ties'))})",
        }
        for form in ("fast", "fast4", "w8a8"):
            value = get(f"onnx_{form}_value")
            row[form] = "" if value is None or pd.isna(value) else f"{value:.2f} ({get(f'onnx_{form}_mb'):.3g} MB)"
        for cell in latency_cells(t):
            row[f"ms {cell}"] = get(f"latency_{cell}_ms")
            row[f"form {cell}"] = get(f"latency_{cell}_form") or ""
            row[f"xFP {cell}"] = get(f"speedup_{cell}")
            row[f"exact ms {cell}"] = get(f"latency_{cell}_exact_ms")
        rows.append(row)
    return pd.DataFrame(rows)


def ptq_table(cells, task):
    """The PTQ study's table for one task: a row per method (OCS per expand ratio), a column per weight bit-width,
    the task's main metric in each cell, the FP score each method starts from in the first column, and the
    method's cost (mean seconds per run: calibration, clipping, rounding; the model's loading included)."""
    t = cells[(cells.task == task) & cells["main"]]
    ptq = t[t.method.isin(registry.names(kind=registry.PTQ))]
    if ptq.empty:
        return None
    fp = t[t.method == "fp"]
    rows = []
    for name, g in ptq.assign(series=[series(m, b) for m, b in zip(ptq.method, ptq.budget)]).groupby(
        "series", sort=False
    ):
        row = {"method": name, **({"fp32": _fmt(fp.iloc[0])} if not fp.empty else {})}
        row.update({f"w{int(label_bits(c.budget))}": _fmt(c) for _, c in g.iterrows()})
        if "method_s" in g and g.method_s.notna().any():
            row["s/run"] = f"{g.method_s.mean():.1f}"
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    bit_cols = sorted((c for c in table.columns if c.startswith("w")), key=lambda c: -int(c[1:]))
    return table[
        ["method"] + (["fp32"] if "fp32" in table else []) + bit_cols + (["s/run"] if "s/run" in table else [])
    ]


def across_tasks(cells, keep, published=False, main_only=False):
    """Rows (model, method, budget) chosen by keep(cells) -> mask, a column per task and metric, in task order."""
    chosen = cells[keep(cells)]
    if chosen.empty:
        return None
    index = ["model", "method", "budget"]
    first = chosen.groupby(index, sort=False).first().reset_index()
    table = first[index + ["avg_bits", "size_mb"]].rename(columns={"avg_bits": "w-bits", "size_mb": "size (MB)"})
    tasks = sorted(chosen.task.unique(), key=lambda t: TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER))
    for task in tasks:
        t = chosen[(chosen.task == task) & (chosen["main"] if main_only else chosen.metric.isin(HEADLINE))]
        for metric in t.metric.unique():
            m = t[t.metric == metric].set_index(index)
            table[f"{task} {metric}"] = [
                _fmt(m.loc[tuple(r)]) if tuple(r) in m.index else "" for r in first[index].itertuples(index=False)
            ]
            if published:
                table[pub.column(f"{task} {metric}")] = _published_values(first, task, metric)
    return table


def distil_table(cells, published=False):
    """AQ-BERT Table 3: FP BERT, the FP student, and AQ on the student at each budget."""
    if not cells.method.isin(["distil", "aq_distil"]).any():
        return None
    return across_tasks(cells, lambda c: c.method.isin(["fp", "distil", "aq_distil"]), published)


def groups_table(cells, groups, study):
    """AQ-BERT Table 2: Q-BERT and AQ at each study budget with each groups-per-matrix count (main metrics)."""
    if not study:
        return None
    labels = {f"b{b:g}" for b in study.budgets}
    keep = lambda c: c.method.isin(registry.names(group_study=True)) & c.budget.map(base_label).isin(labels)
    table = across_tasks(cells, keep, main_only=True)
    if table is None:
        return None
    table.insert(3, "groups", [label_groups(b) or groups for b in table.budget])
    table["budget"] = table.budget.map(base_label)
    return table.sort_values(["budget", "method", "groups"], kind="stable").reset_index(drop=True)


def winners_table(cells, paired=None):
    rows = [
        {
            "task": task,
            "model": w["model"],
            "budget": w["budget"],
            "metric": w["metric"],
            "seeds": w["seeds"],
            "tie": w["tie"],
            "result": verdict(w),
        }
        for task in cells.task.unique()
        for w in winners(cells, task, paired)
    ]
    return pd.DataFrame(rows, columns=["task", "model", "budget", "metric", "seeds", "tie", "result"])


def format_number(v, digits=2):
    """A table cell: floats with `digits` decimals, a dash for a missing value."""
    if v is None or (isinstance(v, float) and v != v):
        return "–"  # not applicable (e.g. no packed file for an FP run, no published number)
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def cell_text(column, value):
    if column == "max |diff|" and isinstance(value, float) and value == value:
        return f"{value:.2g}"
    return format_number(value, 4 if column in SIZE_COLUMNS else 2)


def markdown(table):
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell_text(c, v) for c, v in zip(cols, row)) + " |")
    return "\n".join(lines)


def latex(table, caption):
    cols = list(table.columns)
    esc = lambda s: str(s).replace("_", r"\_").replace("±", r"$\pm$").replace("%", r"\%").replace("–", "--")
    body = [
        " & ".join(esc(cell_text(c, v)) for c, v in zip(cols, row)) + r" \\" for row in table.itertuples(index=False)
    ]
    text_cols = sum(1 for c in cols if table[c].map(lambda v: isinstance(v, str) and not v[:1].isdigit()).all())
    return "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            r"\begin{tabular}{" + "l" * text_cols + "r" * (len(cols) - text_cols) + "}",
            r"\toprule",
            " & ".join(esc(c) for c in cols) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{{esc(caption)}}}",
            r"\end{table}",
        ]
    )


def _write(out_dir, name, sections, note=""):
    """name.{md,tex,csv}: sections = [(heading, table, caption)], under the table's title and intro (and `note`)."""
    title, intro = ABOUT[name]
    md, tex, frames = [f"# {title}", "", intro + note, ""], [], []
    for heading, table, caption in sections:
        md += ([f"## {heading}", ""] if heading else []) + [markdown(table), ""]
        tex += [latex(table, caption), ""]
        frames.append(table.assign(section=heading) if heading else table)
    if not sections:
        md.append(EMPTY[name])
    atomic_write_text(Path(out_dir) / f"{name}.md", "\n".join(md))
    atomic_write_text(Path(out_dir) / f"{name}.tex", "\n".join(tex))
    with atomic_file(Path(out_dir) / f"{name}.csv") as tmp:
        (pd.concat(frames) if frames else pd.DataFrame()).to_csv(tmp, index=False)


PUBLISHED_NOTE = (
    f" Columns marked (published) are the papers' numbers ({pub.SOURCE}), not measured here; a dash: the "
    "paper has no such row."
)


def all_tables(cells, settings, paired=None):
    """({name: [(heading, table, caption)]}, whether published numbers are shown): every table, from the cells of
    over_seeds, an aqbench.settings.TableSettings (report_settings(config)) and the paired tests (or None)."""
    shown = pub.applies(cells, settings.published)
    per_task = [(t, task_table(cells, t, shown), f"{t}: every method at every budget") for t in cells.task.unique()]
    ptq = [
        (t, table, f"{t}: post-training quantization")
        for t in cells.task.unique()
        if (table := ptq_table(cells, t)) is not None
    ]
    deploy = [
        (t, table, f"{t}: on ONNX Runtime")
        for t in cells.task.unique()
        if (table := deploy_table(cells, t)) is not None
    ]
    distil = distil_table(cells, shown)
    groups = groups_table(cells, settings.groups, settings.group_study)
    winners = winners_table(cells, paired)
    return {
        "results": per_task,
        "deploy": deploy,
        "ptq": ptq,
        "distil": [] if distil is None else [("", distil, "FP BERT, FP DistilBERT and AQ-BERT on DistilBERT")],
        "groups": [] if groups is None else [("", groups, "Q-BERT and AQ-BERT by groups per matrix")],
        "winners": [] if winners.empty else [("", winners, "Who wins at each budget")],
    }, shown


def write_tables(summary, out_dir, settings=None, paired=None):
    """Every table as .md, .tex and .csv in out_dir. Returns {name: [(heading, table, caption)]}."""
    tables, shown = all_tables(over_seeds(summary), settings or TableSettings(), paired)
    notes = (
        {
            "results": PUBLISHED_NOTE,
            "distil": PUBLISHED_NOTE,
            "ptq": " Published: OCS keeps 98% of BERT-base's GLUE score at 3 bits.",
        }
        if shown
        else {}
    )
    for name in NAMES:
        _write(out_dir, name, tables[name], notes.get(name, ""))
    return tables
