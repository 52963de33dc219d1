"""Talking to the HuggingFace Hub honestly: fail at once with a clear message when it cannot be reached.

transformers and datasets retry an unreachable hub for ~25 s and then raise a generic error. We check the
endpoint first (a 5 s TCP connect) so the user learns in seconds what is wrong and how to go offline.
HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE / HF_DATASETS_OFFLINE) is respected: then only the local cache is used.
"""

import os
import socket
from urllib.parse import urlparse

from aqbench.errors import AqbenchError


def offline():
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def endpoint():
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)


def reachable(timeout=5.0):
    host, port = endpoint()
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def unreachable_error(what, fix):
    host, _ = endpoint()
    reason = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline() else f"{host} is not reachable"
    return AqbenchError(f"cannot load {what} from the HuggingFace Hub: {reason}. Fix: {fix}")


def behind_proxy():
    return any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"))


def ensure_reachable(what, fix):
    """Raise the clear error now rather than after the libraries' retries. Offline mode skips the check (the
    caller then loads from the local cache only), and so does a proxy, which a direct connection would bypass."""
    if not offline() and not behind_proxy() and not reachable():
        raise unreachable_error(what, fix)
