"""Two backends' outputs on the same features, compared: the largest difference, the predictions that
changed, and which of those changes rounding explains.

A quantized model's activations pass through round(); a float difference of one unit in the last place in
front of one can move a value by a whole step, so a second implementation of the same arithmetic (ONNX
Runtime's kernels sum in another order than PyTorch's) does not give identical logits, and where the run's
own decision was a near tie it can change. A change is counted as a near tie when the reference's margin
between the two choices is at most TIE_FACTOR times the output difference seen on that example, that
difference counted up to ROUNDING of the outputs' largest magnitude: a broken export differs by more than
rounding, and its changes are then not excused by its own large differences. Any other change means the
export is wrong.

On a deep model with quantized activations rounding flips cascade, and the differences rounding explains grow
far beyond 1% of the scale. Given the PyTorch run's outputs under a perturbation of its float arithmetic
(aqbench.deploy.sensitivity), the cap rises to the largest difference the perturbation caused, provided the
other backend's differences look like it: their 90th percentile at most NOISE_FACTOR times the perturbed
copy's. A broken export moves most outputs and keeps the 1% cap.
"""

import numpy as np

TIE_FACTOR = 2.0
ROUNDING = 1e-2  # of the outputs' largest magnitude: at most this much difference can excuse a change
NOISE_FACTOR = 2.0  # a backend whose typical difference exceeds the perturbed copy's by more is not rounding
TYPICAL = 90  # the percentile of the per-feature differences that says what is typical


def _max_diff(a, b):
    return max(float(np.abs(a[k] - b[k]).max()) for k in a) if a else 0.0


def compare(kind, features, reference, other, examples, perturbed=None):
    """{max_abs_diff, max_abs_output, changed, near_ties, unexplained, cap, ...} of `other` against `reference`
    (lists of per-feature output dicts, as aqbench.prediction.predict returns them); perturbed: the reference
    model's outputs under a float perturbation, which widens the cap when `other` differs like it does."""
    diffs = [_max_diff(r, o) for r, o in zip(reference, other, strict=True)]
    scale = max((float(np.abs(v).max()) for r in reference for v in r.values()), default=0.0)
    cap, noise = ROUNDING * scale, {}
    if perturbed is not None and diffs:
        moved = [_max_diff(r, p) for r, p in zip(reference, perturbed, strict=True)]
        typical, typical_moved = float(np.percentile(diffs, TYPICAL)), float(np.percentile(moved, TYPICAL))
        like_rounding = typical <= NOISE_FACTOR * typical_moved
        if like_rounding:
            cap = max(cap, max(moved))
        noise = {
            "typical_diff": typical,
            "perturbed_typical_diff": typical_moved,
            "perturbed_max_diff": max(moved),
            "like_rounding": like_rounding,
        }
    changed = ties = 0
    excusable = [min(d, cap) for d in diffs]
    for ref_margin, slack in _changes(kind, features, reference, other, examples, excusable):
        changed += 1
        ties += ref_margin <= TIE_FACTOR * slack
    return {
        "max_abs_diff": max(diffs, default=0.0),
        "max_abs_output": scale,
        "changed": changed,
        "near_ties": ties,
        "unexplained": changed - ties,
        "cap": cap,
        **noise,
    }


def _changes(kind, features, reference, other, examples, diffs):
    """(the reference's margin of the decision that changed, the output difference that could explain it)."""
    if kind == "classification":
        for r, o, d in zip(reference, other, diffs):
            a, b = int(np.argmax(r["logits"])), int(np.argmax(o["logits"]))
            if a != b:
                yield float(r["logits"][a] - r["logits"][b]), d
    elif kind == "tagging":
        for r, o, d, extra in zip(reference, other, diffs, features.extra):
            words = [j for j, w in enumerate(extra["first_subtoken_word"]) if w is not None and j < len(r["logits"])]
            a, b = np.argmax(r["logits"], -1), np.argmax(o["logits"], -1)
            for j in words:
                if a[j] != b[j]:
                    yield float(r["logits"][j, a[j]] - r["logits"][j, b[j]]), d
    elif kind == "span_qa":
        from aqbench.tasks.kinds.span_qa import best_spans

        ref_spans, other_spans = best_spans(features, reference, examples), best_spans(features, other, examples)
        by_example = {}
        for f, ex in enumerate(features.example_index):
            by_example[ex] = max(by_example.get(ex, 0.0), diffs[f])
        for ex, (r, o) in enumerate(zip(ref_spans, other_spans)):
            if r[-1] == o[-1]:
                continue
            if o[1] is None or r[1] is None:  # one side found no valid span at all: never a tie
                yield float("inf"), 0.0
                continue
            f, s, e = o[1:4]
            other_score = float(reference[f]["start_logits"][s] + reference[f]["end_logits"][e])
            # a span's score is a sum of two logits, so two differences can add up
            yield float(r[0]) - other_score, 2 * by_example.get(ex, 0.0)
    else:
        raise ValueError(f"unknown task kind {kind!r}")
