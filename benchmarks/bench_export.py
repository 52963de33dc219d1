"""Real compression, measured in one run: file sizes of the demo's packed runs and their CPU inference cost.

    .venv/bin/python benchmarks/bench_export.py [--task sst2] [--results results] [--threads 1]

For one task of a finished demo run (its packed.safetensors files, written by the export rules): the encoder
part and the whole file against the FP checkpoint's, and the latency per example and throughput at batch 1 and
batch 32 (evaluation forward passes on the task's dev features) of
  - the FP model;
  - each packed model loaded with its weights decoded once (dequantize-on-load; 8-bit activations still
    simulated, as in the run), and the AQ model with its activations left in FP (what decoding alone costs);
  - PyTorch's dynamic int8 quantization of the FP model's Linear layers (torch.ao.quantization.quantize_dynamic:
    int8 weights, activations quantized on the fly; its own rounding, not the runs');
as ratios to the FP model measured in the same process.
"""

import argparse
from pathlib import Path

import torch
from timing import median_seconds

REPO = Path(__file__).resolve().parent.parent
RUNS = [("lq", "w8"), ("lq", "w4"), ("qbert", "w2"), ("aq", "b1.97")]


@torch.no_grad()
def timed(model, batches, repeats=5):
    """Median seconds of one pass over the batches (after a warm-up pass)."""
    return median_seconds(lambda: [model(**b) for b in batches], repeats)


def main():
    from aqbench.batching import MODEL_KEYS, batches
    from aqbench.data import load_split
    from aqbench.export import load_packed
    from aqbench.models import load_checkpoint
    from aqbench.tasks import get_task
    from aqbench.tasks.kinds import featurize

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sst2")
    p.add_argument("--results", default=str(REPO / "results"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--examples", type=int, default=256)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results, task = Path(args.results), get_task(args.task)
    checkpoint = results / "models" / args.task / "bert" / "seed0"
    fp, tokenizer = load_checkpoint(task, checkpoint)
    fp.eval()
    features = featurize(
        task,
        load_split(results / "data" / args.task, next(iter(task.eval_splits)))[: args.examples],
        tokenizer,
        {"max_length": 64},
        with_labels=False,
    )
    sets = {
        bs: [{k: v for k, v in b.items() if k in MODEL_KEYS} for b in batches(features, bs, tokenizer.pad_token_id)]
        for bs in (1, 32)
    }
    models = {"FP (fp32)": (fp, sum(f.stat().st_size for f in checkpoint.glob("*.safetensors")), None)}
    for method, budget in RUNS:
        path = results / "runs" / args.task / "bert" / method / budget / "seed0" / "packed.safetensors"
        if path.is_file():
            import json

            packed = json.loads(path.with_suffix(".json").read_text())
            models[f"{method} {budget} (packed, decoded on load)"] = (
                load_packed(task, path)[0],
                path.stat().st_size,
                packed["packed_mb"],
            )
    if any(k.startswith("aq ") for k in models):  # the same weights, activations left in FP: what decoding costs
        import copy

        from aqbench.quant.modules import act_quantizers

        name = next(k for k in models if k.startswith("aq "))
        weight_only = copy.deepcopy(models[name][0])
        for q in act_quantizers(weight_only):
            q.bits = 32
        models[name.split(" (")[0] + " (decoded, FP activations)"] = (weight_only, None, None)
    models["FP + torch dynamic int8 Linear"] = (
        torch.ao.quantization.quantize_dynamic(
            load_checkpoint(task, checkpoint)[0].eval(), {torch.nn.Linear}, dtype=torch.qint8
        ),
        None,
        None,
    )
    n = len(features)
    print(f"{args.task}: {n} dev features, {args.threads} thread(s); FP checkpoint {checkpoint}\n")
    print("| model | file MB | encoder MB | batch 1: ms / example | x FP | batch 32: examples / s | x FP |")
    print("|---|---|---|---|---|---|---|")
    base = {}
    for name, (model, file_bytes, encoder_mb) in models.items():
        t1, t32 = timed(model, sets[1]), timed(model, sets[32])
        base = base or {"t1": t1, "t32": t32}
        print(
            f"| {name} | {'' if file_bytes is None else f'{file_bytes / 2**20:.3f}'} | "
            f"{'' if encoder_mb is None else f'{encoder_mb:.4f}'} | {1000 * t1 / n:.2f} | {t1 / base['t1']:.2f} | "
            f"{n / t32:.0f} | {base['t32'] / t32:.2f} |"
        )


if __name__ == "__main__":
    main()
