"""A stage's code version changes with the code it runs, and only with that code."""

import importlib.util
import shutil

import pytest
from conftest import REPO

from aqbench import codeversion

STAGES = ["prepare", "finetune", "quantize", "hessian", "search", "export", "latency", "aggregate", "tables",
          "figures", "report"]  # fmt: skip


def copy_of_package(tmp_path):
    """codeversion loaded from a copy of the package, so the copy's files can be edited."""
    shutil.copytree(REPO / "aqbench", tmp_path / "aqbench", ignore=shutil.ignore_patterns("__pycache__"))
    spec = importlib.util.spec_from_file_location("codeversion_copy", tmp_path / "aqbench" / "codeversion.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, tmp_path / "aqbench"


def test_every_stage_the_rules_run_has_a_version_and_its_modules():
    for stage in STAGES:
        assert len(codeversion.code_version(stage)) == 16
        assert "aqbench.errors" in codeversion.stage_modules(stage)
    assert "aqbench.quant.quantizer" in codeversion.stage_modules("quantize")
    assert "aqbench.quant.quantizer" not in codeversion.stage_modules("tables")  # the report needs no quantizer
    assert "aqbench.deploy.export" in codeversion.stage_modules("export")  # through cli.py's own _export_onnx
    # _export_onnx's local variable `main` is not cli.main (which reaches every command): no report code
    assert not {"aqbench.report.html", "aqbench.config"} & set(codeversion.stage_modules("export"))
    with pytest.raises(KeyError, match="no command"):
        codeversion.code_version("nonsense")


def test_the_quantize_stage_runs_the_method_modules_the_registry_names():
    modules = set(codeversion.stage_modules("quantize"))
    assert {"aqbench.methods.lq", "aqbench.methods.ocs", "aqbench.methods.qbert", "aqbench.methods.aq"} <= modules
    assert {"aqbench.quant.calibration", "aqbench.qat", "aqbench.train"} <= modules  # what the methods import
    assert "aqbench.methods.lq" not in codeversion.stage_modules("tables")  # the report reads the registry only


def test_a_code_change_reruns_the_stages_that_import_it_and_a_comment_or_docstring_reruns_nothing(tmp_path):
    cv, package = copy_of_package(tmp_path)
    before = {s: cv.code_version(s) for s in STAGES}
    quantizer = package / "quant" / "quantizer.py"
    text = quantizer.read_text()
    quantizer.write_text('"""Another docstring."""\n# a comment\n' + text.split('"""', 2)[2].lstrip("\n") + "\n\n")
    cv.code_version.cache_clear(), cv._module_digest.cache_clear(), cv._function_digest.cache_clear()
    assert {s: cv.code_version(s) for s in STAGES} == before
    quantizer.write_text(text + "\nSOMETHING_NEW = 1\n")
    cv.code_version.cache_clear(), cv._module_digest.cache_clear(), cv._function_digest.cache_clear()
    after = {s: cv.code_version(s) for s in STAGES}
    changed = {s for s in STAGES if after[s] != before[s]}
    assert {"quantize", "export", "search"} <= changed
    assert not changed & {"prepare", "aggregate", "tables", "figures"}
