"""Aggregation, tables, figures and the HTML report on hand-made metrics records."""

import json

import pytest

from aqbench.report.aggregate import aggregate, budget_bits, over_seeds
from aqbench.report.figures import write_figures
from aqbench.report.html import build_report
from aqbench.report.tables import write_tables


def record(task, method, budget, seed, metrics, main, size):
    return {"task": task, "model": "bert", "method": method, "budget": budget, "seed": seed, "metrics": metrics,
            "main_metric": main, "size_mb": size, "avg_bits": 32.0 if method == "fp" else float(budget[1:]),
            "emb_bits": 8, "act_bits": 8, "pruned_frac": 0.0, "weight_mb": size, "overhead_mb": 0.0,
            "avg_bits_total": 8.0, "emb_mb": 0.1, "compression": 1.0, "grid": "sym"}


@pytest.fixture
def metrics_files(tmp_path):
    rows = [
        record("sst2", "fp", "fp32", 0, {"accuracy": 90.0}, "accuracy", 1.0),
        record("sst2", "fp", "fp32", 1, {"accuracy": 92.0}, "accuracy", 1.0),
        record("sst2", "lq", "w2", 0, {"accuracy": 70.0}, "accuracy", 0.1),
        record("sst2", "lq", "w2", 1, {"accuracy": 80.0}, "accuracy", 0.1),
        record("sst2", "lq", "w8", 0, {"accuracy": 90.0}, "accuracy", 0.3),
        record("mnli", "fp", "fp32", 0, {"accuracy_m": 84.0, "accuracy_mm": 83.0}, "accuracy_m", 1.0),
        record("mnli", "lq", "w4", 0, {"accuracy_m": 80.0, "accuracy_mm": 79.0}, "accuracy_m", 0.2),
    ]
    paths = []
    for i, r in enumerate(rows):
        p = tmp_path / f"run{i}" / "metrics.json"
        p.parent.mkdir()
        p.write_text(json.dumps(r))
        paths.append(p)
    return paths


def test_summary_is_long_form_one_row_per_run_and_metric(metrics_files, tmp_path):
    frame = aggregate(metrics_files, tmp_path / "summary.csv")
    assert len(frame) == 5 + 2 * 2
    assert list(frame.task.unique()) == ["sst2", "mnli"]  # the papers' task order
    assert list(frame[frame.task == "sst2"].budget.unique()) == ["fp32", "w8", "w2"]  # largest first
    assert frame[frame.metric == "accuracy_mm"].main.tolist() == [False, False]
    assert (tmp_path / "summary.csv").read_text().startswith("task,model,method,budget,seed,metric,value,")


def test_packed_sizes_join_their_runs_and_show_in_the_table(metrics_files, tmp_path):
    from aqbench.report.tables import task_table

    packed = metrics_files[2].parent / "packed.json"  # sst2 lq w2 seed 0
    packed.write_text(json.dumps({"packed_mb": 0.101, "packed_file_mb": 0.5}))
    frame = aggregate(metrics_files, packed=[packed])
    assert frame[frame.run_dir == str(packed.parent)].packed_mb.tolist() == [0.101]
    assert frame[frame.run_dir != str(packed.parent)].packed_mb.isna().all()
    table = task_table(over_seeds(frame), "sst2")
    assert "packed (MB)" in table.columns


def test_over_seeds_mean_std_and_count(metrics_files):
    cells = over_seeds(aggregate(metrics_files))
    w2 = cells[(cells.task == "sst2") & (cells.budget == "w2")].iloc[0]
    assert (w2["mean"], w2["n"]) == (75.0, 2)
    assert w2["std"] == pytest.approx(7.0710678)  # sample std of 70 and 80
    assert cells[(cells.budget == "w8")].iloc[0]["std"] == 0.0


def test_budget_labels_sort_by_bits():
    assert [budget_bits(b) for b in ("fp32", "w8", "b2.96")] == [32.0, 8.0, 2.96]


def test_tables_figures_and_a_self_contained_report(metrics_files, tmp_path):
    summary = aggregate(metrics_files, tmp_path / "summary.csv")
    write_tables(summary, tmp_path / "tables")
    md = (tmp_path / "tables" / "results.md").read_text()
    assert "| bert | lq | w2 | 2.00 | 8 | 8 | 0.1000 | 2 | 75.00 ± 7.07 |" in md
    assert "accuracy_mm" in md and r"\begin{tabular}" in (tmp_path / "tables" / "results.tex").read_text()
    write_figures(summary, tmp_path / "figures")
    assert (tmp_path / "figures" / "sst2_metric_vs_size.svg").is_file()
    html = build_report(tmp_path / "summary.csv", tmp_path / "figures", tmp_path / "report.html", {"tasks": ["<x>"]})
    text = html.read_text()
    assert text.count('<section id="task-') == 2
    assert text.count("data:image/png;base64,") == 4  # per task: metric vs size, and PTQ metric vs bits
    ptq = (tmp_path / "tables" / "ptq.md").read_text()
    assert "| lq | 91.00 ± 1.41 | 90.00 | 75.00 ± 7.07 |" in ptq  # fp32, w8, w2 columns
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network
    assert "&lt;x&gt;" in text  # autoescaped
    assert "lq: smallest within 1 point of FP is w8 (0.300 MB, 90.00); at w2 (0.100 MB) it scores 75.00." in text
    assert "lq: no budget within 1 point of FP; at w4 it scores 80.00." in text  # mnli
