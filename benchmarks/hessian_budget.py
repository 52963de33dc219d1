"""Q-BERT's spectrum on a budget: how the block ranking and the rank rule's bits move with the spectrum's settings
(subsamples, fraction of the training data, iteration cap, tolerance), against a reference setting (the paper's
10 subsamples x 10%, 50 iterations, tol 1e-4, where it can be afforded).

    .venv/bin/python benchmarks/hessian_budget.py --config config/config.yaml --task sst2 --out study.json
    .venv/bin/python benchmarks/hessian_budget.py --config config/config.yaml --task sst2 --read study.json

Needs the task's fine-tuned model and prepared data from a workflow run (<results>/models/<task>/bert/seed0 and
<results>/data/<task>; `snakemake <that checkpoint>` makes them). For each fraction it draws `--subsamples`
subsamples (seeded) and runs power iteration on every block with a small tolerance, recording every Rayleigh
quotient. Any cap up to --max-iter and any tolerance from --tol up is then read off that record exactly as a run
with those settings would stop (aqbench.hessian.stopped_at), and k subsamples are every window of k consecutive
draws of the recorded ones (so a setting's spread over draws shows, not one lucky draw). One pass of compute,
every setting evaluated; --read re-tabulates a saved record without compute.

Cost is counted in example-HVPs (Hessian-vector products x examples per subsample), which is what the stage's
time is proportional to at a fixed batch shape; the record keeps each fraction's measured seconds too.
"""

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from aqbench import config as aqconfig
from aqbench.allocation import rank_allocation
from aqbench.hessian import block_weights, load_for_hessian, stopped_at, subsample_batches, top_eigenvalue
from aqbench.methods.qbert import allocation_inputs
from aqbench.settings import MethodSettings, Train
from aqbench.tasks import get_task

CAPS = (5, 10, 20, 50)
TOLS = (1e-2, 1e-3, 1e-4)
COUNTS = (1, 2, 3, 5, 10, 20)


def record_histories(task, results, train, fractions, subsamples, max_iter, tol, batch_size, seed, save=None):
    """{fraction: {"examples", "seconds", "histories": [subsample][block] -> Rayleigh quotients}}; save(record)
    after each fraction, so a long study that stops keeps the fractions it finished."""
    base = Path(results)
    model, tokenizer, features, device = load_for_hessian(
        task, base / "models" / task.name / "bert" / "seed0", base / "data" / task.name, train
    )
    blocks = block_weights(model)
    out = {"blocks": [name for name, _ in blocks], "train_features": len(features), "fractions": {}}
    for f in fractions:
        n = max(1, round(f * len(features)))
        gen = torch.Generator().manual_seed(seed)
        start, histories = time.perf_counter(), []
        for s in range(subsamples):
            batch_list = subsample_batches(features, n, gen, batch_size, tokenizer.pad_token_id, device)
            row = []
            for _, params in blocks:
                for p in params:
                    p.requires_grad_(True)
                h = []
                top_eigenvalue(model, batch_list, params, max_iter, tol, gen, history=h)
                for p in params:
                    p.requires_grad_(False)
                row.append(h)
            histories.append(row)
            print(f"  fraction {f}: subsample {s + 1}/{subsamples} ({time.perf_counter() - start:.0f} s)", flush=True)
        out["fractions"][str(f)] = {"examples": n, "seconds": time.perf_counter() - start, "histories": histories}
        if save:
            save(out)
    return model, out


def sensitivities(histories, names, cap, tol):
    """({block: |mean lambda| + std lambda}, HVPs) over the given subsamples, as hessian.spectrum computes them."""
    lams = {b: [] for b in names}
    hvps = 0
    for row in histories:
        for b, h in zip(names, row):
            lam, k = stopped_at(h, cap, tol)
            lams[b].append(lam)
            hvps += k
    sens = {}
    for b, values in lams.items():
        v = torch.tensor(values, dtype=torch.float64)
        sens[b] = abs(float(v.mean())) + (float(v.std()) if len(v) > 1 else 0.0)
    return sens, hvps


def kendall_tau(a, b):
    """Kendall's tau-a between two scorings of the same keys."""
    keys = list(a)
    pairs = list(itertools.combinations(keys, 2))
    score = sum(1 if (a[i] - a[j]) * (b[i] - b[j]) > 0 else -1 for i, j in pairs)
    return score / len(pairs)


def study(record, allocate, reference):
    """One row per (fraction, subsamples, cap, tol): its cost relative to the reference and, over the draws
    (windows of consecutive subsamples), the smallest Kendall tau and the share keeping every budget's bits."""
    names = record["blocks"]
    rf, rk, rcap, rtol = reference
    ref = record["fractions"][str(rf)]
    ref_sens, ref_hvps = sensitivities(ref["histories"][:rk], names, rcap, rtol)
    ref_cost = ref_hvps * ref["examples"]
    ref_bits = allocate(ref_sens)
    rows = []
    for f, rec in record["fractions"].items():
        total = len(rec["histories"])
        for k in (c for c in COUNTS if c <= total):
            draws = [[rec["histories"][(s + i) % total] for i in range(k)] for s in range(total if k < total else 1)]
            for cap, tol in itertools.product([c for c in CAPS if c <= record["max_iter"]], TOLS):
                taus, kept, costs = [], 0, []
                for draw in draws:
                    sens, hvps = sensitivities(draw, names, cap, tol)
                    taus.append(kendall_tau(sens, ref_sens))
                    kept += allocate(sens) == ref_bits
                    costs.append(hvps * rec["examples"])
                rows.append(
                    {
                        "fraction": float(f),
                        "subsamples": k,
                        "max_iter": cap,
                        "tol": tol,
                        "examples": rec["examples"],
                        "cost": statistics.mean(costs) / ref_cost,
                        "tau_min": min(taus),
                        "tau_mean": statistics.mean(taus),
                        "kept": kept / len(draws),
                        "draws": len(draws),
                    }
                )
    return ref_sens, ref_bits, rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="the config whose run made the model (its quant, qbert, train)")
    p.add_argument("--task", required=True)
    p.add_argument("--results", help="the config's results directory unless given")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.02, 0.05, 0.1])
    p.add_argument("--subsamples", type=int, default=10)
    p.add_argument("--max-iter", type=int, default=50)
    p.add_argument("--tol", type=float, default=1e-5, help="the recorded runs' tolerance (<= every studied tol)")
    p.add_argument("--batch-size", type=int, default=1024, help="one batch reuses its gradient graph (faster)")
    p.add_argument(
        "--reference",
        default=None,
        help="fraction,subsamples,max_iter,tol (default: the largest fraction, every subsample, 50 iterations, 1e-4)",
    )
    p.add_argument(
        "--compare",
        nargs="*",
        default=[],
        help="subsamples,fraction,max_iter,tol settings whose first draw (what `aqbench hessian --seed SEED` computes "
        "with them) is shown beside the config's own setting",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="save the record (Rayleigh quotients of every run) as JSON")
    p.add_argument("--read", help="tabulate a saved record instead of computing one")
    p.add_argument(
        "--extend",
        help="a saved record to which --fractions are (re)computed and written back: more subsamples of a cheap "
        "fraction give more draws of the settings that use it",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = aqconfig.load_file(args.config)
    task = get_task(args.task)
    settings = MethodSettings.from_dict(aqconfig.method_settings(config, "qbert", args.task))
    train = Train.from_dict(aqconfig.stage_settings(config, "train", args.task))
    if args.read:
        record = json.loads(Path(args.read).read_text())
        model = None
    else:
        settings_of_record = {"task": args.task, "config": args.config, "max_iter": args.max_iter, "tol": args.tol}
        earlier = json.loads(Path(args.extend).read_text()) if args.extend else None
        if earlier and (earlier["max_iter"], earlier["tol"]) != (args.max_iter, args.tol):
            sys.exit(f"{args.extend} was recorded with max_iter {earlier['max_iter']}, tol {earlier['tol']}: use those")

        def merged(new):
            record = {**(earlier or new), **settings_of_record}
            if earlier:
                if earlier["blocks"] != new["blocks"]:
                    sys.exit(f"{args.extend} was recorded on another model: record anew")
                record["fractions"] = {**earlier["fractions"], **new["fractions"]}
            return record

        def save(new):
            path = Path(args.out or args.extend)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(merged(new)))
            tmp.replace(path)

        model, record = record_histories(
            task,
            args.results or config["results"],
            train,
            sorted(args.fractions),
            args.subsamples,
            args.max_iter,
            args.tol,
            args.batch_size,
            args.seed,
            save if (args.out or args.extend) else None,
        )
        record = merged(record)
    if model is None:
        from aqbench.models import load_checkpoint

        base = Path(args.results or config["results"])
        model, _ = load_checkpoint(task, base / "models" / args.task / "bert" / "seed0")
    budgets = [f"b{b}" for b in config["qbert"]["budgets"]]
    inputs = {b: allocation_inputs(model, b, settings, record["blocks"])[1:] for b in budgets}

    def allocate(sens):
        return [rank_allocation(sens, costs, bits, settings.qbert.bits) for costs, bits in inputs.values()]

    if args.reference:
        f, k, cap, tol = args.reference.split(",")
        reference = (float(f), int(k), int(cap), float(tol))
    else:
        largest = max(record["fractions"], key=float)
        reference = (float(largest), min(10, len(record["fractions"][largest]["histories"])), 50, 1e-4)
    ref_sens, ref_bits, rows = study(record, allocate, reference)
    seconds = {f: round(r["seconds"]) for f, r in record["fractions"].items()}
    print(
        f"\n{args.task}: {len(record['blocks'])} blocks, {record['train_features']} training features; "
        f"recorded at tol {record['tol']}, cap {record['max_iter']}; seconds per fraction {seconds}"
    )
    print(f"reference {reference}: sensitivity " + ", ".join(f"{s:.4g}" for s in ref_sens.values()))
    print(
        "reference bits (rank rule): "
        + "; ".join(f"{b}: {[bits[n] for n in record['blocks']]}" for b, bits in zip(budgets, ref_bits))
    )
    h = config["hessian"]
    own = (h["subsamples"], h["fraction"], h["max_iter"], h["tol"])
    print("\nfirst draw of each setting (what `aqbench hessian` computes with it, same seed):")
    for label, setting in [("config", own)] + [("compare", tuple(c.split(","))) for c in args.compare]:
        k, f, cap, tol = int(setting[0]), float(setting[1]), int(setting[2]), float(setting[3])
        rec = record["fractions"].get(str(f))
        if rec is None or len(rec["histories"]) < k or cap > record["max_iter"] or tol < record["tol"]:
            print(f"  {label} {k} x {f:g}, max_iter {cap}, tol {tol:g}: not in the record")
            continue
        sens, hvps = sensitivities(rec["histories"][:k], record["blocks"], cap, tol)
        bits = allocate(sens)
        print(
            f"  {label} {k} x {f:g}, max_iter {cap}, tol {tol:g}: {hvps} HVPs, bits "
            + "; ".join(f"{b}: {[x[n] for n in record['blocks']]}" for b, x in zip(budgets, bits))
            + f" ({'same as' if bits == ref_bits else 'differs from'} the reference)"
        )
    print(
        "\n| subsamples x fraction | max_iter | tol | cost vs reference | Kendall tau min / mean | "
        "draws keeping the bits |"
    )
    print("|---|---|---|---|---|---|")
    shown = [r for r in rows if r["tol"] == 1e-4 or r["max_iter"] == 10]
    for r in sorted(shown, key=lambda r: -r["cost"]):
        print(
            f"| {r['subsamples']} x {r['fraction']:g} | {r['max_iter']} | {r['tol']:g} | {r['cost']:.4f} | "
            f"{r['tau_min']:.2f} / {r['tau_mean']:.2f} | {r['kept'] * r['draws']:.0f} of {r['draws']} |"
        )
    for share in (1.0, 0.9):
        safe = [r for r in rows if r["kept"] >= share and r["draws"] >= 10]
        if safe:
            best = min(safe, key=lambda r: r["cost"])
            print(
                f"cheapest setting keeping the reference's bits in {share:.0%} or more of >= 10 draws: "
                f"{best['subsamples']} x {best['fraction']:g}, max_iter {best['max_iter']}, tol {best['tol']:g}: "
                f"{1 / best['cost']:.1f}x cheaper ({best['kept'] * best['draws']:.0f} of {best['draws']} draws)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
