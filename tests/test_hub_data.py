"""Hub data without the hub: each task's converter on rows shaped as the hub serves them (column names and
features of nyu-mll/glue, eriktks/conll2003's parquet export, rajpurkar/squad), the config's per-task hub
overrides, and an unreachable or offline hub failing at once with the fix named and nothing written."""

import json
import subprocess
import sys
import time

import pytest
from conftest import SHARED_DATA
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

from aqbench.data import load_examples
from aqbench.errors import AqbenchError
from aqbench.settings import Data
from aqbench.tasks import get_task
from aqbench.tasks.conll03 import TAGS

# Real rows (GLUE SST-2 validation idx 0 and a test row; MNLI validation_matched idx 0; CoNLL-2003 train sentence 0).
SST2 = Features(
    {"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"]), "idx": Value("int32")}
)
MNLI = Features(
    {
        "premise": Value("string"),
        "hypothesis": Value("string"),
        "label": ClassLabel(names=["entailment", "neutral", "contradiction"]),
        "idx": Value("int32"),
    }
)
SQUAD = Features(
    {
        "id": Value("string"),
        "title": Value("string"),
        "context": Value("string"),
        "question": Value("string"),
        "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))},
    }
)


def conll_features(ner=None):
    return Features(
        {
            "id": Value("string"),
            "tokens": List(Value("string")),
            "pos_tags": List(Value("int32")),
            "chunk_tags": List(Value("int32")),
            "ner_tags": List(ner or ClassLabel(names=list(TAGS))),
        }
    )


EU = {
    "id": "0",
    "tokens": ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    "pos_tags": [22, 42, 16, 21, 35, 37, 16, 21, 7],
    "chunk_tags": [11, 21, 11, 12, 21, 22, 11, 12, 0],
    "ner_tags": [3, 0, 7, 0, 0, 0, 7, 0, 0],
}
EU_TAGS = ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]


def rows(*dicts):
    return {k: [d[k] for d in dicts] for k in dicts[0]}


def test_glue_sst2_rows_convert_and_unlabelled_rows_are_dropped():
    split = Dataset.from_dict(
        rows(
            {"sentence": "it 's a charming and often affecting journey . ", "label": 1, "idx": 0},
            {"sentence": "uneasy mishmash of styles and genres .", "label": -1, "idx": 1},
        ),
        features=SST2,
    )
    assert get_task("sst2").hub.convert(split) == [
        {"sentence": "it 's a charming and often affecting journey .", "label": 1}
    ]


def test_glue_mnli_rows_convert_with_glue_label_order():
    split = Dataset.from_dict(
        rows(
            {
                "premise": "The new rights are nice enough",
                "hypothesis": "Everyone really likes the newest benefits ",
                "label": 1,
                "idx": 0,
            },
            {"premise": "a", "hypothesis": "b", "label": -1, "idx": 1},
        ),
        features=MNLI,
    )
    (ex,) = get_task("mnli").hub.convert(split)
    assert ex["premise"] == "The new rights are nice enough" and get_task("mnli").labels[ex["label"]] == "neutral"


def test_conll2003_class_ids_become_bio_tags():
    split = Dataset.from_dict(rows(EU), features=conll_features())
    assert split.features["ner_tags"].feature.names == list(TAGS)  # the hub's ClassLabel order
    assert get_task("conll03").hub.convert(split) == [{"tokens": EU["tokens"], "tags": EU_TAGS}]


def test_conll2003_mirrors_with_tag_strings_convert_too_and_foreign_tags_are_refused():
    strings = Dataset.from_dict(rows({**EU, "ner_tags": EU_TAGS}), features=conll_features(Value("string")))
    assert get_task("conll03").hub.convert(strings) == [{"tokens": EU["tokens"], "tags": EU_TAGS}]
    iob1 = Dataset.from_dict(
        rows({**EU, "ner_tags": ["I-ORG"] + EU_TAGS[1:-1] + ["S-X"]}), features=conll_features(Value("string"))
    )
    with pytest.raises(AqbenchError, match=r"tags \['S-X'\] outside O, B-PER"):
        get_task("conll03").hub.convert(iob1)


def test_squad_rows_convert():
    context = "Super Bowl 50 was an American football game. The American Football Conference (AFC) champion Denver Broncos won."
    split = Dataset.from_dict(
        rows(
            {
                "id": "56be4db0acb8001400a502ec",
                "title": "Super_Bowl_50",
                "context": context,
                "question": "Which NFL team represented the AFC at Super Bowl 50?",
                "answers": {"text": ["Denver Broncos", "Denver Broncos"], "answer_start": [93, 93]},
            }
        ),
        features=SQUAD,
    )
    (ex,) = get_task("squad").hub.convert(split)
    assert ex["answers"] == {"text": ["Denver Broncos", "Denver Broncos"], "answer_start": [93, 93]}
    assert context[93 : 93 + len("Denver Broncos")] == "Denver Broncos"


# --- the hub converter and the local reader give the same examples (real files; skipped where absent) -----------

needs = {
    name: pytest.mark.skipif(not (SHARED_DATA / name).is_dir(), reason=f"../shared/data/{name} is not present")
    for name in ("sst2", "conll2003", "squad")
}


@needs["conll2003"]
def test_conll_valid_through_the_hub_converter_equals_the_local_reader():
    local = get_task("conll03").read_local(SHARED_DATA / "conll2003" / "valid.txt")
    hub_rows = {
        "id": [str(i) for i in range(len(local))],
        "tokens": [ex["tokens"] for ex in local],
        "pos_tags": [[0] * len(ex["tokens"]) for ex in local],
        "chunk_tags": [[0] * len(ex["tokens"]) for ex in local],
        "ner_tags": [[TAGS.index(t) for t in ex["tags"]] for ex in local],
    }
    converted = get_task("conll03").hub.convert(Dataset.from_dict(hub_rows, features=conll_features()))
    assert len(converted) == 3250 and converted == local


@needs["squad"]
def test_squad_dev_through_the_hub_converter_equals_the_local_reader():
    local = get_task("squad").read_local(SHARED_DATA / "squad" / "dev-v1.1.json")
    hub_rows = {
        "id": [ex["id"] for ex in local],
        "title": [ex["title"] for ex in local],  # the article: a split by article (data.train_from_eval) reads it
        "context": [ex["context"] for ex in local],
        "question": [ex["question"] for ex in local],
        "answers": [ex["answers"] for ex in local],
    }
    converted = get_task("squad").hub.convert(Dataset.from_dict(hub_rows, features=SQUAD))
    assert len(converted) == 10570 and converted == local


@needs["sst2"]
def test_sst2_dev_through_the_hub_converter_equals_the_local_reader():
    local = get_task("sst2").read_local(SHARED_DATA / "sst2" / "dev.tsv")
    hub_rows = {
        "sentence": [ex["sentence"] + " " for ex in local],
        "label": [ex["label"] for ex in local],
        "idx": list(range(len(local))),
    }
    assert get_task("sst2").hub.convert(Dataset.from_dict(hub_rows, features=SST2)) == local


# --- the hub path: overrides, load errors, unreachable and offline hubs -------------------------------------------

HUB = {"source": "hub", "seed": 0}


def fake_hub(monkeypatch, result):
    """Replace only the download: record what load_dataset was asked for, return (or raise) `result`."""
    import datasets

    calls = []

    def load_dataset(path, name=None, revision=None, **kw):
        calls.append((path, name, revision))
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def conll_dict():
    split = Dataset.from_dict(rows(EU), features=conll_features())
    return DatasetDict({"train": split, "validation": split, "test": split})


def test_the_default_conll_source_is_the_parquet_export(monkeypatch):
    calls = fake_hub(monkeypatch, conll_dict())  # conftest sets HF_HUB_OFFLINE=1: no reachability pre-check
    splits = load_examples(get_task("conll03"), Data.from_dict(HUB))
    assert calls == [("eriktks/conll2003", None, "refs/convert/parquet")]
    assert splits == {
        "train": [{"tokens": EU["tokens"], "tags": EU_TAGS}],
        "validation": [{"tokens": EU["tokens"], "tags": EU_TAGS}],
    }


def test_data_hub_overrides_path_name_and_revision_per_task(monkeypatch):
    calls = fake_hub(monkeypatch, conll_dict())
    load_examples(
        get_task("conll03"),
        Data.from_dict(
            {**HUB, "hub": {"conll03": {"path": "someone/conll-mirror", "revision": None}, "sst2": {"path": "unused"}}}
        ),
    )
    assert calls == [("someone/conll-mirror", None, None)]


def test_a_script_only_dataset_is_named_with_the_parquet_fix(monkeypatch):
    fake_hub(monkeypatch, RuntimeError("Dataset scripts are no longer supported, but found conll2003.py"))
    with pytest.raises(
        AqbenchError,
        match=r"cannot load dataset someone/conll \(config c\) for task conll03: Dataset "
        r"scripts .* revision refs/convert/parquet",
    ):
        load_examples(
            get_task("conll03"),
            Data.from_dict({**HUB, "hub": {"conll03": {"path": "someone/conll", "name": "c", "revision": None}}}),
        )


def test_a_copy_without_the_task_splits_is_named(monkeypatch):
    fake_hub(monkeypatch, DatasetDict({"train": conll_dict()["train"]}))
    with pytest.raises(AqbenchError, match="has no split validation .it has train."):
        load_examples(get_task("conll03"), Data.from_dict(HUB))


def aqbench_prepare(tmp_path, env):
    out = tmp_path / "data"
    start = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aqbench",
            "prepare",
            "--task",
            "sst2",
            "--settings",
            json.dumps(HUB),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    return done, out, time.time() - start


def clean_env(**extra):
    """The test process's environment without its HF settings (conftest sets HF_HUB_OFFLINE), plus `extra`."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE", "TRANSFORMERS_OFFLINE"))}
    return {**env, **extra}


def test_an_unreachable_hub_stops_prepare_at_once_naming_task_and_local_fix(tmp_path):
    env = clean_env(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))  # nothing listens on 9
    done, _, seconds = aqbench_prepare(tmp_path, env)
    assert done.returncode == 2 and seconds < 30
    assert done.stderr.strip().splitlines()[-1] == (
        "aqbench prepare: error: cannot load dataset nyu-mll/glue (config sst2) for task sst2 from the HuggingFace Hub: "
        "127.0.0.1 is not reachable. Fix: set data.source: local and data.local_dirs.sst2 to a directory holding "
        "train.tsv and dev.tsv in their usual format (docs/config.md; config/local-example.yaml does this), or load it "
        "once where the hub is reachable and rerun with HF_HUB_OFFLINE=1 to use the cache"
    )
    assert "Traceback" not in done.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name != "hf"] == []  # no output, no temporary left behind


def test_offline_mode_without_a_cached_copy_says_so_and_writes_nothing(tmp_path):
    env = clean_env(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    done, _, seconds = aqbench_prepare(tmp_path, env)
    assert done.returncode == 2 and seconds < 30
    assert (
        "for task sst2 from the HuggingFace Hub: HF_HUB_OFFLINE is set and it is not in the local cache. "
        "Fix: set data.source: local"
    ) in done.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name != "hf"] == []
