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


def machine():
    """What a figure depends on besides the code: the CPU, the threads torch used, its BLAS and build."""
    import re

    import torch

    build = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=([^,\s]+)", build)
    return {
        **cpu(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "blas": blas.group(1) if blas else None,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }


def commit():
    """The git commit of the aqbench checkout that ran (with '+dirty' if it had uncommitted changes); None
    outside a git checkout (an installed wheel)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
