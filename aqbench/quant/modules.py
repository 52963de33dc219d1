"""Fake-quantized modules: QuantLinear (group-wise weights + per-tensor input activations), QuantEmbedding.

They keep the float master weights and quantize on the fly, so the same modules serve PTQ evaluation (weights
quantized once and cached), QAT (STE gradients to the master weights) and every later method.
"""

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from aqbench.errors import AqbenchError
from aqbench.quant.quantizer import FULL_PRECISION, get_grid, quantize_rows, quantize_tensor


class ActQuantizer(nn.Module):
    """Per-tensor activation quantizer with a calibrated range.

    calibrating: ranges grow to the min/max seen, activations pass through in FP;
    training (QAT): ranges follow an exponential moving average of the batch min/max;
    evaluation: ranges are frozen, so evaluation data never changes them.
    """

    def __init__(self, bits, grid="asym", momentum=0.1):
        super().__init__()
        self.bits = int(bits)
        self.grid = get_grid(grid)
        self.momentum = momentum
        self.calibrating = False
        self.register_buffer("lo", torch.tensor(float("inf")))
        self.register_buffer("hi", torch.tensor(float("-inf")))

    @property
    def calibrated(self):
        return bool(torch.isfinite(self.lo)) and bool(torch.isfinite(self.hi))

    def forward(self, x):
        if self.bits >= FULL_PRECISION:
            return x
        if self.calibrating:
            with torch.no_grad():
                self.lo.copy_(torch.minimum(self.lo, x.min()))
                self.hi.copy_(torch.maximum(self.hi, x.max()))
            return x
        if self.training:
            with torch.no_grad():
                lo, hi = x.min(), x.max()
                if self.calibrated:
                    lo = self.lo + self.momentum * (lo - self.lo)
                    hi = self.hi + self.momentum * (hi - self.hi)
                self.lo.copy_(lo)
                self.hi.copy_(hi)
        elif not self.calibrated:
            raise AqbenchError("activation ranges were never calibrated: run aqbench.quant.calibrate(model, batches) "
                               "before evaluating a model with quantized activations")
        return quantize_tensor(x, self.bits, self.lo, self.hi, self.grid)

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
        return quantize_rows(self.weight, self.bits, self.grid)


class QuantLinear(_CachedWeight):
    """A Linear whose weight is quantized per group of output neurons (one bit-width per group, 0 = pruned)
    and whose input is quantized per tensor at act_bits with a calibrated range."""

    def __init__(self, linear, bits, grid="asym", act_bits=8, act_grid="asym"):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.grid = get_grid(grid)
        bits = torch.as_tensor(bits, dtype=torch.long).reshape(-1)
        if bits.numel() > self.out_features:
            raise AqbenchError(f"{bits.numel()} groups for a Linear with {self.out_features} output neurons")
        self.register_buffer("bits", bits, persistent=False)  # the assignment JSON is the record of the bits
        self.act = ActQuantizer(act_bits, act_grid)

    def forward(self, x):
        # Simulated quantization is computed in fp32 even under bf16 autocast (train.mixed_precision), so a
        # quantized layer's numbers are the grid's and do not depend on the precision of the layers around it.
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(self.act(x.float()), self.quantized_weight(), self.bias)

    def extra_repr(self):
        return f"in={self.in_features}, out={self.out_features}, groups={self.bits.numel()}, grid={self.grid.name}"


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
    raise AqbenchError(f"cannot find the transformer blocks of {type(model).__name__}: supported are BERT-like "
                       "(encoder.layer) and DistilBERT-like (transformer.layer) models")


def encoder_linears(model):
    """{qualified name: module} of every Linear (or QuantLinear) inside the transformer blocks: the weights the
    papers quantize and count. Pooler and task head stay in FP and outside the size, as in the papers."""
    return {f"{bname}.{n}": m for bname, block in encoder_blocks(model)
            for n, m in block.named_modules() if isinstance(m, (nn.Linear, QuantLinear))}


def embedding_modules(model):
    """{qualified name: module} of the embedding tables outside the blocks (word, position, token type)."""
    inside = tuple(name + "." for name, _ in encoder_blocks(model))
    return {n: m for n, m in model.named_modules()
            if isinstance(m, (nn.Embedding, QuantEmbedding)) and not n.startswith(inside)}


def _replace(model, name, new):
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def quantize_model(model, assignment):
    """Swap the assigned Linear layers for QuantLinear and the embeddings for QuantEmbedding, in place."""
    linears = encoder_linears(model)
    for name, layer in assignment.layers.items():
        if name not in linears:
            raise AqbenchError(f"the assignment names layer {name!r}, which this model does not have: was it made for "
                               "another model?")
        module = linears[name]
        if isinstance(module, QuantLinear):
            raise AqbenchError(f"layer {name} is already quantized")
        if tuple(module.weight.shape) != tuple(layer.shape):
            raise AqbenchError(f"layer {name}: the assignment says shape {tuple(layer.shape)}, the model has "
                               f"{tuple(module.weight.shape)}")
        if min(layer.bits) >= FULL_PRECISION and assignment.act_bits >= FULL_PRECISION:
            continue
        _replace(model, name, QuantLinear(module, layer.bits, assignment.grid, assignment.act_bits, assignment.act_grid))
    if assignment.emb_bits < FULL_PRECISION:
        for name, module in embedding_modules(model).items():
            _replace(model, name, QuantEmbedding(module, assignment.emb_bits, assignment.grid))
    return model


def act_quantizers(model):
    return [m for m in model.modules() if isinstance(m, ActQuantizer) and m.bits < FULL_PRECISION]


@contextlib.contextmanager
def calibrating(model):
    """Within the block, forward passes set the activation ranges (reset first) and nothing is quantized."""
    quantizers = act_quantizers(model)
    for q in quantizers:
        q.lo.fill_(float("inf"))
        q.hi.fill_(float("-inf"))
        q.calibrating = True
    try:
        yield quantizers
    finally:
        for q in quantizers:
            q.calibrating = False
