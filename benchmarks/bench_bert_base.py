"""How long the paper configuration takes, estimated from measured CPU steps of a BERT-base-shaped model.

    .venv/bin/python benchmarks/bench_bert_base.py            # 1 torch thread, ~4 minutes
    .venv/bin/python benchmarks/bench_bert_base.py --gpu-tflops 25

What is measured (this machine): the median time of a training step (forward, backward, AdamW) and of an
evaluation forward pass of BERT-base's shape (12 x 768, vocabulary 30,522; random weights, no hub) at batch
8 x 128 and 8 x 384; and, on the real SST-2 / CoNLL-2003 / SQuAD copies in ../shared/data, how long the padded
batches are (our collate pads to the longest feature of a batch) under a 30,522-word WordPiece vocabulary
learned on that text. What is not: MNLI's lengths (no copy here: assumed padded to 128, an upper bound) and the
number of SQuAD training features (87,599 questions x the features per question measured on dev).

Estimates: a stage's CPU time = its tokens x the measured seconds per token at that length (linear in the
batch; at 1 thread); Q-BERT's spectrum costs its Hessian-vector products (measured at 8 x 128, with an assumed
10 power iterations per block and subsample) and its QAT the fine-tuning steps x 1.10 (a fake-quantized step
over an FP one, measured by bench_demo.py on the same shape); AQ-BERT's searches their steps x SEARCH_OVER_FP
(measured by bench_aq.py); DistilBERT (fine-tuning, aq_distil) half of BERT-base's cost. Its GPU time = its FLOPs / an assumed sustained rate (--gpu-tflops, not measured here:
no GPU); FLOPs per token of a forward pass = 2 x 85M encoder weights + 4 x layers x length x hidden
(attention), a training step 3x that. Prints Markdown tables (README quotes them).
"""

import argparse
import math
import os
import random
from pathlib import Path

import torch
from timing import median_seconds

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AQBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))
LAYERS, HIDDEN, ENCODER_WEIGHTS = 12, 768, 84_934_656
BATCH, EVAL_BATCH, EPOCHS, CALIBRATION = 32, 128, 3, 256  # config/paper.yaml
# The datasets' published sizes (the copies here lack MNLI and SQuAD train)
SIZES = {
    "sst2": {"train": 67_349, "eval": 872},
    "mnli": {"train": 392_702, "eval": 9_815 + 9_832},
    "conll03": {"train": 14_041, "eval": 3_250},
    "squad": {"train": 87_599, "eval": 10_570},
}


def step_times(steps):
    """{length: (train s, eval s)} per batch of 8 for BERT-base's shape."""
    from transformers import BertConfig, BertForSequenceClassification

    out = {}
    for length in (128, 384):
        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(num_labels=2, max_position_embeddings=512))
        batch = {
            "input_ids": torch.randint(1000, 30000, (8, length)),
            "attention_mask": torch.ones(8, length, dtype=torch.long),
        }
        labels = torch.randint(0, 2, (8,))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def train():
            loss = model.train()(**batch, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()

        def evaluate():
            with torch.no_grad():
                model.eval()(**batch)

        out[length] = (median_seconds(train, steps), median_seconds(evaluate, steps))
    return out


def hvp_seconds(steps):
    """One Hessian-vector product for encoder block 0 of BERT-base's shape, batch 8 x 128 (forward + two backwards)."""
    from transformers import BertConfig, BertForSequenceClassification

    from aqbench.hessian import block_weights, hvp

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=2, attn_implementation="eager")).eval()
    batch = {
        "input_ids": torch.randint(1000, 30000, (8, 128)),
        "attention_mask": torch.ones(8, 128, dtype=torch.long),
        "labels": torch.randint(0, 2, (8,)),
    }
    params = block_weights(model)[0][1]
    for p in model.parameters():
        p.requires_grad_(p in set(params))
    v = [torch.randn_like(p) for p in params]
    return median_seconds(lambda: hvp(model, [batch], params, v), steps)


def padded(lengths, batch_size, shuffle, cap, seed=0):
    """Mean padded length per feature when features are batched (shuffled for training) and padded to the longest."""
    order = list(range(len(lengths)))
    if shuffle:
        random.Random(seed).shuffle(order)
    total = sum(
        max(lengths[i] for i in order[s : s + batch_size]) * len(order[s : s + batch_size])
        for s in range(0, len(order), batch_size)
    )
    return min(cap, total / len(lengths))


def data_lengths():
    """{task: (padded train length, padded eval length, features per example)} measured on the real copies."""
    from aqbench import models
    from aqbench.settings import Train
    from aqbench.tasks import get_task
    from aqbench.tasks.kinds import featurize

    out = {"mnli": (128.0, 128.0, 1.0)}  # no copy here: assume every batch padded to max_length (upper bound)
    for name, train_file, eval_file in (
        ("sst2", "sst2/train.tsv", "sst2/dev.tsv"),
        ("conll03", "conll2003/train.txt", "conll2003/valid.txt"),
        ("squad", "squad/dev-v1.1.json", "squad/dev-v1.1.json"),
    ):
        task = get_task(name)
        if not (SHARED / train_file).is_file():
            continue
        train, dev = task.read_local(SHARED / train_file), task.read_local(SHARED / eval_file)
        tok = models.train_tokenizer(models.texts(task, train), 30_522)
        cap = task.max_length
        n_train = [len(r["input_ids"]) for r in featurize(task, train, tok, Train(), with_labels=False).inputs]
        n_eval = [len(r["input_ids"]) for r in featurize(task, dev, tok, Train(), with_labels=False).inputs]
        out[name] = (padded(n_train, BATCH, True, cap), padded(n_eval, EVAL_BATCH, False, cap), len(n_eval) / len(dev))
    return out


def flops_per_token(length, train):
    forward = 2 * ENCODER_WEIGHTS + 4 * LAYERS * length * HIDDEN
    return 3 * forward if train else forward


QAT_OVER_FP = 1.10  # a fake-quantized training step / an FP step, BERT-base shape (benchmarks/bench_demo.py)
# one AQ search step (weight update + architecture update, candidates {0, 2, 4, 8}, 128 groups) / an FP step,
# BERT-base shape, 8 x 128 (benchmarks/bench_aq.py)
SEARCH_OVER_FP = 2.39
DISTIL_OVER_BERT = 0.5  # 6 of 12 blocks: the encoder's share of the FLOPs (embedding and head are small)
HVP_ITERATIONS = 10  # assumed power iterations per block and subsample (bench_qbert.py saw 5-7 on random weights)


def paper_config():
    from aqbench.config import load_file

    return load_file(REPO / "config" / "paper.yaml")


def paper_runs(config):
    """Per task: (quantized runs, calibration passes, evaluated runs, QAT runs) of config/paper.yaml as it is."""
    from aqbench.config import runs

    out = {}
    for task in config["tasks"]:
        mine = [r for r in runs(config) if r[0] == task]
        quantized = [r for r in mine if r[2] != "fp"]
        # ACIQ with clipped activations calibrates twice (the second pass measures E|x - mean|)
        passes = sum(2 if m == "aciq" and config["aciq"]["activations"] else 1 for _, _, m, _, _ in quantized)
        out[task] = {
            "quantized": len(quantized),
            "passes": passes,
            "evaluated": len(mine),
            "qat_bert": sum(1 for r in mine if r[2] in ("qbert", "aq")),
            "qat_distil": sum(1 for r in mine if r[2] == "aq_distil"),
            "search_bert": sum(1 for r in mine if r[2] == "aq"),
            "search_distil": sum(1 for r in mine if r[2] == "aq_distil"),
            "distil": any(r[1] == "distil" for r in mine),
            "hessian": any(r[2] == "qbert" for r in mine),
        }
    return out


def estimates(times, hvp_s, lengths, gpu_tflops):
    config = paper_config()
    rows, counts = [], paper_runs(config)
    for task, (train_len, eval_len, per_example) in lengths.items():
        c = counts[task]
        quantized, passes, evaluated = c["quantized"], c["passes"], c["evaluated"]
        cap = 384 if task == "squad" else 128
        s_train, s_eval = (t / (8 * cap) for t in times[cap])  # seconds per token at the task's max length
        features = SIZES[task]["train"] * per_example
        steps = EPOCHS * math.ceil(features / BATCH)
        stages = {
            "finetune": (steps * BATCH * train_len, True, f"{steps:,} steps of {BATCH} x {train_len:.0f}"),
            f"calibration ({quantized} runs)": (
                passes * CALIBRATION * train_len,
                False,
                f"{passes} passes x {CALIBRATION} calibration examples",
            ),
            f"evaluate ({evaluated} runs)": (
                evaluated * SIZES[task]["eval"] * per_example * eval_len,
                False,
                f"{evaluated} x {SIZES[task]['eval'] * per_example:,.0f} dev features x {eval_len:.0f}",
            ),
        }
        for stage, (tokens, train, what) in stages.items():
            cpu_h = tokens * (s_train if train else s_eval) / 3600
            gpu_h = tokens * flops_per_token(train_len if train else eval_len, train) / (gpu_tflops * 1e12) / 3600
            rows.append((task, stage, what, cpu_h, gpu_h))
        if c["distil"]:  # DistilBERT fine-tuned like BERT: half the blocks, about half the cost
            rows.append(
                (
                    task,
                    "finetune distil",
                    f"{steps:,} steps of {BATCH} x {train_len:.0f}, 6 of 12 blocks",
                    steps * BATCH * train_len * s_train * DISTIL_OVER_BERT / 3600,
                    steps
                    * BATCH
                    * train_len
                    * flops_per_token(train_len, True)
                    * DISTIL_OVER_BERT
                    / (gpu_tflops * 1e12)
                    / 3600,
                )
            )
        if c["hessian"]:  # Q-BERT: the spectrum once per task
            h = config["hessian"]
            hvps = h["subsamples"] * min(h["max_iter"], HVP_ITERATIONS) * LAYERS
            tokens = hvps * h["fraction"] * features * train_len
            hvp_over_step = hvp_s / times[128][0]  # measured at 8 x 128, applied at the task's length
            rows.append(
                (
                    task,
                    "hessian",
                    f"{hvps} HVPs x {h['fraction']:g} of the features x {train_len:.0f}",
                    tokens * s_train * hvp_over_step / 3600,
                    tokens * flops_per_token(train_len, True) * hvp_over_step / (gpu_tflops * 1e12) / 3600,
                )
            )
        # QAT (qbert, aq: BERT-base; aq_distil: the student at about half the cost), then AQ's searches
        from aqbench.config import search_trials

        qat_steps = config["qat"]["epochs"] * math.ceil(features / config["qat"]["batch_size"])
        aq = config["aq"]
        search_steps = aq["epochs"] * min(aq["steps_per_epoch"] or 10**12, math.ceil(0.9 * features / aq["batch_size"]))
        for stage, runs, batch, n_steps, ratio in (
            (
                "qat",
                c["qat_bert"] + c["qat_distil"] * DISTIL_OVER_BERT,
                config["qat"]["batch_size"],
                qat_steps,
                QAT_OVER_FP,
            ),
            (
                "aq search",  # one search per trial of the aq.tune sweep
                (c["search_bert"] + c["search_distil"] * DISTIL_OVER_BERT) * len(search_trials(config)),
                aq["batch_size"],
                search_steps,
                SEARCH_OVER_FP,
            ),
        ):
            if runs:
                tokens = runs * n_steps * batch * train_len
                rows.append(
                    (
                        task,
                        f"{stage} ({runs:g} BERT-base-equivalent runs)",
                        f"{n_steps:,} steps of {batch} x {train_len:.0f}, x {ratio} an FP step",
                        tokens * s_train * ratio / 3600,
                        tokens * flops_per_token(train_len, True) * ratio / (gpu_tflops * 1e12) / 3600,
                    )
                )
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement (after one warm-up)")
    p.add_argument("--gpu-tflops", type=float, default=25.0, help="assumed sustained GPU rate (not measured)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    load = os.getloadavg()[0]
    times = step_times(args.steps)
    hvp_s = hvp_seconds(args.steps)
    print(f"## BERT-base shape, batch 8, {args.threads} thread(s) (load average {load:.1f} at the start)\n")
    print("| length | train step s | eval forward s | train ms / token | eval ms / token |\n|---|---|---|---|---|")
    for length, (t, e) in times.items():
        print(f"| {length} | {t:.2f} | {e:.2f} | {1000 * t / (8 * length):.2f} | {1000 * e / (8 * length):.2f} |")
    print(
        f"\nOne Hessian-vector product (block 0, 8 x 128): {hvp_s:.2f} s = {hvp_s / times[128][0]:.2f} training steps"
    )

    lengths = data_lengths()
    print("\n## Padded lengths on the real data (30,522-word vocabulary learned on it)\n")
    print("| task | train batch 32 | eval batch 128 | features per example |\n|---|---|---|---|")
    for task, (tl, el, fe) in lengths.items():
        print(f"| {task} | {tl:.1f} | {el:.1f} | {fe:.3f} |" + (" (assumed)" if task == "mnli" else ""))

    rows = estimates(times, hvp_s, lengths, args.gpu_tflops)
    print(
        f"\n## Estimated time of config/paper.yaml (CPU: measured per-token cost x tokens, {args.threads} thread; "
        f"GPU: FLOPs / an assumed {args.gpu_tflops:g} TFLOP/s)\n"
    )
    print("| task | stage | work | CPU hours | GPU hours (assumed rate) |\n|---|---|---|---|---|")
    for task, stage, what, cpu_h, gpu_h in rows:
        print(f"| {task} | {stage} | {what} | {cpu_h:.2f} | {gpu_h:.3f} |")
    print(f"| all | total | | {sum(r[3] for r in rows):.1f} | {sum(r[4] for r in rows):.2f} |")


if __name__ == "__main__":
    main()
