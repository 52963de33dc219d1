"""The ONNX Runtime columns of a finished DAG's summary.csv, condensed: per task, the runs grouped by how their
weights are stored (the uniform widths, AQ-style mixed budgets, OCS), with the parity check's outcome and the
median speed-up over the FP32 ONNX model of the exact form and of the fastest form per latency setting.

    .venv/bin/python benchmarks/deploy_summary.py results/summary.csv      # after snakemake --cores 2 all

Prints Markdown (docs/deploy.md quotes it for the demo). Nothing is timed here: the numbers are the latency
rule's, measured in one job per task.
"""

import argparse

import pandas as pd


def storage(row):
    """How a run's weights are stored: fp32, w<bits> (uniform), w<bits> OCS, or mixed (a b<bits> budget)."""
    budget = str(row["budget"])
    if row["model"] != "bert":
        budget = f"{row['model']} {budget}"
    if row["method"] == "ocs":
        return f"{budget.split('-')[0]} OCS"
    if budget.startswith("b"):
        return "mixed"
    return budget


def summarize(summary, cells):
    rows = []
    for (task, kind), g in summary.groupby(["task", "storage"], sort=False):
        row = {
            "task": task,
            "weights": kind,
            "runs": len(g),
            "max |metric gap|": f"{(g['value'] - g['onnx_value']).abs().max():.2f}",
            "changed (ties)": f"{int(g['onnx_changed'].sum())} ({int(g['onnx_near_ties'].sum())})",
        }
        for cell in cells:
            exact = g[f"latency_{cell}_exact_speedup"] if kind != "fp32" else g[f"speedup_{cell}"]
            row[f"exact xFP {cell}"] = f"{exact.median():.2f}"
            row[f"best xFP {cell}"] = f"{g[f'speedup_{cell}'].median():.2f} ({g[f'latency_{cell}_form'].mode()[0]})"
        rows.append(row)
    return pd.DataFrame(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("summary", help="a results directory's summary.csv")
    args = p.parse_args()
    summary = pd.read_csv(args.summary)
    summary = summary[summary["main"]]  # one row per run: its task's main metric
    if "onnx_value" not in summary:
        raise SystemExit(f"{args.summary} has no onnx columns: run the DAG with onnx.export (the default)")
    summary["storage"] = summary.apply(storage, axis=1)
    cells = [c.removeprefix("speedup_") for c in summary.columns if c.startswith("speedup_")]
    fp = summary[summary["storage"] == "fp32"]
    print(
        f"CPU: {summary['latency_cpu'].dropna().iloc[0]}; threads (all): {int(summary['latency_threads'].max())}; "
        f"sequence length {int(summary['latency_length'].max())}; load average during the latency jobs "
        f"{summary['latency_load'].min():.2f} to {summary['latency_load'].max():.2f}\n"
    )
    base = {"task": fp["task"], "model": fp["model"]}
    for cell in cells:
        base[f"FP32 ONNX ms {cell}"] = fp[f"latency_{cell}_ms"].round(2)
        base[f"PyTorch ms {cell}"] = fp[f"torch_{cell}_ms"].round(2)
    print(pd.DataFrame(base).to_markdown(index=False), "\n")
    print(summarize(summary, cells).to_markdown(index=False))


if __name__ == "__main__":
    main()
