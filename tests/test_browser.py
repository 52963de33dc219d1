"""inspect_page on small hand-written pages in headless Chromium, driven by Playwright (network blocked, so no
internet is needed)."""

import struct

import pytest

from aqbench.errors import AqbenchError
from aqbench.testing.browser import check_report, find_chromium, inspect_page

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no Chromium (CI installs Debian's chromium package)")

# a 1x1 PNG
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)


def page(tmp_path, body):
    path = tmp_path / "page.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body></html>")
    return path


def test_clean_page_has_no_errors_or_requests_and_checks_see_the_dom(tmp_path):
    path = page(
        tmp_path,
        f"<table><tr><td>1</td></tr></table><table></table><img id='fig' src='{PIXEL}'>"
        "<p id='out'></p><script>document.getElementById('out').textContent = 'ok';</script>",
    )
    seen = inspect_page(
        path,
        checks={
            "tables": "document.querySelectorAll('table').length",
            "image_width": "document.getElementById('fig').naturalWidth",
            "script_ran": "document.getElementById('out').textContent",
        },
    )
    assert seen["console_errors"] == []
    assert seen["requests"] == []
    assert seen["values"]["tables"] == 2
    assert seen["values"]["image_width"] > 0
    assert seen["values"]["script_ran"] == "ok"


def test_console_error_is_reported(tmp_path):
    seen = inspect_page(page(tmp_path, "<script>console.error('boom');</script>"))
    assert seen["console_errors"] == ["boom"]


def test_uncaught_exception_is_reported(tmp_path):
    seen = inspect_page(page(tmp_path, "<script>throw new Error('kaput');</script>"))
    assert len(seen["console_errors"]) == 1
    assert "Error: kaput" in seen["console_errors"][0]


def test_network_requests_are_recorded_but_never_reach_the_network(tmp_path):
    path = page(tmp_path, "<img src='http://example.invalid/x.png'><script>fetch('https://example.org/');</script>")
    seen = inspect_page(path)
    # the image and the fetch start independently: either may be requested first
    assert sorted(seen["requests"]) == ["http://example.invalid/x.png", "https://example.org/"]
    assert any("ERR_NAME_NOT_RESOLVED" in e for e in seen["console_errors"])  # blocked, not fetched


def test_local_files_and_websockets_count_as_requests(tmp_path):
    """The report must be self-contained: a file beside it is a request too, and a WebSocket never connects."""
    path = page(tmp_path, "<img src='beside.png'><script>new WebSocket('ws://example.net/');</script>")
    seen = inspect_page(path)
    assert sorted(seen["requests"]) == [(tmp_path / "beside.png").resolve().as_uri(), "ws://example.net/"]
    assert any("ERR_FILE_NOT_FOUND" in e and "beside.png" in e for e in seen["console_errors"])


def test_a_check_that_throws_names_the_check_and_the_error(tmp_path):
    with pytest.raises(AqbenchError, match="check 'bad' failed in Chromium: ReferenceError: nosuch is not defined"):
        inspect_page(page(tmp_path, ""), checks={"bad": "nosuch.value"})


def test_a_check_that_never_returns_times_out(tmp_path):
    with pytest.raises(AqbenchError, match=r"did not load in Chromium within 8 s \(stuck at check 'spin'\)"):
        inspect_page(page(tmp_path, ""), checks={"spin": "(() => { while (true) {} })()"}, timeout=8)


def test_missing_file_raises(tmp_path):
    with pytest.raises(AqbenchError, match="does not exist"):
        inspect_page(tmp_path / "nope.html")


def test_page_that_never_loads_times_out(tmp_path):
    with pytest.raises(AqbenchError, match="did not load"):
        inspect_page(page(tmp_path, "<script>while (true) {}</script>"), timeout=2)


def test_screenshot_is_a_full_page_png(tmp_path):
    shot = tmp_path / "shot.png"
    inspect_page(page(tmp_path, "<div style='height: 3000px; background: teal'></div>"), screenshot=shot, width=800)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 800
    assert height >= 3000


def test_check_report_wants_each_task_table_of_every_run_not_any_table(tmp_path):
    rows = "<tbody><tr><td>1</td></tr></tbody>"
    path = page(
        tmp_path,
        f"<section id='task-sst2'><table class='sortable' id='table-sst2'>{rows}</table>"
        f"<img src='{PIXEL}'></section><section id='task-mnli'><table class='sortable' "
        f"id='ptq-mnli'>{rows}</table><img src='{PIXEL}'></section>",
    )
    problems, seen = check_report(path)
    assert problems == ["no table rows for task mnli"]  # only its PTQ table has rows
    assert seen["values"]["rows"] == {"sst2": 1, "mnli": 0} and seen["values"]["figures"] == {"sst2": 1, "mnli": 1}
