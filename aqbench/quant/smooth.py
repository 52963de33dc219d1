"""SmoothQuant's migration of activation outliers into the weights (Xiao et al., "SmoothQuant: Accurate and
Efficient Post-Training Quantization for Large Language Models", ICML 2023).

For a Linear y = x W^T, per input feature j: s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha), then
x' = x / s and W' = W diag(s) compute the same y, with x' easier and W' harder to quantize (alpha = 0.5 shares
the difficulty evenly). The factor 1 / s must be applied to x somewhere:
- folded into the layer before where the graph allows: the attention output projection's input is the
  attention-weighted sum of the value projection's outputs (rows of probabilities summing to 1), so dividing
  the value projection's rows and bias by s is exact, and costs nothing at run time;
- elsewhere, BERT's post-LayerNorm residual stream does not allow it (the LayerNorm's output is also the residual
  added after the block: scaling it would change the residual), and after GELU no linear fold exists; there the
  factor is a per-feature multiply on the input before it is quantized (QuantLinear.in_factor, a Mul in the
  ONNX graph), stored as 16 bits per input feature in the size.
"""

import torch

from aqbench.errors import AqbenchError

# the attention output projection -> the value projection whose rows can absorb its input's factors
FOLDS = {"attention.output.dense": "attention.self.value", "attention.out_lin": "attention.v_lin"}


def factors(x_absmax, w, alpha):
    """s per input feature of w (out, in); features never active or never weighted keep s = 1."""
    w_absmax = w.detach().abs().amax(0).float()
    x_absmax = x_absmax.float()
    s = x_absmax.clamp_min(1e-8).pow(alpha) / w_absmax.clamp_min(1e-8).pow(1 - alpha)
    return torch.where((x_absmax > 0) & (w_absmax > 0), s, torch.ones_like(s)).clamp(1e-4, 1e4)


def fold_source(name, names):
    """The layer whose output rows can absorb `name`'s input factors, or None."""
    for suffix, source in FOLDS.items():
        if name.endswith("." + suffix):
            candidate = name[: -len(suffix)] + source
            if candidate in names:
                return candidate
    return None


@torch.no_grad()
def smooth(linears, x_absmax, alpha):
    """Apply the factors to every Linear in `linears` ({name: QuantLinear}, in encoder order) in place: folded into
    the value projection where FOLDS allows, else into the layer's in_factor. Returns {name: "folded" or
    "factor"}. x_absmax: {name: max |x| per input feature} measured on the FP model."""
    how = {}
    for name, m in linears.items():
        s = factors(x_absmax[name], m.weight, alpha)
        source = fold_source(name, linears)
        if source is not None:
            src = linears[source]
            if src.weight.shape[0] != s.numel():
                raise AqbenchError(f"cannot fold {name}'s smoothing into {source}: shapes differ")
            src.weight.div_(s.unsqueeze(1))
            if src.bias is not None:
                src.bias.div_(s)
            how[name] = "folded"
        elif m.in_factor is not None:
            m.in_factor.copy_(1 / s)
            how[name] = "factor"
        else:
            raise AqbenchError(f"layer {name} has no smoothing factor and nothing to fold it into")
        m.weight.mul_(s.unsqueeze(0))
    return how
