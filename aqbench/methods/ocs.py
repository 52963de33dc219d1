"""ocs: outlier channel splitting, then min-max (or ACIQ-clipped) quantization (Zhao et al. 2019).

Budget label w<bits>-r<expand ratio>, e.g. w4-r0.02: every encoder Linear gets ceil(ratio * in_features) weight
splits (aqbench.quant.ocs), recorded in the assignment (layers.*.extra.splits) so the split layer can be rebuilt
and its extra columns counted in the size. Optionally (ocs.act_expand_ratio > 0) input features with the largest
|x| on the calibration set are split too (activation side). Then quantize and calibrate as lq does.
"""

from aqbench.budget import Budget, uniform_bits
from aqbench.errors import AqbenchError
from aqbench.methods.aciq import clip_activations, clip_weights
from aqbench.methods.common import uniform_assignment
from aqbench.quant.calibration import calibrate, calibration_features, input_absmax
from aqbench.quant.modules import encoder_linears, quantize_model
from aqbench.quant.ocs import expand, plan_activation_splits, plan_weight_splits


def expand_ratio(budget):
    ratio = Budget.parse(budget).ratio
    if ratio is None:
        raise AqbenchError(f"budget {budget!r} for ocs needs an expand ratio: w<bits>-r<ratio>, e.g. w4-r0.02")
    return ratio


def validate(budget, settings):
    uniform_bits(budget, "ocs")
    if not 0 < expand_ratio(budget) <= 1:
        raise AqbenchError(f"budget {budget!r}: the OCS expand ratio must be in (0, 1]; the paper sweeps 0.01-0.05")


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs=None):
    cfg = settings.ocs
    assignment = uniform_assignment(model, uniform_bits(budget, "ocs"), settings, "ocs", budget)
    linears = encoder_linears(model)
    for name, layer in assignment.layers.items():
        layer.extra["splits"] = plan_weight_splits(linears[name].weight, expand_ratio(budget))
    features = calibration_features(
        task, data_dir, tokenizer, settings.train, settings.quant.calibration_examples, seed
    )
    if cfg.act_expand_ratio > 0:  # activation side: planned on the FP model's inputs, after the weight splits
        absmax = input_absmax(model, list(assignment.layers), features, tokenizer.pad_token_id, settings.train)
        for name, layer in assignment.layers.items():
            _, index, scale = expand(linears[name].weight, layer.extra["splits"])
            layer.extra["splits"] += plan_activation_splits(
                absmax[name][index] * scale, cfg.act_expand_ratio, layer.shape[1]
            )
    for layer in assignment.layers.values():
        layer.extra["splits"] = [list(s) for s in layer.extra["splits"]]  # JSON-friendly
        if cfg.clip == "aciq":
            layer.extra["clip"] = f"aciq-{settings.aciq.distribution}"
    quantize_model(model, assignment)
    if cfg.clip == "aciq":
        clip_weights(model, settings.aciq.distribution)
    clip_acts = cfg.clip == "aciq" and settings.aciq.activations
    calibrate(model, features, tokenizer.pad_token_id, settings.train, stats=clip_acts)
    if clip_acts:
        clip_activations(model, features, tokenizer.pad_token_id, settings.train, settings.aciq.distribution)
    added = sum(len(l.extra["splits"]) for l in assignment.layers.values())
    return assignment, {
        "calibration_examples": len(features),
        "split_channels": added,
        "act_splits": sum(s[0] == "a" for l in assignment.layers.values() for s in l.extra["splits"]),
    }
