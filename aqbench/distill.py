"""Knowledge distillation loss: soft targets from a teacher plus the hard labels (Hinton et al. 2015).

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(labels)

over every logits output of the head: class logits (sequence classification), per-token logits (tagging; only
labelled tokens), start and end logits over positions (span QA; padding masked out). Used by QAT with a teacher
(Q-BERT's optional KD) and by the distilled student of the demo.
"""

import torch
import torch.nn.functional as F

from aqbench.batching import LABEL_KEYS, MODEL_KEYS
from aqbench.prediction import OUTPUT_KEYS as LOGIT_KEYS


def _kl(student, teacher, temperature, mask=None):
    """Mean over rows of KL(teacher || student) on the last dimension, rows selected by mask."""
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    if mask is not None:
        kl = kl[mask]
    return kl.mean() * temperature**2


def soft_target_loss(student_out, teacher_out, batch, temperature):
    losses = []
    for key in LOGIT_KEYS:
        s, t = getattr(student_out, key, None), getattr(teacher_out, key, None)
        if s is None or t is None:
            continue
        if key == "logits" and s.dim() == 3:  # token classification: labelled tokens only
            losses.append(
                _kl(s, t, temperature, batch["labels"] != -100 if "labels" in batch else batch["attention_mask"].bool())
            )
        elif key != "logits":  # span QA: a distribution over positions, padding excluded
            pad = batch["attention_mask"] == 0
            losses.append(_kl(s.masked_fill(pad, -1e4), t.masked_fill(pad, -1e4), temperature))
        else:
            losses.append(_kl(s, t, temperature))
    return sum(losses) / len(losses)


def kd_loss(teacher, temperature=2.0, alpha=0.5):
    """A train_loop loss_fn: the student's loss on the labels blended with soft targets from a frozen teacher."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss_fn(model, batch):
        out = model(**batch)
        if next(teacher.parameters()).device != batch["input_ids"].device:
            teacher.to(batch["input_ids"].device)  # train_loop moves the student; the teacher follows
        with torch.no_grad():
            t_out = teacher(**{k: v for k, v in batch.items() if k in MODEL_KEYS})
        soft = soft_target_loss(out, t_out, batch, temperature)
        hard = out.loss if any(k in batch for k in LABEL_KEYS) else 0.0
        return alpha * soft + (1 - alpha) * hard

    return loss_fn


def make_student(teacher):
    """DistilBERT's recipe for a student: the teacher with every other transformer block (0, 2, 4, ...),
    initialised from those blocks, the embeddings, pooler and task head copied. Works for BERT-like models
    (config.num_hidden_layers, blocks in encoder.layer); the teacher is not changed."""
    import copy
    import re

    from aqbench.errors import AqbenchError
    from aqbench.quant.modules import encoder_blocks

    blocks = encoder_blocks(teacher)
    config = copy.deepcopy(teacher.config)
    if not hasattr(config, "num_hidden_layers"):
        raise AqbenchError(f"cannot make a student of {type(teacher).__name__}: its config has no num_hidden_layers")
    keep = list(range(0, len(blocks), 2))
    config.num_hidden_layers = len(keep)
    student = type(teacher)(config)
    prefix = blocks[0][0].rsplit(".", 1)[0]  # e.g. bert.encoder.layer
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.*)$")
    state = {}
    for key, value in teacher.state_dict().items():
        m = pattern.match(key)
        if m is None:
            state[key] = value.clone()
        elif int(m.group(1)) in keep:
            state[f"{prefix}.{keep.index(int(m.group(1)))}.{m.group(2)}"] = value.clone()
    student.load_state_dict(state, strict=True)
    return student
