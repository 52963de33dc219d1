"""Preprocessing, decoding and metrics on the real SST-2 / CoNLL-2003 / SQuAD v1.1 copies in ../shared/data
(skipped where absent), with real tokenizers: a WordPiece vocabulary learned on the real text, saved with a
small BERT to a temporary model directory by `make_model_dir` and loaded back through `source: local`
(AutoTokenizer). Nothing of the preprocessing is mocked."""

import collections
import json

import numpy as np
import pytest
from conftest import SHARED_DATA, tiny_architecture

from aqbench import models
from aqbench.data import prepare
from aqbench.settings import Data, Train
from aqbench.tasks import get_task
from aqbench.tasks.kinds import featurize, get_kind

TINY = tiny_architecture(max_position_embeddings=512)


def needs(name):
    return pytest.mark.skipif(not (SHARED_DATA / name).is_dir(), reason=f"../shared/data/{name} is not present")


def local_model(tmp_path_factory, task, corpus, vocab_size):
    """(model, tokenizer) loaded from a model directory saved by make_model_dir, as a user's local model is."""
    path = tmp_path_factory.mktemp(f"{task.name}-model")
    models.make_model_dir(path, corpus, vocab_size, TINY)
    return models.build(task, {"source": "local", "path": str(path)}, [], 0)


def pointing_logits(features, key_pairs):
    """Logits that point at the labels: one-hot per token (tagging) or +10 at the answer's start/end (span QA)."""
    outputs = []
    for row in features.inputs:
        if key_pairs == "tagging":
            outputs.append({"logits": np.eye(9)[np.maximum(np.array(row["labels"]), 0)]})
        else:
            start, end = np.full(len(row["input_ids"]), -10.0), np.full(len(row["input_ids"]), -10.0)
            if row["start_positions"]:  # (0, 0) = this window does not hold the answer
                start[row["start_positions"]], end[row["end_positions"]] = 10.0, 10.0
            outputs.append({"start_logits": start, "end_logits": end})
    return outputs


# --- CoNLL-2003: labels on the first sub-token of each word --------------------------------------------------------


@pytest.fixture(scope="module")
def conll(tmp_path_factory):
    task = get_task("conll03")
    train = task.read_local(SHARED_DATA / "conll2003" / "train.txt")
    valid = task.read_local(SHARED_DATA / "conll2003" / "valid.txt")
    # a small vocabulary (2000) splits a quarter of the words into several sub-tokens
    model, tokenizer = local_model(tmp_path_factory, task, models.texts(task, train), 2000)
    return task, valid, model, tokenizer


@needs("conll2003")
def test_ner_labels_sit_on_the_first_subtoken_of_every_real_word(conll):
    task, valid, model, tok = conll
    assert type(model).__name__ == "BertForTokenClassification" and model.config.num_labels == 9
    features = featurize(task, valid, tok, Train(max_length=128))
    split_words = truncated = 0
    for row, ex in zip(features.inputs, valid, strict=True):
        word_ids = tok(ex["tokens"], is_split_into_words=True, truncation=True, max_length=128).word_ids()
        pieces = collections.Counter(w for w in word_ids if w is not None)
        split_words += sum(n > 1 for n in pieces.values())
        kept = len(pieces)  # words that survive truncation to 128 tokens
        truncated += kept < len(ex["tokens"])
        first = {j for j, w in enumerate(word_ids) if w is not None and (j == 0 or word_ids[j - 1] != w)}
        assert [j for j, lab in enumerate(row["labels"]) if lab != -100] == sorted(first)  # one label per kept word
        assert [task.labels[lab] for lab in row["labels"] if lab != -100] == ex["tags"][:kept]
    assert split_words > 10_000 and truncated > 0  # the alignment is exercised, truncation too


@needs("conll2003")
def test_a_word_split_into_several_subtokens_is_labelled_once(conll):
    task, valid, _, tok = conll
    ex = valid[0]  # CRICKET - LEICESTERSHIRE TAKE OVER AT TOP AFTER INNINGS VICTORY .
    (row,) = featurize(task, [ex], tok, Train(max_length=128)).inputs
    word_ids = tok(ex["tokens"], is_split_into_words=True).word_ids()
    pieces = [j for j, w in enumerate(word_ids) if w == 2]  # LEICESTERSHIRE, B-ORG
    assert len(pieces) > 1
    assert [row["labels"][j] for j in pieces] == [task.labels.index("B-ORG")] + [-100] * (len(pieces) - 1)
    assert (
        "".join(t.removeprefix("##") for t in tok.convert_ids_to_tokens([row["input_ids"][j] for j in pieces]))
        == "leicestershire"
    )


@needs("conll2003")
def test_ner_tags_round_trip_through_labels_logits_and_decoding(conll):
    task, valid, _, tok = conll
    kind = get_kind("tagging")
    features = featurize(task, valid, tok, Train(max_length=128))
    predictions = kind.decode(task, features, pointing_logits(features, "tagging"), valid)
    for pred, ex, ext in zip(predictions, valid, features.extra):
        kept = sum(w is not None for w in ext["first_subtoken_word"])
        assert pred == ex["tags"][:kept] + ["O"] * (len(ex["tokens"]) - kept)  # words cut off are predicted O
    whole = [i for i, (p, ex) in enumerate(zip(predictions, valid)) if p == ex["tags"]]
    assert len(whole) > 3200
    assert kind.score(task, [predictions[i] for i in whole], [valid[i] for i in whole]) == {
        "f1": 100.0,
        "precision": 100.0,
        "recall": 100.0,
    }


@needs("conll2003")
def test_entity_f1_on_real_sentences_by_hand():
    task = get_task("conll03")
    valid = task.read_local(SHARED_DATA / "conll2003" / "valid.txt")[:3]
    # gold entities: LEICESTERSHIRE (ORG) | LONDON (LOC) | West Indian (MISC), Phil Simmons (PER),
    # Leicestershire (ORG), Somerset (ORG): 6 in all
    predictions = [list(ex["tags"]) for ex in valid]
    predictions[1][1] = "B-MISC"  # a spurious entity: 1996-08-30
    assert valid[2]["tokens"][4] == "Simmons" and valid[2]["tokens"][14] == "Somerset"
    predictions[2][4] = "O"  # Phil Simmons -> Phil: a partial span is a wrong entity
    predictions[2][14] = "B-LOC"  # Somerset as a place: the wrong type is a wrong entity
    # predicted 7 entities, 4 of them correct (LEICESTERSHIRE, LONDON, West Indian, Leicestershire); 6 gold
    p, r = 4 / 7, 4 / 6
    scores = get_kind("tagging").score(task, predictions, valid)
    assert scores["precision"] == pytest.approx(100 * p)
    assert scores["recall"] == pytest.approx(100 * r)
    assert scores["f1"] == pytest.approx(100 * 2 * p * r / (p + r))


# --- SQuAD v1.1: windows of 384 tokens with a stride of 128, n-best decoding back to the context -----------------


@pytest.fixture(scope="module")
def squad(tmp_path_factory):
    task = get_task("squad")
    dev = task.read_local(SHARED_DATA / "squad" / "dev-v1.1.json")
    _, tokenizer = local_model(tmp_path_factory, task, models.texts(task, dev[::5]), 8000)
    return task, dev, tokenizer


def token_aligned(tok, examples, max_tokens):
    """Indices of the examples whose first gold answer starts and ends on token boundaries of the context and
    spans at most max_tokens tokens: exactly those can a token-level span reproduce."""
    contexts = sorted({ex["context"] for ex in examples})
    offsets = dict(
        zip(contexts, tok(contexts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"])
    )
    aligned = []
    for i, ex in enumerate(examples):
        start = ex["answers"]["answer_start"][0]
        end = start + len(ex["answers"]["text"][0])
        inside = [o for o in offsets[ex["context"]] if o[0] < end and o[1] > start]
        if inside and inside[0][0] == start and inside[-1][1] == end and len(inside) <= max_tokens:
            aligned.append(i)
    return aligned


@needs("squad")
def test_squad_decoding_recovers_the_gold_text_of_real_dev_questions(squad):
    task, dev, tok = squad
    kind = get_kind("span_qa")
    assert (task.max_length, task.extra["doc_stride"], task.extra["max_answer_length"]) == (384, 128, 30)
    features = featurize(task, dev, tok, Train())  # the task's own 384 / 128
    assert max(len(row["input_ids"]) for row in features.inputs) == 384
    windows = collections.Counter(features.example_index)
    first_window = {}
    for row, ex_i in zip(features.inputs, features.example_index):
        first_window.setdefault(ex_i, row["start_positions"])
    later = {ex_i for ex_i, start in first_window.items() if start == 0}  # the answer is past the first window
    assert sum(n > 1 for n in windows.values()) > 100 and len(later) > 10

    predictions = kind.decode(task, features, pointing_logits(features, "span_qa"), dev, **task.extra)
    aligned = token_aligned(tok, dev, task.extra["max_answer_length"])
    assert len(aligned) > 10_400  # the rest start or end inside a word ('8' of '20–18') or run past 30 tokens
    assert [predictions[i] for i in aligned] == [dev[i]["answers"]["text"][0] for i in aligned]
    assert len(later & set(aligned)) > 10  # among them, answers found only in a later window
    scores = kind.score(task, predictions, dev)
    assert scores["exact_match"] > 99.0 and scores["f1"] > 99.0


@needs("squad")
def test_squad_scores_on_real_dev_questions_by_hand():
    task = get_task("squad")
    by_id = {ex["id"]: ex for ex in task.read_local(SHARED_DATA / "squad" / "dev-v1.1.json")}
    examples = [
        by_id[i]
        for i in (
            "56be4db0acb8001400a502ec",
            "56be4db0acb8001400a502ee",
            "56be8e613aeaaa14008c90d1",
            "56beab833aeaaa14008c91d2",
        )
    ]
    predictions = [
        "the Denver Broncos defeated",  # gold Denver Broncos: P 2/3, R 1 -> F1 0.8
        "Levi's Stadium in the San Francisco Bay Area",  # best of 3 golds: the long one, P 1, R 7/11 -> F1 7/9
        "golden anniversary",  # gold '"golden anniversary"': exact after normalization
        "Von",  # golds 'linebacker Von Miller', 'Von Miller', 'Miller': best P 1, R 1/2 -> F1 2/3
    ]
    scores = get_kind("span_qa").score(task, predictions, examples)
    assert scores["exact_match"] == pytest.approx(100 * 1 / 4)
    assert scores["f1"] == pytest.approx(100 * (0.8 + 7 / 9 + 1 + 2 / 3) / 4)


# --- SST-2: sentence and sentence-pair truncation, prepare from local files -----------------------------------------


@needs("sst2")
def test_real_sentences_and_pairs_truncate_as_bert_does(tmp_path_factory):
    sst2, mnli = get_task("sst2"), get_task("mnli")
    dev = sst2.read_local(SHARED_DATA / "sst2" / "dev.tsv")
    _, tok = local_model(tmp_path_factory, sst2, models.texts(sst2, dev), 1000)
    single = featurize(sst2, dev, tok, Train(max_length=16))
    assert len(single) == 872 and max(len(r["input_ids"]) for r in single.inputs) == 16
    assert all(r["input_ids"][0] == tok.cls_token_id and r["input_ids"][-1] == tok.sep_token_id for r in single.inputs)
    assert [r["labels"] for r in single.inputs] == [ex["label"] for ex in dev]
    # sentence pairs cut longest-first: both sentences keep tokens, each closed by [SEP]
    pairs = [{"premise": a["sentence"], "hypothesis": b["sentence"], "label": 0} for a, b in zip(dev[::2], dev[1::2])]
    for row in featurize(mnli, pairs, tok, Train(max_length=24)).inputs:
        assert len(row["input_ids"]) <= 24 and row["input_ids"].count(tok.sep_token_id) == 2
        assert 0 in row["token_type_ids"][1:] and 1 in row["token_type_ids"]


@needs("sst2")
def test_prepare_reads_local_sst2_and_subsamples_with_the_seed(tmp_path):
    settings = {
        "source": "local",
        "seed": 7,
        "local_dirs": {"sst2": str(SHARED_DATA / "sst2")},
        "max_train_examples": 500,
        "max_eval_examples": None,
    }
    counts = prepare(get_task("sst2"), Data.from_dict(settings), tmp_path / "a")
    # the tuning split is data.tuning_fraction (default 0.1) of all 67,349 training sentences, carved out before
    # the training subsample is drawn from the rest
    assert counts == {"train": 500, "validation": 872, "tuning": round(0.1 * 67349)}
    prepare(get_task("sst2"), Data.from_dict(settings), tmp_path / "b")
    assert (tmp_path / "a" / "train.jsonl").read_text() == (tmp_path / "b" / "train.jsonl").read_text()


@needs("squad")
def test_squads_dev_file_alone_splits_into_train_and_eval_by_article(tmp_path):
    # config/real-cpu.yaml's deviation: only dev-v1.1.json is at hand (no training file is read)
    settings = {
        "source": "local",
        "seed": 1234,
        "local_dirs": {"squad": str(SHARED_DATA / "squad")},
        "train_from_eval": 0.5,
        "tuning_fraction": 0.1,
    }
    counts = prepare(get_task("squad"), Data.from_dict(settings), tmp_path)
    assert sum(counts.values()) == 10570  # every dev question is on exactly one side
    side = {s: [json.loads(l) for l in (tmp_path / f"{s}.jsonl").open()] for s in ("train", "tuning", "validation")}
    articles = {s: {ex["title"] for ex in examples} for s, examples in side.items()}
    assert len(articles["train"] | articles["validation"]) == 48 and not articles["validation"] & (
        articles["train"] | articles["tuning"]
    )
    assert json.loads((tmp_path / "meta.json").read_text())["train_from_eval"] == 0.5
