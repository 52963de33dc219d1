"""gptq: GPTQ's error-compensating rounding (Frantar et al. 2023; aqbench.quant.gptq), layer by layer.

Every encoder Linear at the budget's bits on the configured grid with its groups' min-max ranges (as lq), then,
in the encoder's order, each Linear's Hessian H = 2 X^T X is accumulated over its calibration inputs X (from
the layers before it, already rounded) and its columns are rounded with the inverse-Hessian error feedback
(gptq.percdamp, gptq.block_size, gptq.act_order). Then the activations are calibrated as lq's. No training.
The run records each layer's output error against round-to-nearest's on the same inputs.
"""

from aqbench.budget import uniform_bits
from aqbench.methods.common import uniform_assignment
from aqbench.quant.calibration import calibrate, calibration_features
from aqbench.quant.gptq import gptq_weight, output_error
from aqbench.quant.layer_inputs import input_hessian
from aqbench.quant.modules import quantize_model
from aqbench.quant.sequential import fix_ranges, round_in_order


def validate(budget, settings):
    uniform_bits(budget, "gptq")


def gptq_layers(model, features, pad_id, settings, cfg):
    """Round every quantized encoder Linear with GPTQ, in order; returns {layer: (GPTQ's, nearest's) output
    error per token on its calibration inputs}."""

    def round_layer(name, module):
        h = input_hessian(model, name, features, pad_id, settings)
        w = module.weight.detach()
        w_hat = gptq_weight(
            w, h, module.bits, module.grid, module.w_lo, module.w_hi, cfg.percdamp, cfg.block_size, cfg.act_order
        )
        nearest = module._quantize().detach()
        return w_hat, (output_error(h, w, w_hat), output_error(h, w, nearest))

    return round_in_order(model, round_layer, "gptq")


def error_summary(errors):
    """The run's record of the rounding: summed output error of the method and of round-to-nearest, and the
    number of layers where the method's error is larger."""
    method = sum(e[0] for e in errors.values())
    nearest = sum(e[1] for e in errors.values())
    return {
        "output_error": method,
        "nearest_output_error": nearest,
        "output_error_ratio": method / nearest if nearest > 0 else 1.0,
        "layers_worse_than_nearest": sum(e[0] > e[1] for e in errors.values()),
    }


def quantize_with(model, assignment, task, data_dir, tokenizer, seed, settings, round_layers):
    """Shared by gptq and adaround: fixed min-max grids, rounding layer by layer, then activation calibration."""
    for layer in assignment.layers.values():
        layer.extra["clip"] = "minmax"  # ranges fixed before rounding (stored in the run's state)
    quantize_model(model, assignment)
    fix_ranges(model)
    features = calibration_features(
        task, data_dir, tokenizer, settings.train, settings.quant.calibration_examples, seed
    )
    errors = round_layers(model, features, tokenizer.pad_token_id, settings.train)
    calibrate(model, features, tokenizer.pad_token_id, settings.train)
    return {"calibration_examples": len(features), **error_summary(errors)}


def gptq_rounding(model, assignment, task, data_dir, tokenizer, seed, settings):
    """Any assignment (uniform, Q-BERT's, AQ-BERT's) on min-max grids, rounded by GPTQ, then calibrated."""

    def round_layers(m, features, pad_id, train):
        return gptq_layers(m, features, pad_id, train, settings.gptq)

    return quantize_with(model, assignment, task, data_dir, tokenizer, seed, settings, round_layers)


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs=None):
    assignment = uniform_assignment(model, uniform_bits(budget, "gptq"), settings, "gptq", budget)
    return assignment, gptq_rounding(model, assignment, task, data_dir, tokenizer, seed, settings)
