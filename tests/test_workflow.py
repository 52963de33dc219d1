"""The whole DAG on the tiny CI config, run by Snakemake as a user would (a couple of minutes on 2 cores).

Checks the acceptance behaviour: outputs and contracts, a second run does nothing, deleting one metrics file
reruns only that job (and what depends on it), a bad config fails at once with one message.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from aqbench import worker

pytestmark = pytest.mark.e2e
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--cores", "2"]
# Paths from the config reach the shell quoted: the DAG runs in directories whose names would run a command
RESULTS, REPORTS = "res dir $(touch PWNED)", "rep dir `touch PWNED`"


def snakemake(workdir, *args):
    return subprocess.run([*SNAKEMAKE, "-d", str(workdir), *args], capture_output=True, text=True, timeout=2400)


def job_counts(output):
    """The 'Job stats' table of a Snakemake plan as {rule: count}."""
    lines = output.split("Job stats:", 1)[1].splitlines()[3:]
    return {
        rule: int(n) for rule, n in (l.split() for l in lines[: next(i for i, l in enumerate(lines) if not l.strip())])
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the CI config once in a fresh working directory (its own .snakemake, results, reports)."""
    work = tmp_path_factory.mktemp("dag")
    (work / "config").mkdir()
    cfg = (REPO / "config" / "ci.yaml").read_text()
    cfg = cfg.replace("results: results-ci", f"results: '{RESULTS}'").replace(
        "reports: reports-ci", f"reports: '{REPORTS}'"
    )
    (work / "config" / "config.yaml").write_text(cfg)
    done = snakemake(work, "all")
    assert done.returncode == 0, done.stderr[-3000:]
    return work, done


def test_the_dag_produces_every_output_and_contract(run):
    work, done = run
    summary = pd.read_csv(work / RESULTS / "summary.csv", dtype={"budget": str})
    assert set(summary.task) == {"sst2", "mnli", "conll03", "squad"}
    assert set(zip(summary.method, summary.budget)) == {
        ("fp", "fp32"),
        ("lq", "w8"),
        ("lq", "w2"),
        ("aciq", "w2"),
        ("ocs", "w2-r0.05"),
        ("qbert", "w2"),
        ("qbert", "b2.5"),
        ("aq", "b2.5"),
        ("distil", "fp32"),
        ("aq_distil", "b2.5"),
        ("qbert", "b2.5-g2"),
        ("aq", "b2.5-g2"),
        ("mse", "w2"),
        ("gptq", "w2"),
        ("adaround", "w2"),
        ("smoothquant", "w4"),
        ("qbert_gptq", "b2.5"),
        ("aq_gptq", "b2.5"),
    }
    assert set(zip(summary.method, summary.model)) >= {("aq", "bert"), ("distil", "distil"), ("aq_distil", "distil")}
    required = {
        "task",
        "model",
        "method",
        "budget",
        "seed",
        "metric",
        "value",
        "size_mb",
        "avg_bits",
        "emb_bits",
        "act_bits",
        "pruned_frac",
    }
    assert required <= set(summary.columns)
    assert set(summary[summary.task == "mnli"].metric) >= {"accuracy_m", "accuracy_mm"}
    assert set(summary[summary.task == "squad"].metric) >= {"exact_match", "f1"}
    run_dir = work / RESULTS / "runs" / "sst2" / "bert" / "lq" / "w2" / "seed0"
    assignment = json.loads((run_dir / "assignment.json").read_text())
    assert {l["bits"][0] for l in assignment["layers"].values()} == {2}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["avg_bits"] == 2.0 and metrics["size_mb"] < metrics["fp32_size_mb"] / 10
    assert (work / REPORTS / "report.html").stat().st_size > 10_000
    assert (work / REPORTS / "tables" / "results.md").is_file()
    assert "ocs (r=0.05)" in (work / REPORTS / "tables" / "ptq.md").read_text()
    assert (work / REPORTS / "figures" / "squad_ptq_vs_bits.svg").is_file()
    spectrum = json.loads((work / RESULTS / "hessian" / "mnli" / "bert" / "seed0" / "spectrum.json").read_text())
    assert len(spectrum["blocks"]) == 2 and all(len(b["eigenvalues"]) == 2 for b in spectrum["blocks"])
    mixed = json.loads(
        (work / RESULTS / "runs" / "mnli" / "bert" / "qbert" / "b2.5" / "seed0" / "assignment.json").read_text()
    )
    assert sorted(mixed["meta"]["block_bits"].values()) in ([2, 2], [2, 4])  # fits 2.5 bits, group parameters included
    qbert = json.loads(
        (work / RESULTS / "runs" / "mnli" / "bert" / "qbert" / "b2.5" / "seed0" / "metrics.json").read_text()
    )
    assert qbert["size_mb"] <= mixed["meta"]["budget_mb"]
    for name in ("mnli_hessian.png", "mnli_qbert_bits.png", "mnli_aq_search.png", "mnli_aq_bits.png"):
        assert (work / REPORTS / "figures" / name).is_file()
    # AQ: the search is cached apart from the run, which fine-tunes with exactly the searched assignment
    search = work / RESULTS / "search" / "sst2" / "distil" / "b2.5" / "seed0"
    trace = json.loads((search / "trace.json").read_text())
    assert [t["epoch"] for t in trace["trace"]] == [1, 2] and trace["derived"]["size_mb"] <= trace["budget_mb"]
    aq_run = work / RESULTS / "runs" / "sst2" / "distil" / "aq_distil" / "b2.5" / "seed0"
    searched, used = (json.loads((d / "assignment.json").read_text()) for d in (search, aq_run))
    assert searched["layers"] == used["layers"] and len(used["layers"]) == 6  # the student: 1 block of 2
    # ci.yaml sweeps aq.size_weight over two values: both searched, the one best on the tuning split kept
    sweep = work / RESULTS / "search-trials" / "sst2" / "distil" / "b2.5" / "seed0"
    trials = {t.name: json.loads((t / "trace.json").read_text()) for t in sweep.iterdir()}
    assert set(trials) == {"size_weight=0.1", "size_weight=1.0"}
    choice = trace["tuning_choice"]
    assert choice["trials"] == {n: t["tuning"]["value"] for n, t in trials.items()}
    assert choice["value"] == max(choice["trials"].values()) and searched["meta"]["tuning"] == choice
    assert json.loads((aq_run / "metrics.json").read_text())["tuning"] == choice
    assert summary[summary.method == "aq_distil"].tuned.str.endswith(" of 2").all()
    assert (work / RESULTS / "data" / "sst2" / "tuning.jsonl").is_file()
    # every run keeps its per-example outcomes; the winners' and the front's comparisons are tested on them
    outcomes = np.load(aq_run / "outcomes.npz")
    assert outcomes["correct"].shape == (60,) and 100 * outcomes["correct"].mean() == pytest.approx(
        json.loads((aq_run / "metrics.json").read_text())["metrics"]["accuracy"]
    )
    paired = pd.read_csv(work / RESULTS / "paired.csv")
    assert set(paired.family) == {"winners", "front"} and set(paired.task) == {"sst2", "mnli", "conll03", "squad"}
    assert (paired.p_holm >= paired.p).all() and (paired.low <= paired["diff"]).all()
    assert "after Holm" in (work / REPORTS / "tables" / "winners.md").read_text()
    assert metrics["config"].endswith("config.yaml") and metrics["machine"]["cpu"] and "commit" in metrics
    provenance = json.loads((work / RESULTS / "provenance.json").read_text())
    assert (
        provenance["configs"] and provenance["machines"][0]["cpu"] and provenance["runs"] == summary.run_dir.nunique()
    )
    # every quantized run is exported, reloads to the same outputs, and its packed size is in the summary
    packed = json.loads((aq_run / "packed.json").read_text())
    assert packed["check_max_abs_diff"] == 0.0 and packed["packed_mb"] >= packed["size_mb"]
    quantized = summary[~summary.method.isin(["fp", "distil"])]
    assert quantized.packed_mb.notna().all() and summary[summary.method == "fp"].packed_mb.isna().all()
    assert "packed (MB)" in (work / REPORTS / "tables" / "results.md").read_text()
    # every run, FP included, runs on ONNX Runtime: its exact form was checked against PyTorch on the whole eval split
    onnx = json.loads((aq_run / "onnx.json").read_text())
    assert (
        onnx["unexplained"] == 0 and onnx["eval_examples"] == {"validation": 60} and (aq_run / "model.onnx").is_file()
    )
    assert (summary.onnx_value - summary.value).abs().max() <= 0.1 and summary.onnx_mb.notna().all()
    for cell in ("b1_t1", "b8_t1", "b1_tall", "b8_tall"):  # ci.yaml's batch sizes, 1 and 2 threads
        assert summary[f"latency_{cell}_ms"].notna().all() and (summary[f"speedup_{cell}"] > 0).all()
    assert summary[summary.method == "fp"].torch_b1_t1_ms.notna().all()
    assert "accuracy onnx" in (work / REPORTS / "tables" / "deploy.md").read_text()
    assert (work / REPORTS / "figures" / "sst2_metric_vs_latency.svg").is_file()
    student = json.loads((work / RESULTS / "models" / "sst2" / "distil" / "seed0" / "aqbench.json").read_text())
    assert student["teacher_blocks"] == 2 and student["student_blocks"] == 1
    assert "Report: " in done.stdout + done.stderr
    for log in (work / RESULTS / "logs").rglob("*.log"):
        assert "Traceback" not in log.read_text(), log


def test_the_jobs_ran_in_the_runs_worker_which_stopped_with_it(run):
    """A local run forks its jobs from one worker process (aqbench.worker) that ends with the run."""
    work, _ = run
    logs = sorted((work / ".snakemake" / "log").glob("aqbench-worker-*.log"))
    assert logs
    first = logs[0].read_text()
    served = int(re.search(r"stopped after (\d+) jobs", first).group(1))
    assert served >= 100, first  # all but the few that start before it is ready
    owner = int(logs[0].stem.rsplit("-", 1)[1])
    assert not os.path.exists(worker.socket_path(owner))
    job_log = work / RESULTS / "logs" / "ptq" / "sst2" / "bert" / "lq" / "seed0.log"
    assert "ran in the job worker" in job_log.read_text()


def test_the_group_study_runs_each_group_count_and_fills_its_table(run):
    work, _ = run
    for method in ("qbert", "aq"):
        run_dir = work / RESULTS / "runs" / "sst2" / "bert" / method / "b2.5-g2" / "seed0"
        layers = json.loads((run_dir / "assignment.json").read_text())["layers"]
        assert {len(layer["bits"]) for layer in layers.values()} == {2}  # 2 groups per matrix, not quant.groups' 8
        assert json.loads((run_dir / "packed.json").read_text())["check_max_abs_diff"] == 0.0
    groups = pd.read_csv(work / REPORTS / "tables" / "groups.csv")
    assert sorted(zip(groups.method, groups.groups)) == [("aq", 2), ("aq", 8), ("qbert", 2), ("qbert", 8)]


def test_the_report_opens_in_chromium_clean_with_every_task_and_working_links(run):
    """No console errors, no network requests, every task's table rows and figures present; every link to a log,
    an assignment or a metrics file points at a file that exists."""
    import re
    import urllib.parse

    from aqbench.testing.browser import check_report, find_chromium

    work, _ = run
    report = work / REPORTS / "report.html"
    hrefs = re.findall(r'href="([^"#][^"]*)"', report.read_text())
    assert sum(h.endswith(".log") for h in hrefs) >= 4 * 10 and any(h.endswith("assignment.json") for h in hrefs)
    assert [h for h in hrefs if not (report.parent / urllib.parse.unquote(h)).is_file()] == []
    if find_chromium() is None:
        pytest.skip("no Chromium (CI installs Debian's chromium package)")
    problems, seen = check_report(report, tasks=["sst2", "mnli", "conll03", "squad"])
    assert problems == [], problems
    assert all(n >= 2 for n in seen["values"]["figures"].values())  # metric vs size and PTQ vs bits at least


def test_snakemake_report_packages_tables_figures_and_the_page(run):
    import zipfile

    work, _ = run
    done = snakemake(work, "--report", str(work / "report.zip"))
    assert done.returncode == 0, done.stderr[-2000:]
    names = zipfile.ZipFile(work / "report.zip").namelist()
    for name in ("report.html", "sst2_metric_vs_size.png", "winners.csv", "groups.csv"):
        assert any(n.endswith(name) for n in names), name


def test_seeds_fan_out_in_the_dag(tmp_path):
    cfg = (REPO / "config" / "ci.yaml").read_text().replace("results: results-ci", f"results: {tmp_path}/r")
    (tmp_path / "seeds.yaml").write_text(cfg.replace("seeds: [0]", "seeds: [0, 1, 2]"))
    plan = subprocess.run(
        [*SNAKEMAKE, "-d", str(tmp_path), "-n", "--configfile", str(tmp_path / "seeds.yaml"), "--", "all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    counts = job_counts(plan.stdout + plan.stderr)
    assert (counts["finetune"], counts["hessian"], counts["aq_tune"]) == (3 * 8, 3 * 4, 3 * 12)
    assert counts["aq_search"] == 3 * 12 * 2  # ci.yaml's aq.tune: two trials per search
    assert counts["aggregate"] == counts["report"] == 1  # one summary over every seed


def test_paths_with_spaces_and_commands_reach_the_shell_quoted(run):
    work, _ = run
    assert (work / RESULTS / "summary.csv").is_file() and (work / REPORTS / "report.html").is_file()
    assert not list(work.rglob("PWNED")) and not (REPO / "PWNED").exists()


def test_a_second_run_does_nothing(run):
    work, _ = run
    again = snakemake(work, "all")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_deleting_one_metrics_file_reruns_only_that_job(run):
    """The job that made it: conll03's LQ sweep (one process per task, method and seed), whose rewritten runs are
    exported again and timed again with the task's other runs, then the summary."""
    work, _ = run
    (work / RESULTS / "runs" / "conll03" / "bert" / "lq" / "w8" / "seed0" / "metrics.json").unlink()
    plan = snakemake(work, "-n", "all")
    assert job_counts(plan.stdout + plan.stderr) == {
        "ptq_lq": 1,
        "export_lq": 1,
        "latency": 1,
        "aggregate": 1,
        "paired_tests": 1,
        "tables": 1,
        "figures": 1,
        "report": 1,
        "all": 1,
        "total": 9,
    }
    assert snakemake(work, "all").returncode == 0


def test_a_change_of_scheduler_resources_rebuilds_nothing(run):
    work, _ = run
    changed = (work / "config" / "config.yaml").read_text() + "\nresources: {default: {mem_mb: 1234, runtime: 7}}\n"
    (work / "resources.yaml").write_text(changed)
    plan = snakemake(work, "-n", "--configfile", str(work / "resources.yaml"), "--", "all")
    assert plan.returncode == 0 and "Nothing to be done" in plan.stdout + plan.stderr, plan.stdout[-2000:]


def test_a_bad_config_stops_before_any_job_with_one_message(run):
    work, _ = run
    bad = snakemake(work, "-n", "all", "--config", "tasks=[sst2,sts2]")
    assert bad.returncode != 0
    assert "'sts2' at tasks[1] is not allowed; use one of: sst2, mnli, conll03, squad" in bad.stdout + bad.stderr


def test_a_configfile_replaces_the_demo_config_instead_of_merging_into_it(tmp_path):
    """The demo gives sst2 3 epochs in task_overrides; a user's file without overrides must not inherit them."""
    cfg = (REPO / "config" / "ci.yaml").read_text().replace("results: results-ci", f"results: {tmp_path}/r")
    (tmp_path / "mine.yaml").write_text(cfg.replace("tasks: [sst2, mnli, conll03, squad]", "tasks: [sst2]"))
    plan = subprocess.run(
        [*SNAKEMAKE, "-d", str(REPO), "-n", "-p", "--configfile", str(tmp_path / "mine.yaml"), "--", "all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plan.returncode == 0, plan.stdout[-2000:]
    finetune = next(line for line in plan.stdout.splitlines() if "aqbench finetune" in line)
    assert '"epochs":1' in finetune  # merged, the demo's sst2 override would make it 3
    assert "mnli" not in plan.stdout  # ... and the demo's mnli override would reach the report's settings


# The one lint the workflow keeps: its rules have no conda: directives on purpose (every job runs in the environment
# that runs Snakemake, scripts/setup.sh's; docs/design.md), and Snakemake lints every rule without one.
NO_CONDA = "Specify a conda environment or container for each rule."


@pytest.mark.parametrize("configfile", ["config.yaml", "paper.yaml"])
def test_lint_is_clean(tmp_path, configfile):
    """snakemake --lint exits 1 on any lint (a log, a hard-coded path prefix, a missing min_version...): none but
    NO_CONDA may appear."""
    lint = snakemake(tmp_path, "--lint", f"--configfile={REPO / 'config' / configfile}")
    text = lint.stdout + lint.stderr
    found = {line.strip()[2:].rstrip(":") for line in text.splitlines() if line.startswith("    * ")}
    assert lint.returncode == 0 or found == {NO_CONDA}, text[-3000:]
    assert "Lints for snakefile" not in text, text[-3000:]  # whole-file lints (e.g. min_version) are never allowed


def test_the_slurm_profile_plans_the_dag_with_the_rules_resources(tmp_path):
    plan = snakemake(
        tmp_path,
        "-n",
        "--workflow-profile",
        str(REPO / "workflow" / "profiles" / "slurm"),
        f"--configfile={REPO / 'config' / 'paper.yaml'}",
        "all",
    )
    out = plan.stdout + plan.stderr
    assert plan.returncode == 0, out[-3000:]
    finetune = out[out.index("rule finetune:") :][:1500]
    assert "mem_mb=16000" in finetune and "runtime=600" in finetune and "gpu=1" in finetune
