"""Open a local HTML file in headless Chromium and report what a user's browser would see.

Chromium is driven over the DevTools protocol on --remote-debugging-pipe: it reads NUL-terminated
JSON messages on fd 3 and writes them on fd 4, so no websocket or automation library is needed.
"""

import base64
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aqbench.errors import AqbenchError

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # the sandbox cannot start as root or in most containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    # nothing may leave the machine, yet every attempt must still show up as a request
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",
    "--remote-debugging-pipe",
]
_QUIET_S = 0.5  # after the load event, the page has settled once the network is quiet this long...
_SETTLE_MAX_S = 5.0  # ...or this long has passed (a page that polls never goes quiet)
# Popen keeps passed fds at their own numbers, but Chromium wants its pipe at 3 and 4: this shim
# moves them there and execs Chromium (preexec_fn would be unsafe beside our reader thread).
_SHIM = (
    "import fcntl, os, sys\n"
    "ends = [int(a) for a in sys.argv[1:3]]\n"
    "high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 5) for fd in ends]  # clear of 3 and 4 first\n"
    "for fd in ends: os.close(fd)\n"
    "os.dup2(high[0], 3); os.dup2(high[1], 4); os.close(high[0]); os.close(high[1])\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)
_EOF = object()


def find_chromium():
    """$AQBENCH_CHROMIUM if set, else the first of chromium, chromium-browser, google-chrome(-stable) on PATH."""
    if os.environ.get("AQBENCH_CHROMIUM"):
        return os.environ["AQBENCH_CHROMIUM"]
    return next((path for name in _NAMES if (path := shutil.which(name))), None)


class _Chromium:
    """One headless Chromium and its CDP pipe; a reader thread queues what it says, so waits can time out."""

    def __init__(self, exe, workdir, deadline, on_event):
        self.deadline, self.on_event, self.workdir, self._id = deadline, on_event, workdir, 0
        to_chrome, self._to_w = os.pipe()
        self._from_r, from_chrome = os.pipe()
        try:
            with open(workdir / "chromium.log", "wb") as log:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-I",
                        "-S",
                        "-c",
                        _SHIM,
                        str(to_chrome),
                        str(from_chrome),
                        exe,
                        *_FLAGS,
                        f"--user-data-dir={workdir / 'profile'}",
                    ],
                    pass_fds=(to_chrome, from_chrome),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                )  # its own process group, so it can be killed whole
        except BaseException:
            os.close(self._to_w)
            os.close(self._from_r)
            raise
        finally:
            os.close(to_chrome)  # keep only Chromium's copies: ours would hide its exit (no EOF)
            os.close(from_chrome)
        self.messages = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        pending = bytearray()
        try:
            while chunk := os.read(self._from_r, 1 << 20):  # b"" once Chromium is gone
                first, *rest = chunk.split(b"\0")
                pending += first
                for part in rest:  # each NUL ends the message in `pending`
                    self.messages.put(json.loads(pending))
                    pending = bytearray(part)
        finally:
            self.messages.put(_EOF)

    def next_message(self, until):
        """The next message from Chromium, or None at `until`; raises if Chromium has exited."""
        try:
            msg = self.messages.get(timeout=max(0.0, until - time.monotonic()))
        except queue.Empty:
            return None
        if msg is _EOF:
            self.messages.put(_EOF)  # stays the answer for later calls too
            log = (self.workdir / "chromium.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise AqbenchError(
                "Chromium exited unexpectedly (a broken install? set AQBENCH_CHROMIUM to a working "
                "binary); its last output was:\n" + ("\n".join(log) or "(nothing)")
            )
        return msg

    def call(self, method, session=None, **params):
        """Send one command and wait for its answer, handing events that arrive meanwhile to on_event."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        try:
            os.write(self._to_w, json.dumps(msg).encode() + b"\0")  # small enough for one write
        except BrokenPipeError:
            self.next_message(time.monotonic() + 5)  # raises with Chromium's last output
        while True:
            msg = self.next_message(self.deadline)
            if msg is None:
                raise TimeoutError(method)
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise AqbenchError(f"Chromium refused {method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            self.on_event(msg)

    def close(self):
        try:  # ask politely first, so Chromium is done with its profile before we delete it
            os.write(self._to_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # a hung browser, or a renderer or zygote left behind
        except ProcessLookupError:
            pass
        self.proc.wait()
        os.close(self._to_w)
        self._reader.join(timeout=5)  # ends at EOF, now that every copy of Chromium's end is closed
        os.close(self._from_r)


def _describe(arg):
    return str(arg["value"]) if "value" in arg else arg.get("description", arg.get("type", "?"))


def inspect_page(html_path, checks=None, screenshot=None, width=1280, timeout=60.0):
    """Load html_path in headless Chromium, wait for the load event and a short settle, and report.

    Returns {"console_errors": [...], "requests": [url, ...], "values": {name: value}}: console.error and
    console.assert calls, uncaught exceptions and error-level log entries (failed loads among them); every
    URL the page asked for (once each, in order) except its own file and data: URLs; and each JS expression
    in `checks` ({name: expression}) evaluated after load. With `screenshot`, a full-page PNG goes there.
    """
    path = Path(html_path)
    if not path.is_file():
        raise AqbenchError(f"{path} does not exist; build the report first, or pass the right path")
    exe = find_chromium()
    if exe is None or shutil.which(exe) is None:
        raise AqbenchError(
            f"Chromium not found{f' at {exe}' if exe else ''}: install it (Debian: apt-get "
            "install chromium) or point AQBENCH_CHROMIUM at a Chromium or Chrome binary"
        )
    url = path.resolve().as_uri()
    seen = {"console_errors": [], "requests": [], "loaded": False, "network_at": time.monotonic()}

    def on_event(msg):
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Page.loadEventFired":
            seen["loaded"] = True
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            text = " ".join(_describe(a) for a in p.get("args", []))
            seen["console_errors"].append(f"Assertion failed: {text}" if p["type"] == "assert" else text)
        elif method == "Runtime.exceptionThrown":
            details = p["exceptionDetails"]
            seen["console_errors"].append(details.get("exception", {}).get("description") or details["text"])
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            entry = p["entry"]
            seen["console_errors"].append(entry["text"] + (f" ({entry['url']})" if entry.get("url") else ""))
        elif method == "Network.responseReceived" and p["response"]["status"] >= 400:  # Log leaves these to DevTools
            response = p["response"]
            seen["console_errors"].append(
                f"Failed to load resource: the server responded with a status of "
                f"{response['status']} ({response['url']})"
            )
        if method and method.startswith("Network."):
            seen["network_at"] = time.monotonic()
            request_url = p.get("request", {}).get("url", "")
            if (
                method == "Network.requestWillBeSent"
                and request_url != url
                and not request_url.startswith("data:")
                and request_url not in seen["requests"]
            ):
                seen["requests"].append(request_url)

    workdir = Path(tempfile.mkdtemp(prefix="aqbench-chromium-"))
    chromium = None
    try:
        chromium = _Chromium(exe, workdir, time.monotonic() + timeout, on_event)
        target = chromium.call("Target.createTarget", url="about:blank")["targetId"]
        session = chromium.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):  # before navigating, so nothing is missed
            chromium.call(f"{domain}.enable", session)
        chromium.call(
            "Emulation.setDeviceMetricsOverride", session, width=width, height=800, deviceScaleFactor=1, mobile=False
        )
        seen["loaded"] = False  # about:blank may have fired its own load event
        nav = chromium.call("Page.navigate", session, url=url)
        if nav.get("errorText"):
            raise AqbenchError(f"Chromium could not open {url}: {nav['errorText']}")
        while not seen["loaded"]:
            if (msg := chromium.next_message(chromium.deadline)) is None:
                raise TimeoutError("the load event")
            on_event(msg)
        # late requests (fetch after load, lazy images) and the errors they cause come after the load event
        settle_end = min(chromium.deadline, time.monotonic() + _SETTLE_MAX_S)
        while (until := min(seen["network_at"] + _QUIET_S, settle_end)) > time.monotonic():
            if (msg := chromium.next_message(until)) is not None:
                on_event(msg)
        values = {}
        for name, expression in (checks or {}).items():
            out = chromium.call(
                "Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True
            )
            if "exceptionDetails" in out:
                raise AqbenchError(
                    f"check {name!r} ({expression}) threw in the page: "
                    f"{out['result'].get('description', out['exceptionDetails']['text'])}"
                )
            values[name] = out["result"].get("value")
        if screenshot:
            size = chromium.call("Page.getLayoutMetrics", session)["cssContentSize"]
            shot = chromium.call(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
    except TimeoutError as stuck:  # raised by us only, naming the step that never finished
        raise AqbenchError(
            f"{path} did not load in Chromium within {timeout:g} s (stuck at {stuck}); look for "
            "scripts that never finish in the page, or pass a longer timeout"
        ) from None
    finally:
        if chromium is not None:
            chromium.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"console_errors": seen["console_errors"], "requests": seen["requests"], "values": values}


# Per task section of reports/report.html: the rows of its table of every run (id table-<task>; the PTQ table
# beside it does not count) and its figures, loaded (naturalWidth > 0)
_REPORT_CHECKS = {
    "tasks": "Array.from(document.querySelectorAll('section[id^=task-]')).map(s => s.id.slice(5))",
    "rows": "Object.fromEntries(Array.from(document.querySelectorAll('section[id^=task-]')).map(s => "
    "[s.id.slice(5), s.querySelectorAll('table[id=\"table-' + s.id.slice(5) + '\"] tbody tr').length]))",
    "figures": "Object.fromEntries(Array.from(document.querySelectorAll('section[id^=task-]')).map(s => "
    "[s.id.slice(5), Array.from(s.querySelectorAll('img')).filter(i => i.complete && i.naturalWidth > 0).length]))",
    "broken_images": "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length",
}


def check_report(html_path, tasks=None, screenshot=None):
    """Open the report as a user would and list what is wrong: console errors, network requests, broken images,
    and any task (of `tasks`, default every task section) without table rows or a figure. Returns (problems, seen)."""
    seen = inspect_page(html_path, checks=_REPORT_CHECKS, screenshot=screenshot)
    values = seen["values"]
    problems = [f"console error: {e}" for e in seen["console_errors"]]
    problems += [f"network request: {u}" for u in seen["requests"]]
    problems += [f"{values['broken_images']} images did not load"] if values["broken_images"] else []
    for task in tasks or values["tasks"]:
        if not values["rows"].get(task):
            problems.append(f"no table rows for task {task}")
        if not values["figures"].get(task):
            problems.append(f"no figure for task {task}")
    return problems, seen
