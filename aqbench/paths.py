"""Where every output lives: the path templates the rules, the report and the export share.

A template's fields are filled with `fill` (fields left out stay `{name}`: Snakemake wildcards) and read back
from a path with `match`. docs/outputs.md describes each file.
"""

import re
from pathlib import Path

DATA = "{results}/data/{task}"
CHECKPOINT = "{results}/models/{task}/{model}/seed{seed}"
RUN = "{results}/runs/{task}/{model}/{method}/{budget}/seed{seed}"
SPECTRUM = "{results}/hessian/{task}/{model}/seed{seed}/spectrum.json"
SEARCH = "{results}/search/{task}/{model}/{budget}/seed{seed}"
TRACE = SEARCH + "/trace.json"
# one search of the aq.tune sweep (aqbench.tuning chooses among them); beside the chosen search, not inside it,
# which is replaced as a whole when a choice is written
SEARCH_TRIAL = "{results}/search-trials/{task}/{model}/{budget}/seed{seed}/{trial}"
LATENCY = "{results}/latency/{task}/seed{seed}.json"
SUMMARY = "{results}/summary.csv"
PAIRED = "{results}/paired.csv"  # the paired tests of the winners and the Pareto front
REPORT = "{reports}/report.html"

# what a method stage writes into a run directory, and what export adds
RUN_FILES = ("assignment.json", "state.safetensors", "method.json", "metrics.json", "outcomes.npz")
PACKED_FILES = ("packed.safetensors", "packed.json")
ONNX_FILES = ("model.onnx", "onnx.json")

# the logs of the jobs that make a run, by how the method is run (aqbench.registry kinds): a post-training
# sweep (fp, ptq) logs once per method, Q-BERT per budget, AQ-BERT its search and its QAT
PTQ_LOG = "{results}/logs/ptq/{task}/{model}/{method}/seed{seed}.log"
QBERT_LOG = "{results}/logs/{method}/{task}/{model}/{budget}/seed{seed}.log"  # qbert, qbert_gptq
AQ_LOG = "{results}/logs/aq/{task}/{model}/{method}/{budget}/seed{seed}.log"
SEARCH_LOG = "{results}/logs/aq_search/{task}/{model}/{budget}/seed{seed}.log"  # the choice among the trials
SEARCH_TRIAL_LOG = "{results}/logs/aq_search/{task}/{model}/{budget}/seed{seed}/{trial}.log"
RUN_LOGS = {
    "fp": [("log", PTQ_LOG)],
    "ptq": [("log", PTQ_LOG)],
    "qbert": [("log", QBERT_LOG)],
    "search": [("log", AQ_LOG), ("search log", SEARCH_LOG)],
}


class _Keep(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def fill(template, **values):
    """The template with the given fields filled; the others stay `{name}` (Snakemake wildcards)."""
    return template.format_map(_Keep({k: str(v) for k, v in values.items()}))


def run_dir(results, task, model, method, budget, seed):
    return fill(RUN, results=results, task=task, model=model, method=method, budget=budget, seed=seed)


def match(template, path):
    """The fields of a path made from the template ({results} may hold slashes, other fields not), or None."""
    pattern, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        field = m.group(1)
        pattern += re.escape(template[pos : m.start()]) + (
            f"(?P<{field}>.+)" if field == "results" else f"(?P<{field}>[^/]+)"
        )
        pos = m.end()
    found = re.fullmatch(pattern + re.escape(template[pos:]), Path(path).as_posix())
    return found.groupdict() if found else None
