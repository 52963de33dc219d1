"""AQ-BERT's super-network: every quantized Linear becomes a SearchLinear whose groups of output neurons each
mix the group's weight quantized at every candidate bit-width, weighted by a Gumbel-softmax over the group's
architecture parameters alpha (Zhao et al., IJCAI 2021):

    w_mix[g] = sum_c p[g, c] * Q_c(w[g]),    p[g] = softmax((alpha[g] + Gumbel noise) / t)

Q_0 = 0 (the group is pruned). Each Q_c is the run's group-wise quantizer with the straight-through estimator,
so d w_mix / d w = sum_{c > 0} p[g, c] and d w_mix / d p[g, c] = Q_c(w[g]). The candidates share one master
weight: each step rounds it once per candidate without recording gradients and forms

    w_mix = s * w + sum_{c > 0} p_c * (Q_c(w) - w).detach(),    s = sum_{c > 0} p_c

which is the same value and the same gradients, with no model copy per candidate. Inputs are quantized per
tensor at act_bits, as in QuantLinear. Expected size uses the noise-free p = softmax(alpha / t), the
probabilities the mix is annealed towards: at low temperature it is the size of the argmax choice.
"""

import torch
import torch.nn.functional as F
from torch import nn

from aqbench.errors import AqbenchError
from aqbench.quant.assignment import Assignment, LayerBits
from aqbench.quant.modules import ActQuantizer, QuantEmbedding, _replace, embedding_modules, encoder_linears
from aqbench.quant.quantizer import (
    FULL_PRECISION,
    get_grid,
    group_index,
    group_minmax,
    group_sizes,
    quantize_rows,
    row_plan,
)
from aqbench.quant.size import group_param_bits


class SearchLinear(nn.Module):
    def __init__(self, linear, groups, candidates, grid="asym", act_bits=8, act_grid="asym"):
        super().__init__()
        if len(set(candidates)) != len(candidates) or len(candidates) < 2:
            raise AqbenchError(f"the search needs at least two distinct candidate bit-widths, got {list(candidates)}")
        self.out_features, self.in_features = linear.weight.shape
        self.weight, self.bias = linear.weight, linear.bias
        self.grid = get_grid(grid)
        self.groups = min(groups, self.out_features)
        self.candidates = sorted(candidates)  # ascending: repair steps to the neighbouring candidate
        self.alpha = nn.Parameter(torch.zeros(self.groups, len(self.candidates)))  # uniform start
        self.nonzero = [k for k, b in enumerate(self.candidates) if b > 0]
        if not self.nonzero:
            raise AqbenchError("the candidates must include a bit-width above 0")
        self.register_buffer("row_group", group_index(self.out_features, self.groups), persistent=False)
        # bits each (group, candidate) costs: integers + the group's scale (and offset); a pruned group costs 0
        numel = torch.tensor(group_sizes(self.out_features, self.groups), dtype=torch.float64) * self.in_features
        cost = torch.stack([numel * c + (group_param_bits(grid) if c > 0 else 0) for c in self.candidates], 1)
        self.register_buffer("cost_bits", cost.float(), persistent=False)
        self.temperature = 1.0
        self._deltas = None
        self.sample = True  # Gumbel noise in training mode; eval mode mixes with the noise-free probabilities
        self.act = ActQuantizer(act_bits, act_grid)

    def probabilities(self, noise=False):
        logits = self.alpha
        if noise:
            logits = logits - torch.empty_like(logits).exponential_().log()  # + Gumbel(0, 1)
        return F.softmax(logits / self.temperature, dim=-1)

    def expected_bits(self):
        """Expected stored bits of this matrix under the current probabilities (differentiable in alpha)."""
        return (self.probabilities() * self.cost_bits).sum()

    def candidate_deltas(self):
        """Q_c(w) - w for the nonzero candidates, without gradient, as one (candidates, rows, in) tensor. They
        depend on the weight only, so they are computed once per weight version: the architecture step and the
        weight step that follows it (same weights) share them."""
        key = (self.weight._version, self.weight.data_ptr())
        if self._deltas is None or self._deltas[0] != key:
            with torch.no_grad():
                w = self.weight.detach()
                lo, hi = group_minmax(w, self.groups)
                plans = self._candidate_plans()
                deltas = w.new_empty((len(plans), *w.shape))  # written in place: no stacked copy
                for k, plan in enumerate(plans):
                    torch.sub(quantize_rows(w, None, self.grid, lo, hi, plan=plan), w, out=deltas[k])
            self._deltas = (key, deltas)
        return self._deltas[1]

    _plans = None

    def _candidate_plans(self):
        """Each nonzero candidate's row_plan (every group at that bit-width), made once per dtype and device:
        worked out afresh at every step they cost more than the rounding on small matrices."""
        key = (self.weight.dtype, self.weight.device)
        if self._plans is None or self._plans[0] != key:
            bits = [self.candidates[k] for k in self.nonzero]
            self._plans = (key, [row_plan([b] * self.groups, self.out_features, self.grid, *key) for b in bits])
        return self._plans[1]

    def mixed_weight(self):
        p = self.probabilities(noise=self.training and self.sample)[self.row_group][:, self.nonzero]  # (rows, K')
        # sum_c p_c (Q_c(w) - w) over the candidates, each a contiguous (rows, in) slab (faster than a batched
        # product per row, the same values); + s * w carries the STE gradient to w
        mixed = torch.einsum("rc,cri->ri", p, self.candidate_deltas())
        return p.sum(1, keepdim=True) * self.weight + mixed

    def chosen_bits(self):
        """The argmax candidate per group."""
        return [self.candidates[i] for i in self.alpha.detach().argmax(1).tolist()]

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(self.act(x.float()), self.mixed_weight(), self.bias)

    def extra_repr(self):
        return (
            f"in={self.in_features}, out={self.out_features}, groups={self.groups}, candidates={self.candidates}, "
            f"grid={self.grid.name}"
        )


def to_supernet(model, settings, candidates, names=None):
    """Swap the encoder's Linear layers (or the named ones) for SearchLinear and quantize the embeddings at the
    run's bits, in place; returns {name: SearchLinear}. settings: the config's
    quant section (aqbench.settings.Quant)."""
    linears = encoder_linears(model) if names is None else {n: model.get_submodule(n) for n in names}
    out = {}
    for name, linear in linears.items():
        if not isinstance(linear, nn.Linear):
            raise AqbenchError(
                f"layer {name} is {type(linear).__name__}, not a Linear: is the model already quantized?"
            )
        out[name] = SearchLinear(
            linear, settings.groups, candidates, settings.grid, settings.act_bits, settings.act_grid
        )
        _replace(model, name, out[name])
    if names is None and settings.emb_bits < FULL_PRECISION:
        for name, module in embedding_modules(model).items():
            _replace(model, name, QuantEmbedding(module, settings.emb_bits, settings.grid))
    return out


def search_layers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, SearchLinear)}


def set_temperature(model, t):
    for m in search_layers(model).values():
        m.temperature = float(t)


def arch_parameters(model):
    return [m.alpha for m in search_layers(model).values()]


def expected_size_bits(model):
    return sum(m.expected_bits() for m in search_layers(model).values())


def derive(model, budget_bits, settings, eps=0.0, meta=None):
    """The bit assignment of the argmax candidate per group, repaired to land in [(1 - eps) V, V], V = budget_bits.

    Over the budget: the group least certain of its choice against its next lower candidate (largest
    p(lower) / p(chosen), probabilities at temperature 1) steps down to that candidate, until it fits; each step
    removes one group's cost difference, so a binding budget ends within one step of V. Under (1 - eps) V (the
    search ended with probabilities too flat for the argmax to use the budget): the group most inclined to its
    next higher candidate steps up, as long as it still fits, until (1 - eps) V is reached or nothing fits.
    Returns (assignment, {"argmax_bits", "size_bits", "steps_down", "steps_up"})."""
    import heapq

    layers = search_layers(model)
    probs = {n: F.softmax(m.alpha.detach().double(), -1) for n, m in layers.items()}
    choice = {n: m.alpha.detach().argmax(1).tolist() for n, m in layers.items()}
    cost = {n: m.cost_bits.double().tolist() for n, m in layers.items()}
    size = argmax_bits = sum(cost[n][g][k] for n, c in choice.items() for g, k in enumerate(c))

    def repair(direction, keep_going, fits):
        """Move groups one candidate in `direction` (-1 down, +1 up), most inclined first."""
        nonlocal size
        heap, steps = [], 0

        def push(n, g):
            k = choice[n][g]
            if 0 <= k + direction < len(cost[n][g]):
                p = probs[n][g]
                heapq.heappush(heap, (-float(p[k + direction] / p[k].clamp_min(1e-300)), n, g, k))

        for n, c in choice.items():
            for g in range(len(c)):
                push(n, g)
        while keep_going() and heap:
            _, n, g, k = heapq.heappop(heap)
            change = cost[n][g][k + direction] - cost[n][g][k]
            if choice[n][g] != k or not fits(size + change):
                continue
            size += change
            choice[n][g] = k + direction
            steps += 1
            push(n, g)
        return steps

    down = up = 0
    if size > budget_bits:
        down = repair(-1, lambda: size > budget_bits, lambda new: True)
        if size > budget_bits:
            raise AqbenchError(
                f"the budget of {budget_bits / 8 / 2**20:.4f} MB cannot be met even with every group at "
                f"the smallest candidate ({size / 8 / 2**20:.4f} MB). Fix: add 0 (pruning) or a lower "
                "bit-width to the candidates, or raise the budget"
            )
    elif size < (1 - eps) * budget_bits:
        up = repair(+1, lambda: size < (1 - eps) * budget_bits, lambda new: new <= budget_bits)
    assignment = Assignment(
        settings.grid,
        int(settings.act_bits),
        int(settings.emb_bits),
        {
            n: LayerBits((m.out_features, m.in_features), [m.candidates[k] for k in choice[n]])
            for n, m in layers.items()
        },
        settings.act_grid,
        dict(meta or {}),
    ).validate()
    return assignment, {"argmax_bits": argmax_bits, "size_bits": size, "steps_down": down, "steps_up": up}
