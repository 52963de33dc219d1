"""Who wins at which size: the Pareto front of metric against encoder size, and the winners at each budget, where a
difference within the seeds' spread, or not significant in a paired test after Holm's correction, is a tie.

Works on the cells of `over_seeds` (mean, std and n per task, model, method, budget and metric), main metric only,
and on the paired tests of aqbench.report.paired (a frame with one row per comparison; None: none were run).
"""

import pandas as pd

from aqbench import registry
from aqbench.budget import MIXED, base_label, kind_of, label_bits, label_groups, series
from aqbench.report.stats import ALPHA


def main_cells(cells, task):
    """The task's main-metric cells, without the group study's extra runs (they have their own table)."""
    t = cells[(cells.task == task) & cells["main"]]
    return t[[label_groups(b) is None for b in t.budget]]


def pareto_front(points, cost="size_mb"):
    """True for each point no other point beats: none is at most as large and at least as good, and better in one.
    points: a frame with the cost column (size_mb, or a latency) and mean. Equal points are both on the front."""
    size, score = points[cost].to_numpy(), points["mean"].to_numpy()
    front = []
    for s, m in zip(size, score):
        dominated = ((size <= s) & (score >= m) & ((size < s) | (score > m))).any()
        front.append(not dominated)
    return pd.Series(front, index=points.index)


def spread(a, b):
    """The noise two cells' difference is judged against: the larger standard deviation over seeds (0 with one seed
    each, where there is no estimate of the noise)."""
    return max(a["std"] if a["n"] > 1 else 0.0, b["std"] if b["n"] > 1 else 0.0)


def is_tie(a, b, test=None):
    """Equal means, a difference smaller than the spread of the seeds, or (test: the pair's paired-test row) one
    not significant after Holm's correction."""
    if a["mean"] == b["mean"] or abs(a["mean"] - b["mean"]) < spread(a, b):
        return True
    return test is not None and not test["p_holm"] < ALPHA


def cell_id(row):
    return (row["model"], row["method"], row["budget"])


def budget_groups(cells, task):
    """(model, budget, contenders sorted best first) for every model and budget two or more series ran."""
    t = main_cells(cells, task)
    t = t[~t.method.isin(registry.names(kind=registry.FP))]  # full-precision rows are the reference, not contenders
    t = t.assign(_key=t.budget.map(base_label))
    keys = sorted(t.groupby(["model", "_key"], sort=False).groups, key=lambda k: -label_bits(k[1]))
    for model, key in keys:
        g = t[(t.model == model) & (t._key == key)]
        if len(g) >= 2:
            g = g.assign(series=[series(m, b) for m, b in zip(g.method, g.budget)])
            yield model, key, g.sort_values("mean", ascending=False, kind="stable")


def front_points(cells, task):
    """The task's Pareto front (metric against encoder size), smallest first."""
    t = main_cells(cells, task)
    return t[pareto_front(t)].sort_values(["size_mb", "mean"], kind="stable")


def paper_pairs(cells, task):
    """[AQ-BERT] Table 1's claim at its smallest size: each searched model (aq, aq_distil, ...) at a budget of 2
    bits per weight or less against Q-BERT's 2-bit model (qbert w2), where both ran. The winners table never puts
    them side by side (their budgets differ: 1.97 against 2 bits), so this family tests the claim itself."""
    t = main_cells(cells, task)
    two_bit = t[(t.method == "qbert") & (t.budget == "w2")]
    searched = t[
        t.method.isin(registry.names(kind=registry.SEARCH))
        & t.budget.map(lambda b: kind_of(b) == MIXED and label_bits(b) <= 2)
    ]
    return [
        {"family": "papers", "a": cell_id(a), "b": cell_id(b)}
        for _, a in searched.iterrows()
        for _, b in two_bit.iterrows()
    ]


def comparisons(cells, task):
    """The pairs the paired tests compare, by family (the table whose claims they back): "winners" = each budget's
    best against every other contender, "front" = each Pareto point against the next smaller one, "papers" = the
    papers' own comparison across budgets (paper_pairs). [{family, a: (model, method, budget), b: (...)}], a the
    better (or the larger, on the front; the searched model, in papers)."""
    out = paper_pairs(cells, task)
    for _, _, g in budget_groups(cells, task):
        best = g.iloc[0]
        out += [{"family": "winners", "a": cell_id(best), "b": cell_id(r)} for _, r in g.iloc[1:].iterrows()]
    front = front_points(cells, task)
    rows = [r for _, r in front.iterrows()]
    out += [{"family": "front", "a": cell_id(big), "b": cell_id(small)} for small, big in zip(rows, rows[1:])]
    return out


def test_lookup(paired, task, family):
    """{(a, b): test row} of one task's family of paired tests ({} when there are none)."""
    if paired is None or paired.empty:
        return {}
    p = paired[(paired.task == task) & (paired.family == family)]
    return {
        ((r.a_model, r.a_method, r.a_budget), (r.b_model, r.b_method, r.b_budget)): r._asdict() for r in p.itertuples()
    }


def winners(cells, task, paired=None):
    """Per model and budget that two or more series ran: the best mean and every series tied with it.
    Returns a list of {model, budget, metric, contenders: [{series, mean, std, n, size_mb}], winners: [series],
    tie, seeds (the smallest n), margin (best minus runner-up), spread, test (the best against the runner-up:
    the paired-test row, or None)}."""
    tests = test_lookup(paired, task, "winners")
    out = []
    for model, key, g in budget_groups(cells, task):
        best = g.iloc[0]
        test_of = lambda r, best=best: tests.get((cell_id(best), cell_id(r)))
        tied = [r for _, r in g.iterrows() if r.name == best.name or is_tie(best, r, test_of(r))]
        runner = g.iloc[1]
        out.append(
            {
                "model": model,
                "budget": key,
                "metric": best.metric,
                "contenders": [{k: r[k] for k in ("series", "mean", "std", "n", "size_mb")} for _, r in g.iterrows()],
                "winners": [r.series for r in tied],
                "tie": len(tied) > 1,
                "seeds": int(g["n"].min()),
                "margin": float(best["mean"] - runner["mean"]),
                "spread": spread(best, runner),
                "test": test_of(runner),
            }
        )
    return out


def front_marks(cells, task, paired=None):
    """The Pareto front, smallest first, as [(row, the paired test against the next smaller point or None,
    whether it is significantly better than that point)]."""
    tests = test_lookup(paired, task, "front")
    rows = [r for _, r in front_points(cells, task).iterrows()]
    out = []
    for i, r in enumerate(rows):
        test = tests.get((cell_id(r), cell_id(rows[i - 1]))) if i else None
        out.append((r, test, test is None or test["p_holm"] < ALPHA))
    return out


def interval(test):
    """A test's evidence in words: the difference's 95% interval and the corrected p-value."""
    return f"95% CI [{test['low']:+.2f}, {test['high']:+.2f}], {test['test']} p = {test['p_holm']:.2g} after Holm"


def paper_lines(paired, task):
    """The papers' family of paired tests in words, one line per pair: "aq b1.97 against qbert w2: +28.33 (95% CI
    [...], ... p = ... after Holm)"."""
    return [
        f"{a[1]} {a[2]} against {b[1]} {b[2]}: {t['diff']:+.2f} ({interval(t)})"
        for (a, b), t in test_lookup(paired, task, "papers").items()
    ]


def verdict(w):
    """One sentence on a budget's result, with the evidence: the margin and the spread it was judged against."""
    best, runner = w["contenders"][0], w["contenders"][1]
    score = lambda c: f"{c['mean']:.2f}" + (f" ± {c['std']:.2f}" if c["n"] > 1 else "")
    test = w.get("test")
    if w["tie"]:
        if w["margin"] == 0 and w["spread"] == 0:
            why = f"equal at {score(best)}"
        elif w["margin"] < w["spread"] or test is None:
            why = f"best {score(best)}; differences below the seeds' spread, {w['spread']:.2f}"
        else:
            why = (
                f"best {score(best)}, {w['margin']:.2f} ahead of {runner['series']} ({interval(test)}): not significant"
            )
        return f"tie: {', '.join(w['winners'])} ({why})"
    lead = (
        f"{best['series']} {score(best)} ahead of {runner['series']} {score(runner)}"
        + (f" (next best of {len(w['contenders']) - 1})" if len(w["contenders"]) > 2 else "")
        + f" by {w['margin']:.2f}"
    )
    if test is not None:
        lead += f" ({interval(test)})"
    if w["seeds"] < 2:
        return (
            f"{lead}; one seed, so the seeds' spread is not measured"
            if test is not None
            else (f"{lead}; one seed, so the noise is not measured")
        )
    return f"{lead}, more than the seeds' spread ({w['spread']:.2f})"
