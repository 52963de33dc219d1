"""Task registry, synthetic generators (deterministic, well-formed), preprocessing and decoding, real loaders."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_DATA, build_tiny

from aqbench.errors import AqbenchError
from aqbench.settings import Train
from aqbench.tasks import get_task, task_names
from aqbench.tasks.kinds import featurize, get_kind

DIGEST = (
    "import hashlib, json, aqbench.tasks as T; "
    "print(hashlib.md5(json.dumps({n: T.get_task(n).synthesize(7, 50, 20) for n in T.task_names()}).encode()).hexdigest())"
)


def test_registry_knows_the_four_tasks_and_names_them_on_a_typo():
    assert task_names() == ["conll03", "mnli", "squad", "sst2"]
    with pytest.raises(AqbenchError, match="known tasks are conll03, mnli, squad, sst2"):
        get_task("sts2")


def test_generators_are_deterministic_across_processes():
    """Same seed, same data, even under different hash seeds (a generator must not depend on hash())."""
    digests = {
        subprocess.run(
            [sys.executable, "-c", DIGEST],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(h), "PATH": ""},
        ).stdout
        for h in (1, 2)
    }
    assert len(digests) == 1
    in_process = hashlib.md5(
        json.dumps({n: get_task(n).synthesize(7, 50, 20) for n in task_names()}).encode()
    ).hexdigest()
    assert digests == {in_process + "\n"}


@pytest.mark.parametrize("name", ["sst2", "mnli", "conll03", "squad"])
def test_generated_examples_have_the_real_shape(name):
    task = get_task(name)
    splits = task.synthesize(3, 300, 100)
    assert set(splits) == set(task.splits)
    assert task.synthesize(4, 300, 100) != splits
    for split, examples in splits.items():
        assert len(examples) == (300 if split == "train" else 100)
        for ex in examples:
            if task.kind == "classification":
                assert all(isinstance(ex[f], str) and ex[f] for f in task.text_fields)
                assert 0 <= ex["label"] < len(task.labels)
            elif task.kind == "tagging":
                assert len(ex["tokens"]) == len(ex["tags"]) and set(ex["tags"]) <= set(task.labels)
                assert all(
                    t != "O" and (t.startswith("B-") or prev[2:] == t[2:])  # I- only continues an entity
                    for prev, t in zip(["O"] + ex["tags"], ex["tags"])
                    if t.startswith("I-")
                )
            else:
                for text, start in zip(ex["answers"]["text"], ex["answers"]["answer_start"]):
                    assert ex["context"][start : start + len(text)] == text
    if task.kind == "classification":  # every class is present in a balanced way
        counts = np.bincount([ex["label"] for ex in splits["train"]], minlength=len(task.labels))
        assert counts.min() > 0.3 * len(splits["train"]) / len(task.labels)


def test_mnli_mismatched_split_uses_genres_unseen_in_training():
    splits = get_task("mnli").synthesize(0, 500, 200)
    assert not any(p["premise"].startswith("reporters said") for p in splits["train"])
    assert any(p["premise"].startswith("reporters said") for p in splits["validation_mismatched"])


def test_tagging_labels_sit_on_the_first_subtoken_only():
    task, splits, model, tok = build_tiny("conll03")
    examples = splits["validation"][:20]
    features = featurize(task, examples, tok, Train(max_length=64))
    for row, ext, ex in zip(features.inputs, features.extra, examples):
        labelled = [(j, lab) for j, lab in enumerate(row["labels"]) if lab != -100]
        words = [ext["first_subtoken_word"][j] for j, _ in labelled]
        assert words == list(range(len(ex["tokens"])))  # exactly one labelled sub-token per word, in order
        assert [task.labels[lab] for _, lab in labelled] == ex["tags"]
    # decoding logits that point at the gold tags gives back the gold tags
    outputs = [{"logits": np.eye(len(task.labels))[np.maximum(np.array(r["labels"]), 0)]} for r in features.inputs]
    assert get_kind("tagging").decode(task, features, outputs, examples) == [ex["tags"] for ex in examples]


def test_span_labels_point_at_the_answer_and_decoding_recovers_it():
    task, splits, model, tok = build_tiny("squad")
    examples = splits["validation"][:20]
    features = featurize(task, examples, tok, Train(max_length=48, doc_stride=16))
    assert len(features) > len(examples)  # long contexts overflow into several windows
    outputs = []
    for row in features.inputs:
        start, end = np.full(len(row["input_ids"]), -10.0), np.full(len(row["input_ids"]), -10.0)
        if row["start_positions"]:
            start[row["start_positions"]], end[row["end_positions"]] = 10.0, 10.0
        outputs.append({"start_logits": start, "end_logits": end})
    predictions = get_kind("span_qa").decode(task, features, outputs, examples)
    assert predictions == [ex["answers"]["text"][0] for ex in examples]
    assert get_kind("span_qa").score(task, predictions, examples) == {"exact_match": 100.0, "f1": 100.0}


def _best_spans_by_loop(features, outputs, examples, n_best=20, max_answer_length=30):
    # the definition span_qa.best_spans computes as a table: starts, then ends, each best-first; strictly better wins
    spans = []
    for ex_i, ex in enumerate(examples):
        best = (-np.inf, None, None, None, "")
        for f in [f for f, e in enumerate(features.example_index) if e == ex_i]:
            start_logits, end_logits = outputs[f]["start_logits"], outputs[f]["end_logits"]
            offsets = features.extra[f]["offsets"]
            for s in np.argsort(start_logits)[::-1][:n_best]:
                if s >= len(offsets) or offsets[s] is None:
                    continue
                for e in np.argsort(end_logits)[::-1][:n_best]:
                    if e >= len(offsets) or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    score = start_logits[s] + end_logits[e]
                    if score > best[0]:
                        best = (score, f, int(s), int(e), ex["context"][offsets[s][0] : offsets[e][1]])
        spans.append(best)
    return spans


def test_best_spans_equals_the_loop_it_replaces_ties_included():
    from aqbench.tasks.kinds.span_qa import best_spans

    task, splits, model, tok = build_tiny("squad")
    examples = splits["validation"][:30]
    features = featurize(task, examples, tok, Train(max_length=48, doc_stride=16))
    rng = np.random.default_rng(0)
    outputs = []
    for f, row in enumerate(features.inputs):
        n = len(row["input_ids"])
        # coarse logits: many exact ties between pairs, so the order of the search decides which span is kept
        start, end = rng.integers(-3, 4, n).astype(np.float32), rng.integers(-3, 4, n).astype(np.float32)
        if f % 7 == 0:  # a window whose best pairs all run backwards or too long
            start, end = np.arange(n, dtype=np.float32), -np.arange(n, dtype=np.float32)
        if f == 3:
            start[:] = np.nan  # no valid span in this window
        outputs.append({"start_logits": start, "end_logits": end})
    for n_best, longest in ((20, 30), (5, 3), (2, 1)):
        got = best_spans(features, outputs, examples, n_best, longest)
        assert got == _best_spans_by_loop(features, outputs, examples, n_best, longest)
    assert any(span[1] is None for span in best_spans(features, outputs, examples, 2, 1))


# --- real data in ../shared/data (not part of the project; skipped where absent) -------------------------------

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")


@needs_shared
def test_local_sst2_dev_has_872_sentences():
    examples = get_task("sst2").read_local(SHARED_DATA / "sst2" / "dev.tsv")
    assert len(examples) == 872
    assert examples[0] == {"sentence": "it 's a charming and often affecting journey .", "label": 1}
    assert sum(ex["label"] for ex in examples) == 444


@needs_shared
def test_local_conll_valid_has_3250_sentences():
    examples = get_task("conll03").read_local(SHARED_DATA / "conll2003" / "valid.txt")
    assert len(examples) == 3250
    assert sum(len(ex["tokens"]) for ex in examples) == 51362


@needs_shared
def test_local_squad_dev_has_10570_questions():
    examples = get_task("squad").read_local(SHARED_DATA / "squad" / "dev-v1.1.json")
    assert len(examples) == 10570
    ex = examples[0]
    assert ex["context"][ex["answers"]["answer_start"][0] :].startswith(ex["answers"]["text"][0])
