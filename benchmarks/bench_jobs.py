"""Before and after, job by job: stage commands of a finished demo run, run with two checkouts in alternation on the
same inputs, timed, and their outputs compared file by file (a speed change must not change a result).

    git worktree add /tmp/before 0982fca
    .venv/bin/python benchmarks/bench_jobs.py /tmp/before . --workdir DIR --rounds 2

DIR is a demo run's working directory (its results/ holds the fine-tuned checkpoints, the prepared data and the
runs the export jobs read). Each command runs in its own process that imports aqbench from the named checkout
(the editable install's finder is bypassed) and the job worker's modules first, as a Snakemake job does; only the
command itself is timed. Outputs go to a scratch directory, never into DIR.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# runs in a child process: argv = TREE WORKDIR ARGV_JSON
CHILD = r"""
import importlib, json, os, sys, time
tree, workdir, argv = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, tree)
import aqbench
assert aqbench.__file__.startswith(tree), aqbench.__file__
from aqbench import worker
for name in worker.PRELOAD:
    importlib.import_module(name)
from aqbench import cli
os.chdir(workdir)
start = time.perf_counter()
code = cli.main(argv)
print(json.dumps({"seconds": time.perf_counter() - start, "code": code}))
"""

# each side's scratch directory: names of one length, since an ONNX file records its run's path (and onnx.json
# the file's size)
SIDE_DIR = {"before": "old", "after": "new"}

# JSON fields that record when or how long, not what
VOLATILE = {"seconds", "times_s", "finished", "versions", "commit", "load_average_start", "load_average_end"}


def demo_config(workdir):
    from aqbench.config import load_file

    return load_file(Path(workdir) / "config" / "config.yaml")


def jobs(workdir, scratch):
    """{name: (argv, [output paths to compare], setup(side_dir) or None)} for a few stages of the demo on SST-2's
    BERT; paths start with `scratch`, which main replaces with each side's directory."""
    from aqbench import config as aqconfig

    config = demo_config(workdir)
    task, ckpt, data = "sst2", "results/models/sst2/bert/seed0", "results/data/sst2"
    train = aqconfig.as_json(aqconfig.stage_settings(config, "train", task))
    out = {}
    for method in ("lq", "aciq", "mse", "gptq"):
        budgets = aqconfig.budgets(config, method)
        run = f"{scratch}/{method}/{{budget}}"
        argv = ["quantize", "--method", method, "--task", task, "--model", "bert", "--budget", *budgets,
                "--seed", "0", "--threads", "1", "--checkpoint", ckpt, "--data", data,
                "--settings", aqconfig.as_json(aqconfig.method_settings(config, method, task)),
                "--out", run, "--evaluate", f"{run}/metrics.json", "--eval-settings", train]  # fmt: skip
        out[f"ptq {method} ({len(budgets)} runs)"] = (argv, [run.replace("{budget}", b) for b in budgets], None)
    trial = [name for name, _ in aqconfig.search_trials(config)][0]
    argv = ["search", "--task", task, "--budget", "b1.97", "--seed", "0", "--threads", "1", "--checkpoint", ckpt,
            "--data", data, "--settings", aqconfig.as_json(aqconfig.trial_settings(config, task, trial)),
            "--out", f"{scratch}/search"]  # fmt: skip
    out[f"aq search ({trial})"] = (argv, [f"{scratch}/search"], None)
    source = Path(workdir) / "results" / "runs" / task / "bert" / "lq"
    runs = [f"{scratch}/export/{b}" for b in aqconfig.budgets(config, "lq")]

    def copy_runs(side_dir):
        for b, run in zip(aqconfig.budgets(config, "lq"), runs):
            run = run.replace(scratch, side_dir)
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(source / b / "seed0", run)
            for name in ("packed.safetensors", "packed.json", "model.onnx", "onnx.json"):
                (Path(run) / name).unlink(missing_ok=True)

    argv = ["export", "--task", task, "--seed", "0", "--threads", "1", "--checkpoint", ckpt, "--data", data,
            "--settings", train, "--onnx", *runs]  # fmt: skip
    out[f"export lq ({len(runs)} runs, packed and ONNX)"] = (argv, runs, copy_runs)
    return out


def run(tree, workdir, argv):
    code = CHILD
    proc = subprocess.run(
        [sys.executable, "-c", code, str(Path(tree).resolve()), str(workdir), json.dumps(argv)],
        capture_output=True,
        text=True,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        sys.exit(f"{tree}: {' '.join(argv[:2])} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])["seconds"]


def _strip(obj, root):
    """A JSON record without its timing fields, its side's scratch directory written as {root}."""
    if isinstance(obj, dict):
        return {k: _strip(v, root) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v, root) for v in obj]
    return obj.replace(root, "{root}") if isinstance(obj, str) else obj


def _tensors(path, root):
    """(metadata, {name: tensor}) of a safetensors file: its header's order is not fixed from run to run."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return _strip(f.metadata() or {}, root), {k: f.get_tensor(k) for k in f.keys()}


def _onnx(path, root):
    """(graph bytes, metadata) of an ONNX model: the metadata names the run's directory."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value.replace(root, "{root}") for p in model.metadata_props}
    return model.graph.SerializeToString(), props


def _first_difference(a, b, at=""):
    """The key path of the first difference between two JSON values, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            found = _first_difference(a.get(k), b.get(k), f"{at}/{k}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((f for i, (x, y) in enumerate(zip(a, b)) if (f := _first_difference(x, y, f"{at}/{i}"))), None)
    return None if a == b else f"{at or '/'}: {str(a)[:60]} vs {str(b)[:60]}"


def same(fa, fb, ra, rb):
    """True, or what differs (for JSON, where)."""
    if fa.suffix == ".json":
        return _first_difference(_strip(json.loads(fa.read_text()), ra), _strip(json.loads(fb.read_text()), rb)) or True
    if fa.suffix == ".safetensors":
        (ma, ta), (mb, tb) = _tensors(fa, ra), _tensors(fb, rb)
        return ma == mb and ta.keys() == tb.keys() and all(ta[k].equal(tb[k]) for k in ta)
    if fa.suffix == ".onnx":
        return _onnx(fa, ra) == _onnx(fb, rb)
    return fa.read_bytes() == fb.read_bytes()


def differences(a, b, ra, rb):
    """Files under directory a (side root ra) whose content differs from b's (side root rb): JSON without its
    timing fields, safetensors by metadata and tensors, ONNX by graph and metadata, the rest by bytes."""
    found = []
    for fa in sorted(Path(a).rglob("*")):
        if not fa.is_file():
            continue
        fb = Path(b) / fa.relative_to(a)
        if not fb.is_file():
            found.append(f"{fa.relative_to(a)} (missing)")
        elif (verdict := same(fa, fb, ra, rb)) is not True:
            found.append(str(fa.relative_to(a)) + (f" ({verdict})" if isinstance(verdict, str) else ""))
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="the other checkout (its aqbench is measured as 'before')")
    p.add_argument("after", help="this checkout, usually .")
    p.add_argument("--workdir", required=True, help="a finished demo run's directory (holds results/ and config/)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--only", help="only the jobs whose name contains this (e.g. 'ptq mse')")
    args = p.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="aqbench-jobs-"))
    trees = {"before": args.before, "after": args.after}
    table = jobs(args.workdir, "{side}")
    print(f"{args.rounds} rounds, before = {args.before}, after = {args.after}; seconds of the command itself\n")
    print("| job | before s | after s | after / before | outputs identical |")
    print("|---|---|---|---|---|")
    for name, (argv, outputs, setup) in table.items():
        if args.only and args.only not in name:
            continue
        times = {side: [] for side in trees}
        for r in range(args.rounds):
            for side in trees if r % 2 == 0 else reversed(list(trees)):  # alternate who goes first
                side_dir = scratch / SIDE_DIR[side]
                concrete = [a.replace("{side}", str(side_dir)) for a in argv]
                if setup:
                    setup(str(side_dir))
                times[side].append(run(trees[side], args.workdir, concrete))
        diff = []
        ra, rb = str(scratch / SIDE_DIR["after"]), str(scratch / SIDE_DIR["before"])
        for out in outputs:
            diff += differences(out.replace("{side}", ra), out.replace("{side}", rb), ra, rb)
        before, after = statistics.median(times["before"]), statistics.median(times["after"])
        shown = {s: ", ".join(f"{t:.1f}" for t in times[s]) for s in trees}
        print(f"| {name} | {shown['before']} | {shown['after']} | {after / before:.2f} | "
              f"{'yes' if not diff else 'no: ' + ', '.join(diff[:4])} |", flush=True)  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
