# Config validation, paths, wildcard constraints and resources shared by every rule.
import hashlib
import re
import os
import shlex
import sys
from pathlib import Path

from aqbench import config as aqconfig
from aqbench import budget as budget_labels
from aqbench import paths, registry, worker
from aqbench.budget import MIXED, kind_of
from aqbench.codeversion import code_version
from aqbench.errors import AqbenchError
from aqbench.resume import clear_stale_state
from aqbench.report.tables import NAMES as TABLE_NAMES


def config_names():
    """The config files this run uses, relative to the repository where they are inside it (AQBENCH_CONFIG: the
    metrics records and provenance.json name them)."""
    repo = Path(workflow.basedir).parent.resolve()
    names = []
    for f in workflow.configfiles:
        f = Path(f).resolve()
        names.append(str(f.relative_to(repo)) if f.is_relative_to(repo) else str(f))
    return names


# `aqbench` is installed next to the Python running Snakemake (.venv/bin): jobs find it without activating .venv.
# (Setting a prefix replaces Snakemake's default one, the bash strict mode, so it is repeated here.)
# A failed job keeps its previous outputs: every output is flagged update() (Snakemake backs it up before the job
# and restores it when the job fails) and every stage swaps its new outputs in only at its end (aqbench.io). As
# Snakemake then records the failed job's params as if it had succeeded, each rule's shell ends in
# `|| failed {params.record:q}`, which appends a line to the job's failure record, and the record's text is a
# param too (failure_params): the next run redoes the job.
_BIN = shlex.quote(str(Path(sys.executable).parent))
# every metrics record names the config files it was run with (AQBENCH_CONFIG; aqbench.evaluate)
_CONFIGS = shlex.quote(",".join(config_names())).replace("{", "{{").replace("}", "}}")
# A local run's jobs fork from one worker process (aqbench.worker, started below), found by its socket's path; a job
# of a cluster run parses this file in its own Snakemake process, whose socket never exists.
WORKER_SOCKET = worker.socket_path(os.getpid())
_WORKER = shlex.quote(WORKER_SOCKET) if workflow.is_main_process else "''"
shell.prefix(
    f'set -euo pipefail; export PATH="$PATH":{_BIN} AQBENCH_CONFIG={_CONFIGS} AQBENCH_WORKER={_WORKER}; '
    'failed() {{ s=$?; mkdir -p "$(dirname "$1")"; echo "$(date -u +%FT%TZ) exit $s" >> "$1"; '
    'echo "aqbench: the job failed (exit $s); its previous outputs are kept and it runs again next time" >&2; '
    "exit $s; }}; "  # (Snakemake formats the prefix: braces doubled)
)


def failure_record(first_output):
    """Where a job's failures are recorded: beside Snakemake's own records of the working directory, one file per
    job named after its first output (a line per failure: time, exit status)."""
    digest = hashlib.sha1(str(first_output).encode()).hexdigest()[:12]
    return Path(".snakemake", "aqbench-failures", f"{Path(first_output).name}-{digest}.failed")


def failure_params(first_output):
    """The params `record` (the record's path, for the shell) and `failures` (its text, a rerun trigger). Functions
    of the wildcards only: Snakemake does not record params derived from outputs."""

    def record(w):
        return str(failure_record(str(first_output).format(**w)))

    def failures(w):
        path = Path(record(w))
        return path.read_text() if path.is_file() else ""

    return {"record": record, "failures": failures}


def q(text):
    """A path (or an option with one) for a shell command, quoted: config paths can hold spaces or `$(...)`."""
    return shlex.quote(str(text))


# After kill -9: the locks and update() backups a dead run left would stop this one (aqbench.resume).
if workflow.is_main_process:
    _stale = clear_stale_state()
    if _stale:
        print(_stale, file=sys.stderr)

try:
    _loaded = aqconfig.load(config, workflow.source_path("../schemas/config.schema.yaml"))
except AqbenchError as e:
    raise WorkflowError(str(e)) from None
config.clear()
config.update(_loaded)

R = config["results"]
P = config["reports"]
DATA = paths.fill(paths.DATA, results=R)
CHECKPOINT = paths.fill(paths.CHECKPOINT, results=R)
RUN = paths.fill(paths.RUN, results=R)
SUMMARY = paths.fill(paths.SUMMARY, results=R)
PAIRED = paths.fill(paths.PAIRED, results=R)
FIGURES = ["metric_vs_size"] + (
    ["ptq_vs_bits"] if set(registry.names(kind=registry.PTQ)) & set(config["methods"]) else []
)
FIGURES += ["hessian", "qbert_bits"] if "qbert" in config["methods"] else []
# the figures of one run (spectra, search traces, allocations) draw the lowest seed's
FIRST_SEED = min(config["seeds"])
# the spectrum of every task, drawn in the report (the hessian rule makes them)
SPECTRA = (
    [paths.fill(paths.SPECTRUM, results=R, task=t, model="bert", seed=FIRST_SEED) for t in config["tasks"]]
    if "qbert" in config["methods"]
    else []
)
_AQ = [m for m in registry.names(kind=registry.SEARCH) if m in config["methods"]]
FIGURES += ["aq_bits", "aq_search"] if _AQ else []
FIGURES += ["metric_vs_latency"] if aqconfig.latency_enabled(config) else []
# the search trace of every task, model and budget, drawn in the report (the aq_search rule makes them)
TRACES = [
    paths.fill(paths.TRACE, results=R, task=t, model=registry.get(m).model, budget=b, seed=FIRST_SEED)
    for t in config["tasks"]
    for m in _AQ
    for b in aqconfig.budgets(config, m)
]
REPORT = paths.fill(paths.REPORT, reports=P)


def latency_threads():
    """The latency job's threads (its "all threads" setting): threads.latency, else every core Snakemake was given
    (capped at this machine's), so that no other job runs beside the timings."""
    if config["threads"]["latency"]:
        return config["threads"]["latency"]
    try:
        return min(workflow.cores, os.cpu_count())
    except WorkflowError:  # no --cores given (e.g. a cluster run with --jobs only)
        return os.cpu_count()


LATENCY_THREADS = latency_threads()
JOB = "{task}/{model}/{method}/{budget}/seed{seed}"  # the job name used in log and benchmark paths
# Every job runs in the Python environment that runs Snakemake (its `aqbench`, put on PATH above); the rules have
# no conda: directives, so --sdm conda has nothing to deploy (docs/design.md). Each rule's `code` param is the
# code version of the stage it runs (aqbench.codeversion): changing that code reruns its jobs.


def metrics_files():
    return [f"{aqconfig.run_path(config, *run)}/metrics.json" for run in aqconfig.runs(config)]


def outcome_files():
    return [f"{aqconfig.run_path(config, *run)}/outcomes.npz" for run in aqconfig.runs(config)]


def resource(rule_name, key, fallback):
    """resources.<rule>.<key>, else resources.default.<key>, else the fallback."""
    table = config["resources"]
    return table.get(rule_name, {}).get(key, table.get("default", {}).get(key, fallback))


def settings(section):
    """A params value: the config section for the job's task, as JSON (changes rerun the job)."""
    return lambda w: aqconfig.as_json(aqconfig.stage_settings(config, section, getattr(w, "task", None)))


def teacher_input(w):
    """A student (models.<model>.source: student) is distilled from the fine-tuned bert of the same task and seed."""
    if config["models"][w.model]["source"] == "student":
        return CHECKPOINT.format(task=w.task, model="bert", seed=w.seed)
    return []


def spectrum_input(w):
    """Only the mixed-precision budgets need the spectrum; the uniform rows do not wait for it."""
    return rules.hessian.output[0].format(**w) if kind_of(w.budget) == MIXED else []


def task_runs(w):
    """Every run of a task and seed, both models: the runs the latency job times."""
    return [run for run in aqconfig.runs(config) if run[0] == w.task and run[4] == int(w.seed)]


def latency_inputs(w):
    files = []
    for run in task_runs(w):
        path = aqconfig.run_path(config, *run)
        files += [f"{path}/model.onnx", f"{path}/assignment.json"]
        files += [f"{path}/packed.safetensors"] if registry.get(run[2]).exported else []
    return files


def local_data(w):
    """The task's local data files (data.source local) that exist: editing one reruns prepare_data and what
    depends on it. A missing one is left to the job, which names it and the fix."""
    from aqbench.data import local_files
    from aqbench.settings import Data
    from aqbench.tasks import get_task

    paths = local_files(get_task(w.task), Data.from_dict(aqconfig.stage_settings(config, "data", w.task))).values()
    return [str(p) for p in paths if p.is_file()]


def local_model(w):
    """The files of the model's local directory (source local): config, weights, tokenizer."""
    from aqbench.models import model_dir_files

    spec = config["models"][w.model]
    return model_dir_files(spec["path"]) if spec["source"] == "local" else []


# Settings that cannot change a stage's result are not part of its params (a change reruns nothing): the
# evaluation batch size of fine-tuning and the spectrum, which never use it. The stages that calibrate or evaluate
# keep it: the padding of a calibration batch enters the activation ranges it observes.
NOT_RESULT = ("eval_batch_size",)


def result_train(train):
    # fine-tuning that chooses its length on the tuning split (select_every) evaluates: then the batch size counts
    if train.get("select_every") is not None:
        return train
    return {k: v for k, v in train.items() if k not in NOT_RESULT}


_worker = None


def start_worker():
    """onstart: a local run with config `worker` on Linux starts its job worker and waits until it listens (its
    imports: a few seconds). Elsewhere fork() after importing torch is less safe."""
    global _worker
    if config["worker"] and workflow.local_exec and sys.platform == "linux":
        log = Path(".snakemake", "log", f"aqbench-worker-{os.getpid()}.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        _worker = worker.start(WORKER_SOCKET, log)


def stop_worker():
    """onsuccess / onerror: the worker also stops by itself when this process ends."""
    if _worker is not None:
        worker.stop(_worker, WORKER_SOCKET)
