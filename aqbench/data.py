"""The data stage: a task's splits from synthetic generators, local files or the hub, as JSONL in one directory."""

import random
from pathlib import Path

from aqbench import hub
from aqbench.errors import AqbenchError
from aqbench.io import atomic_dir, read_json, read_jsonl, write_json, write_jsonl


def load_examples(task, settings):
    """{split: examples} for the task's train and eval splits, before subsampling.

    settings: the config's `data` section with the task's overrides applied (see aqbench.config.stage_settings).
    """
    source = settings["source"]
    if source == "synthetic":
        syn = settings["synthetic"]
        return task.synthesize(settings["seed"], syn["n_train"], syn["n_eval"])
    if source == "local":
        return _load_local(task, settings)
    if source == "hub":
        return _load_hub(task, settings)
    raise AqbenchError(f"unknown data source {source!r} for task {task.name}: use synthetic, local or hub")


def _load_local(task, settings):
    directory = (settings.get("local_dirs") or {}).get(task.name)
    if not directory:
        raise AqbenchError(f"task {task.name} reads local files but data.local_dirs.{task.name} is not set. Fix: set it "
                           f"to a directory holding {', '.join(task.local_files.values())}")
    files = {**task.local_files, **(settings.get("local_files") or {}).get(task.name, {})}
    splits = {}
    for split in task.splits:
        path = Path(directory) / files[split]
        if not path.is_file():
            raise AqbenchError(f"missing local file for task {task.name}, split {split}: {path}. Fix: put the file there, "
                               f"or name it in data.local_files.{task.name}.{split}")
        splits[split] = task.read_local(path)
    return splits


def _load_hub(task, settings):
    import datasets

    fix = (f"download the data where the hub is reachable, or set data.source: local (or synthetic) with "
           f"data.local_dirs.{task.name} pointing at {', '.join(task.local_files.values())}")
    hub.ensure_reachable(f"dataset {task.hub.path}" + (f"/{task.hub.name}" if task.hub.name else ""), fix)
    try:
        ds = datasets.load_dataset(task.hub.path, task.hub.name)
    except (ConnectionError, OSError) as e:
        raise hub.unreachable_error(f"dataset {task.hub.path}", fix) from e
    return {split: task.hub.convert(ds[hub_split]) for split, hub_split in task.hub.splits.items()}


def subsample(examples, n, seed):
    """At most n examples, a seeded random subset in the original order (None = all)."""
    if n is None or n >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in keep]


def prepare(task, settings, out_dir):
    splits = load_examples(task, settings)
    with atomic_dir(out_dir) as tmp:
        counts = {}
        for split, examples in splits.items():
            limit = settings.get("max_train_examples") if split == "train" else settings.get("max_eval_examples")
            examples = subsample(examples, limit, settings["seed"])
            if not examples:
                raise AqbenchError(f"task {task.name}: split {split} is empty. Fix: check the data files or the limits")
            write_jsonl(tmp / f"{split}.jsonl", examples)
            counts[split] = len(examples)
        write_json(tmp / "meta.json", {"task": task.name, "source": settings["source"], "counts": counts})
    return counts


def load_split(data_dir, split):
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        read_json(Path(data_dir) / "meta.json", what="prepared data")  # names the missing stage if nothing is there
        raise AqbenchError(f"prepared data in {data_dir} has no split {split!r}")
    return read_jsonl(path)
