"""config/paper.yaml and config/local-example.yaml: valid, the paper's budgets, the full DAG planned by
Snakemake without the demo's settings leaking in, and a real run that stops at once when the hub is unreachable."""

import os
import subprocess
import time

import pytest
from conftest import REPO
from test_workflow import SNAKEMAKE, job_counts

from aqbench import config as C
from aqbench.quant.size import budget_mb

PAPER = REPO / "config" / "paper.yaml"


def snakemake(workdir, *args, env=None):
    return subprocess.run([*SNAKEMAKE, "-d", str(workdir), *args], capture_output=True, text=True, timeout=300, env=env)


def test_paper_and_local_example_configs_are_valid():
    paper = C.load_file(PAPER)
    assert paper["models"]["bert"] == {
        "source": "hub",
        "path": "bert-base-uncased",
        "architecture": {},
        "tokenizer_vocab_size": 2000,
        "revision": None,  # the hub's default branch; the comment in config/paper.yaml shows how to pin a commit
    }
    assert paper["models"]["distil"]["path"] == "distilbert-base-uncased"
    assert (
        paper["quant"]["grid"],
        paper["quant"]["groups"],
        paper["quant"]["act_bits"],
        paper["quant"]["emb_bits"],
    ) == ("asym", 128, 8, 8)
    assert C.stage_settings(paper, "train", "squad")["max_length"] == 384
    local = C.load_file(REPO / "config" / "local-example.yaml")
    assert local["data"]["source"] == "local" and local["models"]["bert"]["source"] == "local"


def test_paper_budgets_are_30_25_20_mb_on_bert_base_and_half_on_distilbert():
    budgets = C.load_file(PAPER)["budgets"]
    assert [round(budget_mb(b, 84_934_656)) for b in budgets] == [30, 25, 20]
    assert [budget_mb(b, 84_934_656 // 2) for b in budgets] == pytest.approx([15, 12.5, 10], abs=0.05)


def test_paper_runs_every_task_at_every_budget():
    runs = C.runs(C.load_file(PAPER))
    # fp; lq, aciq at 5 bit-widths; ocs 5 x 3 ratios; qbert 3 + 2; aq 3; distil 1; aq_distil 3;
    # mse, gptq, adaround, smoothquant at 4 bit-widths; qbert_gptq 2; aq_gptq 3
    assert len(runs) == 4 * (1 + 5 + 5 + 15 + 5 + 3 + 1 + 3 + 4 * 4 + 2 + 3)
    bits = ("w8", "w6", "w4", "w3", "w2")
    expected = {
        "fp": {"fp32"},
        "lq": set(bits),
        "aciq": set(bits),
        "ocs": {f"{b}-r{r}" for b in bits for r in ("0.01", "0.02", "0.05")},
        "qbert": {"w8", "w4", "w2", "b2.96", "b2.47"},
        "aq": {"b2.96", "b2.47", "b1.97"},
        "distil": {"fp32"},
        "aq_distil": {"b2.96", "b2.47", "b1.97"},
        **{m: {"w8", "w4", "w3", "w2"} for m in ("mse", "gptq", "adaround", "smoothquant")},
        "qbert_gptq": {"b2.96", "b2.47"},
        "aq_gptq": {"b2.96", "b2.47", "b1.97"},
    }
    for task in ("sst2", "mnli", "conll03", "squad"):
        for method, budgets in expected.items():
            assert {b for t, _, m, b, _ in runs if t == task and m == method} == budgets


def test_snakemake_plans_the_paper_dag_with_the_paper_settings_only(tmp_path):
    plan = snakemake(tmp_path, "-n", "-p", f"--configfile={PAPER}", "all")
    out = plan.stdout + plan.stderr
    assert plan.returncode == 0, out[-3000:]
    assert job_counts(out) == {
        "prepare_data": 4,
        "finetune": 8,
        "ptq_fp": 4,
        "ptq_lq": 4,
        "ptq_aciq": 4,
        "ptq_ocs": 4,
        "ptq_distil": 4,
        **{f"{stage}_{m}": 4 for stage in ("ptq", "export") for m in ("mse", "gptq", "adaround", "smoothquant")},
        "hessian": 4,
        "qbert": 28,  # qbert 5 and qbert_gptq 2 per task
        "aq_search": 96,  # aq.tune: 4 trials per search, the best on the tuning split kept by aq_tune
        "aq_tune": 24,
        "aq": 36,  # aq, aq_gptq, aq_distil: 3 each per task
        "export_lq": 4,
        "export_aciq": 4,
        "export_ocs": 4,
        "export_qbert": 4,
        "export_aq": 4,
        "export_qbert_gptq": 4,
        "export_aq_gptq": 4,
        "export_aq_distil": 4,
        "export_fp": 4,
        "export_distil": 4,
        "latency": 4,
        "aggregate": 1,
        "paired_tests": 1,
        "tables": 1,
        "figures": 1,
        "report": 1,
        "all": 1,
        "total": 302,
    }
    distil = next(line for line in out.splitlines() if "aqbench finetune --task sst2" in line and "distilbert" in line)
    assert "--teacher" not in distil  # the paper's DistilBERT is fine-tuned from the hub, not distilled here
    squad = next(
        line for line in out.splitlines() if "aqbench finetune --task squad" in line and "/squad/bert/" in line
    )
    assert '"model":{"architecture":{},"path":"bert-base-uncased"' in squad  # nothing from config/config.yaml
    assert '"max_length":384' in squad and '"doc_stride":128' in squad and '"mixed_precision":"bf16"' in squad


def test_the_paper_run_stops_at_once_without_the_hub_and_leaves_no_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    start = time.time()
    run = snakemake(tmp_path, f"--configfile={PAPER}", "--cores", "1", "all", env=env)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and time.time() - start < 120
    assert (
        "aqbench prepare: error: cannot load dataset" in out
        and "from the HuggingFace Hub: 127.0.0.1 is not reachable" in out
    )
    assert "Fix: set data.source: local and data.local_dirs." in out
    assert "Traceback" not in out
    data = tmp_path / "results-paper" / "data"
    assert not data.exists() or list(data.iterdir()) == []
