"""The typed settings records (aqbench.settings) against the schema: the same keys and the same defaults."""

import dataclasses

import pytest

from aqbench import config as C
from aqbench import settings as S
from aqbench.errors import AqbenchError

SCHEMA = C._schema()
DEFS = SCHEMA["$defs"]
PROPS = SCHEMA["properties"]
SECTIONS = {
    "data": (S.Data, DEFS["data"]),
    "data.synthetic": (S.Synthetic, DEFS["data"]["properties"]["synthetic"]),
    "train": (S.Train, DEFS["train"]),
    "model": (S.Model, DEFS["model"]),
    **{
        name: (record, PROPS[name])
        for name, record in [
            ("quant", S.Quant),
            ("lq", S.Lq),
            ("aciq", S.Aciq),
            ("ocs", S.Ocs),
            ("qbert", S.Qbert),
            ("aq", S.Aq),
            ("hessian", S.Hessian),
            ("qat", S.Qat),
            ("group_study", S.GroupStudy),
            ("report", S.Report),
            ("onnx", S.Onnx),
        ]
    },
    "onnx.latency": (S.Latency, PROPS["onnx"]["properties"]["latency"]),
}


@pytest.mark.parametrize("section", SECTIONS)
def test_each_record_has_its_schema_sections_keys_and_defaults(section):
    record, schema = SECTIONS[section]
    fields = {f.name: f for f in dataclasses.fields(record)}
    assert set(fields) == set(schema["properties"])
    for key, prop in schema["properties"].items():
        prop = C._resolve(prop, SCHEMA)
        if "default" not in prop:
            continue
        f = fields[key]
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(value):
            assert dataclasses.asdict(value) == dataclasses.asdict(record.from_dict({}).__getattribute__(key))
            assert dataclasses.asdict(value) == dataclasses.asdict(type(value).from_dict(prop["default"]))
        else:
            assert value == prop["default"], f"{section}.{key}"


def test_a_filled_config_builds_every_record():
    cfg = C.load_file(C.SCHEMA.parent.parent.parent / "config" / "ci.yaml")
    for section, (record, _) in SECTIONS.items():
        if "." not in section and section in cfg and cfg[section] is not None:
            assert dataclasses.asdict(record.from_dict(cfg[section])) == cfg[section]
    assert S.Data.from_dict(cfg["data"]).synthetic.n_train == cfg["data"]["synthetic"]["n_train"]
    assert S.Onnx.from_dict(cfg["onnx"]).latency.batch_sizes == cfg["onnx"]["latency"]["batch_sizes"]


def test_an_unknown_key_is_refused_with_its_section_named():
    with pytest.raises(AqbenchError, match="unknown key 'calibration' in section quant"):
        S.Quant.from_dict({"calibration": 3})
    with pytest.raises(AqbenchError, match="in section onnx.latency"):
        S.Onnx.from_dict({"latency": {"lenght": 3}})
    with pytest.raises(AqbenchError, match="unknown key 'qaunt'"):
        S.MethodSettings.from_dict({"qaunt": {}})


def test_method_settings_build_the_sections_a_method_gets():
    s = S.MethodSettings.from_dict({"quant": {"groups": 4}, "train": {"max_length": 48}, "ocs": {}})
    assert s.quant.groups == 4 and s.train.max_length == 48 and s.ocs.clip == "none" and s.qat is None
    assert S.MethodSettings.from_dict({}) == S.MethodSettings()
