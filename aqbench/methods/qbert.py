"""qbert: Q-BERT (Shen et al., AAAI 2020): group-wise quantization, Hessian-based mixed precision, QAT.

Budgets: w<b> = every block at b bits (the paper's uniform Q-BERT rows, e.g. w8, w4); b<avg bits> = mixed
precision: each encoder block gets one bit-width from qbert.bits by its Hessian sensitivity (aqbench.hessian;
the spectrum is an input of the job) with the rank rule or the ILP (aqbench.allocation) so that the encoder,
group parameters included, fits avg bits x the teacher's encoder weights. Then quantization-aware fine-tuning
with the assignment fixed (aqbench.qat; distillation from the FP model is a switch, off as in the paper).
"""

from aqbench.allocation import block_costs, ilp_allocation, rank_allocation
from aqbench.budget import UNIFORM, average_bits, kind_of, uniform_bits
from aqbench.io import read_json
from aqbench.methods.common import uniform_assignment
from aqbench.qat import quantization_aware_training
from aqbench.quant.modules import encoder_linears
from aqbench.quant.quantizer import get_grid, quantize_rows
from aqbench.quant.size import MB


def validate(budget, settings):
    if kind_of(budget) == UNIFORM:
        uniform_bits(budget, "qbert")
    else:
        average_bits(budget, "qbert")


def block_perturbation(model, assignment, blocks, bit_set):
    """{block: {bits: sum over its layers of ||Q_bits(W) - W||^2}} with the run's grid and groups (ILP input)."""
    grid, linears = get_grid(assignment.grid), encoder_linears(model)
    out = {b: {k: 0.0 for k in bit_set} for b in blocks}
    for name, layer in assignment.layers.items():
        w = linears[name].weight.detach()
        block = next(b for b in blocks if name.startswith(b + "."))
        for k in bit_set:
            out[block][k] += float((quantize_rows(w, [k] * layer.groups, grid) - w).pow(2).sum())
    return out


def allocation_inputs(model, budget, settings, block_names):
    """(uniform assignment at the smallest width, {block: {bits: size}}, the budget in bits): what an allocation
    rule needs besides the sensitivities."""
    cfg = settings.qbert
    assignment = uniform_assignment(model, min(cfg.bits), settings, "qbert", budget)
    costs = block_costs(assignment, block_names, cfg.bits)
    numel = sum(l.shape[0] * l.shape[1] for l in assignment.layers.values())
    return assignment, costs, average_bits(budget, "qbert") * numel


def mixed_assignment(model, budget, settings, spectrum):
    """One bit-width per block from the spectrum's sensitivities, within the budget."""
    cfg = settings.qbert
    sens = {b["name"]: b["sensitivity"] for b in spectrum["blocks"]}
    assignment, costs, budget_bits = allocation_inputs(model, budget, settings, list(sens))
    if cfg.rule == "ilp":
        bits = ilp_allocation(
            sens, block_perturbation(model, assignment, list(sens), cfg.bits), costs, budget_bits, cfg.bits
        )
    else:
        bits = rank_allocation(sens, costs, budget_bits, cfg.bits)
    for name, layer in assignment.layers.items():
        block = next(b for b in sens if name.startswith(b + "."))
        layer.bits = [bits[block]] * layer.groups
    assignment.meta.update(
        {"rule": cfg.rule, "block_bits": bits, "sensitivity": sens, "budget_mb": budget_bits / 8 / MB}
    )
    return assignment


def run(task, model, tokenizer, data_dir, budget, seed, settings, inputs):
    if kind_of(budget) == UNIFORM:
        assignment = uniform_assignment(model, uniform_bits(budget, "qbert"), settings, "qbert", budget)
    else:
        assignment = mixed_assignment(model, budget, settings, read_json(inputs["spectrum"], what="Hessian spectrum"))
    stats = quantization_aware_training(
        task, model, tokenizer, data_dir, assignment, settings, seed, inputs["checkpoint"]
    )
    return assignment, {"qat": stats, "block_bits": assignment.meta.get("block_bits")}
