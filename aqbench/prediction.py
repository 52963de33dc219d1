"""Batched prediction: per feature, a model's output arrays trimmed to the feature's own length, for evaluation,
calibration, input statistics and the ONNX Runtime checks."""

import torch

from aqbench.batching import MODEL_KEYS, batches, by_length
from aqbench.devices import autocast, pick_device
from aqbench.progress import Progress

OUTPUT_KEYS = ("logits", "start_logits", "end_logits")


@torch.no_grad()
def predict(model, features, batch_size, pad_id, device="auto", desc="eval", mixed_precision=None, sort=False):
    """Per feature, the model's output arrays trimmed to the feature's own length (logits, or start/end logits),
    as fp32 numpy arrays. sort: batch the features by length (less padding, the same outputs up to rounding);
    off where hooks observe every position, padding included (calibration), so that their ranges do not move."""
    device = pick_device(device)
    model.to(device).eval()

    def run(batch):
        with autocast(device, mixed_precision):
            out = model(**{k: v.to(device) for k, v in batch.items() if k in MODEL_KEYS})
        return {k: out[k].float().cpu().numpy() for k in OUTPUT_KEYS if out.get(k) is not None}

    return predict_with(run, features, batch_size, pad_id, desc, sort)


def predict_with(run, features, batch_size, pad_id, desc="eval", sort=False):
    """predict's batching and trimming around any runner: run(batch of padded tensors) -> {output name: array}
    (PyTorch here, ONNX Runtime in aqbench.deploy), so every backend is evaluated on the same batches. The
    outputs are in feature order whatever the batching order."""
    order = by_length(features) if sort else list(range(len(features)))
    outputs, all_batches = [None] * len(order), list(batches(features, batch_size, pad_id, order=order))
    bar = Progress(len(all_batches), desc)
    for b, batch in enumerate(all_batches):
        lengths = batch["attention_mask"].sum(1).tolist()
        arrays = run(batch)
        for i, n in enumerate(lengths):
            index = order[b * batch_size + i]
            outputs[index] = {k: (a[i, :n] if a.ndim > 2 or k != "logits" else a[i]) for k, a in arrays.items()}
        bar.update(1)
    bar.close()
    return outputs
