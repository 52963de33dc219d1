"""Paired tests between two runs evaluated on the same examples (docs/statistics.md).

Every run of a task is scored on the same evaluation examples, so two runs are compared example by example:
accuracy by an exact McNemar test (only the examples the runs disagree on carry information), every other metric
(SQuAD EM / F1, CoNLL's corpus entity F1) by a paired bootstrap that resamples examples (sentences for CoNLL:
the F1 is recomputed from the resampled sentences' entity counts). Both report the difference with a 95%
bootstrap interval. With several seeds the pairs of every seed are pooled (seed s of one run against seed s of
the other). Holm's step-down correction holds the chance of any false win in one table at 5%.
"""

import math

import numpy as np

from aqbench.tasks.kinds import get_kind

ALPHA = 0.05
RESAMPLES = 10_000
_CHUNK = 500  # resamples drawn at once: bounds memory at _CHUNK x examples indices


def mcnemar(a, b):
    """Exact two-sided McNemar p-value of paired right/wrong outcomes a, b (bool arrays): under the null the
    examples only one run gets right are equally likely to be either's, a binomial(n, 1/2) over them."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


def metric_of(kind, metric, outcomes, suffix=""):
    """The function (outcomes with a leading resample axis) -> metric values of one metric of a task kind."""
    base = metric[: -len(suffix) - 1] if suffix else metric
    names = [n for n in outcomes if (n.endswith(f"_{suffix}") if suffix else True)]
    strip = (lambda n: n[: -len(suffix) - 1]) if suffix else (lambda n: n)

    def value(resampled):
        return kind.from_outcomes({strip(n): resampled[n] for n in names})[base]

    return value


def bootstrap(value, a, b, resamples=RESAMPLES, seed=0):
    """(differences value(a) - value(b) over `resamples` paired resamples of the examples, the observed one).
    a, b: {outcome name: per-example array}, the same examples in the same order."""
    n = len(next(iter(a.values())))
    observed = float(value(a) - value(b))
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, resamples, _CHUNK):
        idx = rng.integers(0, n, size=(min(_CHUNK, resamples - start), n))
        diffs.append(value({k: v[idx] for k, v in a.items()}) - value({k: v[idx] for k, v in b.items()}))
    return np.concatenate(diffs), observed


def compare(kind_name, metric, a, b, suffix="", resamples=RESAMPLES, seed=0):
    """Run a against run b on one metric: {diff (a - b, points), low, high (95% interval), p, test, n}.
    a, b: {outcome name: array}, pooled over seeds already (pool())."""
    kind = get_kind(kind_name)
    value = metric_of(kind, metric, a, suffix)
    diffs, observed = bootstrap(value, a, b, resamples, seed)
    low, high = np.percentile(diffs, [2.5, 97.5])
    correct = f"correct_{suffix}" if suffix else "correct"
    if correct in a and metric.startswith("accuracy"):
        p, test = mcnemar(a[correct], b[correct]), "McNemar (exact)"
    else:
        # two-sided: how often a resampled difference, centred on the observed one, is as far from it as 0 is
        p = (1 + int((np.abs(diffs - observed) >= abs(observed) - 1e-12).sum())) / (1 + len(diffs))
        p, test = min(1.0, p), "paired bootstrap"
    return {
        "diff": observed,
        "low": float(low),
        "high": float(high),
        "p": float(p),
        "test": test,
        "n": len(next(iter(a.values()))),
    }


def pool(per_seed):
    """One run's outcomes over several seeds, concatenated in seed order: {seed: outcomes} -> outcomes."""
    seeds = sorted(per_seed)
    return {k: np.concatenate([per_seed[s][k] for s in seeds]) for k in per_seed[seeds[0]]}


def holm(pvalues):
    """Holm's step-down adjusted p-values, in the input order (the k-th smallest is multiplied by m - k + 1 and
    made monotone)."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()
