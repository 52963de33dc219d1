"""Per-example outcomes, the paired tests (McNemar, bootstrap, Holm) and the verdicts they back."""

import math
import random

import numpy as np
import pytest

from aqbench.outcomes import read_outcomes, write_outcomes
from aqbench.report.stats import compare, holm, mcnemar, pool
from aqbench.tasks import get_task
from aqbench.tasks.kinds import classification, span_qa, tagging


def test_mcnemar_matches_a_hand_computation_and_is_symmetric():
    # 2x2 table: both right 5, only a right 1, only b right 6, both wrong 3
    a = np.array([1] * 5 + [1] * 1 + [0] * 6 + [0] * 3, bool)
    b = np.array([1] * 5 + [0] * 1 + [1] * 6 + [0] * 3, bool)
    by_hand = 2 * (math.comb(7, 0) + math.comb(7, 1)) / 2**7  # two-sided binomial(7, 1/2) tail at 1
    assert mcnemar(a, b) == pytest.approx(by_hand) == pytest.approx(0.125)
    assert mcnemar(b, a) == mcnemar(a, b)
    assert mcnemar(a, a) == 1.0
    # balanced disagreements: the tail reaches past the middle, capped at 1
    assert mcnemar(np.array([1, 0], bool), np.array([0, 1], bool)) == 1.0


def test_identical_runs_differ_by_zero_with_p_one():
    rng = np.random.default_rng(0)
    correct = {"correct": rng.random(300) < 0.8}
    r = compare("classification", "accuracy", correct, correct, resamples=500)
    assert (r["diff"], r["low"], r["high"], r["p"]) == (0.0, 0.0, 0.0, 1.0)
    f1 = {"exact_match": (rng.random(300) < 0.5).astype(float), "f1": rng.random(300)}
    r = compare("span_qa", "f1", f1, f1, resamples=500)
    assert (r["diff"], r["p"]) == (0.0, 1.0) and r["test"] == "paired bootstrap"


def test_the_bootstrap_interval_covers_a_known_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    true_diff, trials, covered = 5.0, 200, 0
    for t in range(trials):
        base = rng.random(200)
        a = {"exact_match": np.zeros(200), "f1": np.clip(base + 0.05 + rng.normal(0, 0.1, 200), -10, 10)}
        b = {"exact_match": np.zeros(200), "f1": base}
        # the population difference of the means is exactly 0.05 (5 points): the noise has mean 0
        r = compare("span_qa", "f1", a, b, resamples=1000, seed=t)
        covered += r["low"] <= true_diff <= r["high"]
    assert 0.88 <= covered / trials <= 0.99


def test_a_real_difference_is_significant_and_the_interval_excludes_zero():
    rng = np.random.default_rng(2)
    a = rng.random(1000) < 0.85
    b = a.copy()
    b[np.flatnonzero(a)[:60]] = False  # b gets 60 of a's right answers wrong
    r = compare("classification", "accuracy", {"correct": a}, {"correct": b}, resamples=2000)
    assert r["diff"] == pytest.approx(6.0) and r["low"] > 0 and r["p"] < 1e-10 and r["test"] == "McNemar (exact)"


def test_holm_multiplies_the_kth_smallest_by_m_minus_k_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([]) == []


def test_pooling_concatenates_seeds_in_order():
    pooled = pool({1: {"correct": np.array([0, 0], bool)}, 0: {"correct": np.array([1], bool)}})
    assert pooled["correct"].tolist() == [True, False, False]


def test_outcomes_recompute_every_kinds_metrics_exactly(tmp_path):
    rng = random.Random(0)
    sst2 = get_task("sst2")
    examples = [{"label": rng.randint(0, 1)} for _ in range(50)]
    preds = [rng.randint(0, 1) for _ in examples]
    out = classification.outcomes(sst2, preds, examples)
    assert classification.from_outcomes(out) == pytest.approx(classification.score(sst2, preds, examples))

    conll = get_task("conll03")
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]
    examples = [{"tags": [rng.choice(tags) for _ in range(rng.randint(1, 12))]} for _ in range(80)]
    preds = [[rng.choice(tags) for _ in ex["tags"]] for ex in examples]
    out = tagging.outcomes(conll, preds, examples)
    assert tagging.from_outcomes(out) == pytest.approx(tagging.score(conll, preds, examples))

    squad = get_task("squad")
    words = ["the cat", "a dog", "cat", "Dog sat", ""]
    examples = [{"answers": {"text": rng.sample(words[:4], 2)}} for _ in range(40)]
    preds = [rng.choice(words) for _ in examples]
    out = span_qa.outcomes(squad, preds, examples)
    assert span_qa.from_outcomes(out) == pytest.approx(span_qa.score(squad, preds, examples))

    write_outcomes(tmp_path / "outcomes.npz", out)
    back = read_outcomes(tmp_path / "outcomes.npz")
    assert set(back) == set(out) and all(np.array_equal(back[k], out[k]) for k in out)


def test_conll_f1_on_resampled_sentences_matches_seqeval_on_the_same_sentences():
    from seqeval.metrics import f1_score

    rng = random.Random(3)
    conll = get_task("conll03")
    tags = ["O", "B-PER", "I-PER", "B-MISC"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 8))] for _ in range(30)]
    pred = [[rng.choice(tags) for _ in g] for g in gold]
    out = tagging.outcomes(conll, pred, [{"tags": g} for g in gold])
    idx = np.array([rng.randrange(30) for _ in range(30)])
    resampled = tagging.from_outcomes({k: v[idx] for k, v in out.items()})["f1"]
    assert resampled == pytest.approx(100 * f1_score([gold[i] for i in idx], [pred[i] for i in idx]))


def _outcomes_for(tmp_path, run, correct):
    write_outcomes(tmp_path / "results" / "runs" / run / "outcomes.npz", {"correct": np.asarray(correct, bool)})


def test_a_margin_not_significant_after_holm_is_a_tie_and_a_significant_one_a_win(tmp_path):
    from test_report import seeds, summary_csv

    from aqbench.report.aggregate import load_summary, over_seeds
    from aqbench.report.compare import front_marks, verdict, winners
    from aqbench.report.paired import paired_tests

    n = 400
    base = np.zeros(n, bool)
    base[:320] = True  # 80%
    lq, aciq = base.copy(), base.copy()
    aciq[:4] = False  # 79%: 4 discordant pairs, all one way: p = 0.125
    fp, aq, qbert = np.zeros(n, bool), np.zeros(n, bool), base.copy()
    fp[:362], aq[:360] = True, True  # 90.5% and 90%: 2 discordant pairs; aq against qbert: 40, all one way
    runs = [
        ("fp", "fp32", 90.5, 1.0, fp),
        ("lq", "w2", 80.0, 0.1, lq),
        ("aciq", "w2", 79.0, 0.1, aciq),
        ("aq", "b1.97", 90.0, 0.09, aq),
        ("qbert", "b1.97", 80.0, 0.09, qbert),
    ]
    rows = []
    for method, budget, value, size, correct in runs:
        rows += seeds("sst2", method, budget, [value], size)
        _outcomes_for(tmp_path, f"sst2/bert/{method}/{budget}/seed0", correct)
    summary = load_summary(summary_csv(tmp_path, rows))
    paired = paired_tests(summary, resamples=500, out=tmp_path / "paired.csv")
    assert set(paired.family) == {"winners", "front"}
    found = {w["budget"]: w for w in winners(over_seeds(summary), "sst2", paired)}
    assert found["w2"]["tie"] and found["w2"]["winners"] == ["lq", "aciq"]
    assert "not significant" in verdict(found["w2"]) and "McNemar (exact) p = 0.12" in verdict(found["w2"])
    assert not found["b1.97"]["tie"] and "95% CI [+" in verdict(found["b1.97"])
    # without the tests, one seed: the old rule (a win, with the noise unmeasured)
    assert {w["budget"]: w for w in winners(over_seeds(summary), "sst2")}["w2"]["winners"] == ["lq"]
    # the front, smallest first: aq, then fp, which is not significantly better (2 discordant pairs)
    front = front_marks(over_seeds(summary), "sst2", paired)
    assert [(r.method, better) for r, _, better in front] == [("aq", True), ("fp", False)]
    assert front[1][1]["diff"] == pytest.approx(0.5) and front[1][1]["p_holm"] == pytest.approx(0.5)


def test_the_papers_comparison_across_budgets_is_tested_in_a_family_of_its_own(tmp_path):
    """[AQ-BERT] Table 1 compares AQ-BERT at ~2 bits with pruning (b1.97) against Q-BERT's 2-bit model: two budgets
    no winners table puts side by side. Each searched model at <= 2 bits gets that test; nothing else does."""
    from test_report import seeds, summary_csv

    from aqbench.report.aggregate import load_summary
    from aqbench.report.paired import paired_tests

    n = 200
    correct = lambda k: np.arange(n) < k
    runs = [
        ("bert", "qbert", "w2", 50.0, correct(100)),
        ("bert", "qbert", "b2.47", 60.0, correct(120)),
        ("bert", "aq", "b2.47", 82.0, correct(164)),
        ("bert", "aq", "b1.97", 80.0, correct(160)),
        ("distil", "aq_distil", "b1.97", 79.0, correct(158)),
    ]
    rows = []
    for model, method, budget, value, outcome in runs:
        rows += seeds("sst2", method, budget, [value], 0.1, model=model)
        _outcomes_for(tmp_path, f"sst2/{model}/{method}/{budget}/seed0", outcome)
    paired = paired_tests(load_summary(summary_csv(tmp_path, rows)), resamples=200)
    papers = paired[paired.family == "papers"]
    assert sorted(zip(papers.a_method, papers.a_budget, papers.b_method, papers.b_budget)) == [
        ("aq", "b1.97", "qbert", "w2"),
        ("aq_distil", "b1.97", "qbert", "w2"),
    ]
    assert papers.set_index("a_method")["diff"].to_dict() == pytest.approx({"aq": 30.0, "aq_distil": 29.0})
    assert (papers.p_holm >= papers.p).all() and (papers.p_holm < 0.05).all()
    from aqbench.report.compare import paper_lines

    lines = paper_lines(paired, "sst2")
    assert len(lines) == 2 and lines[0].startswith("aq b1.97 against qbert w2: +30.00 (95% CI [+")
