"""fp: the fine-tuned full-precision model, as a run (32-bit everything) so one evaluate serves all methods."""

from aqbench.quant.assignment import full_precision


def run(task, model, tokenizer, data_dir, budget, seed, settings):
    """Returns (assignment, info); the model is left as it is."""
    return full_precision(model, meta={"method": "fp", "budget": budget}), {}
