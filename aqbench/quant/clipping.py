"""ACIQ: analytical clipping (Banner et al., "Post training 4-bit quantization of convolutional networks for
rapid-deployment", NeurIPS 2019), as the PTQ study of Hu, Meinel and Yang (2022) applies it to BERT.

Clipping a tensor at [mu - a, mu + a] before quantizing it on `steps` equal steps trades rounding noise for
clipping noise. For a fitted distribution the expected squared error is (in units of the scale s = b or sigma,
alpha = a * s):
    Laplace(b):     2 e^{-a}                               + (2a / steps)^2 / 12
    Gaussian(sigma): 2 [(a^2 + 1) Q(a) - a phi(a)]          + (2a / steps)^2 / 12
with Q the standard normal tail and phi its density. Setting the derivative to zero:
    Laplace:  a = 3 steps^2 e^{-a}                Gaussian: 4 (a Q(a) - phi(a)) + 2a / (3 steps^2) = 0
solved by bisection for any step count. With ACIQ's grid of 2^M levels (steps = 2^M) this gives the published
alpha*/b = 2.83, 3.89, 5.03, 9.89 and alpha*/sigma = 1.71, 2.15, 2.55, 3.92 for M = 2, 3, 4, 8 (tests check it);
the method uses the step count of the grid it actually quantizes on.

Which distribution: "laplace", "gaussian", or "auto" = per group, the fit with the higher likelihood
(Laplace: -log(2b) - 1 per value; Gaussian: -log(sigma sqrt(2 pi e)) per value, both at their ML scale).
"""

import math

import torch

from aqbench.errors import AqbenchError
from aqbench.quant.quantizer import group_index

DISTRIBUTIONS = ("laplace", "gaussian", "auto")


def _derivative(a, dist, steps):
    rounding = 2 * a / (3 * steps**2)
    if dist == "laplace":
        return -2 * math.exp(-a) + rounding
    tail = 0.5 * math.erfc(a / math.sqrt(2))
    density = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    return 4 * (a * tail - density) + rounding


def optimal_alpha(dist, steps):
    """alpha* / scale minimising clipping + rounding MSE on `steps` steps (the error is convex in alpha)."""
    if dist not in ("laplace", "gaussian"):
        raise AqbenchError(f"unknown ACIQ distribution {dist!r}: use laplace or gaussian")
    lo, hi = 1e-6, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if _derivative(mid, dist, steps) > 0:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def fit(values):
    """Per row of a 2-D tensor: mean, Laplace scale b = E|x - mean|, Gaussian sigma, and whether Laplace fits
    better (higher likelihood)."""
    mu = values.mean(1)
    centred = values - mu.unsqueeze(1)
    b = centred.abs().mean(1).clamp_min(1e-12)
    sigma = centred.pow(2).mean(1).sqrt().clamp_min(1e-12)
    laplace_better = -torch.log(2 * b) - 1 > -torch.log(sigma * math.sqrt(2 * math.pi * math.e))
    return mu, b, sigma, laplace_better


def clip_ranges(values, steps, dist="auto"):
    """Per row: ACIQ's clipped range [lo, hi], within the row's own min and max, and the distribution used."""
    mu, b, sigma, laplace_better = fit(values)
    use_laplace = laplace_better if dist == "auto" else torch.full_like(laplace_better, dist == "laplace")
    alpha = torch.where(use_laplace, optimal_alpha("laplace", steps) * b, optimal_alpha("gaussian", steps) * sigma)
    lo = torch.maximum(values.amin(1), mu - alpha)
    hi = torch.minimum(values.amax(1), mu + alpha)
    return lo, hi, use_laplace


def weight_clip_ranges(w, groups, steps, dist="auto"):
    """ACIQ ranges per group of consecutive rows of a weight matrix (for quantize_rows' lo / hi)."""
    rows = w.shape[0]
    groups = min(groups, rows)
    flat = w.detach().reshape(rows, -1)
    if rows % groups == 0:
        return clip_ranges(flat.reshape(groups, -1), steps, dist)
    idx = group_index(rows, groups)
    parts = [clip_ranges(flat[idx == g].reshape(1, -1), steps, dist) for g in range(groups)]
    return tuple(torch.cat([p[i] for p in parts]) for i in range(3))
