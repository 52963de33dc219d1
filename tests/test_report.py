"""Aggregation, tables, figures and the HTML report on hand-made metrics records."""

import json

import pytest

from aqbench.budget import label_bits
from aqbench.report.aggregate import aggregate, load_summary, over_seeds
from aqbench.report.figures import write_figures
from aqbench.report.html import build_report, run_files
from aqbench.report.tables import write_tables
from aqbench.settings import TableSettings


def record(task, method, budget, seed, metrics, main, size):
    return {
        "task": task,
        "model": "bert",
        "method": method,
        "budget": budget,
        "seed": seed,
        "metrics": metrics,
        "main_metric": main,
        "size_mb": size,
        "avg_bits": 32.0 if method == "fp" else float(budget[1:]),
        "emb_bits": 8,
        "act_bits": 8,
        "pruned_frac": 0.0,
        "weight_mb": size,
        "overhead_mb": 0.0,
        "avg_bits_total": 8.0,
        "emb_mb": 0.1,
        "compression": 1.0,
        "grid": "sym",
    }


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
    assert [label_bits(b) for b in ("fp32", "w8", "b2.96")] == [32.0, 8.0, 2.96]


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
    assert "lq: w4 (0.200 MB) scores 80.00." in text  # mnli: its one budget


# --- on a hand-made summary.csv -----------------------------------------------------------------------------------

SUMMARY_HEADER = (
    "task,model,method,budget,seed,metric,value,main,size_mb,avg_bits,emb_bits,act_bits,pruned_frac,run_dir\n"
)


def summary_csv(tmp_path, rows, name="summary.csv"):
    """rows: (task, model, method, budget, seed, metric, value, size_mb); the first metric of a task is its main one."""
    main = {}
    lines = [SUMMARY_HEADER]
    for task, model, method, budget, seed, metric, value, size in rows:
        main.setdefault(task, metric)
        bits = 32.0 if budget == "fp32" else float(budget.split("-")[0][1:])
        lines.append(
            f"{task},{model},{method},{budget},{seed},{metric},{value},{metric == main[task]},{size},{bits},8,8,0.0,"
            f"{tmp_path}/results/runs/{task}/{model}/{method}/{budget}/seed{seed}\n"
        )
    path = tmp_path / name
    path.write_text("".join(lines))
    return path


def seeds(task, method, budget, values, size, model="bert", metric="accuracy"):
    return [(task, model, method, budget, s, metric, v, size) for s, v in enumerate(values)]


def test_over_seeds_of_a_hand_made_summary(tmp_path):

    path = summary_csv(
        tmp_path, seeds("sst2", "aq", "b2.47", [90.0, 91.0, 95.0], 25.0) + seeds("sst2", "qbert", "b2.47", [88.0], 25.0)
    )
    cells = over_seeds(load_summary(path)).set_index("method")
    assert (cells.loc["aq", "mean"], cells.loc["aq", "n"]) == (92.0, 3)
    assert cells.loc["aq", "std"] == pytest.approx(2.6457513)  # sample std of 90, 91, 95
    assert (cells.loc["qbert", "n"], cells.loc["qbert", "std"]) == (1, 0.0)


def test_pareto_front_keeps_the_runs_nothing_smaller_beats():
    import pandas as pd

    from aqbench.report.compare import pareto_front

    points = pd.DataFrame({"size_mb": [10, 20, 20, 30, 5, 30], "mean": [80, 85, 84, 85, 70, 90]})
    # 20/84 loses to 20/85; 30/85 to 20/85; equal size, better score wins; the smallest run is always on it
    assert pareto_front(points).tolist() == [True, True, False, False, True, True]
    twins = pd.DataFrame({"size_mb": [10, 10], "mean": [80, 80]})
    assert pareto_front(twins).tolist() == [True, True]  # equal runs are both on the front


def test_a_difference_within_the_seeds_spread_is_a_tie_and_beyond_it_a_win(tmp_path):
    from aqbench.report.compare import verdict, winners

    rows = (
        seeds("sst2", "aq", "b2.47", [90.0, 92.0, 94.0], 25.0)  # 92 ± 2
        + seeds("sst2", "qbert", "b2.47", [90.0, 91.0, 92.0], 25.0)  # 91 ± 1: 1 point behind, within 2 -> tie
        + seeds("sst2", "aq", "b1.97", [90.0, 90.5, 91.0], 20.0)  # 90.5 ± 0.5
        + seeds("sst2", "qbert", "b1.97", [84.0, 85.0, 86.0], 20.0)  # 85 ± 1: 5.5 behind, beyond 1 -> aq wins
        + seeds("sst2", "lq", "w2", [80.0], 20.0)
        + seeds("sst2", "aciq", "w2", [79.0], 20.0)  # one seed each
        + seeds("sst2", "fp", "fp32", [93.0, 93.0, 93.0], 324.0)
    )
    found = {w["budget"]: w for w in winners(over_seeds(load_summary(summary_csv(tmp_path, rows))), "sst2")}
    assert set(found) == {"b2.47", "b1.97", "w2"}  # fp is the reference, not a contender
    assert found["b2.47"]["tie"] and found["b2.47"]["winners"] == ["aq", "qbert"]
    assert "tie: aq, qbert" in verdict(found["b2.47"]) and "spread, 2.00" in verdict(found["b2.47"])
    assert not found["b1.97"]["tie"] and found["b1.97"]["winners"] == ["aq"]
    assert "aq 90.50 ± 0.50 ahead of qbert 85.00 ± 1.00 by 5.50, more than the seeds' spread (1.00)" == verdict(
        found["b1.97"]
    )
    assert found["w2"]["winners"] == ["lq"] and "one seed, so the noise is not measured" in verdict(found["w2"])


PAPER_ROWS = [
    ("sst2", "bert", "fp", "fp32", 0, "accuracy", 93.1, 324.0),
    ("sst2", "bert", "aq", "b2.47", 0, "accuracy", 92.0, 25.0),
    ("squad", "bert", "fp", "fp32", 0, "f1", 88.0, 324.0),
    ("squad", "bert", "fp", "fp32", 0, "exact_match", 80.0, 324.0),
    ("sst2", "distil", "distil", "fp32", 0, "accuracy", 91.0, 162.0),
    ("sst2", "distil", "aq_distil", "b1.97", 0, "accuracy", 89.0, 10.0),
]


@pytest.mark.parametrize("configfile,shown", [("paper.yaml", True), ("config.yaml", False), ("ci.yaml", False)])
def test_the_published_numbers_appear_only_for_the_paper_configuration(tmp_path, configfile, shown):
    from conftest import REPO

    from aqbench.config import load_file, report_settings

    settings = report_settings(load_file(REPO / "config" / configfile))
    write_tables(
        load_summary(summary_csv(tmp_path, PAPER_ROWS)), tmp_path / "tables", TableSettings.from_dict(settings)
    )
    results, distil = ((tmp_path / "tables" / f"{n}.md").read_text() for n in ("results", "distil"))
    assert ("accuracy (published)" in results) is shown
    assert ("sst2 accuracy (published)" in distil) is shown

    html = build_report(
        summary_csv(tmp_path, PAPER_ROWS), tmp_path, tmp_path / "report.html", load_file(REPO / "config" / configfile)
    ).read_text()
    assert ('<th class="published">accuracy (published)</th>' in html) is shown
    if shown:  # AQ-BERT Table 1's 25 MB row beside ours; a dash where the paper has no number
        assert "| bert | aq | b2.47 | 2.47 | 8 | 8 | 25.0000 | 1 | 92.00 | 92.50 |" in results
        assert "| distil | aq_distil | b1.97 | 1.97 | 10.0000 | 89.00 | 89.70 |" in distil
        assert "f1 (published)" in results and "| 88.00 | 88.69 |" in results


def test_published_numbers_are_not_shown_for_a_model_that_is_not_bert_base(tmp_path):

    small = [r[:7] + (0.75 if r[2] == "fp" else r[7],) for r in PAPER_ROWS]  # the demo's FP encoder is 0.75 MB
    write_tables(load_summary(summary_csv(tmp_path, small)), tmp_path / "tables", TableSettings(published=True))
    assert "(published)" not in (tmp_path / "tables" / "results.md").read_text()


def test_the_published_table_is_the_design_cards(tmp_path):
    """Every number of the design card's anchor table (beside the shared data, outside the repository; skipped
    where absent) is in PUBLISHED under the run that reproduces it."""
    import re

    from conftest import SHARED_DATA

    from aqbench.report.published import published

    card = SHARED_DATA.parent / "DESIGN.md"
    if not card.is_file():
        pytest.skip("no design card here")
    rows = re.findall(r"^\| (BERT-base FP|Q-BERT|AQ-BERT) \((\d+(?:\.\d+)?)\) \| (.*) \|$", card.read_text(), re.M)
    assert len(rows) == 7
    runs = {
        ("BERT-base FP", "324.5"): ("fp", "fp32"),
        ("Q-BERT", "30"): ("qbert", "b2.96"),
        ("AQ-BERT", "30"): ("aq", "b2.96"),
        ("Q-BERT", "25"): ("qbert", "b2.47"),
        ("AQ-BERT", "25"): ("aq", "b2.47"),
        ("Q-BERT", "20"): ("qbert", "w2"),
        ("AQ-BERT", "20"): ("aq", "b1.97"),
    }
    cells = [
        ("sst2", "accuracy"),
        ("mnli", "accuracy_m"),
        ("mnli", "accuracy_mm"),
        ("squad", "exact_match"),
        ("squad", "f1"),
        ("conll03", "f1"),
    ]
    for name, size, values in rows:
        method, budget = runs[(name, size)]
        for (task, metric), value in zip(cells, values.split(" | ")):
            assert published("bert", method, budget, task, metric) == float(value), (name, size, task, metric)


def test_distil_and_group_tables_from_a_hand_made_summary(tmp_path):

    rows = (
        PAPER_ROWS
        + seeds("sst2", "qbert", "b2.47-g1", [80.0], 24.0)
        + seeds("sst2", "qbert", "b2.47", [88.0], 25.0)
        + seeds("sst2", "aq", "b2.47-g768", [93.0], 26.0)
        + seeds("sst2", "qbert", "b2.96", [91.0], 30.0)
    )
    study = {"groups": [1, 128, 768], "budgets": [2.47]}
    tables = write_tables(
        load_summary(summary_csv(tmp_path, rows)),
        tmp_path / "tables",
        TableSettings.from_dict({"groups": 128, "group_study": study}),
    )
    groups = tables["groups"][0][1]
    assert groups[["method", "groups", "sst2 accuracy"]].values.tolist() == [
        ["aq", 128, "92.00"],
        ["aq", 768, "93.00"],
        ["qbert", 1, "80.00"],
        ["qbert", 128, "88.00"],
    ]  # not b2.96
    distil = tables["distil"][0][1]
    assert distil[["model", "method", "budget"]].values.tolist() == [
        ["bert", "fp", "fp32"],
        ["distil", "distil", "fp32"],
        ["distil", "aq_distil", "b1.97"],
    ]
    assert list(distil.columns) == [
        "model",
        "method",
        "budget",
        "w-bits",
        "size (MB)",
        "sst2 accuracy",
        "squad f1",
        "squad exact_match",
    ]
    without = write_tables(load_summary(summary_csv(tmp_path, rows)), tmp_path / "t2", TableSettings(groups=128))
    assert without["groups"] == [] and "No group study" in (tmp_path / "t2" / "groups.md").read_text()


def test_the_report_links_each_row_to_its_log_and_assignment_and_sorts(tmp_path):
    rows = seeds("sst2", "aq", "b2.47", [90.0, 92.0], 25.0) + seeds("sst2", "fp", "fp32", [93.0, 93.0], 324.0)
    path = summary_csv(tmp_path, rows)
    for seed in (0, 1):  # the files the workflow writes for these runs
        run = tmp_path / "results" / "runs" / "sst2" / "bert" / "aq" / "b2.47" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "assignment.json").write_text("{}")
        for log in (
            f"aq/sst2/bert/aq/b2.47/seed{seed}.log",
            f"aq_search/sst2/bert/b2.47/seed{seed}.log",
            f"ptq/sst2/bert/fp/seed{seed}.log",
        ):
            (tmp_path / "results" / "logs" / log).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "results" / "logs" / log).write_text("log")
    qbert = tmp_path / "results" / "runs" / "sst2" / "bert" / "qbert" / "b2.47" / "seed0"  # beside aq's b2.47 search
    assert [label for label, _ in run_files(qbert, "qbert")] == []  # no qbert log; not aq's search log
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "sst2_aq_bits.png").write_bytes(b"png")  # the allocation figure: one seed's runs
    html = build_report(path, tmp_path / "figures", tmp_path / "reports" / "report.html", {}).read_text()
    for href in (
        "../results/logs/aq/sst2/bert/aq/b2.47/seed1.log",
        "../results/logs/aq_search/sst2/bert/b2.47/seed0.log",
        "../results/runs/sst2/bert/aq/b2.47/seed0/assignment.json",
        "../results/logs/ptq/sst2/bert/fp/seed1.log",
    ):
        assert f'href="{href}"' in html
    assert 'table class="sortable"' in html and "addEventListener" in html
    assert "Drawn from seed 0's runs only (of 2 seeds)." in html
    assert '<section id="winners">' in html and "Pareto front, smallest first: aq b2.47 (25 MB, 91.00); fp fp32" in html


@pytest.mark.parametrize("order", [(1, 0), (0, 1)])
def test_one_run_figures_draw_the_lowest_seed_whatever_the_order_given(tmp_path, monkeypatch, order):
    import aqbench.report.figures as figures

    drawn = {}
    monkeypatch.setattr(
        figures, "aq_search_figure", lambda records, task, stem: drawn.setdefault("search", records) and []
    )
    monkeypatch.setattr(figures, "hessian_figure", lambda spectrum, stem: drawn.setdefault("hessian", spectrum) and [])
    records = {}  # path -> record, given in the parametrized order (distil before bert when the seeds go down)
    for seed in order:
        for model in ("distil", "bert") if order[0] else ("bert", "distil"):
            records[f"search/sst2/{model}/b2/seed{seed}/trace.json"] = {"task": "sst2", "budget": "b2", "seed": seed}
        records[f"hessian/sst2/bert/seed{seed}/spectrum.json"] = {"task": "sst2", "seed": seed}
    for path, record in records.items():
        (tmp_path / path).parent.mkdir(parents=True)
        (tmp_path / path).write_text(json.dumps(record))
    summary = load_summary(summary_csv(tmp_path, seeds("sst2", "fp", "fp32", [90.0, 91.0], 1.0)))
    write_figures(
        summary,
        tmp_path / "figures",
        spectra=[tmp_path / p for p in records if "hessian" in p],
        traces=[tmp_path / p for p in records if "search" in p],
    )
    seed0 = {"task": "sst2", "budget": "b2", "seed": 0}
    assert list(drawn["search"].items()) == [("aq b2", seed0), ("aq_distil b2", seed0)]  # the same colour order
    assert drawn["hessian"]["seed"] == 0


def deploy_cells(rows):
    """Hand-made over_seeds cells with ONNX columns: rows of (method, budget, {form: speed-up at b1_t1})."""
    import pandas as pd

    records = []
    for method, budget, speed in rows:
        r = {
            "task": "sst2",
            "model": "bert",
            "method": method,
            "budget": budget,
            "main": True,
            "mean": 90.0,
            "size_mb": 1.0,
            "onnx_mb": 1.1,
            "onnx_value": 90.0,
            "onnx_changed": 0,
            "onnx_near_ties": 0,
            "onnx_fast4_mb": 2.0,
            "onnx_w8a8_mb": 4.0,
            "latency_cpu": "a CPU",
            "latency_length": 128,
            "latency_threads": 2,
            "latency_load": 0.5,
            "speedup_b1_t1": max(speed.values()),
        }
        r.update({f"latency_b1_t1_{form}_speedup": v for form, v in speed.items()})
        records.append(r)
    return pd.DataFrame(records)


def test_deploy_notes_give_the_noise_and_the_re_stored_forms_of_a_slow_run():
    from aqbench.report.html import deploy_notes

    notes, slow = deploy_notes(
        deploy_cells(
            [
                ("fp", "fp32", {"fp32": 0.9}),
                ("lq", "w2", {"exact": 0.3, "fast": 0.8, "fast4": 1.5, "w8a8": 2.0}),
                ("lq", "w8", {"exact": 2.5}),
            ]
        ),
        "sst2",
    )
    assert any("x0.90 to x0.90 of the FP32 baseline" in n for n in notes)
    assert len(slow) == 1 and slow[0].startswith("lq w2 ") and "b1_t1 (x0.80)" in slow[0]
    assert "at 4 bits (fast4, 2 MB): x1.50" in slow[0] and "at 8 bits (w8a8, 4 MB): x2.00" in slow[0]
    none_faster, slow = deploy_notes(
        deploy_cells([("fp", "fp32", {"fp32": 1.0}), ("lq", "w8", {"exact": 0.7})]), "sst2"
    )
    assert not slow and any(
        n.startswith("No quantized form is faster") and "lq w8 (exact) at b1_t1, x0.70" in n for n in none_faster
    )


def test_a_task_trained_on_part_of_its_eval_file_says_so_on_its_page():
    from aqbench.report.html import deviation

    config = {"data": {"seed": 1}, "task_overrides": {"squad": {"data": {"train_from_eval": 0.5}}}}
    assert "Deviation from the papers" in deviation(config, "squad") and "50%" in deviation(config, "squad")
    assert deviation(config, "sst2") is None and deviation({}, "squad") is None
