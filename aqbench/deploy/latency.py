"""Latency as deployment people measure it: one fixed batch (random token ids, sequence length L, every token
attended), warm-up, then repeated calls until a fixed time has passed; the median and the 90th percentile of
the calls, in ms per batch, at each batch size and thread count.

Timings on a shared machine drift, so nothing here is compared across processes or time: each run's forms are
measured round-robin with the FP32 ONNX model of the same task (the baseline) in the same window, and the
speed-up is the baseline's median over the form's. PyTorch FP is measured at the start and the end of the job.
"""

import time

import numpy as np

ROUNDS = 3  # each (model, cell) is measured in this many slices, interleaved with the other models of the window


def feed(sess, batch, length, vocab, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, max(6, vocab), size=(batch, length), dtype=np.int64)
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return {i.name: inputs[i.name] for i in sess.get_inputs()}


def _summary(times):
    ms = np.asarray(times) * 1e3
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "calls": len(ms)}


def measure(callables, seconds, warmup=2):
    """{name: summary} for named zero-argument callables: each is called in ROUNDS interleaved slices of
    seconds / ROUNDS (at least once per slice), after `warmup` calls."""
    times = {name: [] for name in callables}
    for fn in callables.values():
        for _ in range(warmup):
            fn()
    for _ in range(ROUNDS):
        for name, fn in callables.items():
            start = time.perf_counter()
            while True:
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
                if time.perf_counter() - start >= seconds / ROUNDS:
                    break
    return {name: _summary(t) for name, t in times.items()}


def cells(batch_sizes, threads):
    """The measured settings: (label, batch, threads), e.g. ('b1_t1', 1, 1), ('b32_tall', 32, 2)."""
    import os

    all_threads = threads if threads else len(os.sched_getaffinity(0))
    out = []
    for t in sorted({1, all_threads}):
        for b in batch_sizes:
            out.append((f"b{b}_t{'1' if t == 1 else 'all'}", b, t))
    return out, all_threads


def torch_callable(model, batch, length, vocab, threads):
    import torch

    rng = np.random.default_rng(0)
    ids = torch.from_numpy(rng.integers(5, max(6, vocab), size=(batch, length), dtype=np.int64))
    mask = torch.ones_like(ids)

    def call():
        torch.set_num_threads(threads)
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)

    return call


def ort_callable(sess, batch, length, vocab):
    inputs = feed(sess, batch, length, vocab)
    return lambda: sess.run(None, inputs)


def latency_of_runs(task, checkpoint_dir, runs, baseline, settings, threads=0, log=None):
    """The latency stage: every form of each run directory (model.onnx itself for its first form, the others
    built from the packed file), against the FP32 ONNX model in the baseline run directory (the task's fp run).
    settings: the onnx.latency section (aqbench.settings.Latency): batch_sizes, length, seconds (per model and
    cell). Returns the record."""
    import os
    from pathlib import Path

    from aqbench.deploy.export import is_quantized
    from aqbench.deploy.forms import FORMS, forms_of
    from aqbench.deploy.graph import build_model
    from aqbench.deploy.runtime import session
    from aqbench.export import read_packed
    from aqbench.models import load_checkpoint
    from aqbench.quant.assignment import Assignment
    from aqbench.versions import cpu, versions

    grid, all_threads = cells(settings.batch_sizes, threads)
    torch_model, _ = load_checkpoint(task, checkpoint_dir)
    torch_model.eval()
    vocab = torch_model.config.vocab_size
    length = min(settings.length, torch_model.config.max_position_embeddings)
    seconds = settings.seconds
    load_start = os.getloadavg()
    base_sessions = {t: session(Path(baseline) / "model.onnx", t) for t in {t for _, _, t in grid}}

    def pytorch():
        return {
            label: measure({"torch": torch_callable(torch_model, b, length, vocab, t)}, seconds)["torch"]
            for label, b, t in grid
        }

    record = {
        "task": task.name,
        "length": length,
        "batch_sizes": settings.batch_sizes,
        "threads": all_threads,
        "seconds_per_cell": seconds,
        "rounds": ROUNDS,
        "baseline": str(baseline),
        "torch_fp_start": pytorch(),
        "runs": {},
    }
    for run_dir in runs:
        run_dir = Path(run_dir)
        assignment = None
        if is_quantized(Assignment.load(run_dir / "assignment.json")):
            tensors, config, assignment = read_packed(run_dir / "packed.safetensors")
        names = forms_of(assignment)
        models = {names[0]: run_dir / "model.onnx"}  # the exported file itself; the other forms from the packed file
        for name in names[1:]:
            models[name] = build_model(tensors, config, assignment, task.kind, name)[0].SerializeToString()
        result = {
            "forms": {name: {} for name in names},
            "baseline": {},
            "exact": {n: n == "fp32" or FORMS[n].exact for n in names},
        }
        for t in sorted({t for _, _, t in grid}):
            sessions = {name: session(m, t, what=f"{run_dir} ({name})") for name, m in models.items()}
            for label, b, _ in [c for c in grid if c[2] == t]:
                timed = measure(
                    {
                        "baseline": ort_callable(base_sessions[t], b, length, vocab),
                        **{n: ort_callable(s, b, length, vocab) for n, s in sessions.items()},
                    },
                    seconds,
                )
                result["baseline"][label] = timed.pop("baseline")
                for name, summary in timed.items():
                    summary["speedup"] = result["baseline"][label]["median_ms"] / summary["median_ms"]
                    result["forms"][name][label] = summary
        result["best"] = {
            label: min(((n, result["forms"][n][label]) for n in names), key=lambda x: x[1]["median_ms"])[0]
            for label, _, _ in grid
        }
        record["runs"][str(run_dir)] = result
        if log:
            log(
                f"{run_dir}: "
                + ", ".join(
                    f"{label} {result['forms'][result['best'][label]][label]['median_ms']:.3g} ms "
                    f"({result['best'][label]}, x{result['forms'][result['best'][label]][label]['speedup']:.2f})"
                    for label, _, _ in grid
                )
            )
    record["torch_fp_end"] = pytorch()
    record.update(
        {"load_average_start": load_start, "load_average_end": os.getloadavg(), **cpu(), "versions": versions()}
    )
    return record
