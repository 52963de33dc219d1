"""The code is formatted and linted as pyproject.toml says (ruff, snakefmt): CI fails on a file that is not."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BIN = Path(sys.executable).parent  # ruff and snakefmt come with the test extra, beside this Python


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["snakefmt", "--check", "workflow"]],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_style(command):
    tool = BIN / command[0]
    assert tool.exists(), f"{tool} is missing: pip install -e .[test]"
    done = subprocess.run([str(tool), *command[1:]], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, (
        f"`{' '.join(command)}` wants changes; run it without --check:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    )
