"""Bit allocation to encoder blocks under a size budget, from per-block sensitivities (Q-BERT).

- "rank" (Q-BERT's rule): more sensitive blocks get at least as many bits. Of all assignments that are
  monotone in sensitivity and fit the budget, the one that uses the most of it; ties go to the one giving
  more bits to the more sensitive blocks. Monotone assignments of B blocks to K bit-widths number
  C(B + K - 1, K - 1) (455 for BERT-base and {2, 3, 4, 8}), so they are enumerated: the answer is exact.
- "ilp" (as HAWQ-V3): minimise sum over blocks of Omega_b * ||Q_bits(W_b) - W_b||^2 subject to the size budget,
  one bit-width per block, solved as an integer program with PuLP (CBC).

Sizes are the encoder MB of docs/outputs.md (group parameters included): a block's cost at b bits is its layers'
cost with every group at b bits. A budget that not even the smallest bit-width meets is refused by name.
"""

import itertools

from aqbench.errors import AqbenchError
from aqbench.quant.assignment import LayerBits
from aqbench.quant.size import MB, layer_bits

RULES = ("rank", "ilp")


def block_of(layer_name, block_names):
    matches = [b for b in block_names if layer_name.startswith(b + ".")]
    if len(matches) != 1:
        raise AqbenchError(f"layer {layer_name} is in {len(matches)} blocks")
    return matches[0]


def block_costs(assignment, block_names, bit_set):
    """{block: {bits: size in bits}} with every group of the block's layers at `bits`."""
    costs = {b: {k: 0 for k in bit_set} for b in block_names}
    for name, layer in assignment.layers.items():
        block = block_of(name, block_names)
        for k in bit_set:
            weight, overhead = layer_bits(LayerBits(layer.shape, [k] * layer.groups, layer.extra), assignment.grid)
            costs[block][k] += weight + overhead
    return costs


def rank_allocation(sensitivity, costs, budget_bits, bit_set):
    """Q-BERT's rule, exactly: {block: bits} monotone in sensitivity, as large as fits the budget."""
    blocks = sorted(sensitivity, key=lambda b: -sensitivity[b])  # most sensitive first; stable on ties
    levels = sorted(bit_set, reverse=True)
    best = None
    for combo in itertools.combinations_with_replacement(levels, len(blocks)):  # non-increasing bit sequences
        size = sum(costs[b][k] for b, k in zip(blocks, combo))
        if size <= budget_bits and (best is None or (size, combo) > best[:2]):
            best = (size, combo)
    if best is None:
        raise budget_error(costs, budget_bits, bit_set)
    return dict(zip(blocks, best[1]))


def ilp_allocation(sensitivity, perturbation, costs, budget_bits, bit_set):
    """min sum_b Omega_b * perturbation[b][k] x_bk  s.t.  sum_b cost[b][k] x_bk <= budget, sum_k x_bk = 1."""
    import pulp

    if sum(min(costs[b].values()) for b in costs) > budget_bits:
        raise budget_error(costs, budget_bits, bit_set)
    prob = pulp.LpProblem("bit_allocation", pulp.LpMinimize)
    x = {(b, k): pulp.LpVariable(f"x_{i}_{k}", cat="Binary") for i, b in enumerate(costs) for k in bit_set}
    prob += pulp.lpSum(sensitivity[b] * perturbation[b][k] * x[b, k] for b in costs for k in bit_set)
    prob += pulp.lpSum(costs[b][k] * x[b, k] for b in costs for k in bit_set) <= budget_bits
    for b in costs:
        prob += pulp.lpSum(x[b, k] for k in bit_set) == 1
    status = prob.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[status] != "Optimal":
        raise AqbenchError(f"the bit-allocation integer program is {pulp.LpStatus[status]}")
    return {b: next(k for k in bit_set if x[b, k].value() > 0.5) for b in costs}


def budget_error(costs, budget_bits, bit_set):
    smallest = sum(min(c.values()) for c in costs.values())
    return AqbenchError(
        f"budget of {budget_bits / 8 / MB:.4f} MB cannot be met: with bit-widths {sorted(bit_set)} "
        f"the encoder takes at least {smallest / 8 / MB:.4f} MB. Fix: raise the budget or allow "
        "lower bit-widths (or 0 = pruning, where the method supports it)"
    )
