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
    colmax = w.detach().abs().amax(0).tolist()
    splits = []
    for _ in range(math.ceil(ratio * w.shape[1])):
        j = max(range(len(colmax)), key=colmax.__getitem__)
        colmax[j] /= 2
        colmax.append(colmax[j])
        splits.append(("w", j))
    return splits


def plan_activation_splits(feature_absmax, ratio, in_features):
    """Input features to split: ceil(ratio * in_features) times the feature with the largest |x|.

    feature_absmax: max |x| on calibration data of each feature as the layer sees it (after any weight splits'
    duplication), so the plan extends the weight splits."""
    current = [float(v) for v in feature_absmax]
    splits = []
    for _ in range(math.ceil(ratio * in_features)):
        j = max(range(len(current)), key=current.__getitem__)
        current[j] /= 2
        current.append(current[j])
        splits.append(("a", j))
    return splits


def expand(w, splits):
    """Replay splits on W (out x in): (W' (out x in + n), index (in + n), scale (in + n)), W' x[index]*scale = W x."""
    cols = list(w.detach().unbind(1))
    index = list(range(w.shape[1]))
    scale = [1.0] * w.shape[1]
    for kind, j in splits:
        if kind == "w":
            cols[j] = cols[j] / 2
            cols.append(cols[j])
        elif kind == "a":
            scale[j] /= 2
            cols.append(cols[j])
        else:
            raise ValueError(f"unknown split kind {kind!r}")
        index.append(index[j])
        scale.append(scale[j])
    return torch.stack(cols, 1).contiguous(), torch.tensor(index), torch.tensor(scale, dtype=w.dtype)
