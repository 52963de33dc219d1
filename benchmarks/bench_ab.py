"""Before and after, in one run: step ratios of this checkout's aqbench against another checkout's (e.g. an older
commit in a git worktree), measured in alternation so that both see the same machine load.

    git worktree add /tmp/before 88fbcb8
    .venv/bin/python benchmarks/bench_ab.py /tmp/before . --rounds 3                    # QAT / FP step, demo shape
    .venv/bin/python benchmarks/bench_ab.py /tmp/before . --rounds 2 --search-bert-base # search / FP, BERT-base shape

Each measurement runs in its own process that imports aqbench from the named checkout (the editable install's
finder is bypassed), with this checkout's benchmark code (bench_demo.step_time, bench_aq.measure).
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# runs in a child process: argv = TREE KIND
CHILD = r"""
import json, statistics, sys
tree, kind = sys.argv[1], sys.argv[2]
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path[:0] = [tree, HERE]
import aqbench
assert aqbench.__file__.startswith(tree), aqbench.__file__
import torch
torch.set_num_threads(1)
if kind == "qat":
    import bench_demo
    demo = bench_demo.demo_config()
    fp_model, model, batch = bench_demo.fp_and_qat_models(dict(demo["models"]["bert"]["architecture"]), 16, 64,
                                                          demo["quant"])
    ratios = [bench_demo.step_time(model, batch, 20) / bench_demo.step_time(fp_model, batch, 20) for _ in range(5)]
    print(json.dumps({"ratio": statistics.median(ratios)}))
else:
    import bench_aq
    shape = [s for s in bench_aq.SHAPES if s.startswith("BERT-base")][0]
    fp, search = bench_aq.measure(shape, "fp", 1), bench_aq.measure(shape, "search", 1)
    print(json.dumps({"ratio": search["seconds"] / fp["seconds"], "search_peak_extra_mb": search["peak_extra_mb"]}))
"""


def measure(tree, kind):
    code = CHILD.replace("HERE", repr(str(HERE)))
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(tree).resolve()), kind], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="the other checkout (its aqbench is measured as 'before')")
    p.add_argument("after", help="this checkout, usually .")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--search-bert-base", action="store_true", help="search / FP step on BERT-base's shape instead")
    args = p.parse_args()
    kind = "search" if args.search_bert_base else "qat"
    found = {"before": [], "after": []}
    for r in range(args.rounds):
        for label in ("before", "after"):
            found[label].append(measure(getattr(args, label), kind))
            print(f"round {r + 1}: {label} {found[label][-1]}", flush=True)
    what = "search / FP step, BERT-base shape" if kind == "search" else "QAT / FP step, demo shape (median of 5)"
    print(f"\n| code | {what}, each round |\n|---|---|")
    for label in ("before", "after"):
        ratios = ", ".join(f"{m['ratio']:.2f}" for m in found[label])
        print(f"| {label} | {ratios} |")
    print(
        f"\nmedians: before {statistics.median(m['ratio'] for m in found['before']):.2f}, "
        f"after {statistics.median(m['ratio'] for m in found['after']):.2f}"
    )


if __name__ == "__main__":
    main()
