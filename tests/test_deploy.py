"""ONNX export on ONNX Runtime: the layouts round-trip, the initializers decode back to the packed file's codes and
parameters for every width, grid, OCS split and a mixed/pruned assignment, the exact forms' outputs equal the
PyTorch run's within float rounding on every head and architecture, a bad model file is one clear error, and the
stage writes nothing when ORT and PyTorch disagree. Seeded; no timing assertions."""

import numpy as np
import pytest
import torch

from aqbench.deploy.forms import forms_of
from aqbench.deploy.graph import build_model, read_linear
from aqbench.deploy.runtime import session
from aqbench.deploy.weights import (
    block_size,
    centered_zero,
    nbits_blocks,
    nbits_codes,
    nbits_zero_points,
    nbits_zero_values,
    stored_bits,
)
from aqbench.errors import AqbenchError


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("k", [16, 64, 100, 776])
def test_nbits_layout_round_trips(bits, k):
    g = torch.Generator().manual_seed(bits * 1000 + k)
    codes = torch.randint(0, 2**bits, (7, k), generator=g)
    block = block_size(k)
    b = nbits_blocks(codes, bits, block)
    assert b.shape == (7, -(-k // block), block * bits // 8) and b.dtype == np.uint8
    assert torch.equal(nbits_codes(b, bits, k), codes)
    zero = torch.randint(0, 2**bits, (7,), generator=g)
    z = nbits_zero_points(zero, bits, b.shape[1])
    assert (nbits_zero_values(z, bits, b.shape[1]) == zero[:, None]).all()


def test_nbits_layout_is_low_bits_first_along_k():
    # MatMulNBits' spec: two 4-bit codes per byte, the first in the low nibble
    assert nbits_blocks(torch.tensor([[1, 2] + [0] * 14]), 4, 16)[0, 0, 0] == 0x21


def test_stored_widths_and_block_sizes():
    assert [stored_bits(b) for b in range(1, 9)] == [2, 2, 4, 4, 8, 8, 8, 8]
    assert stored_bits(2, min_bits=4) == 4 and stored_bits(3, min_bits=8) == 8
    # the longest block that pads K by at most an eighth, else the least padding (OCS's K = in + splits)
    assert [block_size(k) for k in (10, 16, 64, 68, 100, 269, 768, 776, 3072)] == [16, 16, 64, 16, 16, 32, 128, 64, 128]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_centered_zero_keeps_the_grid(bits):
    g = torch.Generator().manual_seed(bits)
    lo, scale = -torch.rand(50, generator=g), torch.rand(50, generator=g) / 2**bits
    lo[:5] = torch.rand(5, generator=g)  # all-positive rows: the zero point clamps at 0
    scale[-1] = 0.0  # a pruned row
    zero, residual = centered_zero(lo, scale, bits)
    assert int(zero.min()) >= 0 and int(zero.max()) <= 2**bits - 1
    q = torch.arange(2**bits, dtype=torch.float32)[None, :]
    assert torch.allclose(
        (q - zero[:, None]) * scale[:, None] + residual[:, None],
        q * scale[:, None] + lo[:, None] * (scale[:, None] > 0),
        atol=1e-6,
    )


def _quantized_model(kind="classification", arch="bert", grid="asym", act_bits=8, seed=0, smooth=False):
    """A random tiny encoder with a mixed assignment (0 to 8 bits, pruned groups), OCS weight and activation
    splits on its first Linear, calibrated; returns (model, assignment, packed tensors, config, inputs).
    smooth: the other Linears get SmoothQuant input factors (random, as the graph must apply any)."""
    import transformers

    from aqbench.export import export_model
    from aqbench.quant.assignment import uniform
    from aqbench.quant.modules import calibrating, encoder_linears, quantize_model

    torch.manual_seed(seed)
    head = {
        "classification": "ForSequenceClassification",
        "tagging": "ForTokenClassification",
        "span_qa": "ForQuestionAnswering",
    }[kind]
    if arch == "bert":
        config = transformers.BertConfig(
            vocab_size=120,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=2 if kind == "span_qa" else 3,
        )
        model = getattr(transformers, f"Bert{head}")(config)
    else:
        config = transformers.DistilBertConfig(
            vocab_size=120,
            dim=32,
            n_layers=2,
            n_heads=2,
            hidden_dim=64,
            max_position_embeddings=64,
            num_labels=2 if kind == "span_qa" else 3,
        )
        model = getattr(transformers, f"DistilBert{head}")(config)
    model.eval()
    assignment = uniform(model, 4, 8, grid, act_bits=act_bits, emb_bits=8)
    cycle = [0, 2, 3, 4, 6, 8]
    for i, layer in enumerate(assignment.layers.values()):
        layer.bits = [cycle[(i + g) % len(cycle)] for g in range(layer.groups)]
    first = next(iter(assignment.layers.values()))
    first.extra["splits"] = [["w", 3], ["a", 5], ["w", 3]]  # a column split twice, and an activation split
    last = list(assignment.layers.values())[-1]
    last.bits = [0] * last.groups  # a matrix pruned whole: it computes only its bias
    if smooth:
        for layer in list(assignment.layers.values())[1:]:
            layer.extra["smooth"] = True
    quantize_model(model, assignment)
    if smooth:
        with torch.no_grad():
            for m in list(encoder_linears(model).values())[1:]:
                m.in_factor.copy_(torch.exp(torch.randn(m.in_features) * 0.5))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (6, 24), generator=g)
    mask = torch.ones_like(ids)
    mask[:2, 16:] = 0
    with calibrating(model):
        model(input_ids=ids, attention_mask=mask)
    import tempfile
    from pathlib import Path

    from aqbench.export import read_packed
    from aqbench.tasks import get_task

    with tempfile.TemporaryDirectory() as tmp:
        export_model(get_task("sst2"), model, assignment, Path(tmp) / "packed.safetensors")
        tensors, config, packed_assignment = read_packed(Path(tmp) / "packed.safetensors")
    return model, packed_assignment, tensors, config, {"input_ids": ids, "attention_mask": mask}


def _outputs(model, inputs):
    with torch.no_grad():
        out = model(**inputs)
    return {k: out[k].numpy() for k in ("logits", "start_logits", "end_logits") if out.get(k) is not None}


def _ort(graph, inputs):
    sess = session(graph)
    feed = {i.name: inputs.get(i.name, torch.zeros_like(inputs["input_ids"])).numpy() for i in sess.get_inputs()}
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


@pytest.mark.parametrize("grid", ["asym", "sym"])
@pytest.mark.parametrize("form", ["exact", "fast", "fast4", "w8a8"])
def test_initializers_decode_to_the_packed_codes(grid, form):
    from aqbench.export import decode_codes
    from aqbench.quant.quantizer import get_grid

    _, assignment, tensors, config, _ = _quantized_model(grid=grid)
    graph, _ = build_model(tensors, config, assignment, "classification", form)
    for name, layer in assignment.layers.items():
        k = layer.stored_in_features
        codes, row_bits, lo, scale = decode_codes(tensors, name, layer.bits, (layer.shape[0], k), get_grid(grid))
        held = read_linear(graph, name, layer.shape[0])
        kept = (row_bits > 0).numpy()
        assert (held["kernel"][~kept] == "pruned").all()
        if not kept.any():  # a matrix pruned whole holds nothing
            assert not any(n.name.startswith(f"{name}.") and n.op_type.startswith("MatMul") for n in graph.graph.node)
            continue
        q = torch.from_numpy(held["q"])
        # the integers are the packed codes, bit for bit, at every stored width (3-bit at 4, 6-bit at 8)
        assert torch.equal(q[kept], codes[kept]), name
        assert np.array_equal(held["scale"][kept], scale.numpy()[kept])  # the packed file's scales exactly
        widths = {stored_bits(b, 4 if form == "fast4" else 8 if form == "w8a8" else 2) for b in row_bits[kept].tolist()}
        assert set(held["width"][kept].tolist()) == widths
        weight = (q - torch.from_numpy(held["zero"])[:, None]).float() * torch.from_numpy(held["scale"])[:, None]
        weight = weight + torch.from_numpy(held["offset"])[:, None]
        packed = codes.float() * scale[:, None] + lo[:, None]
        if form == "exact" and not (held["kernel"] == "int8").any():
            assert torch.equal(weight[kept], packed[kept])  # zero point 0, offset = lo: the same numbers
        else:
            assert torch.allclose(weight[kept], packed[kept], rtol=0, atol=1e-6 * float(packed.abs().max()))


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
@pytest.mark.parametrize("kind", ["classification", "tagging", "span_qa"])
@pytest.mark.parametrize(
    "grid,act_bits,smooth", [("asym", 8, False), ("sym", 8, False), ("asym", 32, False), ("sym", 8, True)]
)
def test_exact_forms_equal_pytorch_within_float_rounding(arch, kind, grid, act_bits, smooth):
    model, assignment, tensors, config, inputs = _quantized_model(kind, arch, grid, act_bits, smooth=smooth)
    if smooth:
        smoothed = [n for n in assignment.layers if f"{n}.smooth" in tensors]
        assert len(smoothed) == len(assignment.layers) - 1
    expected = _outputs(model, inputs)
    scale = max(float(np.abs(v).max()) for v in expected.values())
    # With FP activations the difference is summation order only (measured 2e-7 of the outputs' scale). With
    # 8-bit activations that difference can move an activation across a rounding boundary, a whole step
    # (QuantizeLinear itself rounds exactly as the quantizer does, a test below): measured up to 1e-4.
    tolerance = (1e-5 if act_bits > 8 else 1e-3) * scale
    for form in [f for f in forms_of(assignment) if f in ("exact", "w8a8")]:
        got = _ort(build_model(tensors, config, assignment, kind, form)[0], inputs)
        assert set(got) == set(expected)
        for key in expected:
            assert np.abs(got[key] - expected[key]).max() <= tolerance, (form, key)


def test_int8_gemm_is_exact_at_full_range():
    """An 8-bit Linear whose activation codes are near 255 and weight codes at both ends of the grid: the exact
    form's integer GEMM must not saturate (ORT's u8 x s8 kernel does on CPUs without VNNI; a u8 x u8 one does
    not). Fails on such a CPU if the graph goes back to signed weights."""
    from onnx import TensorProto, helper

    from aqbench.deploy.graph import Graph, QuantizedLinear
    from aqbench.deploy.weights import centered_zero

    torch.manual_seed(0)
    k, n = 256, 16
    codes = torch.where(torch.rand(n, k) < 0.5, 0, 255)
    x_codes = torch.randint(240, 256, (4, k), dtype=torch.uint8)
    graph = Graph()
    graph.inputs = [helper.make_tensor_value_info("x", TensorProto.UINT8, [4, k])]
    graph.used.add("x")
    linear = QuantizedLinear.__new__(QuantizedLinear)  # only what int8_gemm reads
    linear.g, linear.name, linear.codes, linear.row_bits = graph, "l", codes, torch.full((n,), 8)
    linear.lo, linear.scale = torch.full((n,), -1.0), torch.full((n,), 2 / 255)
    y, _, _ = linear.int8_gemm("x", np.float32(1.0), np.float32(0.0), list(range(n)))
    got = session(graph.model([y], {})).run(None, {"x": x_codes.numpy()})[0]
    zero, _ = centered_zero(linear.lo, linear.scale, linear.row_bits)
    expected = (x_codes.double() @ ((codes - zero[:, None]).double() * (2 / 255)).T).numpy()
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_quantize_linear_rounds_as_the_quantizer():
    """The activation quantizer's integers on ORT are the quantizer's, exactly, for the same input."""
    from onnx import TensorProto, helper

    from aqbench.deploy.graph import Graph, quantize_activation
    from aqbench.quant.quantizer import GRIDS, quantize_tensor

    g = torch.Generator().manual_seed(0)
    x = torch.randn(100_000, generator=g) * 3
    lo, hi = torch.tensor(-5.0), torch.tensor(7.3)
    for grid in GRIDS.values():
        graph = Graph()
        graph.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])]
        graph.used.add("x")
        x_hat, _, _, _ = quantize_activation(graph, "x", "act", lo, hi, 8, grid)
        graph.op("Identity", [x_hat], "out")
        got = session(graph.model(["out"], {})).run(None, {"x": x.numpy()})[0]
        expected = quantize_tensor(x, 8, lo, hi, grid).numpy()
        assert np.array_equal(got, expected), grid.name


def test_fast_forms_are_close_but_not_the_runs_arithmetic():
    model, assignment, tensors, config, inputs = _quantized_model()
    expected = _outputs(model, inputs)["logits"]
    got = _ort(build_model(tensors, config, assignment, "classification", "fast")[0], inputs)["logits"]
    diff = np.abs(got - expected).max()
    assert 0 < diff < 0.05 * np.abs(expected).max() + 1e-3  # int8 activations per block: close, not equal


def test_fp_model_exports_as_plain_matmul():
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=2
    )
    model = transformers.BertForSequenceClassification(config).eval()
    ids = torch.randint(5, 100, (3, 17))
    graph, held = build_model(dict(model.state_dict()), config, None, "classification")
    assert {n.op_type for n in graph.graph.node}.isdisjoint({"MatMulNBits", "MatMulIntegerToFloat", "QuantizeLinear"})
    assert held["stored_weights"] == {"32": 2 * (4 * 32 * 32 + 2 * 32 * 64)}
    got = _ort(graph, {"input_ids": ids, "attention_mask": torch.ones_like(ids)})["logits"]
    expected = _outputs(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)})["logits"]
    assert np.abs(got - expected).max() <= 1e-5


def test_forms_of_a_run():
    from aqbench.quant.assignment import Assignment, LayerBits

    def run(bits, act=8):
        return Assignment("asym", act, 8, {"l": LayerBits((4, 4), bits)})

    assert forms_of(None) == ["fp32"]
    assert forms_of(run([8, 8])) == ["exact"]  # 8-bit rows: the int8 GEMM is already the fastest exact form
    assert forms_of(run([4, 0])) == ["exact", "fast", "w8a8"]
    assert forms_of(run([2, 3])) == ["exact", "fast", "fast4", "w8a8"]
    assert forms_of(run([8], act=32)) == ["exact", "fast"]  # no activation codes: no int8 GEMM


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", "truncated"])
def test_a_bad_model_file_is_one_clear_error(tmp_path, content):
    _, assignment, tensors, config, _ = _quantized_model()
    path = tmp_path / "model.onnx"
    data = build_model(tensors, config, assignment, "classification")[0].SerializeToString()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(AqbenchError) as e:
        session(path)
    assert str(path) in str(e.value) and "rerun its export job" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(AqbenchError, match="not found"):
        session(tmp_path / "missing.onnx")


def test_parity_counts_near_ties_and_real_changes():
    from aqbench.deploy.parity import compare
    from aqbench.tasks.kinds.features import Features

    ref = [{"logits": np.array([1.0, 1.0005])}, {"logits": np.array([2.0, 1.9])}, {"logits": np.array([0.0, 3.0])}]
    other = [{"logits": np.array([1.0004, 1.0])}, {"logits": np.array([1.8, 1.95])}, {"logits": np.array([0.0, 3.0])}]
    r = compare("classification", Features(ref, [0, 1, 2]), ref, other, [{}, {}, {}])
    # the first flip moved the logits by <= 0.0005 across a margin of 0.0005: a near tie. The second moved them by
    # 0.2 across a margin of 0.1, but a difference above 1% of the outputs' scale (0.03) excuses nothing
    assert (r["changed"], r["near_ties"], r["unexplained"]) == (2, 1, 1)
    assert r["max_abs_diff"] == pytest.approx(0.2)


def test_parity_cap_widens_only_for_differences_like_the_measured_rounding():
    from aqbench.deploy.parity import compare
    from aqbench.tasks.kinds.features import Features

    rng = np.random.default_rng(0)
    ref = [{"logits": np.array([5.0, 0.0]) + rng.normal(0, 1, 2)} for _ in range(40)]
    ref[0] = {"logits": np.array([2.0, 1.5])}  # a margin of 0.5

    def shifted(scale, flip):
        out = [{"logits": r["logits"] + rng.normal(0, scale, 2)} for r in ref]
        out[0] = {"logits": np.array([2.0, 1.5]) + flip}
        return out

    ort = shifted(0.02, [-0.3, 0.3])  # the near-tie flips with a difference of 0.3, far above 1% of the scale
    perturbed = shifted(0.03, [-0.35, 0.0])  # rounding alone moves PyTorch's outputs as much
    alone = compare("classification", Features(ref, list(range(40))), ref, ort, [{}] * 40)
    assert (alone["changed"], alone["unexplained"]) == (1, 1) and alone["cap"] < 0.1
    measured = compare("classification", Features(ref, list(range(40))), ref, ort, [{}] * 40, perturbed)
    assert (measured["changed"], measured["near_ties"], measured["unexplained"]) == (1, 1, 0)
    assert measured["like_rounding"] and measured["cap"] == pytest.approx(measured["perturbed_max_diff"])
    # a broken export moves every output by far more than rounding does: the cap stays at 1% of the scale
    broken = shifted(1.0, [-0.3, 0.3])
    r = compare("classification", Features(ref, list(range(40))), ref, broken, [{}] * 40, perturbed)
    assert not r["like_rounding"] and r["cap"] == alone["cap"] and r["unexplained"] >= 1


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """A tiny classifier fine-tuned on synthetic SST-2, its FP run and an LQ w2 run, the latter packed."""
    from aqbench.data import prepare
    from aqbench.export import export_and_check
    from aqbench.finetune import finetune
    from aqbench.methods import run_method
    from aqbench.settings import Data, MethodSettings
    from aqbench.tasks import get_task

    tmp = tmp_path_factory.mktemp("deploy")
    task = get_task("sst2")
    prepare(
        task,
        Data.from_dict(
            {
                "source": "synthetic",
                "seed": 1,
                "synthetic": {"n_train": 300, "n_eval": 60},
                "max_train_examples": None,
                "max_eval_examples": None,
            }
        ),
        tmp / "data",
    )
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
    spec = {
        "source": "config",
        "tokenizer_vocab_size": 300,
        "architecture": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    }
    finetune(task, tmp / "data", spec, train, 0, tmp / "model")
    quant = {"grid": "sym", "groups": 8, "act_bits": 8, "emb_bits": 8, "act_grid": "asym", "calibration_examples": 32}
    run_method("fp", task, tmp / "model", tmp / "data", "fp32", 0, MethodSettings(), tmp / "fp")
    settings = MethodSettings.from_dict({"quant": quant, "train": train, "lq": {}})
    run_method("lq", task, tmp / "model", tmp / "data", "w2", 0, settings, tmp / "lq")
    export_and_check(task, tmp / "model", tmp / "lq", tmp / "data", settings.train)
    return task, tmp, settings.train


def test_the_stage_writes_model_onnx_and_its_check(trained_runs):
    import json

    from aqbench.deploy.export import export_onnx
    from aqbench.deploy.graph import FORMAT

    task, tmp, train = trained_runs
    for run in ("fp", "lq"):
        record = export_onnx(task, tmp / "model", tmp / run, tmp / "data", train)
        assert record["metrics_onnx"] == pytest.approx(record["metrics_torch"], abs=0.1)
        assert record["unexplained"] == 0 and record["eval_examples"] == {"validation": 60}
        assert json.loads((tmp / run / "onnx.json").read_text())["onnx_mb"] == record["onnx_mb"]
        sess = session(tmp / run / "model.onnx")
        assert sess.get_modelmeta().custom_metadata_map["format"] == FORMAT
    assert list(record["forms"]) == ["exact", "fast", "fast4", "w8a8"]  # the w2 run; fp has one form, fp32
    # what ORT holds for the exact form: 2-bit codes in blocks, a scale and a zero point per block, an offset per row
    assert record["stored_weights"] == {"2": 2 * (4 * 32 * 32 + 2 * 32 * 64)}
    assert record["onnx_mb"] > record["forms"]["fast"]["onnx_mb"] > 0


def test_a_disagreeing_export_fails_and_writes_nothing(trained_runs, monkeypatch):
    from onnx import numpy_helper

    import aqbench.deploy.graph as graph_module
    from aqbench.deploy.export import export_onnx

    task, tmp, train = trained_runs
    build = graph_module.build_model

    def broken(*args, **kwargs):  # the head's weights negated: every prediction flips
        model, record = build(*args, **kwargs)
        for init in model.graph.initializer:
            if init.name == "classifier.weight_t":
                init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
        return model, record

    before = {f: (tmp / "lq" / f).read_bytes() for f in ("model.onnx", "onnx.json") if (tmp / "lq" / f).exists()}
    monkeypatch.setattr(graph_module, "build_model", broken)
    with pytest.raises(AqbenchError, match=r"lq: ONNX Runtime \(exact form\) disagrees with the PyTorch run") as e:
        export_onnx(task, tmp / "model", tmp / "lq", tmp / "data", train)
    assert "nothing was written" in str(e.value) and "\n" not in str(e.value)
    # the changes went past 1% of the scale, so rounding's reach was measured, and it excuses none of them
    assert "a float perturbation of PyTorch's run moved its outputs by up to" in str(e.value)
    assert {f: (tmp / "lq" / f).read_bytes() for f in before} == before  # the previous export is kept


def test_perturbed_prediction_is_seeded_small_and_leaves_the_model_as_it_was(trained_runs):
    from aqbench.deploy.sensitivity import perturbed_predict
    from aqbench.evaluate import eval_features
    from aqbench.prediction import predict
    from aqbench.runs import load_run

    task, tmp, train = trained_runs
    model, tokenizer, _, _ = load_run(task, tmp / "model", tmp / "fp")
    _, _, _, features = next(iter(eval_features(task, tokenizer, tmp / "data", train, 20)))
    pad = tokenizer.pad_token_id
    before = predict(model, features, 8, pad, "cpu", sort=True)
    first, again = (perturbed_predict(model, features, 8, pad, seed=3) for _ in range(2))
    after = predict(model, features, 8, pad, "cpu", sort=True)
    moved = max(float(np.abs(p["logits"] - b["logits"]).max()) for p, b in zip(first, before))
    scale = max(float(np.abs(b["logits"]).max()) for b in before)
    assert 0 < moved < 1e-4 * scale  # an FP model: the perturbation stays at the float level
    assert all(np.array_equal(a["logits"], b["logits"]) for a, b in zip(first, again))
    assert all(np.array_equal(a["logits"], b["logits"]) for a, b in zip(after, before))  # hooks removed


def test_latency_stage_times_every_form_beside_the_baseline(trained_runs):
    from aqbench.deploy.export import export_onnx
    from aqbench.deploy.latency import latency_of_runs
    from aqbench.report.aggregate import latency_columns
    from aqbench.settings import Latency

    task, tmp, train = trained_runs
    for run in ("fp", "lq"):
        if not (tmp / run / "model.onnx").exists():
            export_onnx(task, tmp / "model", tmp / run, tmp / "data", train)
    record = latency_of_runs(
        task,
        tmp / "model",
        [tmp / "fp", tmp / "lq"],
        tmp / "fp",
        Latency(batch_sizes=[1, 4], length=16, seconds=0.01),
        threads=2,
    )
    lq = record["runs"][str(tmp / "lq")]
    assert set(lq["forms"]) == {"exact", "fast", "fast4", "w8a8"}
    assert set(lq["baseline"]) == {"b1_t1", "b4_t1", "b1_tall", "b4_tall"} == set(lq["best"])
    for cell, timed in lq["forms"]["exact"].items():
        assert timed["calls"] >= 3 and timed["p90_ms"] >= timed["median_ms"] > 0
        assert timed["speedup"] == pytest.approx(lq["baseline"][cell]["median_ms"] / timed["median_ms"])
    assert set(record["torch_fp_start"]) == set(lq["baseline"]) and record["threads"] == 2 and record["cpu"]
    cols = latency_columns(record, str(tmp / "fp"))
    assert cols["latency_b1_t1_form"] == "fp32" and cols["torch_b1_t1_ms"] > 0
