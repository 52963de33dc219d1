"""The checks of aqbench.config.load beyond the schema: a model's architecture and train values, the smallest
search budget, and the sequence lengths. Each mistake stops the config load with one line naming the key;
the search and the export refuse a run with every weight pruned."""

import copy
import json

import pytest
from conftest import REPO, build_tiny, tiny_architecture

from aqbench import config as C
from aqbench.errors import AqbenchError
from aqbench.settings import Data, MethodSettings, Train

DEMO = C.read_yaml(REPO / "config" / "config.yaml")


def demo(**changes):
    """The demo config with changes at dotted keys: demo(**{"train.max_length": 1})."""
    cfg = copy.deepcopy(DEMO)
    for key, value in changes.items():
        *parents, last = key.split(".")
        section = cfg
        for p in parents:
            section = section.setdefault(p, {})
        section[last] = value
    return cfg


def refused(cfg):
    """The one-line message load gives a config."""
    with pytest.raises(AqbenchError) as e:
        C.load(cfg)
    message = str(e.value)
    assert message.startswith("config error: ") and "Fix" in message and "\n" not in message, message
    return message


# --- models.<name>.architecture ----------------------------------------------------------------------------------


def test_a_misspelt_architecture_key_is_refused_not_ignored():
    message = refused(demo(**{"models.bert.architecture.hiden_size": 32}))
    assert "unknown key 'hiden_size' in models.bert.architecture" in message
    assert "did you mean 'hidden_size'" in message
    # the allowed keys come from BertConfig itself, less what aqbench sets from the tokenizer
    allowed = message.split(": ", 2)[2].split(". Fix")[0].split(", ")
    assert "num_attention_heads" in allowed and "vocab_size" not in allowed and "pad_token_id" not in allowed


def test_hidden_size_not_divisible_by_the_heads_is_refused():
    message = refused(demo(**{"models.bert.architecture.hidden_size": 33}))
    assert "hidden_size 33 at models.bert.architecture.hidden_size is not divisible by num_attention_heads 4" in message


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("vocab_size", 100, "'vocab_size' at models.bert.architecture is set by aqbench"),
        ("is_decoder", True, "'is_decoder' at models.bert.architecture would make the model a decoder"),
        ("num_hidden_layers", 0, "0 at models.bert.architecture.num_hidden_layers is not a positive integer"),
        (
            "hidden_dropout_prob",
            1.0,
            "1.0 at models.bert.architecture.hidden_dropout_prob is not a dropout probability",
        ),
        ("hidden_act", "gleu", "'gleu' at models.bert.architecture.hidden_act is not an activation"),
        (
            "type_vocab_size",
            1,
            "type_vocab_size 1 at models.bert.architecture.type_vocab_size cannot tell the two segments",
        ),
        ("use_cache", "yes", "models.bert.architecture is not a valid BertConfig"),
    ],
)
def test_architecture_values_a_bert_cannot_be_built_from_are_refused(key, value, expected):
    assert expected in refused(demo(**{f"models.bert.architecture.{key}": value}))


# --- models.<name>.train -----------------------------------------------------------------------------------------


def test_a_misspelt_key_in_a_models_train_is_refused_not_ignored():
    message = refused(demo(**{"models.distil.train": {"lrr": 1}}))
    assert "unknown key 'lrr' in models.distil.train; allowed keys: batch_size" in message


def test_a_negative_learning_rate_is_refused_in_a_models_train_and_in_train():
    assert "models.bert.train.lr: -1 is less than or equal to the minimum of 0" in refused(
        demo(**{"models.bert.train": {"lr": -1}})
    )
    assert "train.lr: -1 is less than or equal to the minimum of 0" in refused(demo(**{"train.lr": -1}))


def test_a_models_train_replaces_only_the_values_it_sets():
    # the per-model train reuses train's schema but not its defaults, which would hide the task's overrides
    cfg = C.load(DEMO)
    assert cfg["models"]["distil"]["train"] == {"epochs": 1}
    assert C.model_train_settings(cfg, "distil", "squad")["max_length"] == 128  # squad's override, kept


# --- budgets -----------------------------------------------------------------------------------------------------


def test_a_budget_below_one_group_per_matrix_is_refused_with_the_bound():
    # the demo: aq.bits [0, 2, 4, 8] and quant.groups 8, so one 2-bit group per matrix is 2 / 8 = 0.25 bits per weight
    message = refused(demo(**{"aq.budgets": [0.01]}))
    assert "aq cannot search budgets [0.01] (bits per weight) at aq.budgets: below 0.25 bits per weight" in message
    assert "Fix: give aq.budgets values of at least 0.25" in message
    message = refused(demo(**{"aq.budgets": None, "budgets": [2.47, 0.01]}))
    assert "budgets [0.01] (bits per weight) at budgets:" in message
    # the group study at 1 group per matrix: one 2-bit group is the whole matrix
    message = refused(demo(**{"methods": ["aq"], "group_study": {"groups": [1, 8], "budgets": [1.5]}}))
    assert "at group_study.budgets: below 2 bits per weight" in message
    C.load(demo(**{"aq.budgets": [0.25]}))  # the bound itself can be searched


def _tiny_checkpoint(tmp_path):
    """A tiny sst2 classifier saved as a checkpoint (not fine-tuned: the search only needs one) and its data."""
    from aqbench.data import prepare

    task, _, model, tokenizer = build_tiny("sst2", n_train=60)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    prepare(
        task,
        Data.from_dict(
            {
                "source": "synthetic",
                "seed": 0,
                "synthetic": {"n_train": 60, "n_eval": 10},
                "max_train_examples": None,
                "max_eval_examples": None,
            }
        ),
        tmp_path / "data",
    )
    return task, model


def test_the_search_refuses_to_prune_every_weight(tmp_path):
    from aqbench.search import search

    task, _ = _tiny_checkpoint(tmp_path)
    cfg = C.load(
        {
            "tasks": ["sst2"],
            "methods": ["aq"],
            "budgets": [1.97],
            "models": {"bert": {"source": "config", "architecture": tiny_architecture()}},
            "train": {"max_length": 16, "device": "cpu"},
            "quant": {"groups": 4, "calibration_examples": 8},
            "aq": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 8},
        }
    )
    # 0.001 bits per weight of the 2-layer, 32-wide encoder: 16 bits, less than any group costs at 2 bits
    with pytest.raises(
        AqbenchError,
        match=r"search sst2 b0\.001: every encoder weight was pruned .*nothing was "
        r"saved\. Fix: raise the budget \(aq\.budgets or budgets\) to at least",
    ):
        search(
            task,
            tmp_path / "model",
            tmp_path / "data",
            0.001,
            MethodSettings.from_dict(C.search_settings(cfg, "sst2")),
            0,
            tmp_path / "search",
            label="b0.001",
        )
    assert not (tmp_path / "search").exists()


def test_the_export_refuses_a_run_with_every_weight_pruned(tiny_bert, tmp_path):
    from aqbench.export import export_model
    from aqbench.quant.assignment import uniform
    from aqbench.quant.modules import quantize_model
    from aqbench.tasks import get_task

    assignment = uniform(tiny_bert, 2, 4, "sym")
    for layer in assignment.layers.values():
        layer.bits = [0] * layer.groups
    quantize_model(tiny_bert, assignment)
    with pytest.raises(AqbenchError, match="its run prunes every encoder weight. Fix: delete the run and its search"):
        export_model(get_task("sst2"), tiny_bert, assignment, tmp_path / "packed.safetensors")
    assert not (tmp_path / "packed.safetensors").exists()


# --- sequence lengths --------------------------------------------------------------------------------------------


def test_a_max_length_too_short_for_the_task_is_refused():
    message = refused(demo(**{"train.max_length": 1}))
    assert "max_length 1 at train.max_length is too short for sst2: its inputs need at least 3 tokens" in message
    # a sentence pair needs [CLS] a [SEP] b [SEP]
    assert "too short for mnli: its inputs need at least 5" in refused(
        demo(**{"train.max_length": 4, "tasks": ["mnli"]})
    )


def test_a_squad_window_too_short_for_question_and_context_is_refused():
    message = refused(demo(**{"task_overrides.squad.train": {"max_length": 8, "doc_stride": 4}}))
    assert (
        "doc_stride 4 at task_overrides.squad.train.doc_stride is not below the 3 context tokens a window of "
        "max_length 8 (task_overrides.squad.train.max_length) holds"
    ) in message
    # null doc_stride: squad's usual 128, more than such a window holds
    message = refused(demo(**{"task_overrides.squad.train": {"max_length": 8}}))
    assert "doc_stride 128 at train.doc_stride (null: squad's usual 128)" in message


def test_a_doc_stride_not_below_max_length_is_refused():
    message = refused(demo(**{"task_overrides.squad.train": {"max_length": 64, "doc_stride": 64}}))
    assert "doc_stride 64 at task_overrides.squad.train.doc_stride is not below the 31 context tokens" in message
    assert "Fix: set doc_stride below 31, or max_length to at least 132" in message
    C.load(demo(**{"task_overrides.squad.train": {"max_length": 64, "doc_stride": 30}}))


def test_a_max_length_beyond_the_position_embeddings_of_a_config_model_is_refused():
    message = refused(demo(**{"train.max_length": 200}))
    assert (
        "max_length 200 at train.max_length is longer than the 128 position embeddings of models.bert "
        "(models.bert.architecture.max_position_embeddings) for sst2"
    ) in message
    # a model's own train, and the student (it copies bert's embeddings)
    message = refused(demo(**{"models.distil.train": {"max_length": 129}}))
    assert (
        "max_length 129 at models.distil.train.max_length is longer than the 128 position embeddings of models.distil"
        in message
    )
    # without max_position_embeddings, BertConfig's default 512 applies: squad's usual 384 fits, 600 does not
    arch = {k: v for k, v in DEMO["models"]["bert"]["architecture"].items() if k != "max_position_embeddings"}
    C.load(
        demo(
            **{"models.bert.architecture": arch, "task_overrides.squad.train": {"max_length": None, "doc_stride": None}}
        )
    )
    message = refused(demo(**{"models.bert.architecture": arch, "train.max_length": 600}))
    assert (
        "the 512 position embeddings of models.bert (models.bert.architecture.max_position_embeddings not set"
        in message
    )


def test_a_max_length_beyond_the_position_embeddings_of_a_local_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 64}))
    local = {"source": "local", "path": str(tmp_path)}
    message = refused(demo(**{"models.bert": local, "methods": ["fp", "lq"]}))
    assert (
        f"max_length 128 at task_overrides.squad.train.max_length is longer than the 64 position embeddings of "
        f"models.bert (max_position_embeddings in {tmp_path / 'config.json'}) for squad"
    ) in message
    # a missing directory is left to the job that reads it; a hub model's positions are unknown here
    C.load(demo(**{"models.bert": {"source": "local", "path": str(tmp_path / "nowhere")}, "methods": ["fp", "lq"]}))
    C.load(
        demo(
            **{
                "models.bert": {"source": "hub", "path": "bert-base-uncased"},
                "methods": ["fp", "lq"],
                "train.max_length": 4096,
            }
        )
    )


# --- what stays valid --------------------------------------------------------------------------------------------


def test_every_shipped_config_stays_valid():
    for path in sorted((REPO / "config").glob("*.yaml")):
        C.load_file(path)


def test_the_squad_featurizer_truncates_a_long_question_instead_of_failing():
    from aqbench.tasks.kinds import featurize, span_qa

    task, splits, _, tokenizer = build_tiny("squad", n_train=40)
    ex = dict(splits["train"][0], question=" ".join([splits["train"][0]["question"]] * 20))
    assert len(tokenizer(ex["question"])["input_ids"]) > 48
    features = featurize(task, [ex], tokenizer, Train(max_length=48, doc_stride=16))  # the question alone fills 48
    assert span_qa.max_query_length(48) == 22 and span_qa.context_length(48) == 23
    for row in features.inputs:
        assert len(row["input_ids"]) <= 48 and row["input_ids"].index(tokenizer.sep_token_id) <= 1 + 22


# --- data.train_from_eval, models from a package -------------------------------------------------------------------


def test_a_training_split_from_the_eval_split_is_refused_for_a_task_with_two():
    message = refused(demo(**{"task_overrides.mnli.data": {"train_from_eval": 0.5}}))
    assert "data.train_from_eval is set for task mnli, which has 2 evaluation splits" in message
    C.load(demo(**{"task_overrides.squad.data": {"train_from_eval": 0.5}}))  # one eval split: accepted


def test_a_model_in_a_package_that_is_not_installed_names_the_install():
    message = refused(demo(**{"models.bert": {"source": "package", "package": "no_such_model_pkg", "path": "model"}}))
    assert "package 'no_such_model_pkg', which is not installed" in message and "pip install -e '.[real]'" in message
    assert "has source package but no package" in refused(demo(**{"models.bert": {"source": "package"}}))
