"""qbert_gptq / aq_gptq: a mixed-precision assignment rounded by GPTQ instead of trained by QAT.

The assignment is Q-BERT's (one bit-width per block from the Hessian spectrum, aqbench.methods.qbert) or
AQ-BERT's (a searched bit-width per group, pruned groups included; the aq_search stage's file); the model is
then rounded layer by layer with GPTQ as the gptq method does (aqbench.methods.gptq), with no training. Beside
qbert and aq at the same budget, the pair answers whether the assignment is worth its quantization-aware
training.
"""

from aqbench.budget import average_bits
from aqbench.io import read_json
from aqbench.methods import aq, qbert
from aqbench.methods.gptq import gptq_rounding


def validate(budget, settings):
    average_bits(budget, "qbert_gptq / aq_gptq")


def assignment_of(model, budget, settings, inputs):
    """Q-BERT's assignment where the job was given a spectrum, else the search's."""
    if "spectrum" in inputs:
        return qbert.mixed_assignment(model, budget, settings, read_json(inputs["spectrum"], what="Hessian spectrum"))
    return aq.searched_assignment(model, budget, inputs)


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs):
    assignment = assignment_of(model, budget, settings, inputs)
    info = gptq_rounding(model, assignment, task, data_dir, tokenizer, seed, settings)
    return assignment, {**info, "block_bits": assignment.meta.get("block_bits")}
