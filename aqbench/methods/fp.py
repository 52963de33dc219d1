"""fp: the fine-tuned full-precision model, as a run (32-bit everything) so one evaluate serves all methods."""

from aqbench.errors import AqbenchError
from aqbench.quant.assignment import full_precision


def validate(budget, settings):
    if budget != "fp32":
        raise AqbenchError(f"budget {budget!r} means nothing for fp, which is the fp32 model: use budget fp32")


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs=None):
    """Returns (assignment, info); the model is left as it is."""
    return full_precision(model, meta={"method": "fp", "budget": budget}), {}
