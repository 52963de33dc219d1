"""Time to quantize every weight of a BERT-base-shaped encoder (12 layers, 768 / 3072, random weights) with each
PTQ method, against torch.fake_quantize_per_channel_affine as the reference, in one run.

    .venv/bin/python benchmarks/bench_ptq.py [--bits 4] [--threads 1] [--repeats 3]

Per output channel (one range per row) for every method, as the reference quantizes; LQ, ACIQ and OCS also at
128 groups per matrix (the papers' setting). The reference is given its per-channel symmetric scales
(computing max |w| is included in its time). Prints a Markdown table; ratios are what transfer between machines.
"""

import argparse

import torch
from timing import median_seconds

from aqbench.quant.clipping import weight_clip_ranges
from aqbench.quant.ocs import expand, plan_weight_splits
from aqbench.quant.quantizer import GRIDS, quantize_rows

SHAPES = [(768, 768)] * 4 + [(3072, 768), (768, 3072)]


def encoder(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) * 0.02 for _ in range(12) for shape in SHAPES]


def reference(w, bits):
    qmax = 2 ** (bits - 1) - 1
    scale = (w.abs().amax(1) / qmax).clamp_min(1e-12)
    return torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(w.shape[0], dtype=torch.int32), 0, -qmax, qmax)


def lq(w, bits, groups):
    return quantize_rows(w, [bits] * min(groups, w.shape[0]), GRIDS["sym"])


def aciq(w, bits, groups):
    groups = min(groups, w.shape[0])
    steps = float(GRIDS["sym"].steps(torch.tensor(float(bits))))
    lo, hi, _ = weight_clip_ranges(w, groups, steps, "auto")
    return quantize_rows(w, [bits] * groups, GRIDS["sym"], lo, hi)


def ocs(w, bits, groups, ratio=0.02):
    w2, _, _ = expand(w, plan_weight_splits(w, ratio))
    return quantize_rows(w2, [bits] * min(groups, w.shape[0]), GRIDS["sym"])


@torch.no_grad()
def timed(fn, weights, repeats):
    return median_seconds(lambda: [fn(w) for w in weights], repeats, warmup=False)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    weights = encoder()
    per_channel = 10**9  # capped at the rows: one group per output neuron
    cases = [
        ("torch.fake_quantize_per_channel_affine (reference)", lambda w: reference(w, args.bits)),
        ("lq, per channel", lambda w: lq(w, args.bits, per_channel)),
        ("aciq, per channel", lambda w: aciq(w, args.bits, per_channel)),
        ("ocs r=0.02, per channel", lambda w: ocs(w, args.bits, per_channel)),
        ("lq, 128 groups", lambda w: lq(w, args.bits, 128)),
        ("aciq, 128 groups", lambda w: aciq(w, args.bits, 128)),
        ("ocs r=0.02, 128 groups", lambda w: ocs(w, args.bits, 128)),
    ]
    results = [(name, timed(fn, weights, args.repeats)) for name, fn in cases]
    ref = results[0][1]
    numel = sum(w.numel() for w in weights)
    print(
        f"Quantizing all {len(weights)} encoder matrices ({numel / 1e6:.1f} M weights) of a BERT-base-shaped model "
        f"to {args.bits} bits, {args.threads} thread(s), median of {args.repeats}:\n"
    )
    print("| method | seconds | vs reference |\n|---|---|---|")
    for name, seconds in results:
        print(f"| {name} | {seconds:.3f} | {seconds / ref:.2f}x |")


if __name__ == "__main__":
    main()
