"""The job worker's gain, in one run: the same DAG from scratch with `worker: true` and `worker: false`, in
alternation, each in a fresh directory; wall time per run and their ratio.

    .venv/bin/python benchmarks/bench_worker.py                               # the CI config, SST-2 only, 2 rounds
    .venv/bin/python benchmarks/bench_worker.py --config config/config.yaml --tasks sst2 mnli --rounds 1

The CI config's models are tiny, so its jobs are mostly their start: the gain there is the most the worker gives;
the demo's jobs compute more (docs/benchmarks.md).
"""

import argparse
import statistics
from pathlib import Path

from bench_demo import REPO, run_dag


def run(config, tasks, worker, cores):
    """One run from scratch: (wall seconds, jobs)."""
    overrides = [f"worker={worker}", "results=results", "reports=reports"]
    overrides += [f"tasks=[{','.join(tasks)}]"] if tasks else []
    results, seconds = run_dag(cores, Path(config).resolve(), overrides, capture=True)
    return seconds, len(list((results / "benchmarks").rglob("*.tsv")))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "config" / "ci.yaml"))
    p.add_argument("--tasks", nargs="*", default=["sst2"], help="a subset of the config's tasks (none: all)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--cores", type=int, default=2)
    args = p.parse_args()
    found = {True: [], False: []}
    for r in range(args.rounds):
        for worker in (False, True):
            seconds, jobs = run(args.config, args.tasks, worker, args.cores)
            found[worker].append(seconds)
            print(f"round {r + 1}: worker {str(worker).lower()}: {jobs} jobs, {seconds:.1f} s", flush=True)
    off, on = statistics.median(found[False]), statistics.median(found[True])
    print("\n| worker | DAG wall s, each round |\n|---|---|")
    for worker in (False, True):
        print(f"| {str(worker).lower()} | {', '.join(f'{s:.1f}' for s in found[worker])} |")
    print(f"\nmedians: without {off:.1f} s, with {on:.1f} s: {off / on:.2f}x faster")


if __name__ == "__main__":
    main()
