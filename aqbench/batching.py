"""Batches of features: padding a list of feature dicts into tensors, seeded shuffled batches, and moving a batch to
a device. The training loop, prediction, the Hessian spectrum and the search all batch this way."""

import torch

MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")
LABEL_KEYS = ("labels", "start_positions", "end_positions")


def collate(rows, pad_id):
    """Pad a list of feature dicts to the longest row; token labels are padded with -100 (ignored)."""
    length = max(len(r["input_ids"]) for r in rows)
    batch = {}
    for key in rows[0]:
        if key == "labels" and isinstance(rows[0][key], list) or key in MODEL_KEYS:
            fill = pad_id if key == "input_ids" else -100 if key == "labels" else 0
            batch[key] = torch.tensor([r[key] + [fill] * (length - len(r[key])) for r in rows])
        else:
            batch[key] = torch.tensor([r[key] for r in rows])
    return batch


def by_length(features):
    """Feature indices, shortest first: batches of similar lengths pad little (evaluation; not training, whose
    batches stay shuffled)."""
    return sorted(range(len(features)), key=lambda i: len(features.inputs[i]["input_ids"]))


def batches(features, batch_size, pad_id, shuffle=False, generator=None, order=None):
    """Padded batches in the given order of feature indices, else shuffled (seeded) or in feature order."""
    if order is None:
        order = torch.randperm(len(features), generator=generator).tolist() if shuffle else range(len(features))
    order = list(order)
    for i in range(0, len(order), batch_size):
        yield collate([features.inputs[j] for j in order[i : i + batch_size]], pad_id)


def to(batch, device):
    return {k: v.to(device) for k, v in batch.items()}
