"""adaround: AdaRound's learned up/down rounding (Nagel et al. 2020; aqbench.quant.adaround), layer by layer.

Every encoder Linear at the budget's bits with its groups' min-max ranges (as lq); in the encoder's order, each
Linear's calibration inputs (from the layers before it, already rounded; at most adaround.max_rows tokens, a
seeded subsample) train its rounding variables for adaround.iters steps; then the activations are calibrated
as lq's. The weights themselves are not trained. The run records the output error against round-to-nearest's
and the share of rounding variables still soft before they were made hard.
"""

from aqbench.budget import uniform_bits
from aqbench.methods.common import uniform_assignment
from aqbench.methods.gptq import quantize_with
from aqbench.quant.adaround import adaround_weight
from aqbench.quant.layer_inputs import input_rows
from aqbench.quant.sequential import round_in_order


def validate(budget, settings):
    uniform_bits(budget, "adaround")


def squared_error(x, w, w_hat):
    """||X W_hat^T - X W^T||^2 / n: the output error per token on inputs x (n, cols)."""
    return float((x.double() @ (w_hat.double() - w.double()).T).pow(2).sum()) / x.shape[0]


def adaround_layers(model, features, pad_id, settings, cfg, seed):
    """Round every quantized encoder Linear with AdaRound, in order; returns {layer: (AdaRound's output error,
    nearest's, share still soft)}."""

    def round_layer(name, module):
        x = input_rows(model, name, features, pad_id, settings, cfg.max_rows, seed)
        w = module.weight.detach()
        w_hat, _, _, soft = adaround_weight(
            w, x, module.bits, module.grid, cfg.iters, cfg.lr, cfg.reg_weight, cfg.warmup, cfg.batch_rows, seed,
            module.w_lo, module.w_hi,
        )  # fmt: skip
        return w_hat, (squared_error(x, w, w_hat), squared_error(x, w, module._quantize().detach()), soft)

    return round_in_order(model, round_layer, "adaround")


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs=None):
    cfg = settings.adaround
    assignment = uniform_assignment(model, uniform_bits(budget, "adaround"), settings, "adaround", budget)
    soft = []

    def round_layers(m, features, pad_id, train):
        errors = adaround_layers(m, features, pad_id, train, cfg, seed)
        soft.extend(e[2] for e in errors.values())
        return errors

    info = quantize_with(model, assignment, task, data_dir, tokenizer, seed, settings, round_layers)
    return assignment, {**info, "soft_share": sum(soft) / max(len(soft), 1), "iters_per_layer": cfg.iters}
