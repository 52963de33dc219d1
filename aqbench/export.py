"""Export a run to one safetensors file whose size is real, and load it back.

For every quantized encoder Linear `L` the file holds
    L.bits      int8, one bit-width per group (0 = pruned)
    L.codes.<b> uint8, the integer codes of the groups at b bits, bit-packed (aqbench.quant.pack), in group order
    L.scale, L.lo  float32 per stored group on the asymmetric grid (the step and the group minimum);
                L.absmax on the symmetric grid (its range is [-absmax, absmax]): the numbers the quantizer
                computes its grid from, so decoding repeats its arithmetic exactly
    L.splits    int16, OCS's split list (a weight split of column j as j, an activation split as -(j + 1))
    L.smooth    float32 per input feature, SmoothQuant's factor on the input (where it could not be folded)
    L.act       float32 [lo, hi] of the input activation quantizer
and for the embedding tables 8-bit codes per row with a per-row scale (and lo); every other tensor (biases,
LayerNorm, pooler, task head) is stored as it is, in float32. The model config, tokenizer and assignment go in
the file's metadata. Pruned groups store nothing.

The group parameters are stored in float32 so that the reloaded weights are bit for bit the fake-quantized
ones; the size accounting (aqbench.quant.size) counts them as fp16, as a deployment would: `packed_mb` is
therefore larger than `size_mb` by 16 bits per group (asym: 32), the bit table (8 bits per group) and each
tensor's last partial byte; `packed_breakdown` names each part.
"""

import json
from pathlib import Path

import torch
from torch import nn

from aqbench.errors import AqbenchError
from aqbench.quant.modules import QuantEmbedding, QuantLinear, act_quantizers, embedding_modules, encoder_linears
from aqbench.quant.pack import pack, unpack
from aqbench.quant.quantizer import FULL_PRECISION, get_grid, group_index, group_ranges, step_size
from aqbench.quant.size import MB

FORMAT = "aqbench-packed/1"


def _grid_params(w, bits, grid, lo=None, hi=None):
    """Per group (lo, hi, scale, steps) with quantize_rows' own functions: codes = round((w - lo) / scale)."""
    lo, hi = group_ranges(w, len(bits), grid, lo, hi)
    steps = grid.steps(torch.as_tensor(bits, dtype=w.dtype).clamp(1, FULL_PRECISION - 1))
    return lo, hi, step_size(lo, hi, steps), steps


def _store_range(out, name, lo, hi, scale, kept, grid):
    if grid.symmetric:
        out[f"{name}.absmax"] = hi[kept].float().contiguous()
    else:
        out[f"{name}.lo"] = lo[kept].float().contiguous()
        out[f"{name}.scale"] = scale[kept].float().contiguous()


def _codes(w_hat, lo, scale, steps, rows):
    """The integers of an on-grid (fake-quantized) weight, per row's group."""
    return torch.minimum(
        torch.round((w_hat - lo[rows, None]) / scale[rows, None]).clamp_min(0), steps[rows, None]
    ).long()


def _encode_splits(splits):
    return torch.tensor([j if kind == "w" else -(j + 1) for kind, j in splits], dtype=torch.int16)


def decode_splits(t):
    return [("w", int(v)) if v >= 0 else ("a", int(-v - 1)) for v in t.tolist()]


def export_linear(name, module, grid):
    """The tensors of one QuantLinear."""
    w = module.weight.detach().float()
    bits = module.bits.tolist()
    with torch.no_grad():  # the evaluation path: its rounding is what the codes must reproduce
        w_hat = module._quantize()
    lo, hi, scale, steps = _grid_params(w, bits, grid, module.w_lo, module.w_hi)
    rows = group_index(w.shape[0], len(bits))
    codes = _codes(w_hat, lo, scale, steps, rows)
    out = {f"{name}.bits": torch.tensor(bits, dtype=torch.int8)}
    kept = torch.tensor([0 < b < FULL_PRECISION for b in bits])
    for b in sorted({b for b in bits if 0 < b < FULL_PRECISION}):
        sel = torch.tensor([x == b for x in bits])[rows]
        out[f"{name}.codes.{b}"] = pack(codes[sel].reshape(-1), b)
    if any(b >= FULL_PRECISION for b in bits):
        raise AqbenchError(f"layer {name} has full-precision groups; export stores quantized layers only")
    _store_range(out, name, lo, hi, scale, kept, grid)
    if module.splits:
        out[f"{name}.splits"] = _encode_splits(module.splits)
    if module.in_factor is not None:
        out[f"{name}.smooth"] = module.in_factor.detach().float().contiguous()
    out[f"{name}.act"] = torch.stack([module.act.lo, module.act.hi]).float()
    return out


def export_embedding(name, module, grid):
    w = module.weight.detach().float()
    bits = module.bits.tolist()
    lo, hi, scale, steps = _grid_params(w, bits, grid)
    with torch.no_grad():  # the evaluation path, as above
        w_hat = module._quantize()
    codes = _codes(w_hat, lo, scale, steps, torch.arange(w.shape[0]))
    out = {f"{name}.codes.{bits[0]}": pack(codes.reshape(-1), bits[0])}
    _store_range(out, name, lo, hi, scale, torch.ones(len(bits), dtype=torch.bool), grid)
    return out


def export_run(task, checkpoint_dir, run_dir, out_path):
    """Write run_dir's quantized model as a packed safetensors file; returns the size record."""
    from aqbench.runs import load_run

    model, _, assignment, _ = load_run(task, checkpoint_dir, run_dir)
    return export_model(task, model, assignment, out_path)


def export_model(task, model, assignment, out_path):
    """Write a quantized model (QuantLinear / QuantEmbedding modules, as load_run rebuilds it) as a packed file."""
    from safetensors.torch import save_file

    from aqbench.io import atomic_file

    if not any(b > 0 for layer in assignment.layers.values() for b in layer.bits):
        # a 0 MB encoder is no model (and its packed-to-size ratio would divide by zero)
        raise AqbenchError(
            f"cannot export {out_path}: its run prunes every encoder weight. Fix: delete the run and "
            "its search, and rerun them at a larger budget (aq.budgets or budgets)"
        )
    grid = get_grid(assignment.grid)
    tensors, done = {}, set()
    for name, module in model.named_modules():
        if isinstance(module, QuantLinear):
            tensors.update(export_linear(name, module, grid))
            done.update({f"{name}.{k}" for k in ("weight", "act.lo", "act.hi", "w_lo", "w_hi", "in_factor")})
        elif isinstance(module, QuantEmbedding):
            tensors.update(export_embedding(name, module, grid))
            done.add(f"{name}.weight")
    for key, value in model.state_dict().items():
        if key not in done:
            value = value.detach()
            tensors[key] = (value.float() if value.is_floating_point() else value).contiguous()
    meta = {
        "format": FORMAT,
        "task": task.name,
        "config": model.config.to_json_string(),
        "assignment": json.dumps(assignment.to_json()),
    }
    with atomic_file(out_path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    return packed_size(out_path, assignment)


def packed_breakdown(path, assignment=None):
    """Bytes by part: encoder codes, encoder scales/offsets, bit tables, OCS split lists, SmoothQuant factors,
    activation ranges, embedding, the rest (biases, LayerNorm, head); and the file's own size."""
    from safetensors import safe_open

    encoder = set(assignment.layers) if assignment is not None else None
    parts = {"codes": 0, "scales": 0, "bits": 0, "splits": 0, "smooth": 0, "act": 0, "embedding": 0, "other": 0}
    with safe_open(str(path), "pt") as f:
        if encoder is None:
            from aqbench.quant.assignment import Assignment

            encoder = set(Assignment.from_json(json.loads(f.metadata()["assignment"])).layers)
        for key in f.keys():
            t = f.get_slice(key)
            n = 1
            for d in t.get_shape():
                n *= d
            nbytes = n * {"U8": 1, "I8": 1, "I16": 2, "F16": 2, "F32": 4, "I64": 8}[t.get_dtype()]
            layer, _, part = key.rpartition(".")
            if ".codes." in key:
                layer = key.split(".codes.")[0]
                part = "codes"
            if layer in encoder:
                parts[
                    {
                        "codes": "codes",
                        "scale": "scales",
                        "lo": "scales",
                        "absmax": "scales",
                        "bits": "bits",
                        "splits": "splits",
                        "smooth": "smooth",
                        "act": "act",
                    }.get(part, "other")
                ] += nbytes
            elif "embeddings" in key:
                parts["embedding"] += nbytes
            else:
                parts["other"] += nbytes
    parts["file"] = Path(path).stat().st_size
    return parts


def packed_size(path, assignment=None):
    """{"packed_mb": the encoder's weight matrices as stored (codes, scales, offsets, bit tables, split lists,
    smoothing factors), "packed_file_mb": the whole file, ...}."""
    parts = packed_breakdown(path, assignment)
    encoder = parts["codes"] + parts["scales"] + parts["bits"] + parts["splits"] + parts["smooth"]
    return {
        "packed_mb": encoder / MB,
        "packed_file_mb": parts["file"] / MB,
        **{f"packed_{k}_bytes": v for k, v in parts.items()},
    }


def read_packed(path):
    """(tensors, model config, assignment) of a packed file: everything any reader of it needs."""
    from safetensors import SafetensorError, safe_open
    from transformers import AutoConfig

    from aqbench.quant.assignment import Assignment

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise AqbenchError(f"{path} is not an aqbench packed model (format {meta.get('format')!r})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise AqbenchError(f"cannot read the packed model {path} ({e}). Fix: delete it and rerun its export job") from e
    config = AutoConfig.for_model(**json.loads(meta["config"]))
    return tensors, config, Assignment.from_json(json.loads(meta["assignment"]))


def load_packed(task, path):
    """(model, assignment): the model rebuilt from a packed file alone, its quantized weights decoded once
    (dequantize-on-load); activations are quantized as in the run."""
    from aqbench.models import auto_class

    tensors, config, assignment = read_packed(path)
    grid = get_grid(assignment.grid)
    model = auto_class(task).from_config(config)
    state = {}
    linears = encoder_linears(model)
    for name, layer in assignment.layers.items():
        out_features, in_features = layer.shape
        splits = decode_splits(tensors[f"{name}.splits"]) if f"{name}.splits" in tensors else []
        dummy = nn.Linear(in_features, out_features, bias=linears[name].bias is not None)
        module = QuantLinear(
            dummy,
            [FULL_PRECISION * 2] * layer.groups,
            assignment.grid,
            assignment.act_bits,
            assignment.act_grid,
            splits=splits,
            smooth=f"{name}.smooth" in tensors,
        )
        module.weight = nn.Parameter(_decode(tensors, name, layer.bits, module.weight.shape, grid), requires_grad=False)
        if module.in_factor is not None:
            module.in_factor.copy_(tensors[f"{name}.smooth"])
        module.act.lo.copy_(tensors[f"{name}.act"][0])
        module.act.hi.copy_(tensors[f"{name}.act"][1])
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module)
    embeddings = embedding_modules(model)
    for name, module in embeddings.items():
        bits = [assignment.emb_bits] * module.weight.shape[0]
        state[f"{name}.weight"] = _decode(tensors, name, bits, module.weight.shape, grid)
    for key, value in tensors.items():
        layer, _, part = key.rpartition(".")
        if ".codes." in key or (layer in assignment.layers and part != "bias") or layer in embeddings:
            continue  # decoded above: codes, group parameters, bit tables, split lists, activation ranges
        state[key] = value
    missing, unexpected = model.load_state_dict(state, strict=False)
    # a quantized layer's weight and activation range were set above, not through the state dict
    missing = [k for k in missing if k.rsplit(".", 1)[0].removesuffix(".act") not in assignment.layers]
    if missing or unexpected:
        raise AqbenchError(
            f"{path}: its tensors do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for q in act_quantizers(model):
        q.calibrating = False
    return model.eval(), assignment


def decode_codes(tensors, name, bits, shape, grid):
    """A stored layer (or embedding) as the quantizer defines it, per row: (codes, row_bits, lo, scale) with
    weight = codes * scale + lo; a pruned row has bits 0, codes 0, scale 0 and lo 0. The group parameters are
    the quantizer's own arithmetic on the stored numbers (sym: lo, hi = -absmax, absmax; scale = (hi - lo) /
    steps), so every reader of a packed file (reload, ONNX export) decodes the same numbers."""
    rows = group_index(shape[0], len(bits))
    kept = [g for g, b in enumerate(bits) if b > 0]
    bits_t = torch.tensor(bits, dtype=torch.float32)
    steps = grid.steps(bits_t.clamp(1, FULL_PRECISION - 1))
    lo, scale = torch.zeros(len(bits)), torch.ones(len(bits))
    if grid.symmetric:
        absmax = torch.zeros(len(bits))
        absmax[kept] = tensors[f"{name}.absmax"]
        lo, hi = -absmax, absmax
        scale = step_size(lo, hi, steps)
    else:
        lo[kept] = tensors[f"{name}.lo"]
        scale[kept] = tensors[f"{name}.scale"]
    pruned = bits_t == 0
    lo, scale = lo.masked_fill(pruned, 0.0), scale.masked_fill(pruned, 0.0)
    codes = torch.zeros(shape, dtype=torch.int64)
    for b in sorted({b for b in bits if b > 0}):
        sel = torch.tensor([x == b for x in bits])[rows]
        key = f"{name}.codes.{b}"
        if key not in tensors:
            raise AqbenchError(
                f"the packed file has no {b}-bit codes for {name}: it is damaged or not an aqbench export"
            )
        codes[sel] = unpack(tensors[key], b, int(sel.sum()) * shape[1]).reshape(-1, shape[1])
    return codes, bits_t[rows].long(), lo[rows], scale[rows]


def _decode(tensors, name, bits, shape, grid):
    """The dequantized weight of a layer (or embedding) from its codes, scales and offsets."""
    codes, row_bits, lo, scale = decode_codes(tensors, name, bits, shape, grid)
    weight = codes.float() * scale[:, None] + lo[:, None]
    return torch.where((row_bits > 0)[:, None], weight, torch.zeros(()))


def export_and_check(task, checkpoint_dir, run_dir, data_dir, settings, n_check=64):
    """The export stage for one run: write run_dir/packed.safetensors, reload it, compare its outputs with the
    fake-quantized run's on n_check evaluation features, and write run_dir/packed.json (sizes, the largest
    difference). A reload that differs beyond float tolerance is an error, not a number."""
    from aqbench.data import load_split
    from aqbench.io import write_json
    from aqbench.prediction import predict
    from aqbench.quant.size import encoder_size
    from aqbench.runs import load_run
    from aqbench.tasks.kinds import featurize

    run_dir = Path(run_dir)
    model, tokenizer, assignment, _ = load_run(task, checkpoint_dir, run_dir)
    record = export_model(task, model, assignment, run_dir / "packed.safetensors")
    loaded, _ = load_packed(task, run_dir / "packed.safetensors")
    split = next(iter(task.eval_splits))
    features = featurize(task, load_split(data_dir, split)[:n_check], tokenizer, settings, with_labels=False)
    a = predict(model, features, settings.eval_batch_size, tokenizer.pad_token_id, "cpu", desc="check fake-quantized")
    b = predict(loaded, features, settings.eval_batch_size, tokenizer.pad_token_id, "cpu", desc="check reloaded")
    diff = max(float(abs(x[k] - y[k]).max()) for x, y in zip(a, b) for k in x)
    scale = max(float(abs(x[k]).max()) for x in a for k in x)
    if diff > 1e-3 * max(1.0, scale):
        raise AqbenchError(
            f"the packed model of {run_dir} differs from the run by {diff:.3g} (outputs up to {scale:.3g}): "
            "the export is wrong; please report it"
        )
    size = encoder_size(assignment)
    record.update(
        {
            "size_mb": size["size_mb"],
            "packed_over_size": record["packed_mb"] / size["size_mb"],
            "check_features": len(features),
            "check_max_abs_diff": diff,
        }
    )
    write_json(run_dir / "packed.json", record)
    return record
