"""Calibration and input statistics: the calibration set (a seeded subset of the training data), activation
ranges from a pass over it, and per-feature input maxima of Linear layers (OCS's activation splits)."""

import torch

from aqbench.data import load_split, subsample
from aqbench.errors import AqbenchError
from aqbench.prediction import predict
from aqbench.quant.modules import act_quantizers, calibrating
from aqbench.tasks.kinds import featurize


def calibration_features(task, data_dir, tokenizer, settings, n, seed):
    """Features of n training examples (a seeded subset): the same set for every method at a given seed.
    Only training data is used, so evaluation data never shapes a quantizer."""
    examples = subsample(load_split(data_dir, "train"), n, seed)
    return featurize(task, examples, tokenizer, settings, with_labels=False)


@torch.no_grad()
def input_absmax(model, names, features, pad_id, settings):
    """{Linear name: max |x| per input feature} over the features, from the model as it is (hooks, no change)."""
    found, hooks = {}, []

    def hook(name):
        def record(module, args):
            x = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0)
            found[name] = x if name not in found else torch.maximum(found[name], x)

        return record

    for name in names:
        hooks.append(model.get_submodule(name).register_forward_pre_hook(hook(name)))
    try:
        predict(model, features, settings.eval_batch_size, pad_id, settings.device, desc="observe inputs")
    finally:
        for h in hooks:
            h.remove()
    return found


def calibrate(model, features, pad_id, settings, stats=False):
    """Set every activation quantizer's range to the min/max it sees on the calibration features (stats: and
    gather the statistics ACIQ fits, aqbench.quant.modules.calibrating)."""
    with calibrating(model, stats) as quantizers:
        if quantizers:
            predict(
                model,
                features,
                settings.eval_batch_size,
                pad_id,
                settings.device,
                desc="calibrate",
                mixed_precision=settings.mixed_precision,
            )
    missing = [q for q in act_quantizers(model) if not q.calibrated]
    if missing:
        raise AqbenchError(f"{len(missing)} activation quantizers saw no data during calibration")
    return len(act_quantizers(model))
