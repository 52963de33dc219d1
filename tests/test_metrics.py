"""Every metric against hand-made cases."""

import random

import pytest

from aqbench.tasks.metrics import accuracy, entity_f1, normalize_answer, squad_exact, squad_f1, squad_scores


def test_accuracy():
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == 0.5
    with pytest.raises(ValueError):
        accuracy([], [])


def test_entity_f1_counts_whole_entities():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-MISC"]]
    # entities: gold {PER, LOC, ORG}; predicted {PER, ORG, MISC}; correct {PER, ORG}
    scores = entity_f1(pred, gold)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)


def test_entity_f1_equals_seqevals_own_scores():
    # one seqeval call gives all three: the same numbers as its f1/precision/recall functions, in the right keys
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = random.Random(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(200)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in sentence] for sentence in gold]
    pred[0] = ["B-MISC"] * len(gold[0])  # more predicted entities than gold ones: precision != recall
    scores = entity_f1(pred, gold)
    assert scores["precision"] != scores["recall"]
    assert scores == {
        "f1": f1_score(gold, pred),
        "precision": precision_score(gold, pred),
        "recall": recall_score(gold, pred),
    }


def test_a_partial_entity_span_is_wrong():
    assert entity_f1([["B-PER", "O"]], [["B-PER", "I-PER"]])["f1"] == 0.0


def test_squad_normalization_is_the_official_one():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple, a pear") == "apple pear"


def test_squad_exact_and_f1_by_hand():
    assert squad_exact("the Denver Broncos", "Denver Broncos") == 1.0
    # pred tokens {denver, broncos, won}, gold {denver, broncos}: P = 2/3, R = 1, F1 = 0.8
    assert squad_f1("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)
    assert squad_f1("", "x") == 0.0


def test_squad_takes_the_max_over_gold_answers():
    scores = squad_scores(["piano", "in 1990"], [["the piano", "a violin"], ["1991", "1990"]])
    # q1: exact with "the piano"; q2: no exact; F1 with "1990" = 2 * (1/2 * 1) / (1/2 + 1) = 2/3
    assert scores["exact_match"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx((1 + 2 / 3) / 2)
