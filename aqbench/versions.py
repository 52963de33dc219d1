"""Versions recorded in every result, so a number can be traced to the code that made it."""

import platform
from importlib import metadata


def versions():
    out = {"python": platform.python_version()}
    for pkg in ("aqbench", "torch", "transformers", "tokenizers", "snakemake"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out
