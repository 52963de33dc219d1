"""Choosing among a sweep's searches (aq.tune): the trial whose searched model scores best on the tuning split
becomes the search of its task, model, budget and seed. The evaluation split plays no part (docs/statistics.md)."""

import json
import logging
import shutil
from pathlib import Path

from aqbench.errors import AqbenchError
from aqbench.io import atomic_dir, read_json, write_json

log = logging.getLogger(__name__)

FILES = ("assignment.json", "alpha.safetensors")


def choose(trial_dirs, out_dir):
    """Copy the best trial's search into out_dir (first of equals wins: the sweep's order); its trace.json and
    assignment meta gain a `tuning` record {chosen, settings, metric, value, trials: {name: value}}."""
    trials = {Path(d).name: read_json(Path(d) / "trace.json", what="search trace") for d in trial_dirs}
    if not trials:
        raise AqbenchError("no search trials to choose from")
    scored = {name: (t.get("tuning") or {}).get("value") for name, t in trials.items()}
    if len(trials) > 1 and None in scored.values():
        unscored = [n for n, v in scored.items() if v is None]
        raise AqbenchError(
            f"search trials {unscored} have no tuning score (the data has no tuning split). Fix: set "
            "data.tuning_fraction above 0, or leave aq.tune empty"
        )
    chosen = max(trials, key=lambda n: -float("inf") if scored[n] is None else scored[n])
    trace = trials[chosen]
    record = {
        "chosen": chosen,
        "settings": {k: trace["settings"][k] for k in _swept(trials)},
        "metric": (trace.get("tuning") or {}).get("metric"),
        "value": scored[chosen],
        "trials": scored,
    }
    source = Path(trial_dirs[list(trials).index(chosen)])
    with atomic_dir(out_dir) as tmp:
        shutil.copyfile(source / "alpha.safetensors", tmp / "alpha.safetensors")
        assignment = read_json(source / "assignment.json", what="bit assignment")  # as JSON: no torch to import
        assignment["meta"]["tuning"] = record
        write_json(tmp / "assignment.json", assignment)
        write_json(tmp / "trace.json", {**trace, "tuning_choice": record})
    log.info("search tuning: %s", describe(record))
    return record


def _swept(trials):
    """The settings that differ between trials (the swept ones)."""
    settings = [t["settings"] for t in trials.values()]
    return [k for k in settings[0] if len({json.dumps(s.get(k)) for s in settings}) > 1]


def describe(record):
    """One line: what was chosen, on what, against what."""
    if record is None or len(record["trials"]) < 2:
        return "no sweep"
    others = ", ".join(f"{n}: {v:.2f}" for n, v in record["trials"].items())
    return f"{record['chosen']} (tuning-split {record['metric']} {record['value']:.2f}; trials {others})"
