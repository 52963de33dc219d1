"""The bit assignment: what every method produces and `evaluate` consumes (docs/outputs.md).

For each quantized encoder Linear: its shape and one bit-width per group of consecutive output neurons
(0 = pruned, >= 16 = left in floating point); plus the grid, activation and embedding bits, and free-form meta
(method, budget, notes). Stored as JSON so the report can draw any method's allocation.
"""

from dataclasses import dataclass, field

from aqbench.errors import AqbenchError
from aqbench.io import read_json, write_json
from aqbench.quant.quantizer import GRIDS, group_sizes

FORMAT = "aqbench-assignment/1"
VALID_BITS = {0, 2, 3, 4, 5, 6, 7, 8, 16, 32}


@dataclass
class LayerBits:
    shape: tuple  # (out_features, in_features)
    bits: list  # one per group
    extra: dict = field(default_factory=dict)  # method-specific (e.g. clipping, split channels)

    @property
    def groups(self):
        return len(self.bits)

    @property
    def stored_in_features(self):
        """Columns actually stored: the input features plus OCS's split channels."""
        return self.shape[1] + len(self.extra.get("splits", ()))

    def group_rows(self):
        return group_sizes(self.shape[0], self.groups)

    def group_numels(self):
        """Stored weights per group (split channels included)."""
        return [rows * self.stored_in_features for rows in self.group_rows()]


@dataclass
class Assignment:
    grid: str
    act_bits: int
    emb_bits: int
    layers: dict  # name -> LayerBits, in model order
    act_grid: str = "asym"
    meta: dict = field(default_factory=dict)

    def validate(self):
        for g in (self.grid, self.act_grid):
            if g not in GRIDS:
                raise AqbenchError(f"assignment: unknown grid {g!r} (known: {', '.join(GRIDS)})")
        for name, layer in self.layers.items():
            bad = set(layer.bits) - VALID_BITS
            if bad:
                raise AqbenchError(
                    f"assignment: layer {name} has bit-widths {sorted(bad)}; allowed: {sorted(VALID_BITS)}"
                )
            if not 1 <= layer.groups <= layer.shape[0]:
                raise AqbenchError(f"assignment: layer {name} has {layer.groups} groups for {layer.shape[0]} rows")
        return self

    def to_json(self):
        return {
            "format": FORMAT,
            "grid": self.grid,
            "act_grid": self.act_grid,
            "act_bits": self.act_bits,
            "emb_bits": self.emb_bits,
            "meta": self.meta,
            "layers": {
                n: {
                    "shape": list(l.shape),
                    "groups": l.groups,
                    "bits": list(l.bits),
                    **({"extra": l.extra} if l.extra else {}),
                }
                for n, l in self.layers.items()
            },
        }

    @classmethod
    def from_json(cls, d):
        if d.get("format") != FORMAT:
            raise AqbenchError(f"not a bit assignment of format {FORMAT} (found {d.get('format')!r})")
        layers = {n: LayerBits(tuple(l["shape"]), list(l["bits"]), l.get("extra", {})) for n, l in d["layers"].items()}
        return cls(
            d["grid"], d["act_bits"], d["emb_bits"], layers, d.get("act_grid", "asym"), d.get("meta", {})
        ).validate()

    def save(self, path):
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path):
        return cls.from_json(read_json(path, what="bit assignment"))


def uniform(model, bits, groups, grid="asym", act_bits=8, emb_bits=8, act_grid="asym", meta=None):
    """Every encoder Linear at the same bit-width with `groups` groups per matrix (capped at its rows)."""
    from aqbench.quant.modules import encoder_linears

    layers = {}
    for name, m in encoder_linears(model).items():
        out_features, in_features = m.weight.shape
        layers[name] = LayerBits((out_features, in_features), [int(bits)] * min(groups, out_features))
    return Assignment(grid, int(act_bits), int(emb_bits), layers, act_grid, dict(meta or {})).validate()


def full_precision(model, meta=None):
    """The FP model as an assignment: 32-bit weights, activations and embedding, one group per matrix."""
    return uniform(model, 32, 1, act_bits=32, emb_bits=32, meta=meta)
