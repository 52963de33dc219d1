"""Config validation: defaults, one clear message per mistake, per-task overrides, the list of runs."""

import copy

import pytest
from conftest import REPO

from aqbench import config as C
from aqbench.errors import AqbenchError
from aqbench.settings import MethodSettings, Quant

DEMO = C.read_yaml(REPO / "config" / "config.yaml")


def with_(**changes):
    cfg = copy.deepcopy(DEMO)
    cfg.update(changes)
    return cfg


def test_shipped_configs_are_valid():
    for name in ("config.yaml", "ci.yaml", "paper.yaml", "local-example.yaml"):
        C.load_file(REPO / "config" / name)


def test_defaults_fill_omitted_keys():
    cfg = C.load(
        {"tasks": ["sst2"], "methods": ["fp"], "models": {"bert": {"source": "hub", "path": "bert-base-uncased"}}}
    )
    assert cfg["seeds"] == [0] and cfg["quant"]["groups"] == 128 and cfg["quant"]["grid"] == "asym"
    assert cfg["train"]["lr"] == 2e-5 and cfg["data"]["synthetic"]["n_train"] == 8000
    assert cfg["models"]["bert"]["tokenizer_vocab_size"] == 2000


@pytest.mark.parametrize(
    "cfg,message",
    [
        (with_(taks=["sst2"]), "unknown key 'taks' in the top level; allowed keys: aciq, adaround, aq, budgets, data,"),
        (with_(tasks=["sst2", "sts2"]), "'sts2' at tasks[1] is not allowed; use one of: sst2, mnli, conll03, squad"),
        (with_(methods=["fp", "magic"]), "'magic' at methods[1] is not allowed; use one of: fp, lq, aciq, ocs"),
        (with_(ocs={"expand_ratios": [0.0]}), "ocs.expand_ratios[0]: 0.0 is less than or equal to the minimum of 0"),
        (with_(train={**DEMO["train"], "lr": "fast"}), "train.lr: 'fast' is not of type 'number'"),
        (with_(lq={"bits": [8, 1]}), "1 at lq.bits[1] is not allowed"),
        (with_(quant={**DEMO["quant"], "grid": "nf4"}), "'nf4' at quant.grid is not allowed; use one of: asym, sym"),
        (with_(task_overrides={"squad": {"train": {"epochs": 0}}}), "in task_overrides.squad.train"),
        (with_(task_overrides={"squad": {"qat": {"max_steps": 0}}}), "in task_overrides.squad.qat"),
        (with_(task_overrides={"squad": {"aq": {"budgets": [2.0]}}}), "task_overrides.squad.aq"),
        (with_(models={"bert": {"source": "local"}}), "models.bert has source local but no path"),
        (
            with_(qbert={"budgets": [2.47, 1.97]}),
            "qbert cannot meet budgets [1.97] (bits per weight): its smallest bit-width is 2",
        ),
    ],
)
def test_each_mistake_gets_one_message_naming_it(cfg, message):
    with pytest.raises(AqbenchError) as e:
        C.load(cfg)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_task_overrides_apply_to_their_task_only():
    cfg = C.load(DEMO)
    assert C.stage_settings(cfg, "train", "squad")["max_length"] == 128
    assert C.stage_settings(cfg, "train", "sst2")["max_length"] == 64
    assert C.stage_settings(cfg, "data", "mnli")["synthetic"] == {"n_train": 24000, "n_eval": 500}
    # QAT's and the search's training keys too: what the method and search jobs get
    squad = {**DEMO["task_overrides"]["squad"], "qat": {"max_steps": 7}, "aq": {"batch_size": 4}}
    short = C.load(with_(task_overrides={**DEMO["task_overrides"], "squad": squad}))
    assert C.method_settings(short, "qbert", "squad")["qat"]["max_steps"] == 7
    assert C.method_settings(short, "qbert", "sst2")["qat"] == C.method_settings(cfg, "qbert", "sst2")["qat"]
    assert C.search_settings(short, "squad")["aq"]["batch_size"] == 4
    assert C.search_settings(short, "mnli")["aq"] == C.search_settings(cfg, "mnli")["aq"]


def test_runs_cover_tasks_methods_budgets_seeds():
    cfg = C.load(with_(seeds=[0, 1]))
    runs = C.runs(cfg)
    # qbert: uniform w8, w4, w2 and budgets b2.96, b2.47; aq, distil, aq_distil: one each (aq.budgets [1.97]);
    # mse, gptq, smoothquant at 5 bit-widths, adaround at 3; qbert_gptq b2.96, b2.47; aq_gptq b1.97
    assert len(runs) == 4 * (1 + 5 + 5 + 15 + 5 + 3 + 5 + 5 + 3 + 5 + 2 + 1) * 2
    assert ("mnli", "bert", "qbert", "b2.47", 0) in runs and ("mnli", "bert", "qbert", "w2", 1) in runs
    assert ("sst2", "bert", "lq", "w2", 1) in runs and ("squad", "bert", "fp", "fp32", 0) in runs
    assert ("conll03", "bert", "aq", "b1.97", 0) in runs and ("conll03", "distil", "aq_distil", "b1.97", 1) in runs
    assert ("sst2", "distil", "distil", "fp32", 0) in runs


def test_settings_json_is_stable():
    assert C.as_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_the_group_study_adds_labelled_runs_of_qbert_and_aq_only():
    from aqbench.budget import average_bits, label_groups
    from aqbench.methods.common import settings_for_budget

    cfg = C.load(
        with_(
            methods=["qbert", "aq", "aq_distil"],
            quant={**DEMO["quant"], "groups": 128},
            group_study={"groups": [1, 128, 768], "budgets": [2.47]},
        )
    )
    # the demo's qbert budgets [2.96, 2.47] and aq budgets [1.97]; b2.47 at 128 groups is the usual run, once
    assert C.budgets(cfg, "qbert") == ["w8", "w4", "w2", "b2.96", "b2.47", "b2.47-g1", "b2.47-g768"]
    assert C.budgets(cfg, "aq") == ["b1.97", "b2.47-g1", "b2.47", "b2.47-g768"]
    assert C.budgets(cfg, "aq_distil") == ["b1.97"]  # Table 2 compares Q-BERT and AQ-BERT
    assert (
        average_bits("b2.47-g768", "aq") == 2.47 and label_groups("b2.47-g768") == 768 and label_groups("b2.47") is None
    )
    assert settings_for_budget(MethodSettings(quant=Quant(groups=128)), "b2.47-g1") == MethodSettings(
        quant=Quant(groups=1)
    )
    with pytest.raises(AqbenchError, match="qbert cannot meet budgets \\[1.5\\]"):
        C.load(with_(methods=["qbert"], budgets=[2.96], group_study={"groups": [1], "budgets": [1.5]}))


def test_numbers_given_as_text_by_snakemake_config_become_numbers():
    """`snakemake --config seeds=[0,1,2] budgets=[2.5]` hands the list items over as strings."""
    cfg = C.load(with_(seeds=["0", "1", "2"], budgets=["2.5"], lq={"bits": ["8", "2"]}, tasks=["sst2"]))
    assert (cfg["seeds"], cfg["budgets"], cfg["lq"]["bits"]) == ([0, 1, 2], [2.5], [8, 2])
    with pytest.raises(AqbenchError, match="seeds\\[1\\]"):
        C.load(with_(seeds=["0", "one"]))
