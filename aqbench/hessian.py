"""Q-BERT's sensitivity (Shen et al., AAAI 2020): the top eigenvalue of the loss Hessian restricted to each
encoder block's weights, by power iteration with Hessian-vector products (double backward), over several
random subsamples of the training data; sensitivity Omega = |mean lambda| + std lambda over the subsamples.

One block at a time: H_bb v is the gradient of (g_b . v) where g_b is the loss gradient with respect to block
b's weights only, so each product builds the graph of one block's gradient and memory does not grow with the
number of blocks. The model runs in eval mode (no dropout: the loss must be the same function at every
iteration) with eager attention (PyTorch's fused CPU attention has no double backward).
"""

import dataclasses
import logging
import math
import time

import torch

from aqbench.batching import batches, to
from aqbench.data import load_split
from aqbench.devices import pick_device
from aqbench.io import write_json
from aqbench.models import load_checkpoint
from aqbench.progress import Progress
from aqbench.quant.modules import encoder_blocks
from aqbench.tasks.kinds import featurize
from aqbench.versions import versions

log = logging.getLogger(__name__)


def block_weights(model):
    """[(block name, [weight matrices of its Linear layers])]: the parameters each eigenvalue is about."""
    out = []
    for name, block in encoder_blocks(model):
        out.append((name, [m.weight for m in block.modules() if isinstance(m, torch.nn.Linear)]))
    return out


def hvp(model, batch_list, params, v):
    """H v for the mean loss over the batches, H restricted to `params` (one backward graph at a time)."""
    total = [torch.zeros_like(p) for p in params]
    count = 0
    for batch in batch_list:
        loss = model(**batch).loss
        grads = torch.autograd.grad(loss, params, create_graph=True)
        hv = torch.autograd.grad(sum((g * x).sum() for g, x in zip(grads, v)), params)
        size = batch["input_ids"].shape[0]
        for t, h in zip(total, hv):
            t.add_(h.detach(), alpha=size)
        count += size
    return [t / count for t in total]


def reusing_graph_hvp(model, batch, params):
    """v -> H v for one batch, its gradient graph built once and reused by every product (one backward each)."""
    grads = torch.autograd.grad(model(**batch).loss, params, create_graph=True)
    return lambda v: [
        h.detach() for h in torch.autograd.grad(sum((g * x).sum() for g, x in zip(grads, v)), params, retain_graph=True)
    ]


def _norm(vs):
    return math.sqrt(sum(float((x * x).sum()) for x in vs))


def top_eigenvalue(model, batch_list, params, max_iter=50, tol=1e-4, generator=None, history=None):
    """(lambda, iterations): the Hessian eigenvalue of largest magnitude, by power iteration from a seeded
    random start, stopping when the Rayleigh quotient changes by less than tol (relative). `history`, a list,
    receives the Rayleigh quotient of every iteration: a run at a small tol then tells what any larger tol or
    smaller cap would have returned (`stopped_at`), which the Hessian budget study uses.

    When the data is one batch, the gradient's graph is built once and reused by every iteration (one backward
    per product instead of forward + two backwards), as PyHessian does; with several batches each product
    rebuilds them one at a time, so memory stays at one batch's graph."""
    v = [torch.randn(p.shape, generator=generator).to(p.device) for p in params]
    scale = _norm(v)
    v = [x / scale for x in v]
    product = reusing_graph_hvp(model, batch_list[0], params) if len(batch_list) == 1 else None
    lam = None
    for i in range(1, max_iter + 1):
        hv = hvp(model, batch_list, params, v) if product is None else product(v)
        new = sum(float((a * b).sum()) for a, b in zip(hv, v))
        if history is not None:
            history.append(new)
        norm = _norm(hv)
        if norm == 0:
            return 0.0, i
        v = [h / norm for h in hv]
        if lam is not None and abs(new - lam) <= tol * max(abs(lam), 1e-12):
            return new, i
        lam = new
    return lam, max_iter


def stopped_at(history, max_iter, tol):
    """(lambda, iterations) that top_eigenvalue would have returned with this cap and tolerance, read off the
    Rayleigh quotients of a run with a cap at least as large and a tolerance at most as large."""
    for i in range(1, min(max_iter, len(history))):
        if abs(history[i] - history[i - 1]) <= tol * max(abs(history[i - 1]), 1e-12):
            return history[i], i + 1
    i = min(max_iter, len(history))
    return history[i - 1], i


def subsample_batches(features, n, generator, batch_size, pad_id, device):
    """Batches of n features drawn at random (without replacement) from `features`."""
    chosen = torch.randperm(len(features), generator=generator)[:n].tolist()
    subset = type(features)([features.inputs[i] for i in chosen], chosen)
    return [to(b, device) for b in batches(subset, batch_size, pad_id)]


def load_for_hessian(task, checkpoint_dir, data_dir, train_settings):
    """(model in eval mode with eager attention and frozen weights, training features, device)."""
    device = pick_device(train_settings.device)
    model, tokenizer = load_checkpoint(task, checkpoint_dir)
    model.set_attn_implementation("eager")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    features = featurize(task, load_split(data_dir, "train"), tokenizer, train_settings)
    return model, tokenizer, features, device


def spectrum(task, checkpoint_dir, data_dir, settings, train_settings, seed, out_path):
    """The hessian stage: every block's top eigenvalue on `subsamples` random subsets of `fraction` of the
    training features; writes spectrum.json (every lambda, iterations, mean, std, sensitivity)."""
    start = time.time()
    model, tokenizer, features, device = load_for_hessian(task, checkpoint_dir, data_dir, train_settings)
    n = max(1, round(settings.fraction * len(features)))
    gen = torch.Generator().manual_seed(seed)
    blocks = block_weights(model)
    eigen = {name: [] for name, _ in blocks}
    iters = {name: [] for name, _ in blocks}
    bar = Progress(settings.subsamples * len(blocks), f"hessian {task.name}")
    for s in range(settings.subsamples):
        batch_list = subsample_batches(features, n, gen, settings.batch_size, tokenizer.pad_token_id, device)
        for name, params in blocks:
            for p in params:
                p.requires_grad_(True)
            lam, k = top_eigenvalue(model, batch_list, params, settings.max_iter, settings.tol, gen)
            for p in params:
                p.requires_grad_(False)
            eigen[name].append(lam)
            iters[name].append(k)
            bar.update(1, subsample=s + 1)
    bar.close()
    record = {
        "task": task.name,
        "seed": seed,
        "settings": dataclasses.asdict(settings),
        "examples_per_subsample": n,
        "blocks": [],
        "seconds": time.time() - start,
        "versions": versions(),
    }
    for name, _ in blocks:
        lams = torch.tensor(eigen[name], dtype=torch.float64)
        mean, std = float(lams.mean()), float(lams.std()) if len(lams) > 1 else 0.0
        record["blocks"].append(
            {
                "name": name,
                "eigenvalues": eigen[name],
                "iterations": iters[name],
                "mean": mean,
                "std": std,
                "sensitivity": abs(mean) + std,
            }
        )
    record["hvps"] = sum(sum(v) for v in iters.values())
    write_json(out_path, record)
    log.info(
        "hessian %s: %d blocks x %d subsamples, %d Hessian-vector products in %.1f s",
        task.name,
        len(blocks),
        settings.subsamples,
        record["hvps"],
        record["seconds"],
    )
    return record
