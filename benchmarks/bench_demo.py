"""Demo benchmark, in one run: the demo DAG's wall time, per-stage time and peak memory (from the rules'
benchmark files), and the cost of a fake-quantized (QAT) training step relative to an FP step on the same batch.

    .venv/bin/python benchmarks/bench_demo.py                 # runs the demo DAG from scratch in a temp dir
    .venv/bin/python benchmarks/bench_demo.py --results results   # only read an existing run's benchmark files
    .venv/bin/python benchmarks/bench_demo.py --skip-dag          # only the step ratios
    .venv/bin/python benchmarks/bench_demo.py --results results-real-cpu --task sst2 --skip-steps   # one task's stages

Prints Markdown tables (the README quotes them). Timings are of this machine; ratios are what transfer.
"""

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent


def run_dag(cores, config=REPO / "config" / "config.yaml", overrides=(), capture=False):
    """Run a config's whole DAG from scratch in a fresh directory; (its results directory, wall seconds).
    overrides: --config key=value patches (results=results where the config names another directory)."""
    work = Path(tempfile.mkdtemp(prefix="aqbench-bench-"))
    (work / "config").mkdir()
    shutil.copy(config, work / "config" / "config.yaml")
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(work)]
    command += ["--config", *overrides] if overrides else []
    start = time.time()
    subprocess.run([*command, "--cores", str(cores), "--quiet", "all"], check=True, capture_output=capture)
    return work / "results", time.time() - start


def stage_table(results, task=None):
    """Per stage (rule): jobs, their seconds (total, mean, max) and the largest peak RSS; task: only its jobs (the
    rules' benchmark files name the task in their path; the report stages, of every task, are left out)."""
    rows = []
    for tsv in sorted(Path(results, "benchmarks").rglob("*.tsv")):
        parts = [p.removesuffix(".tsv") for p in tsv.relative_to(Path(results, "benchmarks")).parts]
        if task and task not in parts:
            continue
        stage = parts[0]
        b = pd.read_csv(tsv, sep="\t").iloc[0]
        log = Path(results, "logs", *parts[:-1], parts[-1] + ".log")
        rows.append({"stage": stage, "s": b["s"], "max_rss": worker_peak_mb(log) or b["max_rss"]})
    frame = pd.DataFrame(rows)
    order = [
        "prepare_data",
        "finetune",
        "ptq",
        "hessian",
        "qbert",
        "aq_search",
        "aq",
        "aggregate",
        "tables",
        "figures",
        "report",
    ]
    table = frame.groupby("stage").agg(
        jobs=("s", "size"),
        total_s=("s", "sum"),
        mean_s=("s", "mean"),
        max_s=("s", "max"),
        peak_rss_mb=("max_rss", "max"),
    )
    return table.reindex([s for s in order if s in table.index] + [s for s in table.index if s not in order])


def worker_peak_mb(log):
    """A job run in the job worker (aqbench.worker): its fork's peak RSS, from the job log's last line (the benchmark
    file measured the `aqbench` process that waited for it). None for a job that ran in its own process."""
    if log.is_file():
        found = re.findall(r"ran in the job worker: .* peak RSS (\d+) MB", log.read_text())
        if found:
            return float(found[-1])
    return None


def markdown(frame, floatfmt="{:.1f}"):
    cols = [frame.index.name or ""] + list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in frame.iterrows():
        lines.append(
            "| " + " | ".join([str(idx)] + [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]) + " |"
        )
    return "\n".join(lines)


def step_time(model, batch, steps):
    """Median seconds of forward + backward + AdamW step, after warm-up."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def fp_and_qat_models(arch, batch_size, length, quant):
    """(FP model, the same architecture fake-quantized at w4 with 8-bit activations and embedding and calibrated,
    a random batch): what a QAT step is compared with."""
    from transformers import BertConfig, BertForSequenceClassification

    from aqbench.quant import calibrating, quantize_model, uniform

    torch.manual_seed(0)
    config = BertConfig(vocab_size=1000, num_labels=2, **arch)
    batch = {
        "input_ids": torch.randint(5, 1000, (batch_size, length)),
        "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
        "labels": torch.randint(0, 2, (batch_size,)),
    }
    fp_model, model = BertForSequenceClassification(config), BertForSequenceClassification(config)
    q = quant
    quantize_model(model, uniform(model, 4, q["groups"], q["grid"], q["act_bits"], q["emb_bits"], q["act_grid"]))
    with calibrating(model), torch.no_grad():
        model.eval()(**{k: v for k, v in batch.items() if k != "labels"})
    return fp_model, model, batch


def demo_config():
    from aqbench.config import load_file

    return load_file(REPO / "config" / "config.yaml")


def step_ratios(threads):
    torch.set_num_threads(threads)
    demo = demo_config()
    shapes = {
        "demo (4 x 64, batch 16 x 64)": (dict(demo["models"]["bert"]["architecture"]), 16, 64, 40),
        "BERT-base shape (12 x 768, batch 8 x 128)": (
            dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
            8,
            128,
            5,
        ),
    }
    rows = []
    for name, (arch, batch_size, length, steps) in shapes.items():
        fp_model, model, batch = fp_and_qat_models(arch, batch_size, length, demo["quant"])
        fp = step_time(fp_model, batch, steps)
        qat = step_time(model, batch, steps)
        rows.append({"model": name, "fp_step_ms": 1000 * fp, "qat_step_ms": 1000 * qat, "qat / fp": qat / fp})
    return pd.DataFrame(rows).set_index("model")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", help="read this results directory's benchmark files instead of running the DAG")
    p.add_argument("--skip-dag", action="store_true")
    p.add_argument("--skip-steps", action="store_true", help="no step timing: only the stages of the DAG")
    p.add_argument("--task", help="with --results: only this task's jobs")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads for the step timing")
    args = p.parse_args()

    if not args.skip_dag:
        if args.results:
            results, wall = Path(args.results), None
        else:
            results, wall = run_dag(args.cores)
        print(f"## Demo DAG ({args.cores} cores){'' if wall is None else f': {wall / 60:.1f} min wall'}\n")
        print(markdown(stage_table(results, args.task)))
        print("\nseconds per job from each rule's benchmark file; peak_rss_mb is the largest job's max RSS.\n")
    if not args.skip_steps:
        print(
            f"## One training step, FP vs fake-quantized (w4, 8-bit activations and embedding; {args.threads} thread)\n"
        )
        print(markdown(step_ratios(args.threads), "{:.2f}"))


if __name__ == "__main__":
    main()
