#!/usr/bin/env bash
# Set up aqbench in ./.venv: Python >= 3.11, torch (the CPU wheel torch==2.13.0 unless a torch is already
# installed there, so a CPU machine never pulls CUDA packages), then aqbench and its dependencies (editable).
# Safe to run again: it only installs what is missing or changed.
# GPU: install the CUDA build of torch into .venv first (see README, "GPU"); this script keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    echo "aqbench needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11" >&2; exit 1; }
  "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing torch==${AQBENCH_TORCH:-2.13.0} (CPU)"
  .venv/bin/python -m pip install -q "torch==${AQBENCH_TORCH:-2.13.0}"
fi
echo "setup: installing aqbench and its dependencies into .venv"
.venv/bin/python -m pip install -q -e ".[test,slurm,real]"
echo "setup: done ($(.venv/bin/python -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")'))"
