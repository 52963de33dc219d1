"""Resuming after kill -9: the state a killed Snakemake leaves in .snakemake/ that would stop the same command.

A killed run leaves its locks (the next run refuses to start until `--unlock`) and the backups of the outputs its
jobs were replacing (update() outputs; the next run's backup of the same output fails on the leftover copy). Both
belong to a dead process only when no other Snakemake runs in this working directory (one running elsewhere, e.g.
another results tree, has its own .snakemake/); then the Snakefile clears them, and says so in one line.
Otherwise they are left alone and the line says how to clear them.
"""

import os
import shutil
from pathlib import Path


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _ancestors():
    pids, pid = {os.getpid()}, os.getpid()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        pids.add(pid)
    return pids


def _cwd(pid):
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve()
    except OSError:
        return None  # unknown: counted as here, to be safe


def other_snakemakes(directory=None):
    """PIDs of the other Snakemake processes on this machine (None where /proc cannot tell); directory: only those
    working there (or whose directory cannot be read)."""
    if not Path("/proc/self/cmdline").exists():
        return None
    here = None if directory is None else Path(directory).resolve()
    mine, found = _ancestors(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        argv = [os.path.basename(a.decode(errors="replace")) for a in _cmdline(entry.name)[:3]]
        if "snakemake" in argv:  # snakemake, python .venv/bin/snakemake, python -m snakemake
            if here is None or _cwd(entry.name) in (here, None):
                found.append(int(entry.name))
    return found


def clear_stale_state(snakemake_dir=".snakemake"):
    """Remove the locks and update() backups of a killed run when no other Snakemake runs here; the line to print,
    or None when there was nothing to clear."""
    locks, backups = Path(snakemake_dir) / "locks", Path(snakemake_dir) / "backups"
    # (a restored backup leaves its empty parent directories: only files count)
    stale = [p for p in (locks, backups) if p.is_dir() and any(f.is_file() for f in p.rglob("*"))]
    if not stale:
        return None
    others = other_snakemakes(Path(snakemake_dir).resolve().parent)
    if others is None or others:
        who = f"Snakemake processes {others} are running" if others else "this system cannot list processes"
        return (
            f"aqbench: {' and '.join(str(p) for p in stale)} hold(s) the state of another run ({who}); if none is "
            "running here, run `snakemake --unlock` and remove .snakemake/backups, then the same command again"
        )
    for p in stale:
        shutil.rmtree(p)
        p.mkdir()
    return (
        "aqbench: cleared the locks and output backups left by a Snakemake run that was killed (no other "
        "Snakemake is running); its unfinished jobs run again"
    )
