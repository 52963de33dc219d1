"""The method registry: what each method is, in one table. The config's checks and run list, the rules, the
tables, figures and report all read it; `workflow/schemas/config.schema.yaml`'s `methods` enum must list the
same names (a test checks).

Adding a post-training method: its module in aqbench/methods/ (validate and run, see aqbench.methods), its
entry here, its section in the schema (and docs/config.md's row).
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from aqbench.budget import Budget, unique
from aqbench.errors import AqbenchError

FP, PTQ, QBERT, SEARCH = "fp", "ptq", "qbert", "search"  # how a method is run (the rules that make its runs)


def fp_budgets(config, name):
    return ["fp32"]


def uniform_budgets(config, name):
    """w<bits> for each of the method's `bits`."""
    return [Budget.uniform(b).label for b in config[name]["bits"]]


def ocs_budgets(config, name):
    """w<bits>-r<expand ratio> for each bit-width and ratio."""
    return [Budget.uniform(b, r).label for b in config[name]["bits"] for r in config[name]["expand_ratios"]]


def mixed_budgets(config, section):
    """b<avg bits> for a section's own `budgets`, else the top-level ones (average bits per encoder weight of
    the model compressed: the same label is half the MB on a 6-block student, as AQ-BERT's Table 3)."""
    own = config.get(section, {}).get("budgets")
    return [Budget.mixed(b).label for b in (config["budgets"] if own is None else own)]


def group_study_budgets(config, name):
    """The group study's runs of a method in it: b<bits>-g<groups>, or plain b<bits> at quant.groups (the usual
    run)."""
    study = config.get("group_study")
    if not study or not METHODS[name].group_study:
        return []
    default = config["quant"]["groups"]
    return [Budget.mixed(b, None if g == default else g).label for b in study["budgets"] for g in study["groups"]]


def qbert_budgets(config, name):
    """Uniform w<bits> rows, then the mixed-precision budgets and the group study's."""
    uniform = [Budget.uniform(b).label for b in config[name]["uniform_bits"]]
    return unique(uniform + mixed_budgets(config, name) + group_study_budgets(config, name))


def qbert_mixed_budgets(config, name):
    """Q-BERT's mixed-precision budgets only (qbert_gptq: a uniform assignment rounded by GPTQ is gptq's run)."""
    return mixed_budgets(config, "qbert")


def search_budgets(config, name):
    """aq's mixed-precision budgets (the `aq` section serves aq and aq_distil), then the group study's."""
    return unique(mixed_budgets(config, "aq") + group_study_budgets(config, name))


def ocs_sections(config):
    """OCS with ACIQ clipping reads the ACIQ section too."""
    return ("quant", "train", "ocs") + (("aciq",) if config["ocs"]["clip"] == "aciq" else ())


@dataclass(frozen=True)
class MethodSpec:
    name: str
    module: str  # the aqbench.methods module that runs it (validate, run)
    model: str  # the model it compresses: bert (the teacher) or distil (its distilled student)
    kind: str  # fp (no-op), ptq (a post-training sweep), qbert (Hessian, then a job per budget), search (aq's)
    budgets: Callable  # (config, name) -> its budget labels, in run order
    sections: tuple | Callable = ()  # the config sections its stage reads, or (config) -> those sections
    exported: bool = True  # quantized: written as a packed file
    group_study: bool = False  # in the group study (AQ-BERT's Table 2 compares qbert and aq)
    color: int = 0  # its colour: an index into seaborn's colour-blind palette (0-9), then its dark one (10-19)
    marker: str = "o"  # its matplotlib marker

    @property
    def trains(self):
        """Fine-tuned with its assignment fixed (QAT): qbert, aq, aq_distil; not the GPTQ-rounded variants."""
        return not callable(self.sections) and "qat" in self.sections

    @property
    def sweep(self):
        """One job per task, model and seed runs its whole sweep of budgets (no training: seconds per run)."""
        return self.kind in (FP, PTQ)

    def settings_sections(self, config):
        return self.sections(config) if callable(self.sections) else self.sections

    def load(self):
        """The method's module (imported on demand: the config and the report need no torch)."""
        return importlib.import_module(self.module)


# Display order: the tables', figures' and report's (FP first, then the methods each is compared with).
# Colours are assigned so that methods compared with each other are far apart.
_QAT = ("quant", "train", "qat")
_SPECS = [
    MethodSpec("fp", "aqbench.methods.fp", "bert", FP, fp_budgets, exported=False, color=0, marker="*"),
    MethodSpec("distil", "aqbench.methods.fp", "distil", FP, fp_budgets, exported=False, color=5, marker="o"),
    MethodSpec("qbert", "aqbench.methods.qbert", "bert", QBERT, qbert_budgets, ("quant", "train", "qbert", "qat"),
               group_study=True, color=1, marker="D"),
    MethodSpec("lq", "aqbench.methods.lq", "bert", PTQ, uniform_budgets, ("quant", "train", "lq"), color=3, marker="s"),
    MethodSpec("aciq", "aqbench.methods.aciq", "bert", PTQ, uniform_budgets, ("quant", "train", "aciq"), color=4,
               marker="v"),
    MethodSpec("ocs", "aqbench.methods.ocs", "bert", PTQ, ocs_budgets, ocs_sections, color=2, marker="^"),
    MethodSpec("mse", "aqbench.methods.mse", "bert", PTQ, uniform_budgets, ("quant", "train", "mse"), color=6, marker="<"),
    MethodSpec("gptq", "aqbench.methods.gptq", "bert", PTQ, uniform_budgets, ("quant", "train", "gptq"), color=8,
               marker=">"),
    MethodSpec("adaround", "aqbench.methods.adaround", "bert", PTQ, uniform_budgets, ("quant", "train", "adaround"),
               color=13, marker="X"),
    MethodSpec("smoothquant", "aqbench.methods.smoothquant", "bert", PTQ, uniform_budgets,
               ("quant", "train", "smoothquant"), color=14, marker="p"),
    MethodSpec("qbert_gptq", "aqbench.methods.assigned_gptq", "bert", QBERT, qbert_mixed_budgets,
               ("quant", "train", "qbert", "gptq"), color=11, marker="d"),
    MethodSpec("aq", "aqbench.methods.aq", "bert", SEARCH, search_budgets, _QAT, group_study=True, color=9, marker="P"),
    MethodSpec("aq_gptq", "aqbench.methods.assigned_gptq", "bert", SEARCH, search_budgets, ("quant", "train", "gptq"),
               color=19, marker="+"),
    MethodSpec("aq_distil", "aqbench.methods.aq", "distil", SEARCH, search_budgets, _QAT, color=7, marker="h"),
]  # fmt: skip
METHODS = {spec.name: spec for spec in _SPECS}
MODELS = ("bert", "distil")


def get(name):
    if name not in METHODS:
        raise AqbenchError(f"unknown method {name!r}: available methods are {', '.join(METHODS)}")
    return METHODS[name]


def names(kind=None, exported=None, sweep=None, group_study=None, trains=None):
    """Method names in display order, optionally only those of a kind / exported / run as a sweep / studied /
    trained with QAT."""
    return [
        s.name
        for s in _SPECS
        if (kind is None or s.kind == kind)
        and (trains is None or s.trains == trains)
        and (exported is None or s.exported == exported)
        and (sweep is None or s.sweep == sweep)
        and (group_study is None or s.group_study == group_study)
    ]


def order(name):
    """A method's position in the display order (unknown methods last)."""
    return list(METHODS).index(name) if name in METHODS else len(METHODS)
