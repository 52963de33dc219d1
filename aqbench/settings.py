"""Settings as small typed records: one frozen dataclass per config section a stage reads.

The workflow's rules pass each stage its sections as JSON (aqbench.config builds them); the CLI turns that JSON
into these records at its boundary, and the library reads attributes (`settings.quant.calibration_examples`).
Fields are named as the schema's keys (workflow/schemas/config.schema.yaml) with its defaults; a test checks
that the two agree. `from_dict` refuses a key the record does not know, naming the section and the key.

Where two sections overlay each other, one function says which key wins: aqbench.qat.loop_settings (qat's
training-loop keys over train's).
"""

import dataclasses
from dataclasses import dataclass, field

from aqbench.errors import AqbenchError


def _known(cls, section, d):
    """d's keys, refused with one line if the record has no such field."""
    d = dict(d or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise AqbenchError(
            f"settings error: unknown key {unknown[0]!r} in section {section}; allowed keys: {', '.join(sorted(names))}"
        )
    return d


class _Record:
    """from_dict for a section: the keys given, the schema's defaults for the rest; NESTED names the keys that
    hold a record of their own (a null one stays None)."""

    SECTION = ""
    NESTED = {}

    @classmethod
    def from_dict(cls, d):
        d = _known(cls, cls.SECTION, d)
        for key, record in cls.NESTED.items():
            if d.get(key) is not None:
                d[key] = record.from_dict(d[key])
        return cls(**d)


def _bit_sweep():
    return [8, 6, 4, 3, 2]


@dataclass(frozen=True)
class Synthetic(_Record):
    SECTION = "data.synthetic"
    n_train: int = 8000
    n_eval: int = 500


@dataclass(frozen=True)
class Data(_Record):
    """data: where a task's examples come from. local_dirs, local_files and hub map task names to their values."""

    SECTION = "data"
    NESTED = {"synthetic": Synthetic}
    source: str = "synthetic"
    seed: int = 1234
    synthetic: Synthetic = field(default_factory=Synthetic)
    local_dirs: dict = field(default_factory=dict)
    local_files: dict = field(default_factory=dict)
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    tuning_fraction: float = 0.1
    max_tuning_examples: int | None = None
    train_from_eval: float | None = None
    hub: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Train(_Record):
    """train: fine-tuning's loop, and the lengths, evaluation batch size and device every stage uses."""

    SECTION = "train"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 2.0e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float | None = 1.0
    max_steps: int | None = None
    max_length: int | None = None
    doc_stride: int | None = None
    eval_batch_size: int = 64
    device: str = "auto"
    mixed_precision: str = "none"
    select_every: int | str | None = None


@dataclass(frozen=True)
class Model(_Record):
    """models.<name>: what to fine-tune. temperature and alpha (source student) have no schema default: None
    means the distillation's own (2.0 and 0.5); train holds the partial train values this model replaces."""

    SECTION = "model"
    source: str = "config"
    path: str | None = None
    package: str | None = None
    revision: str | None = None
    tokenizer_vocab_size: int = 2000
    architecture: dict = field(default_factory=dict)
    temperature: float | None = None
    alpha: float | None = None
    train: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Quant(_Record):
    SECTION = "quant"
    grid: str = "asym"
    act_grid: str = "asym"
    groups: int = 128
    act_bits: int = 8
    emb_bits: int = 8
    calibration_examples: int = 256


@dataclass(frozen=True)
class Lq(_Record):
    SECTION = "lq"
    bits: list = field(default_factory=_bit_sweep)


@dataclass(frozen=True)
class Aciq(_Record):
    SECTION = "aciq"
    bits: list = field(default_factory=_bit_sweep)
    distribution: str = "auto"
    activations: bool = True


@dataclass(frozen=True)
class Ocs(_Record):
    SECTION = "ocs"
    bits: list = field(default_factory=_bit_sweep)
    expand_ratios: list = field(default_factory=lambda: [0.01, 0.02, 0.05])
    clip: str = "none"
    act_expand_ratio: float = 0.0


@dataclass(frozen=True)
class Mse(_Record):
    SECTION = "mse"
    bits: list = field(default_factory=_bit_sweep)
    grid_points: int = 50
    min_factor: float = 0.2
    activations: bool = True


@dataclass(frozen=True)
class Gptq(_Record):
    SECTION = "gptq"
    bits: list = field(default_factory=_bit_sweep)
    percdamp: float = 0.01
    block_size: int = 128
    act_order: bool = False


@dataclass(frozen=True)
class Adaround(_Record):
    SECTION = "adaround"
    bits: list = field(default_factory=_bit_sweep)
    iters: int = 1000
    lr: float = 0.03
    reg_weight: float = 1.0
    warmup: float = 0.2
    batch_rows: int = 512
    max_rows: int = 4096


@dataclass(frozen=True)
class Smoothquant(_Record):
    SECTION = "smoothquant"
    bits: list = field(default_factory=_bit_sweep)
    alpha: float = 0.5


@dataclass(frozen=True)
class Qbert(_Record):
    SECTION = "qbert"
    bits: list = field(default_factory=lambda: [2, 3, 4, 8])
    rule: str = "rank"
    uniform_bits: list = field(default_factory=lambda: [8, 4])
    budgets: list | None = None


@dataclass(frozen=True)
class Aq(_Record):
    SECTION = "aq"
    bits: list = field(default_factory=lambda: [0, 2, 4, 8])
    budgets: list | None = None
    epochs: int = 4
    steps_per_epoch: int | None = None
    batch_size: int = 32
    lr: float = 2.0e-5
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    warmup_epochs: int = 1
    arch_optimizer: str = "adam"
    arch_lr: float = 0.05
    arch_momentum: float = 0.9
    size_weight: float = 1.0
    epsilon: float = 0.02
    t0: float = 5.0
    eta: float = 0.5
    n0: int = 1
    heldout_fraction: float = 0.1
    tune: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Hessian(_Record):
    SECTION = "hessian"
    subsamples: int = 10
    fraction: float = 0.1
    max_iter: int = 50
    tol: float = 1.0e-4
    batch_size: int = 32


@dataclass(frozen=True)
class Qat(_Record):
    """qat: the training loop after an assignment is fixed (its keys win over train's: aqbench.qat.loop_settings),
    and the soft targets."""

    SECTION = "qat"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 2.0e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float | None = 1.0
    max_steps: int | None = None
    select_every: int | str | None = None
    distill: bool = False
    temperature: float = 2.0
    alpha: float = 0.5


@dataclass(frozen=True)
class GroupStudy(_Record):
    SECTION = "group_study"
    groups: list
    budgets: list


@dataclass(frozen=True)
class Report(_Record):
    SECTION = "report"
    published: bool = False


@dataclass(frozen=True)
class Latency(_Record):
    SECTION = "onnx.latency"
    enabled: bool = True
    batch_sizes: list = field(default_factory=lambda: [1, 32])
    length: int = 128
    seconds: float = 1.0


@dataclass(frozen=True)
class Onnx(_Record):
    SECTION = "onnx"
    NESTED = {"latency": Latency}
    export: bool = True
    eval_examples: int | None = None
    latency: Latency = field(default_factory=Latency)


@dataclass(frozen=True)
class MethodSettings(_Record):
    """What a method stage gets (aqbench.config.method_settings; the search's too, search_settings): the
    sections its registry entry names, None for those it does not (fp gets none)."""

    train: Train | None = None
    quant: Quant | None = None
    lq: Lq | None = None
    aciq: Aciq | None = None
    ocs: Ocs | None = None
    mse: Mse | None = None
    gptq: Gptq | None = None
    adaround: Adaround | None = None
    smoothquant: Smoothquant | None = None
    qbert: Qbert | None = None
    aq: Aq | None = None
    qat: Qat | None = None

    SECTION = "of a method's settings"
    NESTED = {
        "train": Train,
        "quant": Quant,
        "lq": Lq,
        "aciq": Aciq,
        "ocs": Ocs,
        "mse": Mse,
        "gptq": Gptq,
        "adaround": Adaround,
        "smoothquant": Smoothquant,
        "qbert": Qbert,
        "aq": Aq,
        "qat": Qat,
    }


@dataclass(frozen=True)
class TableSettings(_Record):
    """What the tables read from a config (aqbench.config.report_settings): whether to show the published
    numbers, the usual groups per matrix, the group study (None = none)."""

    SECTION = "of the tables' settings"
    NESTED = {"group_study": GroupStudy}
    published: bool = False
    groups: int = 128
    group_study: GroupStudy | None = None
