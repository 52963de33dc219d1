"""Per-example outcomes: what each run's metric averages or sums, example by example (right / wrong, a question's
EM and F1, a sentence's entity counts), kept beside its metrics.json for the paired tests (docs/statistics.md)."""

from pathlib import Path

import numpy as np

from aqbench.io import atomic_file

FILE = "outcomes.npz"


def outcomes_path(metrics_path):
    """Where a run's outcomes live: beside its metrics.json."""
    return Path(metrics_path).with_name(FILE)


def write_outcomes(path, outcomes):
    """{name: per-example array} as one compressed .npz, written atomically."""
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **outcomes)


def read_outcomes(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
