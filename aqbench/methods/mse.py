"""mse: MSE-optimal clipping ranges, then quantization as lq does (the "MSE" range observers of MQBench, AIMET
and Brevitas).

Weights: per group of output neurons, the range [c min, c max] with the shrink factor c of least squared error
on the group's grid (aqbench.quant.mse; c = 1, min-max, is one of the candidates). Activations (mse.activations):
after the min/max calibration pass, a second pass sums each candidate's squared error per quantizer over the
calibration set, and the best range is kept. No training.
"""

from aqbench.budget import uniform_bits
from aqbench.methods.common import uniform_assignment
from aqbench.prediction import predict
from aqbench.quant.calibration import calibrate, calibration_features
from aqbench.quant.modules import QuantLinear, act_quantizers, calibrating, quantize_model
from aqbench.quant.mse import ActivationErrors, shrink_factors, weight_ranges


def validate(budget, settings):
    uniform_bits(budget, "mse")


def clip_weights(model, factors):
    """Set every clipped QuantLinear's ranges to the MSE-best ones; returns the mean chosen shrink factor."""
    chosen = []
    for m in model.modules():
        if isinstance(m, QuantLinear) and m.w_lo is not None:
            lo, hi, c = weight_ranges(m.weight, m.bits, m.grid, factors)
            m.w_lo.copy_(lo)
            m.w_hi.copy_(hi)
            chosen += c.tolist()
    return sum(chosen) / max(len(chosen), 1)


def clip_activations(model, features, pad_id, settings, factors):
    """After calibration: each activation quantizer's range becomes the shrink of its min-max range with the
    least squared error summed over the calibration features; returns the mean chosen factor."""
    trackers = [ActivationErrors(q, factors) for q in act_quantizers(model)]
    hooks = [t.q.register_forward_pre_hook(t) for t in trackers]
    try:
        with calibrating(model):  # activations pass through unquantized while the errors are summed
            predict(model, features, settings.eval_batch_size, pad_id, settings.device, desc="mse ranges")
    finally:
        for h in hooks:
            h.remove()
    chosen = []
    for t in trackers:
        lo, hi, c = t.best()
        t.q.lo.copy_(lo)
        t.q.hi.copy_(hi)
        chosen.append(c)
    return sum(chosen) / max(len(chosen), 1)


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs=None):
    cfg = settings.mse
    assignment = uniform_assignment(model, uniform_bits(budget, "mse"), settings, "mse", budget)
    for layer in assignment.layers.values():
        layer.extra["clip"] = "mse"
    quantize_model(model, assignment)
    factors = shrink_factors(cfg.grid_points, cfg.min_factor)
    weight_factor = clip_weights(model, factors)
    features = calibration_features(
        task, data_dir, tokenizer, settings.train, settings.quant.calibration_examples, seed
    )
    calibrate(model, features, tokenizer.pad_token_id, settings.train)
    info = {"calibration_examples": len(features), "weight_shrink": weight_factor}
    if cfg.activations:
        info["act_shrink"] = clip_activations(model, features, tokenizer.pad_token_id, settings.train, factors)
    return assignment, info
