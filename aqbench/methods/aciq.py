"""aciq: analytical clipping before min-max quantization (Banner et al. 2019; the PTQ study's ACIQ).

Weights: each group of output neurons is clipped at mean +- alpha*, alpha* minimising the analytic clipping +
rounding MSE for the group's fitted Laplace or Gaussian (aqbench.quant.clipping) on the grid's step count.
Activations: per tensor, the same fit on the calibration set (a second pass measures E|x - mean|), clipped within
the calibrated min/max. Distribution per config: laplace, gaussian, or auto (the better likelihood per group).
"""

import math

import torch

from aqbench.budget import uniform_bits
from aqbench.methods.common import uniform_assignment
from aqbench.quant.calibration import calibrate, calibration_features
from aqbench.quant.clipping import optimal_alpha, weight_clip_ranges
from aqbench.quant.modules import QuantLinear, act_quantizers, quantize_model


def validate(budget, settings):
    uniform_bits(budget, "aciq")


def clip_weights(model, dist):
    """Set every clipped QuantLinear's per-group ranges; returns the share of groups fitted as Laplace."""
    laplace = groups = 0
    for m in model.modules():
        if isinstance(m, QuantLinear) and m.w_lo is not None:
            lo, hi = torch.empty_like(m.w_lo), torch.empty_like(m.w_hi)
            for bits in m.bits.unique().tolist():
                steps = float(m.grid.steps(torch.tensor(float(bits))))
                b_lo, b_hi, used = weight_clip_ranges(m.weight, m.bits.numel(), steps, dist)
                sel = m.bits == bits
                lo[sel], hi[sel] = b_lo[sel], b_hi[sel]
                laplace += int(used[sel].sum())
            groups += m.bits.numel()
            m.w_lo.copy_(lo)
            m.w_hi.copy_(hi)
    return laplace / max(groups, 1)


def clip_activations(model, features, pad_id, settings, dist):
    """After a min/max calibration pass that gathered statistics (calibrate(..., stats=True)): a second pass
    measures E|x - mean| per quantizer, then each range is clipped at mean +- alpha* of its fitted distribution,
    within the calibrated min and max."""
    quantizers = act_quantizers(model)
    if any(not q.stats for q in quantizers):
        raise ValueError("clip_activations needs a calibration pass with stats=True before it")
    for q in quantizers:
        q.center = q.stats["sum"] / q.stats["n"]
    calibrate(model, features, pad_id, settings, stats=True)
    for q in quantizers:
        st = q.stats
        mu = st["sum"] / st["n"]
        b = max(st["absdev"] / st["n"], 1e-12)
        sigma = max(math.sqrt(max(st["sumsq"] / st["n"] - mu * mu, 0.0)), 1e-12)
        use_laplace = dist == "laplace" or (
            dist == "auto" and -math.log(2 * b) - 1 > -math.log(sigma * math.sqrt(2 * math.pi * math.e))
        )
        steps = float(q.grid.steps(torch.tensor(float(q.bits))))
        alpha = optimal_alpha("laplace", steps) * b if use_laplace else optimal_alpha("gaussian", steps) * sigma
        q.lo.copy_(torch.maximum(q.lo, torch.tensor(mu - alpha)))
        q.hi.copy_(torch.minimum(q.hi, torch.tensor(mu + alpha)))


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs=None):
    cfg = settings.aciq
    assignment = uniform_assignment(model, uniform_bits(budget, "aciq"), settings, "aciq", budget)
    for layer in assignment.layers.values():
        layer.extra["clip"] = f"aciq-{cfg.distribution}"
    quantize_model(model, assignment)
    laplace_share = clip_weights(model, cfg.distribution)
    features = calibration_features(
        task, data_dir, tokenizer, settings.train, settings.quant.calibration_examples, seed
    )
    calibrate(model, features, tokenizer.pad_token_id, settings.train, stats=True)
    if cfg.activations:
        clip_activations(model, features, tokenizer.pad_token_id, settings.train, cfg.distribution)
    return assignment, {
        "calibration_examples": len(features),
        "laplace_groups": laplace_share,
        "activations_clipped": cfg.activations,
    }
