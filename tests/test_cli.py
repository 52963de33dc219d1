"""The command line: a user-fixable problem is one line on stderr, exit status 2, and no output left behind."""

import json
import subprocess
import sys

from conftest import REPO


def aqbench(*args):
    return subprocess.run([sys.executable, "-m", "aqbench", *args], capture_output=True, text=True, timeout=300)


def test_check_config_counts_the_runs():
    out = aqbench("check-config", str(REPO / "config" / "config.yaml"))
    # 4 tasks x (fp + 5 lq + 5 aciq + 15 ocs + 5 qbert + aq + distil + aq_distil)
    assert out.returncode == 0 and "220 runs" in out.stdout


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "tasks: [sst2]\nmethods: [fp]\nmodels: {bert: {source: config, architecture: {}}}\ntrain: {lr: -1}\n"
    )
    out = aqbench("check-config", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("aqbench check-config: error: config error")
    assert "Traceback" not in out.stderr


def test_missing_local_file_names_it_and_writes_nothing(tmp_path):
    settings = {"source": "local", "seed": 0, "local_dirs": {"sst2": str(tmp_path)}}
    out = aqbench("prepare", "--task", "sst2", "--settings", json.dumps(settings), "--out", str(tmp_path / "data"))
    assert out.returncode == 2
    assert f"missing local file for task sst2, split train: {tmp_path}/train.tsv" in out.stderr
    assert not (tmp_path / "data").exists()


def test_an_unknown_settings_key_is_one_line_naming_the_section(tmp_path):
    out = aqbench("prepare", "--task", "sst2", "--settings", '{"sorce": "local"}', "--out", str(tmp_path / "data"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "error: settings error: unknown key 'sorce' in section data; allowed keys: " in out.stderr
    assert not (tmp_path / "data").exists()


def test_a_budget_lq_cannot_meet_is_refused_by_name(tmp_path):
    out = aqbench(
        "quantize",
        "--method",
        "lq",
        "--task",
        "sst2",
        "--budget",
        "w1",
        "--checkpoint",
        str(tmp_path),
        "--data",
        str(tmp_path),
        "--settings",
        "{}",
        "--out",
        str(tmp_path / "run"),
    )
    assert out.returncode == 2
    assert "budget 'w1' cannot be met by lq: it quantizes weights to w2 ... w8" in out.stderr
    assert not (tmp_path / "run").exists()


def test_make_model_saves_a_local_model_directory_that_fine_tuning_can_load(tmp_path):
    from aqbench import models
    from aqbench.tasks import get_task

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "tasks: [sst2, conll03]\nmethods: [fp]\nmodels: {bert: {source: local, path: m}}\n"
        "data: {source: synthetic, synthetic: {n_train: 50, n_eval: 5}}\n"
    )
    arch = '{"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}'
    out = aqbench(
        "make-model", "--config", str(cfg), "--out", str(tmp_path / "m"), "--vocab-size", "1000", "--architecture", arch
    )
    assert out.returncode == 0, out.stderr
    assert "not pretrained" in out.stdout and "training text of sst2, conll03" in out.stdout
    record = json.loads((tmp_path / "m" / "aqbench-model.json").read_text())
    assert record["pretrained"] is False and record["tokenizer_corpus"]["train_examples"] == {"sst2": 50, "conll03": 50}
    model, tok = models.build(get_task("conll03"), {"source": "local", "path": str(tmp_path / "m")}, [], 0)
    assert model.config.hidden_size == 32 and model.config.num_labels == 9 and 100 < len(tok) <= 1000
    assert tok.tokenize("the film is") == ["the", "film", "is"]  # words of the synthetic training text


def test_make_model_refuses_an_architecture_bertconfig_would_silently_ignore(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "tasks: [sst2]\nmethods: [fp]\nmodels: {bert: {source: local, path: m}}\n"
        "data: {source: synthetic, synthetic: {n_train: 50, n_eval: 5}}\n"
    )
    for arch, said in (
        ('{"hiden_size": 64}', "unknown key 'hiden_size' in --architecture"),
        ('{"num_attention_heads": 3}', "hidden_size 256 at --architecture.hidden_size is not divisible"),  # default 256
    ):
        out = aqbench("make-model", "--config", str(cfg), "--out", str(tmp_path / "m"), "--architecture", arch)
        assert out.returncode == 2 and said in out.stderr and "config error" not in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_check_report_without_playwright_is_one_line_naming_the_install(tmp_path):
    report = tmp_path / "report.html"
    report.write_text("<!doctype html><title>report</title>")
    hide = "import sys; sys.modules['playwright'] = None; from aqbench.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run(
        [sys.executable, "-c", hide, "check-report", str(report)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "aqbench check-report: error: the Python package playwright is not installed (it drives Chromium here): "
        "pip install -e '.[test]', or pip install playwright"
    ]
