"""AQ-BERT's search (Zhao et al., IJCAI 2021): a bit-width (0 = pruned, 2, 4, 8 by default) per group of output
neurons of every encoder Linear, by differentiable search on the super-network of aqbench.quant.supernet.

Bilevel, first order (as DARTS' first-order variant): each step, from epoch `warmup_epochs` (N1) on, first
updates the architecture parameters with Adam (or the paper's SGD) on a batch of a held-out split of the
training data (weights fixed), then the weights with AdamW on a batch of the train split (architecture fixed);
both see the same weights, so the candidates' roundings are computed once per step. The architecture minimises

    L_val = CE + lambda * L_size,  L_size = log E[C] above (1 + eps) V, 0 inside [(1 - eps) V, (1 + eps) V],
                                            -log E[C] below (1 - eps) V

with E[C] the expected encoder size in MB (group parameters included, as aqbench.quant.size counts) and V the
budget. The Gumbel-softmax temperature follows t = t0 * exp(-eta * (epoch - N0)) from epoch N0 on (t0 before).
The evaluation split is never read; the searched model is
scored on the tuning split (tuning_score), which is how a sweep of these settings (aq.tune) is decided. After the last epoch the argmax per group is repaired to the budget
(aqbench.quant.supernet.derive) and written as a bit assignment; the trace keeps every epoch's numbers.
"""

import dataclasses
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from aqbench.batching import batches, to
from aqbench.data import load_split
from aqbench.devices import pick_device
from aqbench.errors import AqbenchError
from aqbench.io import atomic_dir, write_json
from aqbench.models import load_checkpoint
from aqbench.progress import Progress
from aqbench.quant.size import MB, encoder_size
from aqbench.quant.supernet import (
    arch_parameters,
    derive,
    expected_size_bits,
    search_layers,
    set_temperature,
    to_supernet,
)
from aqbench.tasks.kinds import featurize
from aqbench.train import weight_groups
from aqbench.versions import versions

log = logging.getLogger(__name__)


def size_loss(expected_mb, target_mb, eps):
    """AQ-BERT's L_size: pushes E[C] into [(1 - eps) V, (1 + eps) V] and is flat inside it."""
    if expected_mb > (1 + eps) * target_mb:
        return torch.log(expected_mb)
    if expected_mb < (1 - eps) * target_mb:
        return -torch.log(expected_mb)
    return expected_mb * 0.0


def temperature(epoch, t0, eta, n0):
    return t0 * math.exp(-eta * max(0, epoch - n0))


def split_heldout(examples, fraction, seed):
    """(train, held-out): a seeded share of the training examples for the architecture updates. Whole examples
    are split (not features), so windows of one SQuAD context never fall on both sides."""
    n = len(examples)
    k = min(n - 1, max(1, round(fraction * n)))
    if n < 2:
        raise AqbenchError(f"the search needs at least 2 training examples to hold some out, got {n}")
    held = set(random.Random(seed).sample(range(n), k))
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


def _cycle(features, batch_size, pad_id, generator):
    while True:
        yield from batches(features, batch_size, pad_id, shuffle=True, generator=generator)


def _bit_shares(model):
    """Share of the encoder's weights at each argmax candidate."""
    counts = {}
    total = 0
    for m in search_layers(model).values():
        rows = torch.bincount(m.row_group, minlength=m.groups).tolist()
        for r, b in zip(rows, m.chosen_bits()):
            counts[b] = counts.get(b, 0) + r * m.in_features
            total += r * m.in_features
    return {str(b): counts[b] / total for b in sorted(counts)}


def weight_step(model, batch, loss_fn, opt, weights, arch, grad_clip=None):
    """One AdamW step of the weights on a train batch, the architecture fixed (its gradient is not computed)."""
    for p in arch:
        p.requires_grad_(False)
    try:
        loss = loss_fn(model, batch)
        if torch.isfinite(loss):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(weights, grad_clip)
            opt.step()
    finally:
        for p in arch:
            p.requires_grad_(True)
    return loss.detach()


def arch_step(model, batch, loss_fn, opt, weights, arch, target_mb, cfg):
    """One step of the architecture parameters on a held-out batch: CE + lambda * L_size, the weights fixed (not
    accumulated into: each layer's weight gradient is still computed, since the mixed weight's gradient is what
    reaches alpha). Returns (CE, L_size)."""
    for p in weights:
        p.requires_grad_(False)
    try:
        ce = loss_fn(model, batch)
        ls = size_loss(expected_size_bits(model) / 8 / MB, target_mb, cfg.epsilon)
        total = ce + cfg.size_weight * ls
        if torch.isfinite(total):
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
    finally:
        for p in weights:
            p.requires_grad_(True)
    return ce.detach(), ls.detach()


def optimizers(model, cfg):
    """(weights, arch, weight optimizer, architecture optimizer) of a super-network."""
    arch = arch_parameters(model)
    arch_ids = {id(p) for p in arch}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in arch_ids]
    w_opt = torch.optim.AdamW(weight_groups(named, cfg.weight_decay), lr=cfg.lr)
    if cfg.arch_optimizer == "adam":
        a_opt = torch.optim.Adam(arch, lr=cfg.arch_lr)
    else:
        a_opt = torch.optim.SGD(arch, lr=cfg.arch_lr, momentum=cfg.arch_momentum)
    return [p for _, p in named], arch, w_opt, a_opt


def bilevel_search(model, train, heldout, pad_id, budget_bits, cfg, seed, device, loss_fn=None, desc="search"):
    """Run the search on a model already turned into a super-network; returns the per-epoch trace.

    cfg: the aq section (aqbench.settings.Aq): epochs, steps_per_epoch (null = a whole pass over the train
    split), batch_size, lr, weight_decay,
    warmup_epochs (N1), arch_optimizer (sgd | adam), arch_lr, arch_momentum, size_weight (lambda), epsilon,
    t0, eta, n0, grad_clip. loss_fn(model, batch) -> loss; default the model's own (cross-entropy)."""
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)
    model.to(device).train()
    weights, arch, w_opt, a_opt = optimizers(model, cfg)
    target_mb = budget_bits / 8 / MB
    steps = math.ceil(len(train) / cfg.batch_size)
    if cfg.steps_per_epoch:
        steps = min(steps, cfg.steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    held = _cycle(heldout, cfg.batch_size, pad_id, torch.Generator().manual_seed(seed + 1))
    trace = []
    bar = Progress(cfg.epochs * steps, desc)
    for epoch in range(cfg.epochs):
        start = time.time()
        t = temperature(epoch, cfg.t0, cfg.eta, cfg.n0)
        set_temperature(model, t)
        update_arch = epoch >= cfg.warmup_epochs
        w_losses, ce_losses, s_losses = [], [], []
        train_batches = _cycle(train, cfg.batch_size, pad_id, gen)
        for step in range(steps):
            if update_arch:  # as DARTS: the architecture first, then the weights, both at the same weights
                ce, ls = arch_step(model, to(next(held), device), loss_fn, a_opt, weights, arch, target_mb, cfg)
                _check_finite(ce + ls, desc, "architecture", epoch, step, cfg.arch_lr)
                ce_losses.append(ce.item())
                s_losses.append(ls.item())
            loss = weight_step(model, to(next(train_batches), device), loss_fn, w_opt, weights, arch, cfg.grad_clip)
            _check_finite(loss, desc, "weight", epoch, step, cfg.lr)
            w_losses.append(loss.item())
            bar.update(1, epoch=epoch + 1, **({"loss": f"{np.mean(w_losses[-20:]):.4f}"} if step % 20 == 19 else {}))
        with torch.no_grad():
            expected_mb = float(expected_size_bits(model)) / 8 / MB
        # before the first architecture update every alpha is at its uniform start: its argmax is a tie, not a choice
        argmax_mb = _argmax_mb(model) if update_arch else None
        trace.append(
            {
                "epoch": epoch + 1,
                "temperature": t,
                "arch_updates": update_arch,
                "steps": steps,
                "train_loss": float(np.mean(w_losses)),
                "heldout_ce": float(np.mean(ce_losses)) if ce_losses else None,
                "size_loss": float(np.mean(s_losses)) if s_losses else None,
                "expected_mb": expected_mb,
                "argmax_mb": argmax_mb,
                "target_mb": target_mb,
                "argmax_shares": _bit_shares(model) if update_arch else None,
                "seconds": time.time() - start,
            }
        )
        log.info(
            "%s epoch %d: t=%.3f train loss %.4f, held-out CE %s, E[size] %.4f MB, argmax %s MB (budget %.4f)",
            desc,
            epoch + 1,
            t,
            trace[-1]["train_loss"],
            "-" if not ce_losses else f"{trace[-1]['heldout_ce']:.4f}",
            expected_mb,
            "-" if argmax_mb is None else f"{argmax_mb:.4f}",
            target_mb,
        )
    bar.close()
    return trace


def _argmax_mb(model):
    total = 0.0
    for m in search_layers(model).values():
        k = m.alpha.detach().argmax(1)
        total += float(m.cost_bits[torch.arange(m.groups), k].sum())
    return total / 8 / MB


def _check_finite(loss, desc, which, epoch, step, lr):
    if not torch.isfinite(loss):
        raise AqbenchError(
            f"{desc}: the {which} loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}. Fix: "
            f"lower the {which} learning rate (now {lr}); nothing was saved"
        )


def _check_not_all_pruned(assignment, layers, budget_bits, eps, desc):
    """Refuse an assignment that prunes every weight: it would be fine-tuned, evaluated and recorded as a 0 MB
    model. config.load refuses the budgets below one group per matrix (aqbench.config.smallest_search_budget);
    this catches what that bound, shape-blind, cannot (groups capped at a matrix's rows, eps = 1)."""
    if any(b > 0 for layer in assignment.layers.values() for b in layer.bits):
        return
    numel = sum(m.out_features * m.in_features for m in layers.values())
    # the repair never prunes the last group when every group fits the budget at the smallest nonzero candidate
    safe_bits = max(float(m.cost_bits[:, m.nonzero[0]].max()) for m in layers.values())
    if budget_bits < safe_bits:
        fix = (
            f"raise the budget (aq.budgets or budgets) to at least {math.ceil(safe_bits / numel * 1e4) / 1e4:g} "
            "bits per weight (from there on any group of this model fits at the smallest nonzero candidate, "
            "so the search keeps one)"
        )
    else:
        fix = f"lower aq.epsilon (now {eps:g}): the band [(1 - eps) V, V] lets the search keep nothing"
    raise AqbenchError(
        f"{desc}: every encoder weight was pruned at a budget of {budget_bits / numel:g} bits per "
        f"weight ({budget_bits / 8 / MB:.4g} MB); nothing was saved. Fix: {fix}"
    )


def tuning_score(task, supernet, data_dir, assignment, settings, seed, checkpoint_dir):
    """The searched model at the budget, scored on the tuning split (data.tuning_fraction): the search's weights
    quantized with the derived assignment, calibrated, evaluated. {metric, value, examples}; None without a
    tuning split. This is what a sweep of search settings (aq.tune) chooses by: never the evaluation split."""
    from aqbench.evaluate import tuning_scorer
    from aqbench.quant.calibration import calibrate, calibration_features
    from aqbench.quant.modules import quantize_model

    if not (Path(data_dir) / "tuning.jsonl").is_file():
        return None
    model, tokenizer = load_checkpoint(task, checkpoint_dir)
    missing, _ = model.load_state_dict(supernet.state_dict(), strict=False)  # extra: alpha, activation ranges
    if missing:
        raise AqbenchError(f"the searched model lacks weights {missing[:3]} of the checkpoint {checkpoint_dir}")
    quantize_model(model, assignment)
    calib = calibration_features(task, data_dir, tokenizer, settings.train, settings.quant.calibration_examples, seed)
    calibrate(model, calib, tokenizer.pad_token_id, settings.train)
    model.eval()
    score = tuning_scorer(task, tokenizer, data_dir, settings.train)
    return {"split": "tuning", "metric": score.metric, "value": score(model), "examples": score.examples}


def encoder_numel(model):
    return sum(m.out_features * m.in_features for m in search_layers(model).values())


def search(task, checkpoint_dir, data_dir, avg_bits, settings, seed, out_dir, label=None):
    """The search stage: from a fine-tuned checkpoint, search at `avg_bits` per encoder weight (of this model),
    write out_dir/{assignment.json, trace.json, alpha.safetensors}; returns the trace record.
    settings: an aqbench.settings.MethodSettings with the config's quant, train and aq sections."""
    from safetensors.torch import save_file

    from aqbench.methods.common import settings_for_budget
    from aqbench.quant.calibration import calibrate, calibration_features

    begin = time.time()
    settings = settings_for_budget(settings, label or "")
    cfg, quant, train_cfg = settings.aq, settings.quant, settings.train
    torch.manual_seed(seed)
    model, tokenizer = load_checkpoint(task, checkpoint_dir)
    layers = to_supernet(model, quant, cfg.bits)
    budget_bits = avg_bits * encoder_numel(model)
    calib = calibration_features(task, data_dir, tokenizer, train_cfg, quant.calibration_examples, seed)
    calibrate(model, calib, tokenizer.pad_token_id, train_cfg)
    train_ex, held_ex = split_heldout(load_split(data_dir, "train"), cfg.heldout_fraction, seed)
    train = featurize(task, train_ex, tokenizer, train_cfg)
    heldout = featurize(task, held_ex, tokenizer, train_cfg)
    device = pick_device(train_cfg.device)
    trace = bilevel_search(
        model,
        train,
        heldout,
        tokenizer.pad_token_id,
        budget_bits,
        cfg,
        seed,
        device,
        desc=f"search {task.name} {label or ''}".strip(),
    )
    meta = {
        "method": "aq",
        "budget": label,
        "avg_bits_budget": avg_bits,
        "budget_mb": budget_bits / 8 / MB,
        "candidates": cfg.bits,
    }
    assignment, repair = derive(model, budget_bits, quant, cfg.epsilon, meta)
    _check_not_all_pruned(assignment, layers, budget_bits, cfg.epsilon, f"search {task.name} {label or avg_bits}")
    repair = {  # how far the search converged: its expected size at the end, and what the repair had to do
        "expected_mb": trace[-1]["expected_mb"] if trace else None,
        "epsilon": cfg.epsilon,
        "argmax_mb": repair["argmax_bits"] / 8 / MB,
        "steps_down": repair["steps_down"],
        "steps_up": repair["steps_up"],
    }
    assignment.meta.update(repair)
    tuning = tuning_score(task, model, data_dir, assignment, settings, seed, checkpoint_dir)
    size = encoder_size(assignment)
    numel = {}
    for layer in assignment.layers.values():
        for n, b in zip(layer.group_numels(), layer.bits):
            numel[b] = numel.get(b, 0) + n
    shares = {str(b): numel[b] / size["numel"] for b in sorted(numel)}
    record = {
        "task": task.name,
        "seed": seed,
        "budget": label,
        "avg_bits_budget": avg_bits,
        "budget_mb": budget_bits / 8 / MB,
        "derived": size,
        "derived_shares": shares,
        **repair,
        "groups": sum(m.groups for m in layers.values()),
        "train_examples": len(train_ex),
        "heldout_examples": len(held_ex),
        "settings": dataclasses.asdict(cfg),
        "tuning": tuning,
        "trace": trace,
        "seconds": time.time() - begin,
        "versions": versions(),
    }
    with atomic_dir(out_dir) as tmp:
        assignment.save(tmp / "assignment.json")
        save_file({n: m.alpha.detach().cpu().contiguous() for n, m in layers.items()}, str(tmp / "alpha.safetensors"))
        write_json(tmp / "trace.json", record)
    log.info(
        "search %s %s: derived %.4f MB (budget %.4f MB, argmax %.4f MB, repair %d steps down, %d up) in %.0f s",
        task.name,
        label,
        size["size_mb"],
        budget_bits / 8 / MB,
        repair["argmax_mb"],
        repair["steps_down"],
        repair["steps_up"],
        record["seconds"],
    )
    return record
