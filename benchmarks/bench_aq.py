"""AQ-BERT's search, measured in one run: the time and peak memory of one search step (a weight update on a
train batch plus an architecture update on a held-out batch, as aqbench.search does it) relative to one FP
training step and one QAT step (uniform 4-bit) on the same batch, with the candidates {0, 2, 4, 8}; for the
demo model and a BERT-base-shaped random model (128 groups per matrix). Then the whole search's time on the
demo, read from the trace.json files of a demo run (results/search).

    .venv/bin/python benchmarks/bench_aq.py [--threads 1] [--results results]

Each measurement runs in its own process, so its peak memory is its own: the table shows the peak resident
memory during the steps (VmHWM, reset after the model and batch were built) minus the memory at that point.
"""

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from timing import median_seconds

REPO = Path(__file__).resolve().parent.parent
SHAPES = {
    "demo (4 x 64, batch 16 x 64, 8 groups)": (
        {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 256},
        16,
        64,
        8,
        30,
    ),
    "BERT-base shape (12 x 768, batch 8 x 128, 128 groups)": (
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
        8,
        128,
        128,
        3,
    ),
}
KINDS = ("fp", "qat", "search", "search weights only")


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def reset_peak():
    """Start the peak resident memory (VmHWM) afresh, so building the model does not count (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(shape, kind, threads):
    """Median seconds per step and peak extra memory of one kind of step, in this process."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from aqbench.quant import calibrating, quantize_model, uniform
    from aqbench.quant.supernet import to_supernet
    from aqbench.search import arch_step, optimizers, weight_step
    from aqbench.settings import Aq, Quant

    torch.set_num_threads(threads)
    arch, batch_size, length, groups, steps = SHAPES[shape]
    quant = Quant.from_dict({"grid": "sym", "act_grid": "asym", "groups": groups, "act_bits": 8, "emb_bits": 8})
    cfg = Aq.from_dict(
        {
            "lr": 1e-5,
            "weight_decay": 0.01,
            "arch_optimizer": "adam",
            "arch_lr": 0.05,
            "arch_momentum": 0.9,
            "size_weight": 0.1,
            "epsilon": 0.02,
        }
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=1000, num_labels=2, **arch))
    g = torch.Generator().manual_seed(0)

    def make_batch():
        return {
            "input_ids": torch.randint(5, 1000, (batch_size, length), generator=g),
            "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
            "labels": torch.randint(0, 2, (batch_size,), generator=g),
        }

    batch, held = make_batch(), make_batch()
    loss_fn = lambda m, b: m(**b).loss  # noqa: E731
    if kind == "fp" or kind == "qat":
        if kind == "qat":
            quantize_model(model, uniform(model, 4, groups, quant.grid, 8, 8, quant.act_grid))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step():
            loss = loss_fn(model, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        layers = to_supernet(model, quant, [0, 2, 4, 8])
        numel = sum(m.out_features * m.in_features for m in layers.values())
        weights, alphas, w_opt, a_opt = optimizers(model, cfg)
        target_mb = 2.0 * numel / 8 / 2**20

        def step():  # as aqbench.search: the architecture, then the weights
            if kind == "search":
                arch_step(model, held, loss_fn, a_opt, weights, alphas, target_mb, cfg)
            weight_step(model, batch, loss_fn, w_opt, weights, alphas, 1.0)

    if kind != "fp":
        with calibrating(model), torch.no_grad():
            model.eval()(**{k: v for k, v in batch.items() if k != "labels"})
    model.train()
    base = rss_mb()
    reset_peak()
    seconds = median_seconds(step, steps)  # its warm-up allocates optimizer state and gradients: they count
    return {"seconds": seconds, "peak_extra_mb": max(0.0, peak_mb() - base)}


def demo_searches(results):
    rows = []
    for path in sorted(Path(results).glob("search/*/*/*/seed*/trace.json")):
        record = json.loads(path.read_text())
        steps = sum(t["steps"] for t in record["trace"])
        rows.append((record["task"], path.parts[-4], record["budget"], steps, record["seconds"]))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=str(REPO / "results"), help="a demo run's results directory")
    p.add_argument("--one", nargs=2, metavar=("SHAPE", "KIND"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.threads)))
        return
    print(
        f"one step, {args.threads} thread(s); candidates {{0, 2, 4, 8}}; search step = weight update + architecture update\n"
    )
    print("| model | step | ms | x FP step | x QAT step | peak extra memory MB | x FP |")
    print("|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        found = {}
        for kind in KINDS:
            out = subprocess.run(
                [sys.executable, __file__, "--threads", str(args.threads), "--one", shape, kind],
                capture_output=True,
                text=True,
                check=True,
            )
            found[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        fp, qat = found["fp"], found["qat"]
        for kind in KINDS:
            r = found[kind]
            print(
                f"| {shape} | {kind} | {1000 * r['seconds']:.1f} | {r['seconds'] / fp['seconds']:.2f} | "
                f"{r['seconds'] / qat['seconds']:.2f} | {r['peak_extra_mb']:.0f} | "
                f"{r['peak_extra_mb'] / max(fp['peak_extra_mb'], 1e-9):.2f} |"
            )
    rows = demo_searches(args.results)
    if rows:
        print(f"\nwhole searches of the demo run in {args.results} (trace.json):\n")
        print("| task | model | budget | steps | seconds |")
        print("|---|---|---|---|---|")
        for task, model, budget, steps, seconds in rows:
            print(f"| {task} | {model} | {budget} | {steps} | {seconds:.1f} |")
        print(f"\ntotal {sum(r[4] for r in rows):.0f} s for {len(rows)} searches")
    else:
        print(f"\nno search traces under {args.results}: run the demo first for the whole search's time")


if __name__ == "__main__":
    main()
