"""Training: one plain PyTorch loop for FP fine-tuning, QAT and distillation.

The loop is AdamW with linear warm-up and decay, gradient clipping, a seeded shuffle, a progress bar and a
finite-loss check. What differs between fine-tuning, QAT and KD is only the model (FP or with QuantLinear
modules) and, for KD, the loss function passed in.
"""

import logging
import math
import time

import numpy as np
import torch

from aqbench.batching import batches, to
from aqbench.devices import autocast, pick_device, uses_bf16
from aqbench.errors import AqbenchError
from aqbench.progress import Progress

log = logging.getLogger(__name__)


def train_loop(model, features, settings, pad_id, seed, loss_fn=None, desc="train", score=None):
    """Train in place; return stats. settings (an aqbench.settings.Train): epochs, batch_size, lr, weight_decay,
    warmup_ratio, max_steps, grad_clip, device, mixed_precision, select_every. loss_fn(model, batch) -> loss;
    default: the model's own loss.

    With settings.select_every (a number of steps, or "epoch") and score (model -> a value, higher is better: the
    tuning split's metric, aqbench.evaluate.tuning_scorer), the model is scored at those points and at the end,
    and the parameters and buffers that scored best are kept (the earliest of equals): how long to train is
    chosen on the tuning split. Scoring reads no random state, so the trajectory is the one without it."""
    device = pick_device(settings.device)
    model.to(device).train()
    mixed_precision = settings.mixed_precision
    if uses_bf16(device, mixed_precision):
        log.info("%s: bf16 autocast on %s", desc, device)
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)
    steps_per_epoch = math.ceil(len(features) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    if settings.max_steps:
        total = min(total, settings.max_steps)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(weight_groups(named, settings.weight_decay), lr=settings.lr)
    warmup = int(settings.warmup_ratio * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    gen = torch.Generator().manual_seed(seed)
    step, losses, start = 0, [], time.time()
    # one line at the start: a long loop's log shows it began (its progress lines follow every 10 s)
    log.info(
        "%s: %d steps of %d examples on %s, batch %d, lr %g",
        desc,
        total,
        len(features),
        device,
        settings.batch_size,
        settings.lr,
    )
    select = Selection(settings.select_every, steps_per_epoch, total, score, desc)
    bar = Progress(total, desc)
    while step < total:
        for batch in batches(features, settings.batch_size, pad_id, shuffle=True, generator=gen):
            with autocast(device, mixed_precision):
                loss = loss_fn(model, to(batch, device))
            if not torch.isfinite(loss):
                raise AqbenchError(
                    f"{desc}: the loss became {loss.item()} at step {step + 1} of {total}. Fix: lower "
                    f"the learning rate (now {settings.lr}) or raise warmup_ratio; nothing was saved"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            bar.update(1, **({"loss": f"{np.mean(losses[-20:]):.4f}"} if step % 20 == 0 else {}))
            select.after_step(model, step)
            if step >= total:
                break
    bar.close()
    selection = select.finish(model)
    seconds = time.time() - start
    log.info("%s: %d steps in %.1f s, final loss %.4f", desc, step, seconds, float(np.mean(losses[-20:])))
    return {
        "steps": step,
        "seconds": seconds,
        "final_loss": float(np.mean(losses[-20:])),
        "loss_curve": [float(np.mean(losses[i : i + 20])) for i in range(0, len(losses), 20)],
        **({"selection": selection} if selection else {}),
    }


class Selection:
    """train_loop's choice of how long to train: score at every `every` steps (or each epoch's end, and the
    last step), keep a copy of the best state, put it back at the end."""

    def __init__(self, every, steps_per_epoch, total, score, desc):
        if every is not None and score is None:
            raise AqbenchError(f"{desc}: select_every is set but nothing scores the model (no tuning split)")
        self.asked, self.steps_per_epoch = every, steps_per_epoch
        self.every = steps_per_epoch if every == "epoch" else every
        self.total, self.score, self.desc = total, score, desc
        self.scores, self.best, self.best_step, self.best_state = {}, None, None, None

    def after_step(self, model, step):
        if self.every is None or (step % self.every and step != self.total):
            return
        value = float(self.score(model))
        model.train()  # scoring evaluates
        self.scores[step] = value
        log.info("%s: step %d scores %.2f on the tuning split", self.desc, step, value)
        if self.best is None or value > self.best:
            self.best, self.best_step = value, step
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def finish(self, model):
        """Put the best state back; the record {every (as asked: steps or "epoch"), steps_per_epoch, metric,
        scores: {step: value}, chosen_step} (None when nothing was scored)."""
        if not self.scores:
            return None
        if self.best_step != max(self.scores):
            model.load_state_dict(self.best_state)
            log.info("%s: kept step %d (%.2f), not the last", self.desc, self.best_step, self.best)
        return {
            "every": self.asked,
            "steps_per_epoch": self.steps_per_epoch,
            "metric": getattr(self.score, "metric", None),
            "scores": {str(s): v for s, v in self.scores.items()},
            "chosen_step": self.best_step,
        }


def weight_groups(named, weight_decay):
    """AdamW's parameter groups of (name, parameter) pairs: biases and LayerNorm weights without decay (BERT's)."""

    def no_decay(name):
        return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name

    return [
        {"params": [p for n, p in named if not no_decay(n)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
    ]
