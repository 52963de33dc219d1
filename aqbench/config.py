"""The run configuration: schema validation with one clear message, defaults, per-task settings, the runs.

The Snakefile calls `load` on Snakemake's config and `runs` to know what to build; the rules pass each stage
the settings it needs (`stage_settings`), so a config change reruns exactly the jobs it affects.
"""

import copy
import json
from pathlib import Path

import yaml

from aqbench.errors import AqbenchError

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
# the model each method compresses: bert (the teacher) or distil (its distilled student)
MODEL_OF_METHOD = {"fp": "bert", "lq": "bert", "aciq": "bert", "ocs": "bert", "qbert": "bert", "aq": "bert",
                   "distil": "distil", "aq_distil": "distil"}
PTQ_METHODS = ("fp", "lq", "aciq", "ocs", "distil")  # no training: one job per task runs a method's whole sweep
SEARCH_METHODS = ("aq", "aq_distil")  # a cached search per budget, then QAT
EXPORTED_METHODS = ("lq", "aciq", "ocs", "qbert", "aq", "aq_distil")  # quantized: written as packed files


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
        return (f"unknown key {', '.join(map(repr, extra))} in {where}"
                + (f"; allowed keys: {', '.join(allowed)}" if allowed else ""))
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
    """Fill omitted keys from the schema's defaults, recursively (objects only)."""
    schema = _resolve(schema, root)
    if not isinstance(instance, dict):
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
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
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
    study = (config["group_study"] or {}).get("budgets", [])
    if "qbert" in config["methods"]:
        below = [b for b in (config["qbert"]["budgets"] or config["budgets"]) + study if b < min(config["qbert"]["bits"])]
        if below:
            raise AqbenchError(f"config error: qbert cannot meet budgets {below} (bits per weight): its smallest bit-width "
                               f"is {min(config['qbert']['bits'])} and Q-BERT does not prune. Fix: set qbert.budgets (and group_study.budgets) to the "
                               f"budgets it can meet (and add {min(config['qbert']['bits'])} to qbert.uniform_bits for its "
                               "smallest model), or give qbert.bits a lower bit-width")
    if set(SEARCH_METHODS) & set(config["methods"]):
        smallest = min(config["aq"]["bits"])
        below = [b for b in (config["aq"]["budgets"] or config["budgets"]) + study if b < smallest]
        if below:
            raise AqbenchError(f"config error: aq cannot meet budgets {below} (bits per weight) with candidates "
                               f"{config['aq']['bits']}. Fix: add 0 (pruning) to aq.bits or set aq.budgets")
        if not (config["aq"]["budgets"] or config["budgets"]):
            raise AqbenchError("config error: aq needs size budgets. Fix: set budgets (or aq.budgets), e.g. [2.96, 2.47, 1.97]")
    for name, spec in config["models"].items():
        if spec["source"] in ("local", "hub") and not spec.get("path"):
            raise AqbenchError(f"config error: models.{name} has source {spec['source']} but no path. Fix: set "
                               f"models.{name}.path to a {'directory' if spec['source'] == 'local' else 'hub model name'}")
        if spec["source"] == "config" and not spec.get("architecture"):
            raise AqbenchError(f"config error: models.{name} has source config but no architecture. Fix: give BertConfig "
                               "arguments (hidden_size, num_hidden_layers, ...) in models.{name}.architecture")
    needs_distil = sorted({"distil", "aq_distil"} & set(config["methods"]))
    if needs_distil and "distil" not in config["models"]:
        raise AqbenchError(f"config error: methods {needs_distil} need models.distil. Fix: add models.distil, e.g. "
                           "{source: student} (every other block of bert, trained by distillation) or {source: hub, "
                           "path: distilbert-base-uncased}")
    if config["models"]["bert"]["source"] == "student":
        raise AqbenchError("config error: models.bert cannot be a student (it is the teacher). Fix: use source config, "
                           "local or hub for models.bert")
    return config


def load_file(path, schema_path=None):
    return load(read_yaml(path), schema_path)


def _merge(base, override):
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def search_settings(config, task):
    """What the aq_search stage needs: the quantization, training (lengths, device) and search settings."""
    return {"quant": config["quant"], "train": stage_settings(config, "train", task), "aq": config["aq"]}


def model_train_settings(config, model, task):
    """Fine-tuning settings of a model for a task: train, the task's overrides, then the model's own `train`."""
    return _merge(stage_settings(config, "train", task), config["models"][model].get("train", {}))


def stage_settings(config, section, task=None):
    """A config section with the task's overrides applied (e.g. squad's longer max_length)."""
    settings = config[section]
    if task is not None:
        settings = _merge(settings, config["task_overrides"].get(task, {}).get(section, {}))
    return settings


def report_settings(config):
    """What the tables and the report read from a config (a partial one gets the defaults): whether to show the
    published numbers, the usual groups per matrix and the group study."""
    return {"published": (config.get("report") or {}).get("published", False),
            "groups": (config.get("quant") or {}).get("groups", 128), "group_study": config.get("group_study")}


def as_json(obj):
    """Settings as a compact, key-sorted JSON string: a rule parameter that reruns its job when it changes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def budgets(config, method):
    """The budget labels a method runs at: fp32 for FP, w<bits> for uniform weight bits, w<bits>-r<ratio> for OCS,
    b<avg bits> for a mixed-precision budget."""
    if method == "fp":
        return ["fp32"]
    if method in ("lq", "aciq"):
        return [f"w{b}" for b in config[method]["bits"]]
    if method == "ocs":
        return [f"w{b}-r{r:g}" for b in config["ocs"]["bits"] for r in config["ocs"]["expand_ratios"]]
    if method == "qbert":
        return _unique([f"w{b}" for b in config["qbert"]["uniform_bits"]] + mixed_budgets(config, "qbert")
                       + group_study_budgets(config, "qbert"))
    if method == "distil":
        return ["fp32"]
    if method in SEARCH_METHODS:
        return _unique(mixed_budgets(config, "aq") + group_study_budgets(config, method))
    raise AqbenchError(f"unknown method {method!r}")


def _unique(labels):
    return list(dict.fromkeys(labels))


GROUP_STUDY_METHODS = ("qbert", "aq")  # AQ-BERT's Table 2 compares these two


def group_study_budgets(config, method):
    """The group study's runs of a method: b<bits>-g<groups>, or plain b<bits> at quant.groups (the usual run)."""
    study = config.get("group_study")
    if not study or method not in GROUP_STUDY_METHODS:
        return []
    return [f"b{b:g}" + ("" if g == config["quant"]["groups"] else f"-g{g}") for b in study["budgets"]
            for g in study["groups"]]


def bits_label(budget):
    """A budget label's bits part, without a method's suffix: w2-r0.05 -> w2, b2.47-g12 -> b2.47, fp32 -> fp32.
    Runs at the same bits label are compared with each other."""
    return budget.split("-")[0]


def label_groups(budget):
    """The groups per matrix a budget label asks for (b2.47-g12 -> 12), None when it uses quant.groups."""
    for part in budget.split("-")[1:]:
        if part.startswith("g") and part[1:].isdigit():
            return int(part[1:])
    return None


def mixed_budgets(config, method):
    """b<avg bits> labels of a method's size budgets (average bits per encoder weight of the model it compresses:
    the same label is half the MB on a 6-block student, as AQ-BERT's Table 3): its own `budgets` if it has them,
    else the top-level ones."""
    own = config.get(method, {}).get("budgets")
    return [f"b{b:g}" for b in (config["budgets"] if own is None else own)]


def runs(config):
    """Every (task, model, method, budget, seed) the config asks for, in a stable order."""
    return [(task, MODEL_OF_METHOD[method], method, budget, seed)
            for task in config["tasks"] for method in config["methods"]
            for budget in budgets(config, method) for seed in config["seeds"]]


def run_path(config, task, model, method, budget, seed):
    """The directory of one run (aqbench.runs)."""
    return f"{config['results']}/runs/{task}/{model}/{method}/{budget}/seed{seed}"


def packed_files(config):
    """packed.json of every quantized run the config asks for (aqbench.export), in runs() order."""
    return [f"{run_path(config, *run)}/packed.json" for run in runs(config) if run[2] in EXPORTED_METHODS]


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
    return [f"{config['results']}/latency/{t}/seed{s}.json" for t in config["tasks"] for s in config["seeds"]]


def method_settings(config, method, task):
    """What a method stage needs: nothing for fp; quantization and evaluation settings and the method's own section
    for the PTQ methods (OCS with clipping also reads the ACIQ section)."""
    if method in ("fp", "distil"):
        return {}
    if method in SEARCH_METHODS:
        return {"quant": config["quant"], "train": stage_settings(config, "train", task), "qat": config["qat"]}
    out = {"quant": config["quant"], "train": stage_settings(config, "train", task), method: config[method]}
    if method == "ocs" and config["ocs"]["clip"] == "aciq":
        out["aciq"] = config["aciq"]
    if method == "qbert":
        out["qat"] = config["qat"]
    return out
