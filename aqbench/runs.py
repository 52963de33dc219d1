"""A quantized run on disk: what every method stage writes and `evaluate` (and later export) reads.

runs/<task>/<model>/<method>/<budget>/seed<seed>/
    assignment.json     the bit assignment (aqbench.quant.assignment)
    state.safetensors   tensors that differ from the FP checkpoint with the assignment applied (activation and
                        clipping ranges, trained weights); PTQ runs stay a few KB, not a model copy
    method.json         what the method did: settings, wall time, versions, notes
"""

import time
from pathlib import Path

import torch

from aqbench.errors import AqbenchError
from aqbench.io import atomic_file, read_json, write_json
from aqbench.models import load_checkpoint
from aqbench.quant.assignment import Assignment
from aqbench.quant.modules import quantize_model
from aqbench.versions import versions


def save_run(out_dir, model, base_state, assignment, info):
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    delta = {
        k: v.detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
        if k not in base_state or not torch.equal(v.detach().cpu(), base_state[k])
    }
    with atomic_file(out_dir / "state.safetensors") as tmp:
        save_file(delta, str(tmp))
    assignment.save(out_dir / "assignment.json")
    write_json(
        out_dir / "method.json",
        {**info, "state_tensors": len(delta), "versions": versions(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")},
    )


def load_run(task, checkpoint_dir, run_dir):
    """(model, tokenizer, assignment, method info): the FP checkpoint with the run's assignment and state."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    model, tokenizer = load_checkpoint(task, checkpoint_dir)
    assignment = Assignment.load(run_dir / "assignment.json")
    info = read_json(run_dir / "method.json", what="method record")
    quantize_model(model, assignment)
    state_path = run_dir / "state.safetensors"
    if not state_path.is_file():
        raise AqbenchError(f"run {run_dir} has no state.safetensors: rerun its method stage")
    result = model.load_state_dict(load_file(str(state_path)), strict=False)
    if result.unexpected_keys:
        raise AqbenchError(
            f"run {run_dir}: its state has tensors this model does not ({result.unexpected_keys[:3]}...); "
            "was it made from another checkpoint?"
        )
    return model, tokenizer, assignment, info
