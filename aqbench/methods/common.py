"""What methods share: a budget's settings and the uniform assignment (calibration: aqbench.quant.calibration)."""

import dataclasses

from aqbench.budget import Budget
from aqbench.quant.assignment import uniform


def settings_for_budget(settings, budget):
    """The run's settings (an aqbench.settings.MethodSettings): a group-study label (b2.47-g12) replaces
    quant.groups with its own count."""
    groups = Budget.parse(budget).groups
    if groups is None or settings.quant is None:
        return settings
    return dataclasses.replace(settings, quant=dataclasses.replace(settings.quant, groups=groups))


def uniform_assignment(model, bits, settings, method, budget):
    """Every encoder Linear at `bits` with the run's quantization settings (grid, groups, act/emb bits)."""
    q = settings.quant
    return uniform(
        model,
        bits,
        q.groups,
        q.grid,
        q.act_bits,
        q.emb_bits,
        q.act_grid,
        meta={"method": method, "budget": budget},
    )
