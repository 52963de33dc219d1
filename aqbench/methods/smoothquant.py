"""smoothquant: SmoothQuant's outlier migration (aqbench.quant.smooth), then quantization as lq does.

On the FP model, each encoder Linear's input maxima are measured on the calibration set; the per-feature
factors s = max|x|^alpha / max|W|^(1 - alpha) (smoothquant.alpha) move the input's range into the weights,
folded into the value projection for the attention output, a per-feature input multiply elsewhere (BERT's
post-LayerNorm residual stream leaves no exact fold). Then every Linear at the budget's bits with min-max
groups and calibrated activations, as lq; the activations (quant.act_bits, 8 = W?A8) are what smoothing helps.
"""

from aqbench.budget import uniform_bits
from aqbench.methods.common import uniform_assignment
from aqbench.quant.calibration import calibrate, calibration_features, input_absmax
from aqbench.quant.modules import encoder_linears, quantize_model
from aqbench.quant.smooth import fold_source, smooth


def validate(budget, settings):
    uniform_bits(budget, "smoothquant")


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs=None):
    cfg = settings.smoothquant
    assignment = uniform_assignment(model, uniform_bits(budget, "smoothquant"), settings, "smoothquant", budget)
    features = calibration_features(
        task, data_dir, tokenizer, settings.train, settings.quant.calibration_examples, seed
    )
    absmax = input_absmax(model, list(assignment.layers), features, tokenizer.pad_token_id, settings.train)
    for name, layer in assignment.layers.items():
        folded = fold_source(name, assignment.layers) is not None
        layer.extra["smooth"] = not folded  # a stored factor, or folded into the value projection
        layer.extra["smooth_alpha"] = cfg.alpha
    quantize_model(model, assignment)
    how = smooth(encoder_linears(model), absmax, cfg.alpha)
    calibrate(model, features, tokenizer.pad_token_id, settings.train)
    return assignment, {
        "calibration_examples": len(features),
        "alpha": cfg.alpha,
        "folded_layers": sum(v == "folded" for v in how.values()),
        "factor_layers": sum(v == "factor" for v in how.values()),
    }
