"""Versions recorded in every result, so a number can be traced to the code that made it."""

import platform
from importlib import metadata


def versions():
    out = {"python": platform.python_version()}
    for pkg in ("aqbench", "torch", "transformers", "tokenizers", "snakemake", "onnx", "onnxruntime"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def cpu():
    """The CPU's model name (a latency means nothing without it) and the cores this process may use."""
    import os

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": name, "cores": cores}
