"""A job worker for local runs: one process imports torch and transformers once, and every `aqbench` job of the run
is a fork of it instead of a fresh interpreter.

Most of a short job is importing torch and transformers (3 to 5 s of CPU on 2 cores); the demo runs some two
hundred jobs. Under a local Snakemake run (workflow/rules/common.smk starts it), `aqbench <stage>` connects to the
worker's socket (AQBENCH_WORKER), hands over its stdin, stdout and stderr (so `2> log` still reaches the log), its
arguments, working directory and environment, and waits: a fork of the worker runs the command exactly as
`aqbench` would, and its exit status becomes the job's. Without a worker (none started, a cluster job, the socket
gone) the command runs in its own process as before. The job's result does not depend on which way it ran.

A forked job ends when its `aqbench` process does (the job killed, Ctrl-C): it watches the connection. The worker
ends with the Snakemake process that started it. Snakemake's benchmark files measure the `aqbench` process, not
its fork: the fork's CPU time and peak memory are the job log's last line.
"""

import json
import os
import select
import signal
import socket
import struct
import sys
import threading

ENV = "AQBENCH_WORKER"  # the socket's path
_HEADER = struct.Struct("!I")  # the request's length in bytes
# imported once in the worker: what the stages spend their start on
PRELOAD = (
    "torch",
    "numpy",
    "transformers",
    "transformers.models.bert.modeling_bert",
    "safetensors.torch",
    "aqbench.cli",
    "aqbench.evaluate",
    "aqbench.finetune",
    "aqbench.methods",
    "aqbench.quant",
    "aqbench.search",
    "aqbench.export",
    "aqbench.deploy.export",  # onnx, onnxruntime and seqeval: ~1 s of every export and latency job's start
    "aqbench.deploy.graph",
    "aqbench.deploy.latency",
    "onnx",
    "onnxruntime",
    "seqeval.metrics",
)


def socket_path(owner_pid):
    """A short path (sockets allow ~100 bytes) on local disk, one per Snakemake process: a cluster job, which runs
    under its own Snakemake process, never finds one."""
    return os.path.join("/tmp", f"aqbench-worker-{os.getuid()}-{owner_pid}.sock")


# --- the job's side -------------------------------------------------------------------------------------------


def run_in_worker(argv, path=None):
    """Run `aqbench argv` in the worker; its exit status, or None when there is no worker to run it."""
    path = path or os.environ.get(ENV)
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:  # no worker (not started yet, or gone): run here
        conn.close()
        return None
    fork = _Fork()
    with conn:
        request = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [b"R"], [0, 1, 2])
        conn.sendall(_HEADER.pack(len(request)) + request)
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
            if fork.pid is None and b"\n" in reply:  # the fork's first line: its pid
                pid, reply = reply.split(b"\n", 1)
                fork.started(int(pid))
    try:
        answer = json.loads(reply)
    except ValueError:
        fork.end_like_it()
        print("aqbench: the worker's process for this job ended without an exit status (killed?)", file=sys.stderr)
        return 1
    usage = answer["usage"]
    if answer["exit"] == 0:  # a failure ends on its one line
        print(
            f"aqbench: ran in the job worker: {usage['cpu_s']:.1f} s CPU, peak RSS {usage['max_rss_mb']:.0f} MB",
            file=sys.stderr,
        )
    return answer["exit"]


class _Fork:
    """What the job's process is sent (Ctrl-C at a terminal, Snakemake stopping the job), its fork is sent: the
    stage then ends as it would in its own process (one line, exit 130 on Ctrl-C)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.pid, self.sent = None, []
        for sig in self.SIGNALS:
            signal.signal(sig, self._forward)

    def _forward(self, sig, _frame):
        self.sent.append(sig)
        if self.pid is not None:
            os.kill(self.pid, sig)

    def started(self, pid):
        self.pid = pid
        for sig in self.sent:  # sent before the fork was known
            os.kill(pid, sig)

    def end_like_it(self):
        """The fork ended on a signal it was sent, without reporting: end on that signal too."""
        if self.sent:
            signal.signal(self.sent[-1], signal.SIG_DFL)
            os.kill(os.getpid(), self.sent[-1])


# --- the worker's side ----------------------------------------------------------------------------------------


def _read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the job closed the connection")
        data += chunk
    return data


def _run_job(conn, run):
    """In the fork: take over the job's streams, directory and environment, run the command, report its status."""
    _, fds, _, _ = socket.recv_fds(conn, 1, 3)
    request = json.loads(_read_exact(conn, _HEADER.unpack(_read_exact(conn, _HEADER.size))[0]))
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.pop(ENV, None)  # a command that runs `aqbench` itself runs it in its own process
    sys.argv = ["aqbench", *request["argv"]]

    def watch():  # the job's process is gone (killed, Ctrl-C): so is this fork
        if not conn.recv(1):
            os._exit(143)

    threading.Thread(target=watch, daemon=True).start()
    conn.sendall(b"%d\n" % os.getpid())  # the job's process forwards its signals here
    import logging

    logging.root.handlers.clear()  # the job configures its own, on its stderr
    try:
        code = run(request["argv"])
    except SystemExit as e:  # argparse's usage errors and --help
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # what Python prints and returns for an uncaught exception
        import traceback

        traceback.print_exc()
        code = 1
    import atexit
    import resource

    atexit._run_exitfuncs()  # what a normal exit runs (log handlers flush)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    answer = {"exit": code, "usage": {"cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024}}
    conn.sendall(json.dumps(answer).encode())
    os._exit(code)


def serve(path, parent_pid, run, preload=PRELOAD):
    """Import the stages' heavy modules, listen on path, fork per job, which calls run(argv) (the CLI's main) for
    its exit status; return when the parent process is gone or the socket file is removed."""
    import importlib

    for name in preload:
        importlib.import_module(name)
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    print(f"aqbench worker {os.getpid()}: ready on {path} ({len(preload)} modules preloaded)", flush=True)
    jobs = 0
    try:
        while os.getppid() == parent_pid and os.path.exists(path):
            ready, _, _ = select.select([server], [], [], 1.0)
            _reap()
            if not ready:
                continue
            conn, _ = server.accept()
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:  # the job
                server.close()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # forwarded, it ends the fork (even if inherited ignored)
                try:
                    _run_job(conn, run)
                finally:
                    os._exit(1)
            conn.close()
            jobs += 1
    finally:
        server.close()
        if os.path.exists(path):
            os.unlink(path)
        print(f"aqbench worker {os.getpid()}: stopped after {jobs} jobs", flush=True)


def _reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def start(path, log, ready_within=60.0):
    """Start a worker for this process (the Snakemake run); its output goes to log. Returns once it listens (a few
    seconds: its imports), so that every job runs the same way; one that is not ready by then leaves the jobs to
    run in their own processes."""
    import subprocess
    import time

    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aqbench", "worker", "--socket", path, "--parent", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C at the terminal goes to Snakemake and its jobs, which forward it
        )
    deadline = time.monotonic() + ready_within
    while not os.path.exists(path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return process


def stop(process, path, timeout=10.0):
    """Stop the worker: removing its socket file ends its loop within a second; forks still running finish their
    jobs (Snakemake has already ended them on failure)."""
    import subprocess

    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
