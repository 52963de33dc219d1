"""Size accounting against hand counts (docs/outputs.md, "Size")."""

import pytest

from aqbench.quant.assignment import Assignment, LayerBits
from aqbench.quant.size import MB, budget_mb, embedding_size_mb, encoder_size

BERT_BASE = {
    f"layer{i}.{n}": shape
    for i in range(12)
    for n, shape in [
        ("q", (768, 768)),
        ("k", (768, 768)),
        ("v", (768, 768)),
        ("o", (768, 768)),
        ("ffn1", (3072, 768)),
        ("ffn2", (768, 3072)),
    ]
}


def bert_base(bits, groups, grid="asym"):
    return Assignment(grid, 8, 8, {n: LayerBits(s, [bits] * groups) for n, s in BERT_BASE.items()})


def test_bert_base_fp32_is_324_mb_of_84_9m_weights():
    size = encoder_size(bert_base(32, 1))
    assert size["numel"] == 12 * (4 * 768**2 + 2 * 768 * 3072) == 84_934_656
    assert size["size_mb"] == pytest.approx(324.0, abs=0.01)  # the papers round this to 324.5
    assert size["overhead_mb"] == 0


def test_bert_base_8_bit_with_128_groups_counts_the_group_parameters():
    size = encoder_size(bert_base(8, 128, "asym"))
    weights = 84_934_656 * 8 / 8 / MB  # = 81.0 MB
    params = 72 * 128 * (16 + 16) / 8 / MB  # fp16 scale + fp16 offset per group
    assert size["weight_mb"] == pytest.approx(weights)
    assert size["overhead_mb"] == pytest.approx(params)
    assert size["size_mb"] == pytest.approx(81.0 + 0.03515625)
    assert encoder_size(bert_base(8, 128, "sym"))["overhead_mb"] == pytest.approx(params / 2)  # no offset


def test_papers_budgets_in_mb():
    # the papers' budgets: 30 / 25 / 20 MB on BERT-base are about 2.96 / 2.47 / 1.97 bits per weight
    for bits, mb in [(2.96, 30.0), (2.47, 25.0), (1.97, 20.0)]:
        assert budget_mb(bits, 84_934_656) == pytest.approx(mb, abs=0.1)


def test_mixed_bits_and_pruned_groups_by_hand():
    # 4 rows x 10 inputs in 3 groups of rows (2, 1, 1): bits 4, 0 (pruned), 2
    a = Assignment("sym", 8, 8, {"m": LayerBits((4, 10), [4, 0, 2])})
    size = encoder_size(a)
    assert size["weight_mb"] * 8 * MB == 2 * 10 * 4 + 0 + 1 * 10 * 2
    assert size["overhead_mb"] * 8 * MB == 2 * 16  # two stored groups; the pruned one costs nothing
    assert size["avg_bits"] == pytest.approx(100 / 40)
    assert size["pruned_frac"] == pytest.approx(0.25)


def test_embedding_size_per_row_parameters():
    assert embedding_size_mb([(30522, 768), (512, 768), (2, 768)], 8, "asym") * MB == pytest.approx(
        (31036 * 768 * 8 + 31036 * 32) / 8
    )
    assert embedding_size_mb([(10, 4)], 32) * MB == 10 * 4 * 4
