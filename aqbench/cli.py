"""`aqbench <stage> ...`: the command line the Snakemake rules call; every stage is also a plain function.

Progress and log lines go to stderr (the rule's log file); a stage's one-line result goes to the log and to
stdout (the console under Snakemake); a problem the user can fix ends the command with one line naming it and
the fix, on both, with exit status 2 and no traceback.
"""

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

from aqbench.errors import AqbenchError


def _settings(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e


def _name_path(text):
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


log = logging.getLogger("aqbench")


def _result(line):
    """A stage's one-line result: in the job's log and on the console."""
    log.info(line)
    print(line, flush=True)


def _setup(args):
    if not sys.stderr.isatty():  # a log file: no carriage-return progress bars from huggingface libraries
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    if getattr(args, "seed", None) is not None:
        import numpy as np
        import torch

        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)


def cmd_prepare(args):
    from aqbench.data import prepare
    from aqbench.settings import Data
    from aqbench.tasks import get_task

    counts = prepare(get_task(args.task), Data.from_dict(args.settings), args.out)
    _result(f"{args.task}: prepared {', '.join(f'{k}={v}' for k, v in counts.items())} -> {args.out}")


def cmd_finetune(args):
    from aqbench.finetune import finetune
    from aqbench.tasks import get_task

    stats = finetune(
        get_task(args.task),
        args.data,
        args.settings["model"],
        args.settings["train"],
        args.seed,
        args.out,
        teacher_dir=args.teacher,
    )
    _result(
        f"{args.task}: fine-tuned {stats['steps']} steps in {stats['seconds']:.0f} s, final loss "
        f"{stats['final_loss']:.4f} -> {args.out}"
    )


def cmd_quantize(args):
    from aqbench.evaluate import evaluate_run
    from aqbench.methods import get_method, run_method
    from aqbench.settings import MethodSettings, Train
    from aqbench.tasks import get_task

    task = get_task(args.task)
    settings, eval_settings = MethodSettings.from_dict(args.settings), Train.from_dict(args.eval_settings)
    if len(args.budget) > 1 and "{budget}" not in args.out:
        raise AqbenchError("several budgets need an --out template with {budget}")
    for budget in args.budget:  # refuse a bad budget before computing anything
        get_method(args.method).validate(budget, settings)
    for budget in args.budget:
        out = args.out.format(budget=budget)
        info = run_method(
            args.method,
            task,
            args.checkpoint,
            args.data,
            budget,
            args.seed,
            settings,
            out,
            inputs=dict(args.input),
        )
        _result(f"{args.task} {args.method} {budget} seed{args.seed}: done in {info['seconds']:.1f} s -> {out}")
        if args.evaluate:  # the same evaluation as `aqbench evaluate`, from the run as written
            labels = {
                "task": args.task,
                "model": args.model,
                "method": args.method,
                "budget": budget,
                "seed": args.seed,
            }
            _, line = evaluate_run(
                task, args.data, args.checkpoint, out, eval_settings, labels, args.evaluate.format(budget=budget)
            )
            _result(line)


def cmd_hessian(args):
    from aqbench.hessian import spectrum
    from aqbench.settings import Hessian, Train
    from aqbench.tasks import get_task

    record = spectrum(
        get_task(args.task),
        args.checkpoint,
        args.data,
        Hessian.from_dict(args.settings["hessian"]),
        Train.from_dict(args.settings["train"]),
        args.seed,
        args.out,
    )
    blocks = ", ".join(f"{b['sensitivity']:.3g}" for b in record["blocks"])
    _result(
        f"{args.task} hessian seed{args.seed}: sensitivity per block [{blocks}], {record['hvps']} Hessian-vector "
        f"products in {record['seconds']:.0f} s -> {args.out}"
    )


def cmd_search(args):
    from aqbench.budget import average_bits
    from aqbench.search import search
    from aqbench.settings import MethodSettings
    from aqbench.tasks import get_task

    record = search(
        get_task(args.task),
        args.checkpoint,
        args.data,
        average_bits(args.budget, "aq"),
        MethodSettings.from_dict(args.settings),
        args.seed,
        args.out,
        label=args.budget,
    )
    d = record["derived"]
    shares = ", ".join(f"{b}-bit {100 * v:.0f}%" for b, v in record["derived_shares"].items())
    tuning = record["tuning"]
    _result(
        f"{args.task} search {args.budget} seed{args.seed}: {d['size_mb']:.4f} MB of {record['budget_mb']:.4f} "
        f"({d['avg_bits']:.2f} bits/weight: {shares} of the weights; repair {record['steps_down']} steps down, "
        f"{record['steps_up']} up)"
        + (f", tuning-split {tuning['metric']} {tuning['value']:.2f}" if tuning else "")
        + f" in {record['seconds']:.0f} s -> {args.out}"
    )


def cmd_choose_search(args):
    from aqbench.tuning import choose, describe

    record = choose(args.trial, args.out)
    _result(f"search choice: {describe(record)} -> {args.out}")


def cmd_export(args):
    from aqbench.deploy.export import is_quantized
    from aqbench.export import export_and_check
    from aqbench.quant.assignment import Assignment
    from aqbench.settings import Train
    from aqbench.tasks import get_task

    task = get_task(args.task)
    train = Train.from_dict(args.settings)
    for run in args.run:
        if is_quantized(Assignment.load(Path(run) / "assignment.json")):
            r = export_and_check(task, args.checkpoint, run, args.data, train)
            _result(
                f"{run}: packed encoder {r['packed_mb']:.4f} MB (accounted {r['size_mb']:.4f} MB, "
                f"x{r['packed_over_size']:.4f}), file {r['packed_file_mb']:.3f} MB; reloaded outputs within "
                f"{r['check_max_abs_diff']:.2g} of the run's"
            )
        if args.onnx:  # in the same process: a job's start (importing torch and transformers) costs more than a run
            _export_onnx(task, run, train, args)


def cmd_export_onnx(args):
    from aqbench.settings import Train
    from aqbench.tasks import get_task

    task = get_task(args.task)
    train = Train.from_dict(args.settings)
    for run in args.run:
        _export_onnx(task, run, train, args)


def _export_onnx(task, run, train, args):
    from aqbench.deploy.export import export_onnx

    r = export_onnx(
        task,
        args.checkpoint,
        run,
        args.data,
        train,
        threads=args.threads or 1,
        limit=args.limit,
        forms=getattr(args, "form", None),
    )
    main = task.main_metric
    others = "; ".join(
        f"{name} {f['metrics'][main]:.2f} ({f['gap'][main]:+.2f}, {f['onnx_mb']:.4f} MB)"
        for name, f in r["forms"].items()
        if name != r["form"]
    )
    _result(
        f"{run}: model.onnx ({r['form']}) encoder {r['onnx_mb']:.4f} MB as ONNX Runtime holds it; {main} "
        f"{r['metrics_onnx'][main]:.2f} (PyTorch {r['metrics_torch'][main]:.2f}), outputs within "
        f"{r['max_abs_diff']:.2g}, {r['changed']} predictions changed ({r['near_ties']} near ties"
        + (
            f", within what rounding moves PyTorch's own outputs: {r['perturbed_max_diff']:.2g}"
            if r.get("like_rounding")
            else ""
        )
        + ")"
        + (f"; other forms: {others}" if others else "")
    )


def cmd_latency(args):
    from aqbench.deploy.latency import latency_of_runs
    from aqbench.io import write_json
    from aqbench.settings import Latency
    from aqbench.tasks import get_task

    record = latency_of_runs(
        get_task(args.task),
        args.checkpoint,
        args.run,
        args.baseline,
        Latency.from_dict(args.settings),
        threads=args.threads or 0,
        log=_result,
    )
    write_json(args.out, record)
    _result(
        f"{args.task}: latency of {len(record['runs'])} runs at length {record['length']}, batches "
        f"{record['batch_sizes']}, 1 and {record['threads']} threads ({record['cpu']}) -> {args.out}"
    )


def cmd_evaluate(args):
    from aqbench.evaluate import evaluate_run
    from aqbench.settings import Train
    from aqbench.tasks import get_task

    labels = {"task": args.task, "model": args.model, "method": args.method, "budget": args.budget, "seed": args.seed}
    _, line = evaluate_run(
        get_task(args.task), args.data, args.checkpoint, args.run, Train.from_dict(args.settings), labels, args.out
    )
    _result(line)


def cmd_aggregate(args):
    from aqbench.report.aggregate import aggregate

    # the config files: named, or the workflow's (its rules export them; not a param, so a renamed config file
    # with the same settings reruns nothing)
    configs = args.config_files or [c for c in os.environ.get("AQBENCH_CONFIG", "").split(",") if c]
    frame = aggregate(args.metrics, args.out, packed=args.packed, onnx=args.onnx, latency=args.latency, configs=configs)
    _result(f"summary: {len(frame)} rows from {len(args.metrics)} runs -> {args.out}")


def cmd_tables_for_docs(args):
    from aqbench.report.docs_tables import every_block, update

    if not args.update:
        print(every_block(args.results))
        return
    done = update(args.results, args.update, only=args.only)
    _result("tables-for-docs: " + ", ".join(f"{f} ({n} blocks)" for f, n in done.items()))


def cmd_paired_tests(args):
    from aqbench.report.aggregate import load_summary
    from aqbench.report.paired import paired_tests

    frame = paired_tests(load_summary(args.summary), args.resamples, args.seed, args.out)
    significant = int((frame.p_holm < 0.05).sum()) if len(frame) else 0
    _result(f"paired tests: {len(frame)} comparisons, {significant} significant after Holm -> {args.out}")


def cmd_tables(args):
    from aqbench.report.aggregate import load_summary
    from aqbench.report.paired import load_paired
    from aqbench.report.tables import write_tables
    from aqbench.settings import TableSettings

    tables = write_tables(
        load_summary(args.summary), args.out_dir, TableSettings.from_dict(args.settings), load_paired(args.paired)
    )
    _result(f"tables: {', '.join(f'{name} ({len(t)})' for name, t in tables.items())} -> {args.out_dir}")


def cmd_figures(args):
    from aqbench.report.aggregate import load_summary
    from aqbench.report.figures import write_figures

    figures = write_figures(load_summary(args.summary), args.out_dir, spectra=args.spectrum, traces=args.trace)
    _result(f"figures: {sum(len(p) for p in figures.values())} files -> {args.out_dir}")


def cmd_report(args):
    from aqbench.report.html import build_report

    path = build_report(args.summary, args.figures_dir, args.out, args.settings, args.paired)
    _result(f"report: {Path(path).resolve()}")


def cmd_check_report(args):
    from aqbench.testing.browser import check_report

    problems, seen = check_report(args.report, args.task, args.screenshot)
    if problems:
        raise AqbenchError(f"{args.report}: " + "; ".join(problems))
    v = seen["values"]
    _result(
        f"{args.report}: no console errors, no network requests; tasks "
        + ", ".join(f"{t} ({v['rows'][t]} rows, {v['figures'][t]} figures)" for t in v["tasks"])
        + (f"; screenshot -> {args.screenshot}" if args.screenshot else "")
    )


def cmd_make_model(args):
    from aqbench.config import check_architecture, load_file, stage_settings
    from aqbench.data import load_examples
    from aqbench.models import SMALL_ARCHITECTURE, make_model_dir, texts
    from aqbench.settings import Data
    from aqbench.tasks import get_task

    config = load_file(args.config)
    # before the tokenizer is learned: BertConfig takes unknown arguments silently
    check_architecture(config, {**SMALL_ARCHITECTURE, **args.architecture}, "--architecture", "")
    corpus, counts = [], {}
    for name in config["tasks"]:  # one tokenizer for every task of the config, learned on their training text
        task = get_task(name)
        examples = load_examples(task, Data.from_dict(stage_settings(config, "data", name)))["train"]
        corpus += list(texts(task, examples))
        counts[name] = len(examples)
    note = {"config": str(args.config), "train_examples": counts}
    model, tokenizer = make_model_dir(args.out, corpus, args.vocab_size, args.architecture, args.seed, note)
    _result(
        f"model: a randomly initialised BERT ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
        f"not pretrained) with a {len(tokenizer)}-token WordPiece vocabulary learned on the training text of "
        f"{', '.join(counts)} -> {args.out}"
    )


def cmd_worker(args):
    from aqbench.worker import serve

    serve(args.socket, args.parent, main)  # (passed, not imported there: no import cycle)


def cmd_check_config(args):
    from aqbench.config import load_file, runs

    config = load_file(args.config)
    _result(
        f"{args.config}: valid; {len(runs(config))} runs over tasks {', '.join(config['tasks'])}, "
        f"methods {', '.join(config['methods'])}, seeds {config['seeds']}"
    )


def parser():
    p = argparse.ArgumentParser(prog="aqbench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def stage(name, fn, help, task=True, seed=False):
        s = sub.add_parser(name, help=help)
        s.set_defaults(fn=fn)
        if task:
            s.add_argument("--task", required=True)
        if seed:
            s.add_argument("--seed", type=int, default=0)
        s.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
        return s

    s = stage("prepare", cmd_prepare, "write a task's splits as JSONL (synthetic, local files or hub)")
    s.add_argument("--settings", type=_settings, required=True, help="the config's data section (JSON)")
    s.add_argument("--out", required=True)

    s = stage("finetune", cmd_finetune, "fine-tune the FP model on a task", seed=True)
    s.add_argument("--data", required=True)
    s.add_argument("--settings", type=_settings, required=True, help='{"model": spec, "train": settings} (JSON)')
    s.add_argument("--teacher", help="the fine-tuned teacher checkpoint (a model of source student)")
    s.add_argument("--out", required=True)

    s = stage("quantize", cmd_quantize, "apply a compression method to a fine-tuned checkpoint", seed=True)
    s.add_argument("--method", required=True)
    s.add_argument("--budget", required=True, nargs="+", help="one or more budgets, run in one process")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--settings", type=_settings, required=True, help='{"quant": ..., "train": ..., method: ...} (JSON)')
    s.add_argument("--out", required=True, help="the run directory; a template with {budget} for several budgets")
    s.add_argument(
        "--evaluate",
        metavar="METRICS_JSON",
        help="then evaluate the run and write its metrics record here (a template with {budget} for several budgets)",
    )
    s.add_argument("--model", default="bert", help="model label of the metrics record (with --evaluate)")
    s.add_argument(
        "--eval-settings", type=_settings, default={}, help="the config's train section (JSON, with --evaluate)"
    )
    s.add_argument(
        "--input",
        type=_name_path,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a file the method needs (e.g. spectrum=results/hessian/.../spectrum.json)",
    )

    s = stage("hessian", cmd_hessian, "Q-BERT's Hessian spectrum: top eigenvalue per encoder block", seed=True)
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--settings", type=_settings, required=True, help='{"hessian": ..., "train": ...} (JSON)')
    s.add_argument("--out", required=True)

    s = stage("search", cmd_search, "AQ-BERT's search: a bit-width per group under a size budget", seed=True)
    s.add_argument("--budget", required=True, help="b<average bits per weight>, e.g. b1.97")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--settings", type=_settings, required=True, help='{"quant": ..., "train": ..., "aq": ...} (JSON)')
    s.add_argument("--out", required=True, help="the search directory (assignment.json, trace.json, alpha.safetensors)")

    s = stage(
        "choose-search",
        cmd_choose_search,
        "keep the search trial (aq.tune) that scores best on the tuning split",
        task=False,
    )
    s.add_argument("--out", required=True, help="the search directory the chosen trial is copied to")
    s.add_argument("trial", nargs="+", help="trial directories (each a search's output)")

    s = stage(
        "export",
        cmd_export,
        "write quantized runs as bit-packed safetensors files, reload and check them "
        "(and, with --onnx, every run as ONNX models, as export-onnx does)",
        seed=True,
    )
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--settings", type=_settings, required=True, help="the config's train section (JSON)")
    s.add_argument("--onnx", action="store_true", help="then export-onnx each run in the same process")
    s.add_argument("--limit", type=int, default=None, help="with --onnx: the first N examples of each eval split only")
    s.add_argument("run", nargs="+", help="run directories")

    s = stage(
        "export-onnx",
        cmd_export_onnx,
        "write runs as ONNX models (model.onnx) on ONNX Runtime's low-bit "
        "kernels, evaluate every form against the PyTorch run and check the exact one",
        seed=True,
    )
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--settings", type=_settings, required=True, help="the config's train section (JSON)")
    s.add_argument(
        "--form",
        nargs="+",
        choices=["exact", "fast", "fast4", "w8a8"],
        default=None,
        help="forms to build and evaluate, the first written as model.onnx (default: every form that "
        "differs for the run, exact first; docs/deploy.md)",
    )
    s.add_argument("--limit", type=int, default=None, help="evaluate on the first N examples of each eval split only")
    s.add_argument("run", nargs="+", help="run directories (a quantized run needs its packed.safetensors)")

    s = stage(
        "latency",
        cmd_latency,
        "time every ONNX form of runs against the task's FP32 ONNX model and PyTorch "
        "FP, in one process (ms per batch, median and p90)",
    )
    s.add_argument("--checkpoint", required=True, help="the task's fine-tuned FP checkpoint (the PyTorch baseline)")
    s.add_argument(
        "--baseline", required=True, help="the task's fp run directory (its model.onnx is the FP32 baseline)"
    )
    s.add_argument(
        "--settings",
        type=_settings,
        required=True,
        help='the config\'s onnx.latency section (JSON: {"batch_sizes": [1, 32], "length": 128, "seconds": 1.0})',
    )
    s.add_argument("--out", required=True, help="latency record (JSON)")
    s.add_argument("run", nargs="+", help="run directories with their model.onnx")

    s = stage("evaluate", cmd_evaluate, "evaluate a run and write its metrics.json", seed=True)
    for a in ("--model", "--method", "--budget", "--checkpoint", "--run", "--data", "--out"):
        s.add_argument(a, required=True)
    s.add_argument("--settings", type=_settings, required=True, help="the config's train section (JSON)")

    s = stage("aggregate", cmd_aggregate, "collect metrics.json files into summary.csv", task=False)
    s.add_argument("--out", required=True)
    s.add_argument("--packed", nargs="*", default=[], help="packed.json files of exported runs (packed_mb column)")
    s.add_argument("--onnx", nargs="*", default=[], help="onnx.json files of ONNX exports (onnx_* columns)")
    s.add_argument("--latency", nargs="*", default=[], help="latency records of tasks (latency_*, speedup_* columns)")
    s.add_argument(
        "--config-files", nargs="*", default=[], help="the config files the workflow ran with (provenance.json)"
    )
    s.add_argument("metrics", nargs="+")

    s = stage(
        "tables-for-docs",
        cmd_tables_for_docs,
        "regenerate the result tables in README.md and docs/ from a results directory (or print them)",
        task=False,
    )
    s.add_argument("results", help="the results directory (its summary.csv, paired.csv and provenance.json)")
    s.add_argument("--update", nargs="*", help="files whose tables-for-docs blocks are regenerated in place")
    s.add_argument(
        "--only",
        action="store_true",
        help="regenerate only the blocks whose results= option names RESULTS; the others stay as they are",
    )

    s = stage(
        "paired-tests",
        cmd_paired_tests,
        "paired tests (McNemar, bootstrap) of the comparisons the winners and the Pareto front make",
        task=False,
    )
    s.add_argument("--summary", required=True)
    s.add_argument("--out", required=True, help="the tests' CSV (results/paired.csv)")
    s.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples per comparison")
    s.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")

    for name, fn, help in (
        ("tables", cmd_tables, "paper-style tables from summary.csv"),
        ("figures", cmd_figures, "figures from summary.csv (and Q-BERT spectra)"),
    ):
        s = stage(name, fn, help, task=False)
        s.add_argument("--summary", required=True)
        s.add_argument("--out-dir", required=True)
        if name == "tables":
            s.add_argument(
                "--paired",
                help="the paired tests' CSV (paired-tests); without it ties are judged by the seeds' spread alone",
            )
            s.add_argument(
                "--settings",
                type=_settings,
                default={},
                help="JSON {published, groups, group_study}: aqbench.config.report_settings of the run's configuration",
            )
        if name == "figures":
            s.add_argument("--spectrum", nargs="*", default=[], help="Q-BERT spectrum.json files to draw")
            s.add_argument("--trace", nargs="*", default=[], help="AQ-BERT search trace.json files to draw")

    s = stage("report", cmd_report, "the self-contained HTML report", task=False)
    s.add_argument("--summary", required=True)
    s.add_argument("--figures-dir", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--settings", type=_settings, default={}, help="the run's configuration, shown in the report (JSON)")
    s.add_argument("--paired", help="the paired tests' CSV (paired-tests)")

    s = stage(
        "check-report",
        cmd_check_report,
        "open the HTML report in headless Chromium: no console errors, no "
        "network requests, every task's table and figures present",
        task=False,
    )
    s.add_argument("report", help="reports/report.html")
    s.add_argument("--task", nargs="*", help="tasks that must be there (default: every task section)")
    s.add_argument("--screenshot", help="write a full-page PNG here")

    s = stage(
        "make-model",
        cmd_make_model,
        "save a small BERT and a tokenizer learned on the config's training "
        "text to a directory (a stand-in for a pretrained model where none can be downloaded)",
        task=False,
        seed=True,
    )
    s.add_argument("--config", required=True, help="a config file; its tasks' training text teaches the tokenizer")
    s.add_argument("--out", required=True, help="the model directory to write (models.<name>.path with source: local)")
    s.add_argument("--vocab-size", type=int, default=8000)
    s.add_argument(
        "--architecture",
        type=_settings,
        default={},
        help="BertConfig arguments (JSON) overriding those of the small default (4 layers, hidden 256)",
    )

    s = sub.add_parser("worker", help="serve a local run's jobs from one process (started by the workflow)")
    s.set_defaults(fn=cmd_worker)
    s.add_argument("--socket", required=True, help="the socket's path (jobs find it in AQBENCH_WORKER)")
    s.add_argument("--parent", type=int, required=True, help="stop when this process (Snakemake) is gone")

    s = sub.add_parser("check-config", help="validate a config file and count its runs")
    s.set_defaults(fn=cmd_check_config)
    s.add_argument("config")
    return p


def _kept(args):
    """What a failed stage leaves in place: its previous output (stages write their outputs beside the old ones
    and swap them in only at the end, aqbench.io)."""
    out = getattr(args, "out", None)
    if out and "{" not in out and Path(out).exists():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(Path(out).stat().st_mtime))
        return f"; the previous {out} (from {when}) is kept"
    return ""


def _say(msg):
    print(msg, file=sys.stderr, flush=True)
    if not _same_stream(sys.stdout, sys.stderr):
        print(msg, flush=True)


def main(argv=None):
    if argv is None and os.environ.get("AQBENCH_WORKER") and sys.argv[1:2] != ["worker"]:
        from aqbench.worker import run_in_worker

        code = run_in_worker(sys.argv[1:])  # a local Snakemake run's worker, which has torch imported already
        if code is not None:
            return code
    args = parser().parse_args(argv)
    try:
        _setup(args)
        with _reuse_checkpoints(args):
            args.fn(args)
    except AqbenchError as e:
        _say(f"aqbench {args.command}: error: {e}{_kept(args)}")
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback; nothing half-written replaced an output
        _say(f"aqbench {args.command}: interrupted{_kept(args)}; run the same command again to resume")
        return 130
    return 0


# the commands that load one checkpoint once per run of a sweep (and again for their checks)
REUSE_CHECKPOINTS = {"quantize", "export", "export-onnx", "search", "evaluate"}


def _reuse_checkpoints(args):
    import contextlib

    if args.command not in REUSE_CHECKPOINTS:
        return contextlib.nullcontext()
    from aqbench.models import reusing_checkpoints

    return reusing_checkpoints()


def _same_stream(a, b):
    try:
        return os.path.sameopenfile(a.fileno(), b.fileno()) or (a.isatty() and b.isatty())
    except (OSError, ValueError, AttributeError):
        return False


if __name__ == "__main__":
    sys.exit(main())
