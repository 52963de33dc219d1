"""lq: linear (min-max) post-training quantization, the baseline of the PTQ study (Hu, Meinel, Yang 2022).

Every encoder Linear at the same bit-width, group-wise min-max ranges on the configured grid, 8-bit input
activations calibrated on a few hundred training examples, 8-bit embedding. No training.
"""

from aqbench.budget import uniform_bits
from aqbench.methods.common import uniform_assignment
from aqbench.quant.calibration import calibrate, calibration_features
from aqbench.quant.modules import quantize_model


def validate(budget, settings):
    uniform_bits(budget, "lq")


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs=None):
    assignment = uniform_assignment(model, uniform_bits(budget, "lq"), settings, "lq", budget)
    quantize_model(model, assignment)
    features = calibration_features(
        task, data_dir, tokenizer, settings.train, settings.quant.calibration_examples, seed
    )
    n = calibrate(model, features, tokenizer.pad_token_id, settings.train)
    return assignment, {"calibration_examples": len(features), "act_quantizers": n}
