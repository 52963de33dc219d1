"""OCS: outlier channel splitting (Zhao et al., "Improving Neural Network Quantization without Retraining using
Outlier Channel Splitting", ICML 2019), for a Linear y = W x.

Weight side: the input channel (column of W) holding the largest |w| is split: the column is halved and a copy of
the halved column is appended, and the matching input feature is duplicated, so W' x' = W x exactly. Repeated
ceil(expand_ratio * in_features) times; a column (or a copy) may be split again. The largest |w| halves each
time its column is split, so every group's range, and with it the rounding step, shrinks.

Activation side: the input feature with the largest |x| (seen on calibration data) is halved and duplicated,
and its weight column is duplicated unchanged: again W' x' = W x, and the per-tensor activation range shrinks.

A split is recorded as ("w", column) or ("a", column) over the expanded matrix as it is at that moment; the
list replays on the original weight to give (W', index, scale) with x' = x[..., index] * scale.
"""

import math

import torch


def plan_weight_splits(w, ratio):
    """The columns to split, in order: ceil(ratio * in_features) times the column holding the largest |w|."""
    return _plan(w.detach().abs().amax(0), math.ceil(ratio * w.shape[1]), "w")


def plan_activation_splits(feature_absmax, ratio, in_features):
    """Input features to split: ceil(ratio * in_features) times the feature with the largest |x|.

    feature_absmax: max |x| on calibration data of each feature as the layer sees it (after any weight splits'
    duplication), so the plan extends the weight splits."""
    return _plan(torch.as_tensor(feature_absmax, dtype=torch.float64), math.ceil(ratio * in_features), "a")


def _plan(magnitude, n, kind):
    """n times: split the entry with the largest magnitude (halve it, append the halved copy)."""
    current = torch.cat([magnitude.double().cpu(), torch.zeros(n, dtype=torch.float64)])
    size, splits = len(magnitude), []
    for _ in range(n):
        j = int(torch.argmax(current[:size]))
        current[j] /= 2
        current[size] = current[j]
        size += 1
        splits.append((kind, j))
    return splits


def replay(in_features, splits):
    """The split list as per-column lists over the expanded input: (index, factor, scale) with
    W'[:, k] = W[:, index[k]] * factor[k] and x'[k] = x[index[k]] * scale[k]."""
    index = list(range(in_features))
    factor = [1.0] * in_features
    scale = [1.0] * in_features
    for kind, j in splits:
        if kind == "w":
            factor[j] /= 2
        elif kind == "a":
            scale[j] /= 2
        else:
            raise ValueError(f"unknown split kind {kind!r}")
        index.append(index[j])
        factor.append(factor[j])
        scale.append(scale[j])
    return index, factor, scale


def expand(w, splits):
    """Replay splits on W (out x in): (W' (out x in + n), index (in + n), scale (in + n)), W' x[index]*scale = W x.

    The replay runs on per-column lists (source feature, weight factor, input scale); W' is one gather."""
    index, factor, scale = replay(w.shape[1], splits)
    index = torch.tensor(index)
    weight = w.detach()[:, index] * torch.tensor(factor, dtype=w.dtype, device=w.device)
    return weight.contiguous(), index, torch.tensor(scale, dtype=w.dtype)
