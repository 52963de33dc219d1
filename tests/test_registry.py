"""The method registry and the budget-label grammar: one table and one parser that everything else derives from."""

import re

import pytest
from conftest import REPO

from aqbench import config as C
from aqbench import paths, registry
from aqbench.budget import PATTERN, Budget, base_label, label_bits, label_groups, series
from aqbench.errors import AqbenchError
from aqbench.settings import MethodSettings

CONFIGS = sorted((REPO / "config").glob("*.yaml"))
SCHEMA = C.read_yaml(C.SCHEMA)


def test_the_schema_lists_exactly_the_registered_methods():
    enum = SCHEMA["properties"]["methods"]["items"]["enum"]
    assert sorted(enum) == sorted(registry.METHODS) and len(set(enum)) == len(enum)


def test_each_method_reads_sections_the_schema_defines_and_runs_a_module_with_validate_and_run():
    cfg = C.load_file(REPO / "config" / "paper.yaml")
    for spec in registry.METHODS.values():
        assert spec.model in registry.MODELS and spec.kind in (
            registry.FP,
            registry.PTQ,
            registry.QBERT,
            registry.SEARCH,
        )
        assert set(spec.settings_sections(cfg)) <= set(SCHEMA["properties"]), spec.name
        assert set(spec.settings_sections(cfg)) <= set(MethodSettings.NESTED), spec.name  # a typed record each
        module = spec.load()
        assert callable(module.validate) and callable(module.run), spec.name
    colors = [s.color for s in registry.METHODS.values()]
    markers = [s.marker for s in registry.METHODS.values()]
    assert len(set(colors)) == len(colors) and len(set(markers)) == len(markers)  # every series tells apart


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_label_a_config_asks_for_parses_back_to_itself_and_its_method_accepts_it(path):
    cfg = C.load_file(path)
    labels = 0
    for method in cfg["methods"]:
        module = registry.get(method).load()
        for label in C.budgets(cfg, method):
            budget = Budget.parse(label)
            assert budget.label == label and re.fullmatch(PATTERN, label)
            module.validate(
                label, MethodSettings.from_dict(C.method_settings(cfg, method, cfg["tasks"][0]))
            )  # raises if the method cannot
            labels += 1
    assert labels > 0


def test_budget_fields_order_and_series():
    assert Budget.parse("w4-r0.02") == Budget("uniform", 4, ratio=0.02)
    assert Budget.parse("b2.47-g12") == Budget("mixed", 2.47, groups=12)
    assert [base_label(b) for b in ("fp32", "w4-r0.02", "b2.47-g12", "b2.96")] == ["fp32", "w4", "b2.47", "b2.96"]
    assert sorted(["b2.47", "w8", "fp32", "w4-r0.01", "b2.96"], key=lambda b: Budget.parse(b).sort_key()) == [
        "fp32",
        "w8",
        "w4-r0.01",
        "b2.96",
        "b2.47",
    ]
    assert label_bits("w4-r0.02") == 4 and label_bits("nonsense") != label_bits("nonsense")  # nan
    assert label_groups("b2.47") is None and label_groups("b2.47-g768") == 768
    assert [series("ocs", "w4-r0.02"), series("aq", "b2.47-g12"), series("lq", "w4")] == [
        "ocs (r=0.02)",
        "aq (g12)",
        "lq",
    ]


@pytest.mark.parametrize("label", ["w", "b", "w4-x", "b2.4.7", "fp16", "w4-g2", "b2-r0.1", ""])
def test_a_string_that_is_not_a_label_is_refused_by_name(label):
    with pytest.raises(AqbenchError, match="budget"):
        Budget.parse(label)


def test_path_templates_fill_and_read_back():
    run = paths.run_dir("res dir/x", "sst2", "bert", "ocs", "w4-r0.02", 3)
    assert run == "res dir/x/runs/sst2/bert/ocs/w4-r0.02/seed3"
    assert paths.match(paths.RUN, run) == {
        "results": "res dir/x",
        "task": "sst2",
        "model": "bert",
        "method": "ocs",
        "budget": "w4-r0.02",
        "seed": "3",
    }
    assert paths.fill(paths.RUN, results="r", method="qbert") == "r/runs/{task}/{model}/qbert/{budget}/seed{seed}"
    assert paths.match(paths.RUN, "r/models/sst2/bert/seed0") is None
    # every run's logs live under the results directory, one set per kind of method
    assert set(paths.RUN_LOGS) == {registry.FP, registry.PTQ, registry.QBERT, registry.SEARCH}
