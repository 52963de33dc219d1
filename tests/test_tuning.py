"""The tuning split (data.tuning_fraction) and the hyperparameters the suite chooses on it (aq.tune)."""

import json

import pytest
from conftest import REPO

from aqbench.data import load_split, prepare, split_eval, split_tuning
from aqbench.errors import AqbenchError
from aqbench.settings import Data, Synthetic
from aqbench.tasks import get_task, task_names


@pytest.mark.parametrize("name", task_names())
def test_the_tuning_split_never_overlaps_training_or_evaluation(name, tmp_path):
    task = get_task(name)
    settings = Data(synthetic=Synthetic(n_train=200, n_eval=40), max_train_examples=150, tuning_fraction=0.1)
    counts = prepare(task, settings, tmp_path / "data")
    ids = json.loads((tmp_path / "data" / "ids.json").read_text())
    assert counts["tuning"] == len(ids["tuning"]) == 20 and counts["train"] == len(ids["train"]) == 150
    assert not set(ids["train"]) & set(ids["tuning"])  # by index into the source's training examples
    source = task.synthesize(settings.seed, 200, 40)
    assert load_split(tmp_path / "data", "tuning") == [source["train"][i] for i in ids["tuning"]]
    assert load_split(tmp_path / "data", "train") == [source["train"][i] for i in ids["train"]]
    for split in task.eval_splits:  # the evaluation split is another split of the source, untouched
        assert load_split(tmp_path / "data", split) == source[split]
    if name == "squad":  # split by question, so no question (and none of its windows) is on two sides
        question = lambda split: {ex["id"] for ex in load_split(tmp_path / "data", split)}
        assert not question("tuning") & question("train") and not question("tuning") & question("validation")


def test_the_tuning_split_is_seeded_and_a_fraction_that_leaves_nothing_is_refused():
    assert split_tuning(100, 0.1, 1) == split_tuning(100, 0.1, 1) != split_tuning(100, 0.1, 2)
    assert split_tuning(10, 0.0, 1) == (list(range(10)), [])
    with pytest.raises(AqbenchError, match="tuning_fraction 0.01 of 10 training examples leaves no tuning"):
        split_tuning(10, 0.01, 1)


def test_max_tuning_examples_scores_a_seeded_subset_and_the_rest_of_the_share_stays_out_of_training(tmp_path):
    task = get_task("sst2")
    settings = Data(synthetic=Synthetic(n_train=200, n_eval=40), tuning_fraction=0.2, max_tuning_examples=15)
    assert prepare(task, settings, tmp_path / "a") == {"train": 160, "validation": 40, "tuning": 15}
    ids = json.loads((tmp_path / "a" / "ids.json").read_text())
    assert set(ids["tuning"]) <= set(split_tuning(200, 0.2, settings.seed)[1])
    prepare(task, settings, tmp_path / "b")
    assert (tmp_path / "a" / "tuning.jsonl").read_text() == (tmp_path / "b" / "tuning.jsonl").read_text()


def test_a_training_split_carved_from_the_eval_split_keeps_each_article_on_one_side():
    task = get_task("squad")
    examples = [{"id": f"q{i}", "title": f"article{i % 7}", "context": f"c{i % 7}"} for i in range(70)]
    splits = split_eval(task, {"validation": examples}, 0.5, seed=3)
    titles = {side: {ex["title"] for ex in splits[side]} for side in ("train", "validation")}
    assert len(titles["train"]) == 4 and len(titles["validation"]) == 3 and not titles["train"] & titles["validation"]
    assert sorted(ex["id"] for side in splits.values() for ex in side) == sorted(ex["id"] for ex in examples)
    assert (
        split_eval(task, {"validation": examples}, 0.5, seed=3)
        == splits
        != split_eval(task, {"validation": examples}, 0.5, seed=4)
    )
    with pytest.raises(AqbenchError, match="leaves no evaluation examples"):
        split_eval(task, {"validation": examples}, 0.99, seed=3)
    with pytest.raises(AqbenchError, match="task mnli, which has 2 evaluation splits"):
        split_eval(get_task("mnli"), {}, 0.5, seed=3)


def _trial(tmp_path, name, value, size_weight, t0=5.0):
    d = tmp_path / "trials" / name
    d.mkdir(parents=True)
    (d / "alpha.safetensors").write_bytes(name.encode())
    (d / "assignment.json").write_text(json.dumps({"format": 1, "meta": {"budget": "b1.97"}, "layers": {}}))
    trace = {
        "settings": {"size_weight": size_weight, "t0": t0, "epochs": 4},
        "tuning": None if value is None else {"split": "tuning", "metric": "accuracy", "value": value},
    }
    (d / "trace.json").write_text(json.dumps(trace))
    return d


def test_the_sweep_keeps_the_trial_best_on_the_tuning_split_and_records_the_choice(tmp_path):
    from aqbench.tuning import choose, describe

    dirs = [
        _trial(tmp_path, "size_weight=0.1", 80.0, 0.1),
        _trial(tmp_path, "size_weight=0.3", 85.0, 0.3),
        _trial(tmp_path, "size_weight=1.0", 85.0, 1.0),  # equal to 0.3: the first in the sweep's order wins
    ]
    record = choose(dirs, tmp_path / "search")
    assert record["chosen"] == "size_weight=0.3" and record["settings"] == {"size_weight": 0.3}
    assert (tmp_path / "search" / "alpha.safetensors").read_bytes() == b"size_weight=0.3"
    meta = json.loads((tmp_path / "search" / "assignment.json").read_text())["meta"]
    assert meta["tuning"]["trials"] == {"size_weight=0.1": 80.0, "size_weight=0.3": 85.0, "size_weight=1.0": 85.0}
    assert json.loads((tmp_path / "search" / "trace.json").read_text())["tuning_choice"] == record
    assert describe(record).startswith("size_weight=0.3 (tuning-split accuracy 85.00")
    assert all((d / "trace.json").is_file() for d in dirs)  # the trials stay, so a rerun redoes none


def test_a_sweep_without_a_tuning_split_is_refused(tmp_path):
    from aqbench.tuning import choose

    dirs = [_trial(tmp_path, "a", None, 0.1), _trial(tmp_path, "b", None, 1.0)]
    with pytest.raises(AqbenchError, match="no tuning score"):
        choose(dirs, tmp_path / "search")
    assert not (tmp_path / "search").exists()
    one = choose(dirs[:1], tmp_path / "single")  # no sweep: the one search is kept as it is
    assert one["chosen"] == "a" and one["trials"] == {"a": None}


def test_the_sweep_is_every_combination_and_needs_a_tuning_split():
    from aqbench import config as aqconfig

    base = aqconfig.load_file(REPO / "config" / "ci.yaml")
    cfg = aqconfig.load({**base, "aq": {**base["aq"], "tune": {"size_weight": [0.1, 1.0], "t0": [5.0, 2.0]}}})
    names = [n for n, _ in aqconfig.search_trials(cfg)]
    assert names == [
        "size_weight=0.1,t0=5.0",
        "size_weight=0.1,t0=2.0",
        "size_weight=1.0,t0=5.0",
        "size_weight=1.0,t0=2.0",
    ]
    trial = aqconfig.trial_settings(cfg, "sst2", names[2])["aq"]
    assert (trial["size_weight"], trial["t0"]) == (1.0, 5.0) and "tune" not in trial
    with pytest.raises(AqbenchError, match="tuning_fraction 0"):
        aqconfig.load({**cfg, "data": {**cfg["data"], "tuning_fraction": 0}})
    plain = aqconfig.load({**base, "aq": {**base["aq"], "tune": {}}})
    assert aqconfig.search_trials(plain) == [("default", {})]


def test_qat_chooses_its_length_on_the_tuning_split_activation_ranges_included(tmp_path):
    """QAT with qat.select_every: the kept model is the one scored best, its activation ranges with it (they move
    during QAT), and it scores on the tuning split what the choice read."""
    import torch
    from conftest import build_tiny

    from aqbench.evaluate import tuning_scorer
    from aqbench.qat import quantization_aware_training
    from aqbench.quant.assignment import uniform
    from aqbench.settings import MethodSettings

    task = get_task("sst2")
    prepare(task, Data(synthetic=Synthetic(n_train=120, n_eval=16), tuning_fraction=0.2), tmp_path / "data")
    _, _, model, tok = build_tiny("sst2")
    settings = MethodSettings.from_dict(
        {
            "train": {"max_length": 64, "device": "cpu", "eval_batch_size": 32},
            "quant": {"groups": 4, "calibration_examples": 32},
            "qat": {"epochs": 4, "batch_size": 16, "lr": 3e-3, "select_every": 3},
        }
    )
    scored = []
    real = tuning_scorer(task, tok, tmp_path / "data", settings.train)

    def recording(m):
        scored.append({k: v.clone() for k, v in m.state_dict().items()})
        return real(m)

    recording.metric = real.metric
    import aqbench.qat as qat_module

    original = qat_module.tuning_scorer
    qat_module.tuning_scorer = lambda *a: recording
    try:
        stats = quantization_aware_training(task, model, tok, tmp_path / "data", uniform(model, 2, 4), settings, 0)
    finally:
        qat_module.tuning_scorer = original
    selection = stats["selection"]
    assert list(selection["scores"]) == ["3", "6", "9", "12", "15", "18", "21", "24"]
    chosen = list(selection["scores"]).index(str(selection["chosen_step"]))
    final = model.state_dict()
    assert any("act" in k or "lo" in k for k in final)  # activation ranges are part of the state kept
    assert all(torch.equal(final[k], scored[chosen][k]) for k in final)
    assert real(model) == selection["scores"][str(selection["chosen_step"])] == max(selection["scores"].values())


def test_a_length_chosen_on_the_tuning_split_needs_one_and_an_unset_choice_reruns_nothing():
    from aqbench import config as aqconfig

    base = aqconfig.load_file(REPO / "config" / "ci.yaml")
    for section in ("train", "qat"):
        chosen = {**base, section: {**base.get(section, {}), "select_every": "epoch"}}
        aqconfig.load(chosen)
        with pytest.raises(AqbenchError, match=rf"{section}.select_every chooses .* data.tuning_fraction 0"):
            aqconfig.load({**chosen, "data": {**base.get("data", {}), "tuning_fraction": 0}})
    with pytest.raises(AqbenchError, match="select_every"):
        aqconfig.load({**base, "train": {**base.get("train", {}), "select_every": 0}})
    # a job's params: the key is left out while unset (results made before it existed are not rerun)
    assert aqconfig.as_json({"train": {"lr": 1, "select_every": None}}) == '{"train":{"lr":1}}'
    assert aqconfig.as_json({"qat": {"select_every": 5}}) == '{"qat":{"select_every":5}}'
