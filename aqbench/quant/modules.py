"""Fake-quantized modules: QuantLinear (group-wise weights + per-tensor input activations), QuantEmbedding.

They keep the float master weights and quantize on the fly, so the same modules serve PTQ evaluation (weights
quantized once and cached), QAT (STE gradients to the master weights) and every later method.
"""

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from aqbench.errors import AqbenchError
from aqbench.quant.ocs import expand
from aqbench.quant.quantizer import FULL_PRECISION, get_grid, quantize_rows, quantize_tensor, row_plan


class ActQuantizer(nn.Module):
    """Per-tensor activation quantizer with a calibrated range.

    calibrating: ranges grow to the min/max seen, activations pass through in FP, and, when asked
    (calibrating(model, stats=True)), the statistics a clipping method needs are gathered (count, sum, sum of
    squares, sum of |x - center|);
    training (QAT): ranges follow an exponential moving average of the batch min/max;
    evaluation: ranges are frozen, so evaluation data never changes them.
    """

    def __init__(self, bits, grid="asym", momentum=0.1):
        super().__init__()
        self.bits = int(bits)
        self.grid = get_grid(grid)
        self.momentum = momentum
        self.calibrating = False
        self.center = 0.0  # |x - center| is summed during calibration; set it to the mean for a second pass
        self.stats = {}
        self.register_buffer("lo", torch.tensor(float("inf")))
        self.register_buffer("hi", torch.tensor(float("-inf")))

    @property
    def calibrated(self):
        return math.isfinite(self.lo.item()) and math.isfinite(self.hi.item())

    def reset(self, stats=False):
        self.lo.fill_(float("inf"))
        self.hi.fill_(float("-inf"))
        # only ACIQ reads them, and they cost three times the min/max pass (in float64) on every calibration
        self.stats = {"n": 0, "sum": 0.0, "sumsq": 0.0, "absdev": 0.0} if stats else {}

    def _observe(self, x):
        x = x.detach()
        lo, hi = torch.aminmax(x)
        self.lo.copy_(torch.minimum(self.lo, lo))
        self.hi.copy_(torch.maximum(self.hi, hi))
        st = self.stats
        if st:
            x = x.double()
            st["n"] += x.numel()
            st["sum"] += x.sum().item()
            st["sumsq"] += x.pow(2).sum().item()
            st["absdev"] += (x - self.center).abs().sum().item()

    def forward(self, x):
        if self.bits >= FULL_PRECISION:
            return x
        if self.calibrating:
            self._observe(x)
            return x
        if self.training:
            with torch.no_grad():
                lo, hi = torch.aminmax(x)
                if self.calibrated:
                    lo = self.lo + self.momentum * (lo - self.lo)
                    hi = self.hi + self.momentum * (hi - self.hi)
                self.lo.copy_(lo)
                self.hi.copy_(hi)
        elif not self.calibrated:
            raise AqbenchError(
                "activation ranges were never calibrated: run aqbench.quant.calibrate(model, batches) "
                "before evaluating a model with quantized activations"
            )
        return quantize_tensor(x, self.bits, self.lo, self.hi, self.grid, self._steps(x.device))

    _steps_cache = None

    def _steps(self, device):
        """The grid's steps at self.bits as a tensor, made once per bit-width and device."""
        if self._steps_cache is None or self._steps_cache[0] != (self.bits, device):
            self._steps_cache = ((self.bits, device), self.grid.steps(torch.tensor(float(self.bits), device=device)))
        return self._steps_cache[1]

    def extra_repr(self):
        return f"bits={self.bits}, grid={self.grid.name}"


class _CachedWeight(nn.Module):
    """Quantize the weight once per weight version when no gradient is needed (evaluation)."""

    _cache = None

    def quantized_weight(self):
        if self.training or torch.is_grad_enabled():
            self._cache = None
            return self._quantize()
        key = (self.weight._version, self.weight.data_ptr(), self.bits._version, self.bits.data_ptr())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._quantize())
        return self._cache[1]

    def _quantize(self):
        return quantize_rows(self.weight, self.bits, self.grid, plan=self._plan())

    _plan_cache = None

    def _plan(self):
        """The bits' row_plan, kept while the bits tensor is unchanged (it is set once per run)."""
        key = (self.bits._version, self.bits.data_ptr(), self.weight.dtype, self.weight.device, self.weight.shape[0])
        if self._plan_cache is None or self._plan_cache[0] != key:
            self._plan_cache = (key, row_plan(self.bits, self.weight.shape[0], self.grid, key[2], key[3]))
        return self._plan_cache[1]


class QuantLinear(_CachedWeight):
    """A Linear whose weight is quantized per group of output neurons (one bit-width per group, 0 = pruned)
    and whose input is quantized per tensor at act_bits with a calibrated range.

    splits: OCS channel splits (aqbench.quant.ocs) replayed on the weight; the input is then expanded as
    x[..., index] * scale before it is quantized. clip: keep per-group weight ranges (w_lo, w_hi buffers,
    set by a clipping method such as ACIQ) instead of each group's min and max. smooth: a per-input-feature
    factor (the in_factor buffer, SmoothQuant's 1 / s) multiplies the input before it is quantized.
    """

    def __init__(self, linear, bits, grid="asym", act_bits=8, act_grid="asym", splits=(), clip=False, smooth=False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.grid = get_grid(grid)
        bits = torch.as_tensor(bits, dtype=torch.long).reshape(-1)
        if bits.numel() > self.out_features:
            raise AqbenchError(f"{bits.numel()} groups for a Linear with {self.out_features} output neurons")
        self.register_buffer("bits", bits, persistent=False)  # the assignment JSON is the record of the bits
        self.splits = [tuple(s) for s in splits]
        if self.splits:
            weight, index, scale = expand(linear.weight, self.splits)
            self.weight = nn.Parameter(weight, requires_grad=linear.weight.requires_grad)
            self.register_buffer("in_index", index, persistent=False)
            self.register_buffer("in_scale", scale, persistent=False)
        else:
            self.weight = linear.weight
            self.in_index = self.in_scale = None
        self.bias = linear.bias
        if clip:
            groups = bits.numel()
            self.register_buffer("w_lo", torch.full((groups,), float("nan")))
            self.register_buffer("w_hi", torch.full((groups,), float("nan")))
        else:
            self.w_lo = self.w_hi = None
        if smooth:
            if self.splits:
                raise AqbenchError("a QuantLinear cannot have both OCS splits and smoothing factors")
            self.register_buffer("in_factor", torch.ones(self.in_features))
        else:
            self.in_factor = None
        self.act = ActQuantizer(act_bits, act_grid)

    def _quantize(self):
        if self.w_lo is not None and not bool(torch.isfinite(self.w_lo).all() and torch.isfinite(self.w_hi).all()):
            raise AqbenchError(
                "a clipped QuantLinear has no clipping ranges: set w_lo / w_hi (or load the run's state)"
            )
        return quantize_rows(self.weight, self.bits, self.grid, self.w_lo, self.w_hi, plan=self._plan())

    def expand_input(self, x):
        if self.in_factor is not None:
            return x * self.in_factor
        return x if self.in_index is None else x.index_select(-1, self.in_index) * self.in_scale

    def forward(self, x):
        # Simulated quantization is computed in fp32 even under bf16 autocast (train.mixed_precision), so a
        # quantized layer's numbers are the grid's and do not depend on the precision of the layers around it.
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(self.act(self.expand_input(x.float())), self.quantized_weight(), self.bias)

    def extra_repr(self):
        extra = f", +{len(self.splits)} split channels" if self.splits else ""
        return (
            f"in={self.in_features}, out={self.out_features}, groups={self.bits.numel()}, grid={self.grid.name}"
            f"{', clipped' if self.w_lo is not None else ''}{', smoothed' if self.in_factor is not None else ''}{extra}"
        )


class QuantEmbedding(_CachedWeight):
    """An embedding table quantized per row (one scale per token / position vector) at `bits`."""

    def __init__(self, embedding, bits, grid="asym"):
        super().__init__()
        self.weight = embedding.weight
        self.padding_idx = embedding.padding_idx
        self.num_embeddings, self.embedding_dim = embedding.num_embeddings, embedding.embedding_dim
        self.grid = get_grid(grid)
        self.register_buffer("bits", torch.full((self.num_embeddings,), int(bits), dtype=torch.long), persistent=False)

    def forward(self, ids):
        return F.embedding(ids, self.quantized_weight(), self.padding_idx)


# --- where the quantized layers are ----------------------------------------------------------------------------

_BLOCK_LISTS = ("encoder.layer", "transformer.layer", "encoder.layers")  # BERT, DistilBERT, others


def encoder_blocks(model):
    """[(name, block)] of the transformer blocks, in order."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and any(name == p or name.endswith("." + p) for p in _BLOCK_LISTS):
            return [(f"{name}.{i}", block) for i, block in enumerate(module)]
    raise AqbenchError(
        f"cannot find the transformer blocks of {type(model).__name__}: supported are BERT-like "
        "(encoder.layer) and DistilBERT-like (transformer.layer) models"
    )


def encoder_linears(model):
    """{qualified name: module} of every Linear (or QuantLinear) inside the transformer blocks: the weights the
    papers quantize and count. Pooler and task head stay in FP and outside the size, as in the papers."""
    return {
        f"{bname}.{n}": m
        for bname, block in encoder_blocks(model)
        for n, m in block.named_modules()
        if isinstance(m, (nn.Linear, QuantLinear))
    }


def embedding_modules(model):
    """{qualified name: module} of the embedding tables outside the blocks (word, position, token type)."""
    inside = tuple(name + "." for name, _ in encoder_blocks(model))
    return {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, (nn.Embedding, QuantEmbedding)) and not n.startswith(inside)
    }


def _replace(model, name, new):
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def quantize_model(model, assignment):
    """Swap the assigned Linear layers for QuantLinear and the embeddings for QuantEmbedding, in place."""
    linears = encoder_linears(model)
    for name, layer in assignment.layers.items():
        if name not in linears:
            raise AqbenchError(
                f"the assignment names layer {name!r}, which this model does not have: was it made for another model?"
            )
        module = linears[name]
        if isinstance(module, QuantLinear):
            raise AqbenchError(f"layer {name} is already quantized")
        if tuple(module.weight.shape) != tuple(layer.shape):
            raise AqbenchError(
                f"layer {name}: the assignment says shape {tuple(layer.shape)}, the model has "
                f"{tuple(module.weight.shape)}"
            )
        if min(layer.bits) >= FULL_PRECISION and assignment.act_bits >= FULL_PRECISION:
            continue
        _replace(
            model,
            name,
            QuantLinear(
                module,
                layer.bits,
                assignment.grid,
                assignment.act_bits,
                assignment.act_grid,
                splits=layer.extra.get("splits", ()),
                clip=bool(layer.extra.get("clip")),
                smooth=bool(layer.extra.get("smooth")),
            ),
        )
    if assignment.emb_bits < FULL_PRECISION:
        for name, module in embedding_modules(model).items():
            _replace(model, name, QuantEmbedding(module, assignment.emb_bits, assignment.grid))
    return model


def act_quantizers(model):
    return [m for m in model.modules() if isinstance(m, ActQuantizer) and m.bits < FULL_PRECISION]


@contextlib.contextmanager
def calibrating(model, stats=False):
    """Within the block, forward passes set the activation ranges (reset first) and nothing is quantized;
    stats: also gather each quantizer's count, sum, sum of squares and sum of |x - center| (ActQuantizer.stats)."""
    quantizers = act_quantizers(model)
    for q in quantizers:
        q.reset(stats)
        q.calibrating = True
    try:
        yield quantizers
    finally:
        for q in quantizers:
            q.calibrating = False
