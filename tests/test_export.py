"""Packing and export: bit-exact round trips, pruned groups cost nothing, the reloaded model is the fake-quantized
one, and the packed size of a hand-built assignment is the hand count. Seeded (torch.manual_seed)."""

import pytest
import torch

from aqbench.export import export_run, load_packed
from aqbench.quant.pack import pack, packed_bytes, unpack


def encoded_bytes(layer_bits, rows_per_group, columns):
    """The hand count: each bit-width's groups of a layer packed together, a pruned group nothing."""
    total = 0
    for b in sorted({b for b in layer_bits if b > 0}):
        total += (sum(r for r, x in zip(rows_per_group, layer_bits) if x == b) * columns * b + 7) // 8
    return total


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("count", [1, 7, 8, 13, 1000])
def test_pack_unpack_round_trips_bit_exact(bits, count):
    g = torch.Generator().manual_seed(bits * 100 + count)
    values = torch.randint(0, 2**bits, (count,), generator=g)
    data = pack(values, bits)
    assert data.dtype == torch.uint8 and data.numel() == packed_bytes(count, bits)
    assert torch.equal(unpack(data, bits, count), values)


def test_pack_layout_is_little_endian_and_dense():
    assert pack(torch.tensor([1, 2, 3, 0]), 2).tolist() == [0b00111001]  # 4 values per byte, first value lowest
    assert pack(torch.tensor([7, 0, 5]), 3).tolist() == [0b01000111, 0b1]  # 3-bit values straddle bytes


def test_out_of_range_values_are_refused():
    from aqbench.errors import AqbenchError

    with pytest.raises(AqbenchError):
        pack(torch.tensor([4]), 2)


def test_hand_count_of_mixed_and_pruned_groups():
    # 4 groups of 2 rows x 10 columns at 2, 0, 3, 2 bits: 2-bit groups 40 values = 10 bytes, 3-bit 20 values
    # = 60 bits = 8 bytes (the last one partial), the pruned group nothing
    assert encoded_bytes([2, 0, 3, 2], [2, 2, 2, 2], 10) == 10 + 8
    assert encoded_bytes([0, 0, 0, 0], [2, 2, 2, 2], 10) == 0


@pytest.fixture(scope="module", params=["asym", "sym"])
def quantized_run(tmp_path_factory, request):
    """A tiny fine-tuned classifier with a mixed assignment (0, 2, 3, 4, 8 bits) on each grid, calibrated, saved
    as a run."""
    from aqbench.data import prepare
    from aqbench.finetune import finetune
    from aqbench.methods import reference_state
    from aqbench.models import load_checkpoint
    from aqbench.quant.assignment import uniform
    from aqbench.quant.calibration import calibrate, calibration_features
    from aqbench.quant.modules import quantize_model
    from aqbench.runs import save_run
    from aqbench.settings import Data, Train
    from aqbench.tasks import get_task

    tmp = tmp_path_factory.mktemp("export")
    task = get_task("sst2")
    data = {
        "source": "synthetic",
        "seed": 1,
        "synthetic": {"n_train": 200, "n_eval": 30},
        "max_train_examples": None,
        "max_eval_examples": None,
    }
    train = {
        "epochs": 1,
        "batch_size": 16,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "warmup_ratio": 0.0,
        "grad_clip": 1.0,
        "max_length": 32,
        "eval_batch_size": 32,
        "device": "cpu",
    }
    prepare(task, Data.from_dict(data), tmp / "data")
    spec = {
        "source": "config",
        "tokenizer_vocab_size": 300,
        "architecture": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    }
    finetune(task, tmp / "data", spec, train, 0, tmp / "model")
    model, tokenizer = load_checkpoint(task, tmp / "model")
    assignment = uniform(model, 4, 8, request.param)
    cycle = [0, 2, 3, 4, 8]
    for i, layer in enumerate(assignment.layers.values()):
        layer.bits = [cycle[(i + g) % len(cycle)] for g in range(layer.groups)]
    quantize_model(model, assignment)
    train = Train.from_dict(train)
    calibrate(model, calibration_features(task, tmp / "data", tokenizer, train, 32, 0), tokenizer.pad_token_id, train)
    save_run(tmp / "run", model, reference_state(task, tmp / "model", assignment), assignment, {"method": "test"})
    return task, tmp, model, assignment


def test_reloaded_model_equals_the_fake_quantized_one(quantized_run):
    task, tmp, model, assignment = quantized_run
    record = export_run(task, tmp / "model", tmp / "run", tmp / "packed.safetensors")
    loaded, loaded_assignment = load_packed(task, tmp / "packed.safetensors")
    assert loaded_assignment.to_json()["layers"] == assignment.to_json()["layers"]
    torch.manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (4, 20))
    with torch.no_grad():
        expected = model.eval()(input_ids=ids).logits
        got = loaded(input_ids=ids).logits
    # the weights are decoded with the quantizer's own arithmetic, so the outputs are the same numbers
    assert torch.equal(got, expected), (got - expected).abs().max()
    assert record["packed_mb"] > 0


def test_packed_size_is_the_hand_count_and_pruned_groups_cost_nothing(quantized_run):
    from aqbench.quant.size import MB, encoder_size

    task, tmp, model, assignment = quantized_run
    record = export_run(task, tmp / "model", tmp / "run", tmp / "packed2.safetensors")
    codes = sum(encoded_bytes(l.bits, l.group_rows(), l.stored_in_features) for l in assignment.layers.values())
    assert record["packed_codes_bytes"] == codes
    kept = sum(sum(1 for b in l.bits if b > 0) for l in assignment.layers.values())
    groups = sum(l.groups for l in assignment.layers.values())
    # fp32 group parameters for the stored groups only: asym a scale and a minimum, sym the absolute maximum
    assert record["packed_scales_bytes"] == kept * 4 * (2 if assignment.grid == "asym" else 1)
    assert record["packed_bits_bytes"] == groups
    accounted = encoder_size(assignment)
    # the accounting's integers are exactly the packed codes up to each tensor's last partial byte
    assert abs(accounted["weight_mb"] * MB - codes) <= 5 * len(assignment.layers)
