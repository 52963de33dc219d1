"""Methods: each turns a fine-tuned FP model into a run (assignment + state). See aqbench.runs.

A method module has validate(budget, settings), which refuses what it cannot do before anything is loaded, and
run(task, model, tokenizer, data_dir, budget, seed, settings, inputs) -> (assignment, info), which may change
the model (quantize, calibrate, train) in place; inputs names the files a method needs beyond the checkpoint and
the data (the checkpoint itself, e.g. for a distillation teacher; Q-BERT's Hessian spectrum). run_method saves
what differs from the FP checkpoint.
"""

import time

import torch

from aqbench import registry
from aqbench.methods.common import settings_for_budget
from aqbench.models import load_checkpoint
from aqbench.quant.modules import quantize_model
from aqbench.runs import save_run


def get_method(name):
    """The module that runs a method (aqbench.registry names it): distil runs fp's code on the distilled
    student, aq_distil aq's (the rules give each the student's checkpoint)."""
    return registry.get(name).load()


def run_method(name, task, checkpoint_dir, data_dir, budget, seed, settings, out_dir, inputs=None):
    """Load the FP checkpoint, apply the method, write the run directory; returns the method record."""
    method = get_method(name)
    settings = settings_for_budget(settings, budget)
    method.validate(budget, settings)
    start = time.time()
    model, tokenizer = load_checkpoint(task, checkpoint_dir)
    torch.manual_seed(seed)
    inputs = {"checkpoint": str(checkpoint_dir), **(inputs or {})}
    assignment, info = method.run(task, model, tokenizer, data_dir, budget, seed, settings, inputs)
    assignment.meta["method"] = name  # distil runs fp's code, aq_distil aq's
    info = {
        "method": name,
        "task": task.name,
        "budget": budget,
        "seed": seed,
        "checkpoint": str(checkpoint_dir),
        **info,
        "seconds": time.time() - start,
    }
    save_run(out_dir, model, reference_state(task, checkpoint_dir, assignment), assignment, info)
    return info


def reference_state(task, checkpoint_dir, assignment):
    """What load_run rebuilds from the checkpoint and the assignment alone (e.g. OCS's split weights): the run's
    state stores only what differs from it (calibrated ranges, clipping ranges, trained weights)."""
    model, _ = load_checkpoint(task, checkpoint_dir)
    quantize_model(model, assignment)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
