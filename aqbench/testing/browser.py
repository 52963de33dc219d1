"""Open a local HTML file in headless Chromium and report what a user's browser would see.

Playwright drives the system's Chromium (find_chromium), never a browser build of its own, so no
`playwright install` is needed. Playwright is a test dependency: this module imports it only when a page
is opened, so find_chromium works (and tests can skip) without it.
"""

import os
import shutil
import time
from pathlib import Path

from aqbench.errors import AqbenchError

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# routing stops every request the page makes; with no host to resolve, what routing cannot see (preconnects,
# DNS prefetch) cannot leave the machine either. Playwright adds the rest (--no-sandbox, --disable-dev-shm-usage...)
_FLAGS = ["--host-resolver-rules=MAP * ~NOTFOUND"]
# after the load event, late requests (fetch after load, lazy images) and the errors they cause get this long to
# finish: Playwright's "networkidle" is 0.5 s without a request, and a page that polls never gets there
_SETTLE_MAX_S = 5.0
_LAUNCH = "starting Chromium"


def find_chromium():
    """$AQBENCH_CHROMIUM if set, else the first of chromium, chromium-browser, google-chrome(-stable) on PATH."""
    if os.environ.get("AQBENCH_CHROMIUM"):
        return os.environ["AQBENCH_CHROMIUM"]
    return next((path for name in _NAMES if (path := shutil.which(name))), None)


def _playwright():
    """Playwright's sync API; it is a test dependency, so where it is missing say how to install it."""
    try:
        from playwright import sync_api
    except ImportError:
        raise AqbenchError(
            "the Python package playwright is not installed (it drives Chromium here): "
            "pip install -e '.[test]', or pip install playwright"
        ) from None
    return sync_api


def _evaluate(page, expression, timeout_ms):
    """The value of a JS expression in the page (a promise is awaited), or a timeout.

    page.evaluate would wait forever on a page whose script never yields; wait_for_function has a timeout but
    waits for a truthy result, so the value comes back inside an object, which always is.
    """
    handle = page.wait_for_function(f"async () => ({{value: await ({expression})}})", timeout=timeout_ms)
    return handle.json_value().get("value")


def _browser_output(error):
    """The last lines Chromium printed, from the browser log in a Playwright launch error."""
    log = str(error).split("Call log:")[0].splitlines()
    return "\n".join([line.split("] ", 1)[-1] for line in log if line.startswith("[pid=")][-5:]) or "(nothing)"


def inspect_page(html_path, checks=None, screenshot=None, width=1280, timeout=60.0):
    """Load html_path in headless Chromium, wait for the load event and a short settle, and report.

    Returns {"console_errors": [...], "requests": [url, ...], "values": {name: value}}: console.error and
    console.assert calls, uncaught exceptions and error-level log entries (failed loads among them); every
    URL the page asked for (once each, in order; WebSockets too) except its own file; and each JS expression
    in `checks` ({name: expression}) evaluated after load. With `screenshot`, a full-page PNG goes there.
    Local files load; every other request is aborted as if its host did not exist, so nothing leaves the machine.
    """
    path = Path(html_path)
    if not path.is_file():
        raise AqbenchError(f"{path} does not exist; build the report first, or pass the right path")
    api = _playwright()
    exe = find_chromium()
    if exe is None or shutil.which(exe) is None:
        raise AqbenchError(
            f"Chromium not found{f' at {exe}' if exe else ''}: install it (Debian: apt-get "
            "install chromium) or point AQBENCH_CHROMIUM at a Chromium or Chrome binary"
        )
    url = path.resolve().as_uri()
    console_errors, requests, values = [], [], {}
    deadline = time.monotonic() + timeout

    def ms_left():
        return max(1.0, (deadline - time.monotonic()) * 1000)  # at least 1: Playwright reads 0 as no timeout

    def record(request_url):  # data: and blob: URLs load without a request, so they never come here
        if request_url != url and request_url not in requests:
            requests.append(request_url)

    def on_request(route):
        record(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort("namenotresolved")  # the page sees the failed load it would see offline

    def on_websocket(ws):
        record(ws.url)
        ws.close()  # never connected to a server: Playwright mocks a routed socket until told to connect

    def on_console(message):
        if message.type in ("error", "assert"):
            text = f"Assertion failed: {message.text}" if message.type == "assert" else message.text
            source = message.location.get("url")  # a failed load's entry names the resource
            console_errors.append(text + (f" ({source})" if source and source != url else ""))

    step = _LAUNCH
    try:
        with api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=exe, args=_FLAGS, timeout=ms_left())
            try:
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.on("console", on_console)
                page.on("pageerror", lambda error: console_errors.append(error.stack or str(error)))
                page.route("**/*", on_request)  # before navigating, so nothing is missed
                page.route_web_socket("**/*", on_websocket)
                step = "the load event"
                page.goto(url, wait_until="load", timeout=ms_left())
                try:
                    page.wait_for_load_state("networkidle", timeout=min(_SETTLE_MAX_S * 1000, ms_left()))
                except api.TimeoutError:
                    pass  # still busy: look at the page as it is
                for name, expression in (checks or {}).items():
                    step = f"check {name!r}"
                    values[name] = _evaluate(page, expression, ms_left())
                if screenshot:
                    step = "the screenshot"
                    page.screenshot(path=screenshot, full_page=True, timeout=ms_left())
            finally:
                browser.close()
    except api.TimeoutError:
        raise AqbenchError(
            f"{path} did not load in Chromium within {timeout:g} s (stuck at {step}); look for "
            "scripts that never finish in the page, or pass a longer timeout"
        ) from None
    except api.Error as error:
        if step == _LAUNCH:
            raise AqbenchError(
                f"Chromium ({exe}) did not start (a broken install? set AQBENCH_CHROMIUM to a working "
                f"binary); its last output was:\n{_browser_output(error)}"
            ) from None
        reason = error.message.splitlines()[0].split(": ", 1)[-1]  # less Playwright's "Page.method: "
        raise AqbenchError(f"{path}: {step} failed in Chromium: {reason}") from None
    return {"console_errors": console_errors, "requests": requests, "values": values}


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
