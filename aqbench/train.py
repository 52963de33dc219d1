"""Training: one plain PyTorch loop for FP fine-tuning, QAT and distillation, plus batched prediction.

The loop is AdamW with linear warm-up and decay, gradient clipping, a seeded shuffle, a progress bar and a
finite-loss check. What differs between fine-tuning, QAT and KD is only the model (FP or with QuantLinear
modules) and, for KD, the loss function passed in.
"""

import logging
import math
import time

import numpy as np
import torch

from aqbench.errors import AqbenchError
from aqbench.progress import Progress

log = logging.getLogger(__name__)
MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")
LABEL_KEYS = ("labels", "start_positions", "end_positions")


def collate(rows, pad_id):
    """Pad a list of feature dicts to the longest row; token labels are padded with -100 (ignored)."""
    length = max(len(r["input_ids"]) for r in rows)
    batch = {}
    for key in rows[0]:
        if key == "labels" and isinstance(rows[0][key], list) or key in MODEL_KEYS:
            fill = pad_id if key == "input_ids" else -100 if key == "labels" else 0
            batch[key] = torch.tensor([r[key] + [fill] * (length - len(r[key])) for r in rows])
        else:
            batch[key] = torch.tensor([r[key] for r in rows])
    return batch


def batches(features, batch_size, pad_id, shuffle=False, generator=None):
    order = torch.randperm(len(features), generator=generator).tolist() if shuffle else range(len(features))
    order = list(order)
    for i in range(0, len(order), batch_size):
        yield collate([features.inputs[j] for j in order[i : i + batch_size]], pad_id)


def to(batch, device):
    return {k: v.to(device) for k, v in batch.items()}


def pick_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise AqbenchError("train.device is 'cuda' but no CUDA GPU is visible. Fix: set train.device: auto or cpu")
    return torch.device(name)


def uses_bf16(device, mixed_precision):
    """train.mixed_precision: bf16 autocast on a CUDA device only; CPU runs stay in fp32 whatever the setting."""
    return mixed_precision == "bf16" and device.type == "cuda"


def autocast(device, mixed_precision):
    """The forward pass's precision context. bf16 needs no loss scaling (fp16 would); the weights, their
    gradients and the optimizer state stay fp32. Quantized layers compute in fp32 (aqbench.quant.modules)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, mixed_precision))


def train_loop(model, features, settings, pad_id, seed, loss_fn=None, desc="train"):
    """Train in place; return stats. settings: epochs, batch_size, lr, weight_decay, warmup_ratio, max_steps,
    grad_clip, device, mixed_precision. loss_fn(model, batch) -> loss; default: the model's own loss."""
    device = pick_device(settings.get("device", "auto"))
    model.to(device).train()
    mixed_precision = settings.get("mixed_precision")
    if uses_bf16(device, mixed_precision):
        log.info("%s: bf16 autocast on %s", desc, device)
    loss_fn = loss_fn or (lambda m, b: m(**b).loss)
    steps_per_epoch = math.ceil(len(features) / settings["batch_size"])
    total = steps_per_epoch * settings["epochs"]
    if settings.get("max_steps"):
        total = min(total, settings["max_steps"])
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not _no_decay(n)]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and _no_decay(n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings["lr"],
    )
    warmup = int(settings.get("warmup_ratio", 0.0) * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    gen = torch.Generator().manual_seed(seed)
    step, losses, start = 0, [], time.time()
    bar = Progress(total, desc)
    while step < total:
        for batch in batches(features, settings["batch_size"], pad_id, shuffle=True, generator=gen):
            with autocast(device, mixed_precision):
                loss = loss_fn(model, to(batch, device))
            if not torch.isfinite(loss):
                raise AqbenchError(
                    f"{desc}: the loss became {loss.item()} at step {step + 1} of {total}. Fix: lower "
                    f"the learning rate (now {settings['lr']}) or raise warmup_ratio; nothing was saved"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if settings.get("grad_clip"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings["grad_clip"])
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            bar.update(1, **({"loss": f"{np.mean(losses[-20:]):.4f}"} if step % 20 == 0 else {}))
            if step >= total:
                break
    bar.close()
    seconds = time.time() - start
    log.info("%s: %d steps in %.1f s, final loss %.4f", desc, step, seconds, float(np.mean(losses[-20:])))
    return {
        "steps": step,
        "seconds": seconds,
        "final_loss": float(np.mean(losses[-20:])),
        "loss_curve": [float(np.mean(losses[i : i + 20])) for i in range(0, len(losses), 20)],
    }


def _no_decay(name):
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


OUTPUT_KEYS = ("logits", "start_logits", "end_logits")


@torch.no_grad()
def predict(model, features, batch_size, pad_id, device="auto", desc="eval", mixed_precision=None):
    """Per feature, the model's output arrays trimmed to the feature's own length (logits, or start/end logits),
    as fp32 numpy arrays."""
    device = pick_device(device)
    model.to(device).eval()

    def run(batch):
        with autocast(device, mixed_precision):
            out = model(**{k: v.to(device) for k, v in batch.items() if k in MODEL_KEYS})
        return {k: out[k].float().cpu().numpy() for k in OUTPUT_KEYS if out.get(k) is not None}

    return predict_with(run, features, batch_size, pad_id, desc)


def predict_with(run, features, batch_size, pad_id, desc="eval"):
    """predict's batching and trimming around any runner: run(batch of padded tensors) -> {output name: array}
    (PyTorch here, ONNX Runtime in aqbench.deploy), so every backend is evaluated on the same batches."""
    outputs, all_batches = [], list(batches(features, batch_size, pad_id))
    bar = Progress(len(all_batches), desc)
    for batch in all_batches:
        lengths = batch["attention_mask"].sum(1).tolist()
        arrays = run(batch)
        for i, n in enumerate(lengths):
            outputs.append({k: (a[i, :n] if a.ndim > 2 or k != "logits" else a[i]) for k, a in arrays.items()})
        bar.update(1)
    bar.close()
    return outputs


def finetune(task, data_dir, model_spec, settings, seed, out_dir, teacher_dir=None):
    """The finetune stage: build (or load) the model, train it on the task, save an HF checkpoint directory
    (config.json, model.safetensors, tokenizer files) plus aqbench.json with what was done. A `student` model
    is every other block of the fine-tuned teacher in teacher_dir, trained with soft targets from it."""
    from aqbench.data import load_split
    from aqbench.integrity import write_record
    from aqbench.io import atomic_dir, write_json
    from aqbench.models import build, load_checkpoint
    from aqbench.tasks.kinds import featurize
    from aqbench.versions import versions

    examples = load_split(data_dir, "train")
    loss_fn, note = None, {}
    if model_spec["source"] == "student":
        from aqbench.distill import kd_loss, make_student

        if teacher_dir is None:
            raise AqbenchError("a student model needs its teacher: pass --teacher (the fine-tuned bert checkpoint)")
        teacher, tokenizer = load_checkpoint(task, teacher_dir)
        torch.manual_seed(seed)
        model = make_student(teacher)
        loss_fn = kd_loss(teacher, model_spec.get("temperature", 2.0), model_spec.get("alpha", 0.5))
        note = {
            "teacher": str(teacher_dir),
            "teacher_blocks": teacher.config.num_hidden_layers,
            "student_blocks": model.config.num_hidden_layers,
        }
    else:
        model, tokenizer = build(task, model_spec, examples, seed)
    features = featurize(task, examples, tokenizer, settings)
    stats = train_loop(
        model, features, settings, tokenizer.pad_token_id, seed, loss_fn=loss_fn, desc=f"finetune {task.name}"
    )
    model.cpu()
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "aqbench.json",
            {
                "task": task.name,
                "seed": seed,
                "model": model_spec,
                "train": {**settings, **stats},
                "train_examples": len(examples),
                "features": len(features),
                **note,
                "parameters": sum(p.numel() for p in model.parameters()),
                "versions": versions(),
            },
        )
        write_record(tmp)  # last: every later read checks the files against it
    return stats
