"""Budget labels: the one place their grammar is parsed and written.

A run's budget label says what it was asked to meet:
  fp32          full precision
  w<bits>       every encoder weight at <bits> (2 ... 8); OCS adds its expand ratio: w4-r0.02
  b<avg bits>   a mixed-precision size budget, average bits per encoder weight (b2.96); the group study adds
                its number of groups per matrix when it is not quant.groups: b2.47-g12
Runs with the same bits part (w4 and w4-r0.02, b2.47 and b2.47-g12) are compared with each other.
"""

import re
from dataclasses import dataclass

from aqbench.errors import AqbenchError

FP, UNIFORM, MIXED = "fp", "uniform", "mixed"
WEIGHT_BITS = range(2, 9)  # what the uniform grids represent
# the labels a run directory may have (the Snakefile's wildcard constraint)
PATTERN = r"fp32|w\d+(-r[0-9.]+)?|b\d+(\.\d+)?(-g\d+)?"


@dataclass(frozen=True)
class Budget:
    kind: str  # fp, uniform or mixed
    bits: float  # 32 for fp, the weight bits of a uniform run, the average bits of a mixed one
    ratio: float | None = None  # OCS's expand ratio (uniform only)
    groups: int | None = None  # the group study's groups per matrix (mixed only); None: quant.groups

    @classmethod
    def parse(cls, label):
        """The budget a label names; an AqbenchError for anything else."""
        label = str(label)
        if label == "fp32":
            return cls(FP, 32)
        m = re.fullmatch(r"w(\d+)(?:-r([0-9.]+))?", label)
        if m:
            ratio = _number(m.group(2), label) if m.group(2) is not None else None
            return cls(UNIFORM, int(m.group(1)), ratio=ratio)
        m = re.fullmatch(r"b([0-9.]+)(?:-g(\d+))?", label)
        if m:
            groups = int(m.group(2)) if m.group(2) is not None else None
            return cls(MIXED, _number(m.group(1), label), groups=groups)
        raise AqbenchError(
            f"budget {label!r} is not a budget label: use fp32, w<bits> (e.g. w4), w<bits>-r<ratio> (OCS, "
            "e.g. w4-r0.02), b<average bits> (e.g. b2.96) or b<bits>-g<groups> (the group study)"
        )

    @classmethod
    def fp(cls):
        return cls(FP, 32)

    @classmethod
    def uniform(cls, bits, ratio=None):
        return cls(UNIFORM, int(bits), ratio=ratio)

    @classmethod
    def mixed(cls, bits, groups=None):
        return cls(MIXED, float(bits), groups=groups)

    @property
    def base(self):
        """The label without a method's suffix (w4-r0.02 -> w4, b2.47-g12 -> b2.47): runs compared together."""
        if self.kind == FP:
            return "fp32"
        return f"w{self.bits}" if self.kind == UNIFORM else f"b{self.bits:g}"

    @property
    def suffix(self):
        """The label's part after the bits, '' if none: r0.02 (OCS), g12 (the group study)."""
        if self.ratio is not None:
            return f"r{self.ratio:g}"
        return f"g{self.groups}" if self.groups is not None else ""

    @property
    def label(self):
        return self.base + (f"-{self.suffix}" if self.suffix else "")

    def __str__(self):
        return self.label

    def sort_key(self):
        """Largest budget first (fp32, w8, ..., b2.47): the tables' and figures' order."""
        return -self.bits


def _number(text, label):
    try:
        return float(text)
    except ValueError:
        raise AqbenchError(f"budget {label!r}: {text!r} is not a number") from None


def base_label(label):
    """A label's bits part (Budget.base) for any label; the label itself when it is not one (a table's key)."""
    try:
        return Budget.parse(label).base
    except AqbenchError:
        return str(label)


def label_bits(label):
    """A label's bits for sorting and plotting (fp32 -> 32, w4-r0.02 -> 4, b2.96 -> 2.96); nan if not a label."""
    try:
        return float(Budget.parse(label).bits)
    except AqbenchError:
        return float("nan")


def label_groups(label):
    """The groups per matrix a label asks for (b2.47-g12 -> 12), None when it uses quant.groups."""
    return Budget.parse(label).groups


def series(method, label):
    """The series a run belongs to in tables and figures: the method, with its label's suffix (OCS's expand ratio
    as r=0.02, the group study's g12)."""
    suffix = Budget.parse(label).suffix
    return f"{method} ({suffix.replace('r', 'r=', 1)})" if suffix else method


def uniform_bits(label, method):
    """w<b>[-r<ratio>] -> b, refusing bit-widths the grids cannot represent."""
    budget = _parsed_or_none(label)
    if budget is None or budget.kind != UNIFORM or budget.bits not in WEIGHT_BITS:
        raise AqbenchError(
            f"budget {label!r} cannot be met by {method}: it quantizes weights to w2 ... w8. Fix "
            f"{method}.bits (or the target you asked for)"
        )
    return budget.bits


def average_bits(label, method):
    """b<avg bits>[-g<groups>] -> the average bits per encoder weight (a mixed-precision size budget)."""
    budget = _parsed_or_none(label)
    if budget is None or budget.kind != MIXED or not 0 < budget.bits <= 32:
        raise AqbenchError(
            f"budget {label!r} for {method}: use b<average bits per weight>, e.g. b2.96"
            + (" (or w<bits> for a uniform run)" if method == "qbert" else "")
        )
    return budget.bits


def kind_of(label):
    """fp, uniform or mixed; None for a string that is not a label."""
    budget = _parsed_or_none(label)
    return budget.kind if budget else None


def _parsed_or_none(label):
    try:
        return Budget.parse(label)
    except AqbenchError:
        return None


def unique(labels):
    return list(dict.fromkeys(labels))
