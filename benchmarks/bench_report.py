"""How long the report takes to rebuild from an existing summary.csv: the tables, figures and report stages, each
as the workflow runs it (a fresh `aqbench` process, imports included), into a temporary directory.

    .venv/bin/python benchmarks/bench_report.py [--results results] [--config config/config.yaml]

The target (issue 6): under 30 seconds on the demo. Also times opening the page in headless Chromium
(aqbench check-report) where Chromium is installed.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aqbench.config import as_json, load_file, report_settings
from aqbench.testing.browser import find_chromium

AQBENCH = [sys.executable, "-m", "aqbench"]


def timed(args):
    start = time.perf_counter()
    subprocess.run(AQBENCH + args, check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="results")
    parser.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args()
    results, config = Path(args.results), load_file(args.config)
    summary = results / "summary.csv"
    spectra = sorted(map(str, results.glob("hessian/*/bert/seed*/spectrum.json")))
    traces = sorted(map(str, results.glob("search/*/*/*/seed*/trace.json")))
    with tempfile.TemporaryDirectory() as out:
        seconds = {
            "tables": timed(
                [
                    "tables",
                    "--summary",
                    str(summary),
                    "--out-dir",
                    f"{out}/tables",
                    "--settings",
                    as_json(report_settings(config)),
                ]
            ),
            "figures": timed(
                [
                    "figures",
                    "--summary",
                    str(summary),
                    "--out-dir",
                    f"{out}/figures",
                    "--spectrum",
                    *spectra,
                    "--trace",
                    *traces,
                ]
            ),
            "report": timed(
                [
                    "report",
                    "--summary",
                    str(summary),
                    "--figures-dir",
                    f"{out}/figures",
                    "--out",
                    f"{out}/report.html",
                    "--settings",
                    json.dumps(config),
                ]
            ),
        }
        rebuild = sum(seconds.values())
        if find_chromium():
            seconds["check-report (Chromium)"] = timed(["check-report", f"{out}/report.html"])
        size = Path(f"{out}/report.html").stat().st_size
    for stage, s in seconds.items():
        print(f"{stage:>24}: {s:6.2f} s")
    print(f"rebuild from summary.csv (tables + figures + report): {rebuild:.1f} s; report.html {size / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
