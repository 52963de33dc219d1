"""An ONNX graph of a BERT-family encoder with its task head, written node by node from a run's tensors.

The tensors are a packed file's (aqbench.export: codes, group parameters, activation ranges, OCS split lists,
8-bit embedding codes) or an FP checkpoint's state dict. The graph repeats what PyTorch computes for the run:

- embeddings: Gather of the uint8 codes, then the row's scale and offset (the packed decoding, per row);
  word + token type + position, LayerNorm;
- every encoder Linear: OCS's fixed Gather (and halving) of the split input channels, the run's activation
  quantizer (QuantizeLinear / DequantizeLinear around the calibrated minimum, so the integers are
  round((x - lo) / s) clamped to the grid as in aqbench.quant.quantizer), then the weights by the form's
  kernels over the rows of each stored width, a fixed Gather back into row order, pruned rows computing only
  their bias; query, key and value, which read the same input, stacked into one matrix;
- attention with the additive padding mask, GELU, LayerNorm, the pooler and head in fp32 as in the run.

Supported: BERT (BertFor*) and DistilBERT (DistilBertFor*) with sequence classification, token classification
and span QA heads.
"""

import collections
from dataclasses import dataclass

import numpy as np
import torch

from aqbench.deploy.forms import get_form
from aqbench.deploy.weights import block_size, centered_zero, nbits_blocks, nbits_zero_points, stored_bits
from aqbench.errors import AqbenchError
from aqbench.quant.ocs import replay
from aqbench.quant.quantizer import FULL_PRECISION, get_grid, step_size

OPSET = 20  # Gelu is a standard op from 20 on
MS = "com.microsoft"
FORMAT = "aqbench-onnx/1"


class Graph:
    """Nodes and initializers with unique names; the bytes of the initializers by part (encoder, embedding,
    other) are counted as they are added."""

    def __init__(self):
        self.nodes, self.initializers, self.inputs = [], [], []
        self.used = set()
        self.bytes = collections.Counter()
        self.memo = {}

    def name(self, base):
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, array, name, part="other"):
        from onnx import numpy_helper

        array = np.asarray(array, order="C")  # (ascontiguousarray would make a scalar 1-D)
        name = self.name(name)
        self.initializers.append(numpy_helper.from_array(array, name))
        self.bytes[part] += array.nbytes
        return name

    def scalar(self, value, dtype=np.float32):
        key = ("scalar", np.dtype(dtype).str, np.asarray(value, dtype).tobytes())
        if key not in self.memo:
            self.memo[key] = self.const(np.asarray(value, dtype=dtype), "const")
        return self.memo[key]

    def ints(self, values):
        key = ("ints", tuple(values))
        if key not in self.memo:
            self.memo[key] = self.const(np.asarray(values, dtype=np.int64), "shape")
        return self.memo[key]

    def op(self, op_type, inputs, name, outputs=1, domain="", **attrs):
        from onnx import helper

        outs = [self.name(name if outputs == 1 else f"{name}:{i}") for i in range(outputs)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outs, name=self.name(f"{name}/{op_type}"), domain=domain, **attrs)
        )
        return outs[0] if outputs == 1 else outs

    def model(self, outputs, metadata):
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes,
            "aqbench",
            self.inputs,
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
            self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)], producer_name="aqbench"
        )
        model.ir_version = 10  # what onnxruntime >= 1.20 reads
        helper.set_model_props(model, {k: str(v) for k, v in metadata.items()})
        return model


@dataclass(frozen=True)
class Block:
    """The module names inside one transformer block."""

    query: str
    key: str
    value: str
    attn_out: str
    attn_norm: str
    ffn_in: str
    ffn_out: str
    ffn_norm: str


def _bert(config, i):
    p = f"bert.encoder.layer.{i}"
    return Block(
        f"{p}.attention.self.query",
        f"{p}.attention.self.key",
        f"{p}.attention.self.value",
        f"{p}.attention.output.dense",
        f"{p}.attention.output.LayerNorm",
        f"{p}.intermediate.dense",
        f"{p}.output.dense",
        f"{p}.output.LayerNorm",
    )


def _distilbert(config, i):
    p = f"distilbert.transformer.layer.{i}"
    return Block(
        f"{p}.attention.q_lin",
        f"{p}.attention.k_lin",
        f"{p}.attention.v_lin",
        f"{p}.attention.out_lin",
        f"{p}.sa_layer_norm",
        f"{p}.ffn.lin1",
        f"{p}.ffn.lin2",
        f"{p}.output_layer_norm",
    )


@dataclass(frozen=True)
class Architecture:
    base: str  # the encoder's attribute in the task model
    layers: int
    hidden: int
    heads: int
    activation: str
    eps: float
    token_types: bool
    block: object  # i -> Block


def architecture(config):
    kind = getattr(config, "model_type", None)
    if kind == "bert":
        if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
            raise AqbenchError(
                f"ONNX export supports absolute position embeddings, not {config.position_embedding_type!r}"
            )
        return Architecture(
            "bert",
            config.num_hidden_layers,
            config.hidden_size,
            config.num_attention_heads,
            config.hidden_act,
            config.layer_norm_eps,
            True,
            lambda i: _bert(config, i),
        )
    if kind == "distilbert":
        return Architecture(
            "distilbert",
            config.n_layers,
            config.dim,
            config.n_heads,
            config.activation,
            1e-12,
            False,
            lambda i: _distilbert(config, i),
        )
    raise AqbenchError(f"ONNX export supports BERT and DistilBERT models, not model_type {kind!r}")


class EncoderGraph:
    """Writes one model's graph: tensors (name -> torch tensor), its config, the run's assignment (None for an
    FP model) and the form's name."""

    def __init__(self, tensors, config, assignment, form="exact"):
        self.g = Graph()
        self.t = tensors
        self.config = config
        self.arch = architecture(config)
        self.assignment = assignment
        self.form = get_form(form)
        self.layers = assignment.layers if assignment is not None else {}
        self.grid = get_grid(assignment.grid) if assignment is not None else None
        self.stored = collections.Counter()  # weights held per stored width (bits -> count)

    def tensor(self, name):
        if name not in self.t:
            raise AqbenchError(
                f"the model has no tensor {name!r}: it is not a {self.arch.base} model of this task, "
                "or its file is damaged"
            )
        return self.t[name].detach().float().cpu()

    # --- inputs, embeddings, mask ---------------------------------------------------------------------------

    def inputs(self):
        from onnx import TensorProto, helper

        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if self.arch.token_types else [])
        self.g.inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names]
        self.g.used.update(names)
        return names

    def embedding(self, ids, name):
        """One embedding table looked up: float, or the packed file's codes dequantized per row after the Gather."""
        g = self.g
        if f"{name}.weight" in self.t:
            return g.op(
                "Gather", [g.const(self.tensor(f"{name}.weight").numpy(), f"{name}.weight", "embedding"), ids], name
            )
        from aqbench.export import decode_codes

        bits = self.assignment.emb_bits
        params = self.t.get(f"{name}.absmax", self.t.get(f"{name}.lo"))
        if params is None:
            raise AqbenchError(f"the packed file has no table {name!r}: it is damaged or not an aqbench export")
        shape = (params.numel(), self.arch.hidden)
        codes, _, lo, scale = decode_codes(self.t, name, [bits] * shape[0], shape, self.grid)
        q = g.op("Gather", [g.const(codes.numpy().astype(np.uint8), f"{name}.codes", "embedding"), ids], f"{name}.q")
        s = g.op("Gather", [g.const(scale.numpy()[:, None], f"{name}.scale", "embedding"), ids], f"{name}.s")
        o = g.op("Gather", [g.const(lo.numpy()[:, None], f"{name}.lo", "embedding"), ids], f"{name}.lo")
        return g.op("Add", [g.op("Mul", [g.op("Cast", [q], f"{name}.f", to=1), s], f"{name}.qs"), o], name)

    def embeddings(self, ids, token_types):
        g, base = self.g, f"{self.arch.base}.embeddings"
        length = g.op("Gather", [g.op("Shape", [ids], "shape"), g.scalar(1, np.int64)], "length")
        positions = g.op("Range", [g.scalar(0, np.int64), length, g.scalar(1, np.int64)], "positions")
        x = self.embedding(ids, f"{base}.word_embeddings")
        if token_types is not None:
            x = g.op("Add", [x, self.embedding(token_types, f"{base}.token_type_embeddings")], "emb.sum")
        x = g.op("Add", [x, self.embedding(positions, f"{base}.position_embeddings")], "emb.pos")
        return self.layer_norm(x, f"{base}.LayerNorm")

    def additive_mask(self, mask):
        g = self.g
        m = g.op("Cast", [mask], "mask.f", to=1)
        minimum = float(np.finfo(np.float32).min)
        add = g.op("Mul", [g.op("Sub", [g.scalar(1.0), m], "mask.inv"), g.scalar(minimum)], "mask.add")
        return g.op("Unsqueeze", [add, g.ints([1, 2])], "mask.4d")

    # --- layers ---------------------------------------------------------------------------------------------

    def layer_norm(self, x, name):
        g = self.g
        return g.op(
            "LayerNormalization",
            [
                x,
                g.const(self.tensor(f"{name}.weight").numpy(), f"{name}.weight"),
                g.const(self.tensor(f"{name}.bias").numpy(), f"{name}.bias"),
            ],
            name,
            axis=-1,
            epsilon=float(self.arch.eps),
        )

    def activation(self, x, name):
        act = self.arch.activation
        if act == "gelu":
            return self.g.op("Gelu", [x], name, approximate="none")
        if act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            return self.g.op("Gelu", [x], name, approximate="tanh")
        if act == "relu":
            return self.g.op("Relu", [x], name)
        raise AqbenchError(f"ONNX export: activation {act!r} is not supported (gelu, gelu_new, relu)")

    def linear(self, x, name):
        """y = x W^T + b for an FP Linear, or the run's quantized Linear in the form's kernels."""
        g = self.g
        if name not in self.layers:
            w = self.tensor(f"{name}.weight")
            part = "encoder" if self._in_encoder(name) else "other"
            y = g.op("MatMul", [x, g.const(w.numpy().T, f"{name}.weight_t", part)], name)
            if part == "encoder":
                self.stored[32] += w.numel()
            return self._bias(y, name)
        return QuantizedLinear(self, name).build(x)

    def _in_encoder(self, name):
        return any(
            name in (getattr(self.arch.block(i), f) for f in Block.__dataclass_fields__)
            for i in range(self.arch.layers)
        )

    def _bias(self, y, name):
        bias = self.t.get(f"{name}.bias")
        if bias is None:
            return y
        return self.g.op("Add", [y, self.g.const(bias.detach().float().cpu().numpy(), f"{name}.bias")], f"{name}.out")

    def attention(self, x, block, mask):
        g, heads, hidden = self.g, self.arch.heads, self.arch.hidden
        head_dim = hidden // heads

        def split(t, perm, name):
            return g.op(
                "Transpose",
                [g.op("Reshape", [t, g.ints([0, 0, heads, head_dim])], f"{name}.heads")],
                f"{name}.t",
                perm=perm,
            )

        names = [block.query, block.key, block.value]
        if QuantizedLinear.fusable(self, names):  # one matrix of their rows: a kernel call per width, not three
            hidden_out = QuantizedLinear(self, names).build(x)
            q, k, v = g.op("Split", [hidden_out, g.ints([hidden] * 3)], f"{block.query}.qkv", outputs=3, axis=-1)
        else:
            q, k, v = (self.linear(x, n) for n in names)
        q = split(q, [0, 2, 1, 3], block.query)
        k = split(k, [0, 2, 3, 1], block.key)
        v = split(v, [0, 2, 1, 3], block.value)
        scores = g.op(
            "Mul", [g.op("MatMul", [q, k], f"{block.query}.qk"), g.scalar(head_dim**-0.5)], f"{block.query}.scaled"
        )
        probs = g.op("Softmax", [g.op("Add", [scores, mask], f"{block.query}.masked")], f"{block.query}.probs", axis=-1)
        context = g.op("MatMul", [probs, v], f"{block.query}.context")
        context = g.op(
            "Reshape",
            [g.op("Transpose", [context], f"{block.query}.ctx.t", perm=[0, 2, 1, 3]), g.ints([0, 0, hidden])],
            f"{block.query}.ctx",
        )
        return self.linear(context, block.attn_out)

    def block(self, x, i, mask):
        g, b = self.g, self.arch.block(i)
        h = self.layer_norm(g.op("Add", [self.attention(x, b, mask), x], f"{b.attn_norm}.res"), b.attn_norm)
        f = self.linear(self.activation(self.linear(h, b.ffn_in), f"{b.ffn_in}.act"), b.ffn_out)
        return self.layer_norm(g.op("Add", [f, h], f"{b.ffn_norm}.res"), b.ffn_norm)

    def head(self, h, kind):
        g = self.g
        if kind == "classification":
            first = g.op("Gather", [h, g.scalar(0, np.int64)], "cls", axis=1)
            if self.arch.base == "bert":
                pooled = g.op("Tanh", [self.linear(first, "bert.pooler.dense")], "pooled")
            else:
                pooled = g.op("Relu", [self.linear(first, "pre_classifier")], "pooled")
            return {"logits": self.linear(pooled, "classifier")}
        if kind == "tagging":
            return {"logits": self.linear(h, "classifier")}
        if kind == "span_qa":
            start, end = g.op("Split", [self.linear(h, "qa_outputs"), g.ints([1, 1])], "qa", outputs=2, axis=-1)
            return {
                "start_logits": g.op("Squeeze", [start, g.ints([-1])], "qa.start"),
                "end_logits": g.op("Squeeze", [end, g.ints([-1])], "qa.end"),
            }
        raise AqbenchError(f"ONNX export: unknown task kind {kind!r}")

    def build(self, kind, metadata=None):
        names = self.inputs()
        ids, mask = names[0], names[1]
        h = self.embeddings(ids, names[2] if len(names) > 2 else None)
        add_mask = self.additive_mask(mask)
        for i in range(self.arch.layers):
            h = self.block(h, i, add_mask)
        outputs = self.head(h, kind)
        for key, out in list(outputs.items()):  # the outputs carry the names PyTorch's model outputs have
            outputs[key] = self.g.op("Identity", [out], key)
            if outputs[key] != key:
                raise AssertionError(f"graph output name {key!r} was taken by another node")
        meta = {
            "format": FORMAT,
            "form": self.form.name if self.assignment is not None else "fp32",
            "config": self.config.to_json_string(),
            **(metadata or {}),
        }
        return self.g.model(list(outputs.values()), meta)


def quantize_activation(g, x, name, lo, hi, bits, grid):
    """(x_hat, uint8 codes, scale, lo): QuantizeLinear of x - lo with zero point 0 (after a Clip to the grid's
    range when it has fewer than 255 steps),
    so the codes are round((x - lo) / s) clamped to the grid as aqbench.quant.quantizer computes them, and
    x_hat = codes * s + lo; memoized per (input, range)."""
    lo, hi = grid.ranges(torch.as_tensor(lo), torch.as_tensor(hi))
    scale = step_size(lo, hi, grid.steps(torch.tensor(float(bits))))
    lo, hi, scale = (np.float32(v.item()) for v in (lo, hi, scale))
    key = ("act", x, lo.tobytes(), hi.tobytes(), scale.tobytes())
    if key not in g.memo:
        # with 255 steps QuantizeLinear's saturation to uint8 [0, 255] is the clamp; fewer steps need the Clip
        steps = float(grid.steps(torch.tensor(float(bits))))
        clipped = x if steps == 255 else g.op("Clip", [x, g.scalar(lo), g.scalar(hi)], f"{name}.clip")
        codes = g.op(
            "QuantizeLinear",
            [g.op("Sub", [clipped, g.scalar(lo)], f"{name}.shift"), g.scalar(scale), g.scalar(0, np.uint8)],
            f"{name}.q",
        )
        x_hat = g.op(
            "Add",
            [g.op("DequantizeLinear", [codes, g.scalar(scale), g.scalar(0, np.uint8)], f"{name}.dq"), g.scalar(lo)],
            f"{name}.hat",
        )
        g.memo[key] = (x_hat, codes, scale, lo)
    return g.memo[key]


class QuantizedLinear:
    """Quantized encoder Linears of a packed run in the form's kernels: one, or several that read the same input
    (query, key, value) as one matrix of their rows stacked, so that each width is one kernel call for all three."""

    def __init__(self, enc, names):
        from aqbench.export import decode_codes, decode_splits

        names = [names] if isinstance(names, str) else list(names)
        self.enc, self.g, self.names, self.name = enc, enc.g, names, "+".join(names)
        layers = [enc.layers[n] for n in names]
        first = names[0]
        self.splits = decode_splits(enc.t[f"{first}.splits"]) if f"{first}.splits" in enc.t else []
        self.factor = enc.t.get(f"{first}.smooth")  # SmoothQuant's input factor (never on fused Linears)
        self.in_features = layers[0].shape[1]
        self.k = self.in_features + len(self.splits)
        parts = [decode_codes(enc.t, n, l.bits, (l.shape[0], self.k), enc.grid) for n, l in zip(names, layers)]
        self.codes, self.row_bits, self.lo, self.scale = (torch.cat([p[i] for p in parts]) for i in range(4))
        self.rows, self.groups = sum(l.shape[0] for l in layers), sum(l.groups for l in layers)
        self.bias = np.concatenate(
            [
                enc.t[f"{n}.bias"].detach().float().cpu().numpy()
                if f"{n}.bias" in enc.t
                else np.zeros(l.shape[0], np.float32)
                for n, l in zip(names, layers)
            ]
        )
        self.act_bits, self.act_grid = enc.assignment.act_bits, get_grid(enc.assignment.act_grid)
        if FULL_PRECISION > self.act_bits > 8:
            raise AqbenchError(
                f"ONNX export: {self.act_bits}-bit activations do not fit QuantizeLinear's uint8 (at most 8)"
            )

    @staticmethod
    def fusable(enc, names):
        """Whether Linears can be one matrix: all quantized, the same shape and groups, no OCS splits or smoothing
        factors, and the same activation range (they read the same input; calibration gives them the same range)."""
        if not all(n in enc.layers for n in names):
            return False
        layers = [enc.layers[n] for n in names]
        same = all(l.shape == layers[0].shape and l.groups == layers[0].groups for l in layers)
        ranges = [enc.t.get(f"{n}.act") for n in names]
        equal_ranges = all(r is None for r in ranges) or all(
            r is not None and torch.equal(r, ranges[0]) for r in ranges
        )
        return same and equal_ranges and not any(f"{n}.{k}" in enc.t for n in names for k in ("splits", "smooth"))

    def build(self, x):
        x = self.expand(x)
        x_hat, x_codes, act_scale, act_lo = self.quantize_input(x)
        form = self.enc.form
        rows_by_kernel = collections.defaultdict(list)
        pruned = []
        for n, b in enumerate(self.row_bits.tolist()):
            if b == 0:
                pruned.append(n)
                continue
            width = stored_bits(b, form.min_bits)
            int8 = width == 8 and x_codes is not None and form.int8_gemm
            rows_by_kernel[("int8", 8) if int8 else ("nbits", width)].append(n)
            self.enc.stored[width] += self.k
        offset = np.zeros(self.rows, dtype=np.float32)  # times rowsum(x_hat), per row
        constant = np.zeros(self.rows, dtype=np.float32)  # added per row, with the bias
        parts, order = [], []
        for (kernel, width), rows in sorted(rows_by_kernel.items()):
            if kernel == "int8":
                y, off, const = self.int8_gemm(x_codes, act_scale, act_lo, rows)
                constant[rows] = const
            else:
                y, off = self.nbits(x_hat, rows, width, form.accuracy_level)
            offset[rows] = off
            parts.append(y)
            order += rows
        if pruned:  # pruned rows compute nothing: zeros beside the computed rows, then only their bias
            parts.append(self.zeros(x, len(pruned)))
            order += pruned
        bias = self.bias + constant
        if len(parts) == 1 and not pruned:  # one kernel over every row, in order: it adds the bias itself
            y, bias = self.kernel_bias(parts[0], bias), None
        else:
            y = parts[0] if len(parts) == 1 else self.g.op("Concat", parts, f"{self.name}.rows", axis=-1)
            if order != sorted(order):
                y = self.reorder(y, np.argsort(np.asarray(order)).astype(np.int64))
        if np.any(offset != 0):
            rowsum = self.rowsum(x_hat)
            y = self.g.op(
                "Add",
                [
                    y,
                    self.g.op(
                        "Mul", [rowsum, self.g.const(offset, f"{self.name}.offset", "encoder")], f"{self.name}.offset"
                    ),
                ],
                f"{self.name}.shifted",
            )
        if bias is not None and np.any(bias != 0):
            y = self.g.op("Add", [y, self.g.const(bias.astype(np.float32), f"{self.name}.bias")], f"{self.name}.out")
        return y

    def kernel_bias(self, y, bias):
        """The bias (with the int8 GEMM's constant) as the kernel's own bias input: one Add fewer per Linear."""
        if not np.any(bias != 0):
            return y
        node = next(n for n in reversed(self.g.nodes) if n.output[0] == y)
        name = self.g.const(bias.astype(np.float32), f"{self.name}.bias")
        node.input.extend(["", name] if node.op_type == "MatMulNBits" else [name])  # MatMulNBits: no g_idx
        return y

    def reorder(self, y, inverse):
        """y[..., inverse], the concatenated rows back in row order. Whole groups move, so with equal groups the
        Gather moves a group's rows as one block: ORT's Gather along the last axis moves one number at a time, and
        took 40% of a mixed-width model's time at 128 tokens."""
        g, rows, groups = self.g, self.rows, self.groups
        size = rows // groups
        blocks = inverse.reshape(groups, size) if rows % groups == 0 else None
        if size > 1 and blocks is not None and (blocks == blocks[:, :1] + np.arange(size)).all():
            grouped = g.op("Reshape", [y, g.ints([0, 0, groups, size])], f"{self.name}.groups")
            grouped = g.op(
                "Gather",
                [grouped, g.const(blocks[:, 0] // size, f"{self.name}.group_order", "encoder")],
                f"{self.name}.reorder",
                axis=2,
            )
            return g.op("Reshape", [grouped, g.ints([0, 0, rows])], f"{self.name}.reordered")
        return g.op("Gather", [y, g.const(inverse, f"{self.name}.order", "encoder")], f"{self.name}.reorder", axis=-1)

    def expand(self, x):
        """OCS: x[..., index] * scale, the fixed expansion the split weight expects. The index starts with every
        input feature in order (the splits append copies), so only the copies are gathered, then concatenated:
        ORT's Gather along the last axis moves one number at a time, and gathering all K + n columns took half
        of an OCS model's time. SmoothQuant: x * factor, per input feature."""
        if self.factor is not None:
            factor = self.factor.detach().float().cpu().numpy()
            return self.g.op(
                "Mul", [x, self.g.const(factor, f"{self.name}.smooth", "encoder")], f"{self.name}.smoothed"
            )
        if not self.splits:
            return x
        index, _, scale = replay(self.in_features, self.splits)
        g = self.g
        extra = np.asarray(index[self.in_features :], dtype=np.int64)
        copies = g.op(
            "Gather", [x, g.const(extra, f"{self.name}.split_index", "encoder")], f"{self.name}.split", axis=-1
        )
        x = g.op("Concat", [x, copies], f"{self.name}.expanded", axis=-1)
        if any(s != 1.0 for s in scale):
            x = g.op(
                "Mul",
                [x, g.const(np.asarray(scale, dtype=np.float32), f"{self.name}.split_scale", "encoder")],
                f"{self.name}.split_scaled",
            )
        return x

    def quantize_input(self, x):
        """The run's activation quantizer on this Linear's input (the same input and range are quantized once)."""
        if self.act_bits >= FULL_PRECISION:
            return x, None, None, None
        rng = self.enc.tensor(f"{self.names[0]}.act")
        return quantize_activation(self.g, x, f"{self.name}.act", rng[0], rng[1], self.act_bits, self.act_grid)

    def rowsum(self, x_hat):
        key = ("rowsum", x_hat)
        if key not in self.g.memo:
            self.g.memo[key] = self.g.op("ReduceSum", [x_hat, self.g.ints([-1])], f"{x_hat}.sum", keepdims=1)
        return self.g.memo[key]

    def zeros(self, x, count):
        g = self.g
        lead = g.op(
            "Slice", [g.op("Shape", [x], f"{self.name}.xshape"), g.ints([0]), g.ints([-1])], f"{self.name}.lead"
        )
        shape = g.op("Concat", [lead, g.ints([count])], f"{self.name}.zshape", axis=0)
        from onnx import TensorProto, helper

        return g.op(
            "ConstantOfShape",
            [shape],
            f"{self.name}.pruned",
            value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
        )

    def nbits(self, x_hat, rows, width, accuracy_level):
        """MatMulNBits over `rows` at `width` bits: (output, offset per row). In fp32 (accuracy 0) the zero point
        is 0 and the offset is lo itself, so codes, scales and offsets are the packed file's numbers; with int8
        activations (accuracy 4) a centred integer zero point keeps the integers small and leaves a residual."""
        g, n = self.g, f"{self.name}.w{width}"
        codes, lo, scale = self.codes[rows], self.lo[rows], self.scale[rows]
        block = block_size(self.k)
        blocks = -(-self.k // block)
        if accuracy_level == 0:
            zero, offset = torch.zeros(len(rows), dtype=torch.long), lo
        else:
            zero, offset = centered_zero(lo, scale, width)
        inputs = [
            x_hat,
            g.const(nbits_blocks(codes, width, block), f"{n}.B", "encoder"),
            g.const(scale.numpy()[:, None].repeat(blocks, 1), f"{n}.scales", "encoder"),
            g.const(nbits_zero_points(zero, width, blocks), f"{n}.zero_points", "encoder"),
        ]
        y = g.op(
            "MatMulNBits",
            inputs,
            n,
            domain=MS,
            K=self.k,
            N=len(rows),
            bits=width,
            block_size=block,
            accuracy_level=accuracy_level,
        )
        return y, offset.numpy().astype(np.float32)

    def int8_gemm(self, x_codes, act_scale, act_lo, rows):
        """The 8-bit integer GEMM over `rows`: uint8 activation codes times uint8 weight codes, each column with
        its zero point, so the integers multiplied are (x codes) * (q - z). The rest of
        sum_k (s_a x_k + lo_a)(s_n (q_nk - z_n) + r_n) is r_n * rowsum(x_hat) + lo_a * s_n * sum_k (q_nk - z_n).

        Unsigned weights, not int8: on x86 CPUs without VNNI (AVX2 only), ORT's u8 x s8 kernel adds pairs of
        products in int16 with saturation (vpmaddubsw), so full-range 8-bit codes overflow: measured on an AVX2
        EPYC, outputs off by 0.6 on a demo model. Its u8 x u8 kernel widens first and is exact on every CPU
        (tests/test_deploy.py, test_int8_gemm_is_exact_at_full_range)."""
        g, n = self.g, f"{self.name}.int8"
        codes, lo, scale = self.codes[rows], self.lo[rows], self.scale[rows]
        bits = self.row_bits[rows]
        zero, residual = centered_zero(lo, scale, bits)
        weights = codes.numpy().astype(np.uint8).T  # [K, N]
        zero_points = zero.numpy().astype(np.uint8)
        y = g.op(
            "MatMulIntegerToFloat",
            [
                x_codes,
                g.const(weights, f"{n}.B", "encoder"),
                g.scalar(act_scale),
                g.const(scale.numpy().astype(np.float32), f"{n}.scales", "encoder"),
                g.scalar(0, np.uint8),
                g.const(zero_points, f"{n}.zero_points", "encoder"),
            ],
            n,
            domain=MS,
        )
        column = (codes - zero[:, None]).sum(1).double()
        constant = (float(act_lo) * scale.double() * column).numpy().astype(np.float32)
        return y, residual.numpy().astype(np.float32), constant


def build_model(tensors, config, assignment, kind, form="exact", metadata=None):
    """(onnx.ModelProto, record): the graph of a model from its tensors, and what it holds (bytes by part,
    weights per stored width)."""
    enc = EncoderGraph(tensors, config, assignment, form)
    model = enc.build(kind, metadata)
    record = {
        "form": enc.form.name if assignment is not None else "fp32",
        "onnx_encoder_bytes": int(enc.g.bytes["encoder"]),
        "onnx_embedding_bytes": int(enc.g.bytes["embedding"]),
        "onnx_other_bytes": int(enc.g.bytes["other"]),
        "stored_weights": {str(k): int(v) for k, v in sorted(enc.stored.items())},
    }
    return model, record


def read_linear(model, name, rows):
    """What an exported model holds for one quantized Linear of `rows` output neurons, per row in row order:
    {kernel ("nbits", "int8" or "pruned"), width (as stored), q (the integers as the kernel holds them: the codes,
    in both kernels), zero (its zero point), scale, offset}, so that in every form
    weight = (q - zero) * scale + offset. Reads the initializers back; checks and tests use it."""
    from onnx import numpy_helper

    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # a Linear of its own, or one of several stacked into one matrix (query+key+value): find its prefix
    prefixes = {
        n.name.split("/")[0].rsplit(".", 1)[0]
        for n in model.graph.node
        if n.op_type in ("MatMulNBits", "MatMulIntegerToFloat")
    }
    prefix = next((p for p in prefixes if name in p.split("+")), name)
    members = prefix.split("+")
    position, total = members.index(name) if name in members else 0, rows * len(members)
    held = _read_stacked(model, init, prefix, total)
    return {key: v[position * rows : (position + 1) * rows] for key, v in held.items()}


def _read_stacked(model, init, name, rows):
    from aqbench.deploy.weights import nbits_codes, nbits_zero_values

    parts = []  # (kernel, width, q [n, K], zero [n], scale [n]) in the order build() concatenates them
    for node in model.graph.node:
        if not node.name.startswith(f"{name}."):
            continue
        if node.op_type == "MatMulNBits":
            a = {x.name: x.i for x in node.attribute}
            scales = init[node.input[2]]
            zero = nbits_zero_values(init[node.input[3]], a["bits"], scales.shape[1]).numpy()[:, 0]
            parts.append(
                ("nbits", a["bits"], nbits_codes(init[node.input[1]], a["bits"], a["K"]).numpy(), zero, scales[:, 0])
            )
        elif node.op_type == "MatMulIntegerToFloat":
            parts.append(
                (
                    "int8",
                    8,
                    init[node.input[1]].T.astype(np.int64),
                    init[node.input[5]].astype(np.int64),
                    init[node.input[3]],
                )
            )
    parts.sort(key=lambda p: (p[0], p[1]))
    kept = sum(len(p[2]) for p in parts)
    k = parts[0][2].shape[1] if parts else 0
    cat = lambda i, fill: np.concatenate(
        [np.asarray(p[i]) for p in parts] + [np.full((rows - kept, *fill[0]), fill[1])]
    )
    per_row = lambda i, pruned: np.asarray(sum(([p[i]] * len(p[2]) for p in parts), []) + [pruned] * (rows - kept))
    held = {
        "kernel": per_row(0, "pruned"),
        "width": per_row(1, 0),
        "q": cat(2, ((k,), 0)).astype(np.int64),
        "zero": cat(3, ((), 0)).astype(np.int64),
        "scale": cat(4, ((), 0.0)).astype(np.float32),
    }
    inverse = init.get(f"{name}.order", np.arange(rows))  # output row n is concatenated row inverse[n]
    if f"{name}.group_order" in init:  # the same, a group at a time
        group_order = init[f"{name}.group_order"]
        size = rows // len(group_order)
        inverse = (group_order[:, None] * size + np.arange(size)).reshape(-1)
    held = {key: v[inverse] for key, v in held.items()}
    held["offset"] = np.array(init.get(f"{name}.offset", np.zeros(rows, np.float32)))
    return held
