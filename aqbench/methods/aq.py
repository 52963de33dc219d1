"""aq / aq_distil: AQ-BERT (Zhao et al., IJCAI 2021). The search (aqbench.search, its own cached stage) gives
a bit assignment per group of output neurons (0 = pruned); this step fine-tunes the model with that assignment
fixed (quantization-aware training from the fine-tuned FP checkpoint, the same QAT as Q-BERT's, so the two
differ only in the assignment) and the run is evaluated. aq_distil is the same on the distilled student: the
checkpoint it is given is the student's.
"""

from aqbench.budget import average_bits
from aqbench.errors import AqbenchError
from aqbench.qat import quantization_aware_training
from aqbench.quant.assignment import Assignment
from aqbench.quant.modules import encoder_linears


def validate(budget, settings):
    average_bits(budget, "aq")


def searched_assignment(model, budget, inputs):
    """The search's assignment (inputs["assignment"]), checked against the model it is applied to."""
    if "assignment" not in inputs:
        raise AqbenchError(
            "aq needs the search's assignment: pass --input assignment=results/search/.../assignment.json "
            "(the aq_search stage writes it)"
        )
    assignment = Assignment.load(inputs["assignment"])
    shapes = {n: tuple(m.weight.shape) for n, m in encoder_linears(model).items()}
    if {n: tuple(l.shape) for n, l in assignment.layers.items()} != shapes:
        raise AqbenchError(
            f"the assignment {inputs['assignment']} was searched on another model than the checkpoint "
            f"{inputs['checkpoint']}: rerun the search for it"
        )
    assignment.meta["budget"] = budget
    return assignment


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs):
    assignment = searched_assignment(model, budget, inputs)
    stats = quantization_aware_training(
        task, model, tokenizer, data_dir, assignment, settings, seed, inputs["checkpoint"]
    )
    return assignment, {"qat": stats, "search": str(inputs["assignment"])}
