"""The inputs a Linear sees on the calibration set, for the methods that reconstruct a layer's output (GPTQ,
AdaRound): the model runs up to that layer and stops there, so a layer deep in the encoder costs no more than
the blocks before it. The model's weights are used as they are (already-quantized layers stay quantized, as
GPTQ and AdaRound process layers in order); padding positions are dropped."""

import torch

from aqbench.batching import MODEL_KEYS, batches
from aqbench.devices import pick_device


class _Reached(Exception):
    """Raised by the hook once the layer's input is taken: the rest of the forward pass is not needed."""


@torch.no_grad()
def each_input(model, name, features, pad_id, settings, consume):
    """For each calibration batch, consume(x): the input rows of Linear `name` at the real (non-padding) tokens,
    float32, shape (tokens, in_features)."""
    device = pick_device(settings.device)
    model.to(device).eval()
    mask = {}

    def hook(module, args):
        x = args[0]
        consume(x.reshape(-1, x.shape[-1])[mask["tokens"]].float())
        raise _Reached

    handle = model.get_submodule(name).register_forward_pre_hook(hook)
    try:
        for batch in batches(features, settings.eval_batch_size, pad_id):
            mask["tokens"] = batch["attention_mask"].reshape(-1).bool().to(device)
            try:
                model(**{k: v.to(device) for k, v in batch.items() if k in MODEL_KEYS})
            except _Reached:
                pass
    finally:
        handle.remove()


def input_hessian(model, name, features, pad_id, settings):
    """H = 2 X^T X / n over the layer's calibration inputs X (n tokens), in float64: GPTQ's layer Hessian of
    the squared output error."""
    acc = {"h": None, "n": 0}

    def add(x):
        x = x.double().cpu()
        acc["h"] = x.T @ x if acc["h"] is None else acc["h"] + x.T @ x
        acc["n"] += x.shape[0]

    each_input(model, name, features, pad_id, settings, add)
    return 2 * acc["h"] / max(acc["n"], 1)


def input_rows(model, name, features, pad_id, settings, max_rows, seed):
    """The layer's calibration inputs as one (n, in_features) matrix, at most max_rows of them (a seeded
    subsample of the tokens)."""
    parts = []
    each_input(model, name, features, pad_id, settings, lambda x: parts.append(x.cpu()))
    x = torch.cat(parts)
    if x.shape[0] > max_rows:
        keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:max_rows]
        x = x[keep.sort().values]
    return x
