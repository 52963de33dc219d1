"""Quantization-aware fine-tuning with a fixed bit assignment (Q-BERT; AQ-BERT's retraining after search).

The FP checkpoint gets the assignment's QuantLinear / QuantEmbedding modules, activation ranges start from a
calibration pass, and training runs the plain loop of aqbench.train: weights are fake-quantized on every step
with the straight-through estimator, activation ranges follow a moving average, pruned groups get no gradient.
With a teacher the loss adds soft targets from the FP model (aqbench.distill).
"""

import dataclasses

from aqbench.data import load_split
from aqbench.distill import kd_loss
from aqbench.evaluate import tuning_scorer
from aqbench.models import load_checkpoint
from aqbench.quant.calibration import calibrate, calibration_features
from aqbench.quant.modules import quantize_model
from aqbench.tasks.kinds import featurize
from aqbench.train import train_loop


def loop_settings(train, qat):
    """The training loop's settings for QAT (a Train record), the one place the two sections meet: `qat`'s keys
    win (epochs, batch_size, lr, weight_decay, warmup_ratio, grad_clip, max_steps); `train` gives the rest
    (max_length, doc_stride, eval_batch_size, device, mixed_precision)."""
    return dataclasses.replace(
        train,
        epochs=qat.epochs,
        batch_size=qat.batch_size,
        lr=qat.lr,
        weight_decay=qat.weight_decay,
        warmup_ratio=qat.warmup_ratio,
        grad_clip=qat.grad_clip,
        max_steps=qat.max_steps,
        select_every=qat.select_every,
    )


def quantization_aware_training(task, model, tokenizer, data_dir, assignment, settings, seed, checkpoint_dir=None):
    """Quantize `model` in place with `assignment`, calibrate, and fine-tune it; returns the training stats.

    settings: an aqbench.settings.MethodSettings with quant, train (eval batch size, lengths, device) and qat
    (train-loop settings, select_every among them, plus `distill`, `temperature`, `alpha`). The teacher (distill) is the FP checkpoint itself."""
    quantize_model(model, assignment)
    calib = calibration_features(task, data_dir, tokenizer, settings.train, settings.quant.calibration_examples, seed)
    calibrate(model, calib, tokenizer.pad_token_id, settings.train)
    loop = loop_settings(settings.train, settings.qat)
    loss_fn = None
    if settings.qat.distill:
        teacher, _ = load_checkpoint(task, checkpoint_dir)
        loss_fn = kd_loss(teacher, settings.qat.temperature, settings.qat.alpha)
    features = featurize(task, load_split(data_dir, "train"), tokenizer, settings.train)
    score = tuning_scorer(task, tokenizer, data_dir, settings.train) if loop.select_every else None
    stats = train_loop(
        model,
        features,
        loop,
        tokenizer.pad_token_id,
        seed,
        loss_fn=loss_fn,
        score=score,
        desc=f"qat {task.name} {assignment.meta.get('method', '')} {assignment.meta.get('budget', '')}",
    )
    model.eval()
    return stats
