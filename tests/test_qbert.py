"""Q-BERT: Hessian top eigenvalues per block against the dense Hessian, and bit allocation to a budget."""

import random

import pytest
import torch

from aqbench.allocation import ilp_allocation, rank_allocation
from aqbench.errors import AqbenchError
from aqbench.hessian import block_weights, stopped_at, top_eigenvalue


def tiny_model_and_batches(seed=0, steps=60):
    """A 2-block BERT small enough for a dense Hessian (512 weights per block), trained part-way on a toy task
    (is token 7 in the sequence?). Mid-training, like a fine-tuned model, its top eigenvalue stands out; at
    random initialisation the spectrum is nearly degenerate and power iteration has no dominant direction."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=2,
        attn_implementation="eager",
    )
    model = BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(seed)

    def data(n):
        ids = torch.randint(5, 30, (n, 6), generator=g)
        return ids, (ids == 7).any(1).long()

    ids, labels = data(256)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    ids, labels = data(24)
    ones = torch.ones(12, 6, dtype=torch.long)
    return model.eval(), [
        {"input_ids": ids[:12], "attention_mask": ones, "labels": labels[:12]},
        {"input_ids": ids[12:], "attention_mask": ones, "labels": labels[12:]},
    ]


def dense_hessian(model, batch_list, params):
    """The full Hessian of the mean loss restricted to params, one row per backward pass."""
    loss = sum(model(**b).loss * b["input_ids"].shape[0] for b in batch_list) / sum(
        b["input_ids"].shape[0] for b in batch_list
    )
    grads = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, create_graph=True)])
    rows = [
        torch.cat([h.reshape(-1) for h in torch.autograd.grad(grads[i], params, retain_graph=True)])
        for i in range(len(grads))
    ]
    return torch.stack(rows)


def test_power_iteration_matches_the_dense_top_eigenvalue_of_each_block():
    model, batch_list = tiny_model_and_batches()
    for name, params in block_weights(model):
        eig = torch.linalg.eigvalsh(dense_hessian(model, batch_list, params).double())
        by_size = eig[eig.abs().argsort(descending=True)]
        assert by_size[0].abs() > 2 * by_size[1].abs(), "the fixture must have a dominant eigenvalue"
        dominant = float(by_size[0])
        lam, iters = top_eigenvalue(
            model, batch_list, params, max_iter=100, tol=1e-4, generator=torch.Generator().manual_seed(0)
        )
        assert lam == pytest.approx(dominant, rel=1e-3), (name, lam, dominant, iters)
        assert sum(p.numel() for p in params) == 4 * 8 * 8 + 2 * 8 * 16  # the block's Linear weights only


def test_power_iteration_is_reproducible_with_a_seed():
    model, batch_list = tiny_model_and_batches()
    params = block_weights(model)[0][1]
    runs = [top_eigenvalue(model, batch_list, params, 20, 1e-4, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert runs[0] == runs[1]


def test_a_recorded_run_tells_what_a_larger_tolerance_or_smaller_cap_would_have_returned():
    """The Hessian budget study reads every setting off one run at a small tolerance (benchmarks/hessian_budget.py):
    each read-off must equal a run with that setting."""
    model, batch_list = tiny_model_and_batches()
    for _, params in block_weights(model):
        history = []
        top_eigenvalue(model, batch_list, params, 30, 1e-9, torch.Generator().manual_seed(1), history=history)
        assert len(history) >= 5
        for cap, tol in [(2, 1e-4), (3, 1e-2), (30, 1e-3), (30, 1e-5), (5, 1e-6)]:
            run = top_eigenvalue(model, batch_list, params, cap, tol, torch.Generator().manual_seed(1))
            assert stopped_at(history, cap, tol) == run, (cap, tol)


# --- allocation ---------------------------------------------------------------------------------------------

BITS = (2, 3, 4, 8)


def costs_for(sizes):
    """A block of n weights costs n * bits (no group parameters, for hand-checkable cases)."""
    return {b: {k: n * k for k in BITS} for b, n in sizes.items()}


@pytest.mark.parametrize("seed", range(20))
def test_rank_allocation_meets_the_budget_and_is_monotone_in_sensitivity(seed):
    rng = random.Random(seed)
    blocks = [f"b{i}" for i in range(rng.randint(2, 8))]
    sens = {b: rng.random() for b in blocks}
    costs = costs_for({b: rng.choice([100, 200, 400]) for b in blocks})
    low, high = sum(c[2] for c in costs.values()), sum(c[8] for c in costs.values())
    budget = rng.uniform(low, high)
    bits = rank_allocation(sens, costs, budget, BITS)
    assert sum(costs[b][bits[b]] for b in blocks) <= budget
    for a in blocks:
        for b in blocks:
            if sens[a] > sens[b]:
                assert bits[a] >= bits[b]
    # nothing monotone fits better: raising the least-loaded next block would break the budget or monotonicity
    assert sum(costs[b][bits[b]] for b in blocks) >= low


def test_rank_allocation_uses_the_budget_exactly_when_it_can():
    costs = costs_for({"a": 100, "b": 100, "c": 100})
    assert rank_allocation({"a": 3.0, "b": 2.0, "c": 1.0}, costs, 100 * (4 + 3 + 2), BITS) == {"a": 4, "b": 3, "c": 2}
    assert rank_allocation({"a": 1.0, "b": 2.0, "c": 3.0}, costs, 100 * (8 + 2 + 2), BITS) == {"c": 8, "b": 2, "a": 2}


def test_the_ilp_and_the_rank_rule_agree_when_there_is_one_answer():
    """Equal blocks; the budget allows exactly one block at 3 bits. Both rules must upgrade the most sensitive
    block (the ILP because its perturbation falls most where Omega is largest)."""
    costs = costs_for({"a": 100, "b": 100, "c": 100})
    sens = {"a": 1.0, "b": 5.0, "c": 2.0}
    perturbation = {b: {2: 1.0, 3: 0.3, 4: 0.1, 8: 0.0} for b in costs}
    budget = 100 * (3 + 2 + 2)
    expected = {"a": 2, "b": 3, "c": 2}
    assert rank_allocation(sens, costs, budget, BITS) == expected
    assert ilp_allocation(sens, perturbation, costs, budget, BITS) == expected


def test_a_budget_below_the_smallest_bit_width_is_refused_by_name():
    costs = costs_for({"a": 2**20, "b": 2**20})
    for rule in (
        lambda: rank_allocation({"a": 1, "b": 2}, costs, 2**20 * 3, BITS),
        lambda: ilp_allocation({"a": 1, "b": 2}, {b: {k: 1.0 for k in BITS} for b in costs}, costs, 2**20 * 3, BITS),
    ):
        with pytest.raises(
            AqbenchError, match=r"cannot be met: with bit-widths \[2, 3, 4, 8\] the encoder takes at least 0.5000 MB"
        ):
            rule()


def test_the_hessian_budget_study_counts_the_draws_that_keep_the_reference_bits():
    """benchmarks/hessian_budget.py scores a setting on every window of k consecutive subsamples: a made-up record
    where block a outranks block b in every subsample but one shows exactly the windows that contain that one."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "hessian_budget.py"
    spec = importlib.util.spec_from_file_location("hessian_budget", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)

    def converged(lam):  # power iteration that settles on lam at its third iteration
        return [lam * 0.5, lam * 0.9, lam, lam, lam]

    subsamples = [[converged(2.0), converged(1.0)] for _ in range(10)]
    subsamples[4] = [converged(1.0), converged(3.0)]  # one draw where b is the more sensitive block
    record = {
        "blocks": ["a", "b"],
        "max_iter": 5,
        "tol": 1e-9,
        "fractions": {"0.1": {"examples": 100, "histories": subsamples}},
    }

    def allocate(sens):  # the more sensitive block gets 4 bits, the other 2
        return {k: 4 if sens[k] == max(sens.values()) else 2 for k in sens}

    ref_sens, ref_bits, rows = study.study(record, allocate, (0.1, 10, 5, 1e-4))
    assert ref_bits == {"a": 4, "b": 2}
    by_setting = {(r["subsamples"], r["max_iter"]): r for r in rows if r["tol"] == 1e-4}
    one = by_setting[(1, 5)]
    assert (one["draws"], round(one["kept"] * one["draws"])) == (10, 9)  # all but the window holding subsample 4
    assert one["tau_min"] == -1.0 and one["cost"] == pytest.approx(1 / 10)  # one subsample's HVPs of ten
    # 2 subsamples: windows (3, 4) and (4, 5) average a = 1.5, b = 2.0 plus std: b wins there
    two = by_setting[(2, 5)]
    assert round(two["kept"] * two["draws"]) == 8
    assert by_setting[(10, 5)]["kept"] == 1.0 and by_setting[(10, 5)]["tau_min"] == 1.0


def test_reusing_one_batch_gradient_graph_gives_the_same_product():
    """top_eigenvalue reuses one batch's gradient graph for every product; it must equal the rebuilt one."""
    from aqbench.hessian import hvp, reusing_graph_hvp

    model, batch_list = tiny_model_and_batches()
    params = block_weights(model)[1][1]
    product = reusing_graph_hvp(model, batch_list[0], params)
    for seed in (0, 1):
        v = [torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)) for p in params]
        for a, b in zip(hvp(model, batch_list[:1], params, v), product(v)):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
