"""ONNX Runtime on BERT-base's shape: what the paper's compressed models would really run at on a CPU.

    .venv/bin/python benchmarks/bench_onnx.py                       # 1 and 2 threads, ~30 minutes on 2 cores
    .venv/bin/python benchmarks/bench_onnx.py --layers 2 --seconds 0.3 --threads 1    # a quick look

A BERT-base-shaped sequence classifier (12 x 768, FFN 3072, vocabulary 30,522; random weights, no hub) quantized
with the paper configuration's quantizer (asymmetric min-max grid, 128 groups per matrix, 8-bit activations
calibrated on random tokens, 8-bit embedding): uniform 8, 6, 4, 3 and 2 bits, and an AQ-style mixed assignment (a
seeded random width per group: 10% pruned, 40% 2-bit, 40% 4-bit, 10% 8-bit). Each run goes through the suite's
own export (packed file, then aqbench.deploy), in every form that differs for it (docs/deploy.md), and the
8-bit run also as MatMulNBits at 8 bits (form nbits8, accuracy_level 4) beside its int8 x int8 GEMM.

Timed: ms per batch (median of calls until --seconds have passed, in 3 slices interleaved with every other
model, after warm-up; aqbench.deploy.latency.measure) at batch 1 x 1, 8, 32 and 128 tokens and batch 32 x 128,
at 1 thread and at --threads; the FP32 ONNX model (plain MatMul, the same graph builder) and PyTorch FP are the
baselines, all in this process. Prints Markdown: per thread count, the baselines' ms and every form's speed-up
over FP32 ONNX, and the sizes (the run's accounted encoder MB and what ORT holds). The CPU, ORT version and the
load average are printed with it.
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

SHAPES = [(1, 1), (1, 8), (1, 32), (1, 128), (32, 128)]  # (batch, tokens)
MIX = {0: 0.1, 2: 0.4, 4: 0.4, 8: 0.1}  # the AQ-style assignment's share of groups per width


def quantized_runs(model, vocab, seed):
    """{label: (tensors, config, assignment)}: each run quantized, calibrated and packed as the suite does."""
    from aqbench.export import export_model, read_packed
    from aqbench.quant.assignment import uniform
    from aqbench.quant.modules import calibrating, quantize_model
    from aqbench.quant.size import encoder_size
    from aqbench.tasks import get_task

    g = torch.Generator().manual_seed(seed)
    calibration = [torch.randint(5, vocab, (8, 128), generator=g) for _ in range(2)]
    runs = {}
    for label in ("w8", "w6", "w4", "w3", "w2", "mixed"):
        import copy

        m = copy.deepcopy(model)
        assignment = uniform(m, 8 if label == "mixed" else int(label[1:]), 128, "asym", act_bits=8, emb_bits=8)
        if label == "mixed":
            widths, shares = list(MIX), list(MIX.values())
            rng = np.random.default_rng(seed)
            for layer in assignment.layers.values():
                layer.bits = [int(b) for b in rng.choice(widths, size=layer.groups, p=shares)]
        quantize_model(m, assignment)
        with torch.no_grad(), calibrating(m):
            for ids in calibration:
                m(input_ids=ids)
        with tempfile.TemporaryDirectory() as tmp:
            export_model(get_task("sst2"), m.eval(), assignment, Path(tmp) / "packed.safetensors")
            runs[label] = read_packed(Path(tmp) / "packed.safetensors")
        size = encoder_size(assignment)
        print(f"  {label}: {size['avg_bits']:.2f} bits per weight, {size['size_mb']:.1f} MB accounted", flush=True)
    return runs


def main():
    from transformers import BertConfig, BertForSequenceClassification

    from aqbench.deploy.forms import FORMS, Form, forms_of
    from aqbench.deploy.graph import build_model
    from aqbench.deploy.latency import measure, ort_callable, torch_callable
    from aqbench.deploy.runtime import session
    from aqbench.quant.size import MB, encoder_size
    from aqbench.versions import cpu, versions

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="the multi-threaded setting")
    p.add_argument("--seconds", type=float, default=1.5, help="measuring time per model and shape")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    config = BertConfig(num_hidden_layers=args.layers, num_labels=2)  # BERT-base's defaults otherwise
    fp = BertForSequenceClassification(config).eval()
    print(
        f"BERT-base shape, {args.layers} layers, random weights; {cpu()['cpu']}, onnxruntime "
        f"{versions()['onnxruntime']}, torch {versions()['torch']}; load average {os.getloadavg()[0]:.2f}\n",
        flush=True,
    )
    print("quantizing and packing:", flush=True)
    runs = quantized_runs(fp, config.vocab_size, args.seed)
    nbits8 = Form("nbits8", 4, 2, False, int8_gemm=False)
    graphs = {"FP32": build_model(dict(fp.state_dict()), config, None, "classification")}
    fp_mb = graphs["FP32"][1]["onnx_encoder_bytes"] / MB
    sizes = {"FP32": (fp_mb, fp_mb)}
    for label, (tensors, cfg, assignment) in runs.items():
        names = forms_of(assignment) + (["nbits8"] if label == "w8" else [])
        for name in names:
            graphs[f"{label} {name}"] = build_model(
                tensors, cfg, assignment, "classification", nbits8 if name == "nbits8" else name
            )
            sizes[f"{label} {name}"] = (
                encoder_size(assignment)["size_mb"],
                graphs[f"{label} {name}"][1]["onnx_encoder_bytes"] / MB,
            )
    graphs = {k: v[0].SerializeToString() for k, v in graphs.items()}
    print("\n| model | form | accounted MB | ORT holds MB | exact |\n|---|---|---|---|---|")
    for key, (accounted, held) in sizes.items():
        label, _, name = key.partition(" ")
        print(
            f"| {label} | {name or 'fp32'} | {accounted:.1f} | {held:.1f} | "
            f"{'yes' if not name or (name in FORMS and FORMS[name].exact) else 'no'} |"
        )
    for threads in sorted({1, args.threads}):
        sessions = {k: session(v, threads) for k, v in graphs.items()}
        results = {}
        for batch, tokens in SHAPES:
            calls = {"PyTorch FP": torch_callable(fp, batch, tokens, config.vocab_size, threads)}
            calls.update({k: ort_callable(s, batch, tokens, config.vocab_size) for k, s in sessions.items()})
            results[(batch, tokens)] = measure(calls, args.seconds, warmup=1)
            print(
                f"  {threads} thread(s), {batch} x {tokens}: FP32 ONNX "
                f"{results[(batch, tokens)]['FP32']['median_ms']:.2f} ms (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        head = " | ".join(f"{b} x {t}" for b, t in SHAPES)
        print(
            f"\n{threads} thread(s): ms per batch (median) of the baselines, then every form's speed-up over FP32 ONNX"
            f" (batch x tokens)\n\n| model | form | {head} |\n|---|---|" + "---|" * len(SHAPES)
        )
        for key in ["FP32", "PyTorch FP"]:
            print(f"| {key} | ms | " + " | ".join(f"{results[s][key]['median_ms']:.2f}" for s in SHAPES) + " |")
        for key in [k for k in graphs if k != "FP32"] + ["PyTorch FP"]:
            label, _, name = key.partition(" ")
            print(
                f"| {label} | {name or 'fp32'} | "
                + " | ".join(f"{results[s]['FP32']['median_ms'] / results[s][key]['median_ms']:.2f}x" for s in SHAPES)
                + " |"
            )
        del sessions
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
