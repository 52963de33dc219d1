"""lq: linear (min-max) post-training quantization, the baseline of the PTQ study (Hu, Meinel, Yang 2022).

Every encoder Linear at the same bit-width, group-wise min-max ranges on the configured grid, 8-bit input
activations calibrated on a few hundred training examples, 8-bit embedding. No training.
"""

from aqbench.errors import AqbenchError
from aqbench.methods.common import calibrate, calibration_features
from aqbench.quant.assignment import uniform
from aqbench.quant.modules import quantize_model


WEIGHT_BITS = range(2, 9)


def bits_of(budget):
    """w<b> -> b, refusing bit-widths the grids cannot represent."""
    bits = int(budget.removeprefix("w")) if budget.startswith("w") and budget[1:].isdigit() else None
    if bits not in WEIGHT_BITS:
        raise AqbenchError(f"budget {budget!r} cannot be met by lq: it quantizes weights to w2 ... w8. Fix lq.bits "
                           "(or the target you asked for)")
    return bits


def validate(budget, settings):
    bits_of(budget)


def run(task, model, tokenizer, data_dir, budget, seed, settings):
    q = settings["quant"]
    assignment = uniform(model, bits_of(budget), q["groups"], q["grid"], q["act_bits"], q["emb_bits"], q["act_grid"],
                         meta={"method": "lq", "budget": budget})
    quantize_model(model, assignment)
    features = calibration_features(task, data_dir, tokenizer, settings["train"], q["calibration_examples"], seed)
    n = calibrate(model, features, tokenizer.pad_token_id, settings["train"])
    return assignment, {"calibration_examples": len(features), "act_quantizers": n}
