"""Why the demo quantizes on the symmetric grid: LQ on the demo's fine-tuned checkpoints with both grids and
several group counts, in one run. Reads results/ (run the demo first); writes nothing.

    .venv/bin/python benchmarks/grid_sensitivity.py [--results results] [--bits 2 3] [--groups 1 8 64]
"""

import argparse
from pathlib import Path

import pandas as pd
import torch

from aqbench.config import load_file, stage_settings
from aqbench.evaluate import evaluate_model
from aqbench.models import load_checkpoint
from aqbench.quant import quantize_model, uniform
from aqbench.quant.calibration import calibrate, calibration_features
from aqbench.tasks import get_task

REPO = Path(__file__).resolve().parent.parent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results")
    p.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    p.add_argument("--bits", type=int, nargs="+", default=[2, 3])
    p.add_argument("--groups", type=int, nargs="+", default=[1, 8, 64])
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_file(args.config)
    rows = []
    for name in cfg["tasks"]:
        task, settings = get_task(name), stage_settings(cfg, "train", name)
        ckpt, data = Path(args.results, "models", name, "bert", "seed0"), Path(args.results, "data", name)
        model, tok = load_checkpoint(task, ckpt)
        fp, _ = evaluate_model(task, model, tok, data, settings)
        calib = calibration_features(task, data, tok, settings, cfg["quant"]["calibration_examples"], 0)
        for grid in ("asym", "sym"):
            for groups in args.groups:
                for bits in args.bits:
                    model, tok = load_checkpoint(task, ckpt)
                    quantize_model(model, uniform(model, bits, groups, grid, 8, 8))
                    calibrate(model, calib, tok.pad_token_id, settings)
                    metrics, _ = evaluate_model(task, model, tok, data, settings)
                    rows.append(
                        {
                            "task": name,
                            "grid": grid,
                            "groups": groups,
                            "bits": bits,
                            "drop": metrics[task.main_metric] - fp[task.main_metric],
                        }
                    )
    table = pd.DataFrame(rows).pivot_table(index=["grid", "groups", "bits"], columns="task", values="drop")
    print("Change of the main metric vs FP (points), LQ with 8-bit activations and embedding:\n")
    print(table[cfg["tasks"]].round(1).to_string())


if __name__ == "__main__":
    main()
