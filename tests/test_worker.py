"""The job worker (aqbench.worker): a command run through it gives what it gives in its own process (output,
files, exit status, the one-line error), runs in its own process when there is no worker, and ends with the job's
process; the worker ends with the process that started it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

AQBENCH = [sys.executable, "-m", "aqbench"]


def wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    """A worker started by this test process (its parent), as the workflow's onstart starts one."""
    sock = str(tmp_path_factory.mktemp("w") / "w.sock")
    log = open(Path(sock).with_suffix(".log"), "wb")
    proc = subprocess.Popen(
        [*AQBENCH, "worker", "--socket", sock, "--parent", str(os.getpid())], stdout=log, stderr=log
    )
    assert wait_for(lambda: os.path.exists(sock)), Path(sock).with_suffix(".log").read_text()
    yield proc, sock
    os.unlink(sock)
    proc.wait(10)


def aqbench(args, sock=None, cwd=None, **kw):
    env = {k: v for k, v in os.environ.items() if k != "AQBENCH_WORKER"}
    if sock:
        env["AQBENCH_WORKER"] = sock
    return subprocess.run([*AQBENCH, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, **kw)


def prepare_args(out, n_train=200):
    settings = {"source": "synthetic", "seed": 3, "synthetic": {"n_train": n_train, "n_eval": 20}}
    return ["prepare", "--task", "sst2", "--settings", json.dumps(settings), "--out", str(out)]


def test_a_command_gives_the_same_files_output_and_status_in_the_worker(worker, tmp_path):
    _, sock = worker
    alone = aqbench(prepare_args(tmp_path / "alone"))
    forked = aqbench(prepare_args(tmp_path / "forked"), sock=sock)
    assert alone.returncode == forked.returncode == 0, forked.stderr
    assert forked.stdout.replace("forked", "alone") == alone.stdout
    assert "ran in the job worker" in forked.stderr and "ran in the job worker" not in alone.stderr
    files = sorted(p.name for p in (tmp_path / "alone").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "forked").iterdir()) and files
    for name in files:
        assert (tmp_path / "alone" / name).read_bytes() == (tmp_path / "forked" / name).read_bytes(), name


def test_relative_paths_resolve_in_the_jobs_directory(worker, tmp_path):
    _, sock = worker
    done = aqbench(prepare_args("data"), sock=sock, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data").is_dir()


def test_bad_input_is_the_same_one_line_and_status(worker):
    _, sock = worker
    args = ["check-config", "/no/such/config.yaml"]
    alone, forked = aqbench(args), aqbench(args, sock=sock)
    assert forked.returncode == alone.returncode == 2
    assert forked.stdout == alone.stdout
    lines = lambda r: [l for l in r.stderr.splitlines() if l.strip()]  # noqa: E731
    assert len(lines(forked)) == 1 and lines(forked)[0].endswith(lines(alone)[0].split(": ", 1)[1])
    usage = aqbench(["quantize", "--bogus"], sock=sock)
    assert usage.returncode == 2 and "the following arguments are required" in usage.stderr


def test_without_a_worker_the_command_runs_in_its_own_process(tmp_path):
    done = aqbench(prepare_args(tmp_path / "d"), sock=str(tmp_path / "none.sock"))
    assert done.returncode == 0, done.stderr
    assert "ran in the job worker" not in done.stderr and (tmp_path / "d").is_dir()


def start_a_long_job(sock, out, stream=subprocess.DEVNULL):
    """A job that runs for a minute or more in the worker: 5 M synthetic examples."""
    env = {**os.environ, "AQBENCH_WORKER": sock}
    return subprocess.Popen(
        [*AQBENCH, *prepare_args(out, n_train=5_000_000)], env=env, stdout=stream, stderr=stream, text=True
    )


def test_killing_the_job_ends_its_fork(worker, tmp_path):
    proc, sock = worker
    job = start_a_long_job(sock, tmp_path / "big")
    server = psutil.Process(proc.pid)
    assert wait_for(lambda: server.children(), 30), "the job never reached the worker"
    fork = server.children()[0]
    job.send_signal(signal.SIGKILL)
    job.wait(10)
    assert wait_for(lambda: not fork.is_running() or fork.status() == psutil.STATUS_ZOMBIE, 10)
    assert not (tmp_path / "big").exists()  # nothing half-written in place of the output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_job_reaches_its_fork(worker, tmp_path, sig):
    """Ctrl-C ends the stage as in its own process (one line, exit 130); SIGTERM ends both processes on it."""
    _, sock = worker
    job = start_a_long_job(sock, tmp_path / "big", subprocess.PIPE)
    time.sleep(5)  # well into the stage
    job.send_signal(sig)
    out, err = job.communicate(timeout=30)
    if sig == signal.SIGINT:
        assert job.returncode == 130, err
        assert err.strip().splitlines()[-1].startswith("aqbench prepare: interrupted"), err
        assert "Traceback" not in err
    else:
        assert job.returncode == -signal.SIGTERM, err
    assert not (tmp_path / "big").exists()


def test_the_worker_ends_with_the_process_that_started_it(tmp_path):
    sock = tmp_path / "w.sock"
    starter = (
        "import subprocess, sys, os;"
        f"subprocess.Popen([sys.executable, '-m', 'aqbench', 'worker', '--socket', {str(sock)!r},"
        " '--parent', str(os.getpid())]); import time; time.sleep(30)"
    )
    parent = subprocess.Popen([sys.executable, "-c", starter])
    assert wait_for(sock.exists), "the worker never started"
    parent.kill()
    parent.wait()
    assert wait_for(lambda: not sock.exists(), 10)
