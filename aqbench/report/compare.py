"""Who wins at which size: the Pareto front of metric against encoder size, and the winners at each budget, where a
difference within the seeds' spread is a tie, not a win.

Works on the cells of `over_seeds` (mean, std and n per task, model, method, budget and metric), main metric only.
"""

import pandas as pd

from aqbench import registry
from aqbench.budget import base_label, label_bits, label_groups, series


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


def is_tie(a, b):
    """Equal means, or a difference smaller than the spread of the seeds."""
    return a["mean"] == b["mean"] or abs(a["mean"] - b["mean"]) < spread(a, b)


def winners(cells, task):
    """Per model and budget that two or more series ran: the best mean and every series tied with it.
    Returns a list of {model, budget, metric, contenders: [{series, mean, std, n, size_mb}], winners: [series],
    tie, seeds (the smallest n), margin (best minus runner-up), spread}."""
    t = main_cells(cells, task)
    t = t[~t.method.isin(registry.names(kind=registry.FP))]  # full-precision rows are the reference, not contenders
    out = []
    t = t.assign(_key=t.budget.map(base_label))
    keys = sorted(t.groupby(["model", "_key"], sort=False).groups, key=lambda k: -label_bits(k[1]))
    for model, key in keys:
        g = t[(t.model == model) & (t._key == key)]
        if len(g) < 2:
            continue
        g = g.assign(series=[series(m, b) for m, b in zip(g.method, g.budget)]).sort_values("mean", ascending=False)
        best = g.iloc[0]
        tied = [r for _, r in g.iterrows() if r.name == best.name or is_tie(best, r)]
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
            }
        )
    return out


def verdict(w):
    """One sentence on a budget's result, with the evidence: the margin and the spread it was judged against."""
    best, runner = w["contenders"][0], w["contenders"][1]
    score = lambda c: f"{c['mean']:.2f}" + (f" ± {c['std']:.2f}" if c["n"] > 1 else "")
    if w["tie"]:
        why = (
            f"equal at {score(best)}"
            if w["margin"] == 0 and w["spread"] == 0
            else f"best {score(best)}; differences below the seeds' spread, {w['spread']:.2f}"
        )
        return f"tie: {', '.join(w['winners'])} ({why})"
    lead = (
        f"{best['series']} {score(best)} ahead of {runner['series']} {score(runner)}"
        + (f" (next best of {len(w['contenders']) - 1})" if len(w["contenders"]) > 2 else "")
        + f" by {w['margin']:.2f}"
    )
    if w["seeds"] < 2:
        return f"{lead}; one seed, so the noise is not measured"
    return f"{lead}, more than the seeds' spread ({w['spread']:.2f})"
