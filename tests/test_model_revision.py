"""models.<name>.revision: a hub model pinned to a commit, tag or branch. It reaches every hub load, is refused where
there is no hub repository to pin, and is part of the finetune job's params (changing it reruns fine-tuning)."""

import subprocess

import pytest
import transformers
from test_workflow import SNAKEMAKE

from aqbench import config as C
from aqbench import models
from aqbench.errors import AqbenchError
from aqbench.tasks import get_task

COMMIT = "86b5e0934494bd15c9632b12f734a8a67f723594"


def hub_config(**bert):
    return {
        "tasks": ["sst2"],
        "methods": ["fp"],
        "models": {"bert": {"source": "hub", "path": "bert-base-uncased", **bert}},
    }


# --- the schema and config.load -------------------------------------------------------------------------------


@pytest.mark.parametrize("revision", [COMMIT, "v1.0", "main", None])
def test_the_schema_accepts_a_commit_tag_branch_or_null(revision):
    assert C.load(hub_config(revision=revision))["models"]["bert"]["revision"] == revision


def test_revision_defaults_to_null():
    assert C.load(hub_config())["models"]["bert"]["revision"] is None


@pytest.mark.parametrize("revision,message", [(123, "is not of type 'string', 'null'"), ("", "should be non-empty")])
def test_the_schema_refuses_a_revision_that_is_not_a_name(revision, message):
    with pytest.raises(AqbenchError, match="models.bert.revision") as e:
        C.load(hub_config(revision=revision))
    assert message in str(e.value)


@pytest.mark.parametrize(
    "bert,distil",
    [
        ({"source": "local", "path": "models/small-bert", "revision": COMMIT}, None),
        ({"source": "config", "architecture": {"hidden_size": 32}, "revision": "main"}, None),
        ({"source": "hub", "path": "bert-base-uncased"}, {"source": "student", "revision": "main"}),
    ],
)
def test_a_revision_is_refused_on_a_model_not_from_the_hub(bert, distil):
    cfg = {
        "tasks": ["sst2"],
        "methods": ["fp", "distil"],
        "models": {"bert": bert, **({"distil": distil} if distil else {})},
    }
    name = "distil" if distil else "bert"
    with pytest.raises(AqbenchError) as e:
        C.load(cfg)
    message = str(e.value)
    assert message.startswith(f"config error: models.{name}.revision is set but models.{name} has source ")
    assert f"Fix: remove models.{name}.revision, or use source hub" in message and "\n" not in message


# --- the finetune job's params ----------------------------------------------------------------------------------


def finetune_param(cfg):
    """What rule finetune's `settings` param holds of the model (workflow/rules/finetune.smk)."""
    return C.as_json({"model": C.model_spec(C.load(cfg), "bert")})


def test_a_changed_revision_changes_the_finetune_param():
    params = {finetune_param(hub_config(revision=r)) for r in (COMMIT, "main", "v1.0")}
    assert len(params) == 3 and f'"revision":"{COMMIT}"' in finetune_param(hub_config(revision=COMMIT))
    assert finetune_param(hub_config(revision=COMMIT)) != finetune_param(hub_config())


def test_a_null_revision_leaves_the_finetune_param_as_it_was_before_the_key():
    # configs written before models.<name>.revision existed keep their params: upgrading reruns nothing
    before = '{"model":{"architecture":{},"path":"bert-base-uncased","source":"hub","tokenizer_vocab_size":2000}}'
    assert finetune_param(hub_config()) == finetune_param(hub_config(revision=None)) == before


@pytest.mark.parametrize("revision", [COMMIT, "null"])
def test_the_finetune_rule_passes_the_revision_to_the_job(tmp_path, revision):
    (tmp_path / "c.yaml").write_text(
        f"results: {tmp_path}/r\nreports: {tmp_path}/p\ntasks: [sst2]\nmethods: [fp]\n"
        f"models: {{bert: {{source: hub, path: bert-base-uncased, revision: {revision}}}}}\n"
    )
    plan = subprocess.run(
        [*SNAKEMAKE, "-d", str(tmp_path), "-n", "-p", f"--configfile={tmp_path / 'c.yaml'}", "all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = plan.stdout + plan.stderr
    assert plan.returncode == 0, out[-3000:]
    finetune = next(line for line in out.splitlines() if "aqbench finetune --task sst2" in line)
    if revision == COMMIT:
        assert f'"path":"bert-base-uncased","revision":"{COMMIT}","source":"hub"' in finetune
    else:
        assert '"path":"bert-base-uncased","source":"hub"' in finetune and "revision" not in finetune


# --- the loads ----------------------------------------------------------------------------------------------------


class FakeTokenizer:
    def __len__(self):
        return 100


class FakeModel:
    config = type("Config", (), {"vocab_size": 100})()


@pytest.fixture
def loads(monkeypatch):
    """Every from_pretrained call of the classes models.load_pretrained uses, recorded instead of run (no hub here;
    conftest sets HF_HUB_OFFLINE=1, so the reachability check is skipped too)."""
    calls = []

    def fake(result):
        def from_pretrained(name_or_path, **kw):
            calls.append((name_or_path, kw))
            return result

        return staticmethod(from_pretrained)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake(FakeTokenizer()))
    for head in (
        "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification",
        "AutoModelForQuestionAnswering",
    ):
        monkeypatch.setattr(getattr(transformers, head), "from_pretrained", fake(FakeModel()))
    return calls


@pytest.mark.parametrize("task", ["sst2", "conll03", "squad"])
def test_the_revision_reaches_every_hub_load(loads, task):
    models.build(get_task(task), {"source": "hub", "path": "bert-base-uncased", "revision": COMMIT}, [], 0)
    assert len(loads) == 2  # the tokenizer and the model
    assert all(name == "bert-base-uncased" and kw["revision"] == COMMIT for name, kw in loads)


def test_a_hub_load_without_a_revision_takes_the_default_branch(loads):
    models.build(get_task("sst2"), {"source": "hub", "path": "bert-base-uncased", "revision": None}, [], 0)
    assert len(loads) == 2 and all("revision" not in kw for _, kw in loads)


def test_a_local_directory_load_ignores_a_revision(loads, monkeypatch):
    monkeypatch.setattr(models, "check_model_dir", lambda path: None)
    models.build(get_task("sst2"), {"source": "local", "path": "some/dir", "revision": COMMIT}, [], 0)
    assert len(loads) == 2 and all("revision" not in kw and kw["local_files_only"] for _, kw in loads)


def test_a_revision_the_hub_does_not_have_is_named(monkeypatch):
    from huggingface_hub.errors import RevisionNotFoundError

    def from_pretrained(name_or_path, **kw):
        cause = RevisionNotFoundError.__new__(RevisionNotFoundError)  # as the hub raises it, without an HTTP answer
        raise OSError(f"{kw['revision']} is not a valid git identifier") from cause

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", staticmethod(from_pretrained))
    with pytest.raises(AqbenchError, match=r"model 'bert-base-uncased' has no revision 'v9' on the hub\. Fix: set"):
        models.build(get_task("sst2"), {"source": "hub", "path": "bert-base-uncased", "revision": "v9"}, [], 0)
