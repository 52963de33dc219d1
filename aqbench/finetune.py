"""The finetune stage (`aqbench finetune`): build or load the model, train it on the task with the loop of
aqbench.train, and write the checkpoint. A distilled student is made from its teacher and trained with soft
targets from it (aqbench.distill)."""

import torch

from aqbench.errors import AqbenchError
from aqbench.train import train_loop


def finetune(task, data_dir, model_spec, settings, seed, out_dir, teacher_dir=None):
    """The finetune stage: build (or load) the model, train it on the task, save an HF checkpoint directory
    (config.json, model.safetensors, tokenizer files) plus aqbench.json with what was done. A `student` model
    is every other block of the fine-tuned teacher in teacher_dir, trained with soft targets from it.

    model_spec and settings are the JSON the rule passes (models.<name> and the train section), kept as given
    because aqbench.json records them as they were; the loop reads them as an aqbench.settings.Train record."""
    from aqbench.data import load_split
    from aqbench.evaluate import tuning_scorer
    from aqbench.integrity import write_record
    from aqbench.io import atomic_dir, write_json
    from aqbench.models import build, load_checkpoint
    from aqbench.settings import Train
    from aqbench.tasks.kinds import featurize
    from aqbench.versions import versions

    train = Train.from_dict(settings)
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
    features = featurize(task, examples, tokenizer, train)
    score = tuning_scorer(task, tokenizer, data_dir, train) if train.select_every else None
    stats = train_loop(
        model,
        features,
        train,
        tokenizer.pad_token_id,
        seed,
        loss_fn=loss_fn,
        desc=f"finetune {task.name}",
        score=score,
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
