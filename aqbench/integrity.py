"""Is a model directory whole? A record of the files a suite-written checkpoint holds (size and SHA-256), checked
whenever it is read, and a safetensors header check for directories the suite did not write.

A truncated or overwritten file otherwise surfaces far downstream as a safetensors traceback or as a misleading
numerical symptom; here it is one line naming the file and the fix.
"""

import hashlib
import json
import struct
from pathlib import Path

from aqbench.errors import AqbenchError

RECORD = "files.json"  # written last into a checkpoint directory, so a directory without it is not one of ours


def sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_record(directory):
    """Record every file of `directory` (its size and SHA-256) in files.json."""
    directory = Path(directory)
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": sha256(p)}
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != RECORD
    }
    (directory / RECORD).write_text(json.dumps({"files": files}, indent=1) + "\n")


def check_record(directory, fix):
    """Every file files.json names is there with its recorded size and SHA-256; raise one line naming the first that
    is not. Directories without a record (not written by the suite) are left to check_safetensors."""
    directory = Path(directory)
    record_path = directory / RECORD
    if not record_path.is_file():
        return False
    try:
        files = json.loads(record_path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise AqbenchError(
            f"{record_path} is not a valid file record ({e}): the directory is damaged. Fix: {fix}"
        ) from None
    stats = []
    for name, want in files.items():
        path = directory / name
        if not path.is_file():
            raise AqbenchError(f"{path} is missing (recorded in {RECORD}). Fix: {fix}")
        stat = path.stat()
        if stat.st_size != want["bytes"]:
            raise AqbenchError(
                f"{path} has {stat.st_size} bytes, {want['bytes']} when it was written: it is "
                f"truncated or overwritten. Fix: {fix}"
            )
        stats.append((name, stat.st_size, stat.st_mtime_ns, stat.st_ino))
    key = (str(directory.resolve()), tuple(stats))
    if key in _VERIFIED:  # a stage loads the same checkpoint once per run: hash its files once per process
        return True
    for name, want in files.items():
        if sha256(directory / name) != want["sha256"]:
            raise AqbenchError(
                f"{directory / name} does not match the checksum recorded when it was written: it is "
                f"corrupt. Fix: {fix}"
            )
    _VERIFIED.add(key)
    return True


_VERIFIED = set()  # (directory, its files' size, mtime and inode) whose checksums matched in this process


def check_safetensors(path, fix):
    """The file's header parses and its tensors fit in the file (a truncated download or a stray file otherwise
    fails later inside safetensors)."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size - 8:
                raise ValueError(f"its header claims {n} bytes of a {size}-byte file")
            header = json.loads(f.read(n))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError) as e:
        raise AqbenchError(f"{path} is not a readable safetensors file ({e}). Fix: {fix}") from None
    if 8 + n + end > size:
        raise AqbenchError(
            f"{path} is truncated: its tensors need {8 + n + end} bytes, the file has {size}. Fix: {fix}"
        )
