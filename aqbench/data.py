"""The data stage: a task's splits from synthetic generators, local files or the hub, as JSONL in one directory."""

import dataclasses
import random
from pathlib import Path

from aqbench import hub
from aqbench.errors import AqbenchError
from aqbench.io import atomic_dir, read_json, read_jsonl, write_json, write_jsonl


def load_examples(task, settings):
    """{split: examples} for the task's train and eval splits, before subsampling.

    settings: the config's `data` section with the task's overrides applied (see aqbench.config.stage_settings),
    as an aqbench.settings.Data record.
    """
    source = settings.source
    if source == "synthetic":
        syn = settings.synthetic
        splits = task.synthesize(settings.seed, syn.n_train, syn.n_eval)
    elif source == "local":
        splits = _load_local(task, settings)
    elif source == "hub":
        splits = _load_hub(task, settings)
    else:
        raise AqbenchError(f"unknown data source {source!r} for task {task.name}: use synthetic, local or hub")
    if settings.train_from_eval:
        splits = split_eval(task, splits, settings.train_from_eval, settings.seed)
    return splits


def read_splits(task, settings):
    """The splits read from files or the hub: without the training split when it is carved from the eval one."""
    if settings.train_from_eval:
        check_one_eval_split(task)
        return list(task.eval_splits)
    return task.splits


def check_one_eval_split(task):
    """data.train_from_eval carves the training split from the eval split, so the task must have exactly one."""
    if len(task.eval_splits) != 1:
        raise AqbenchError(
            f"data.train_from_eval is set for task {task.name}, which has {len(task.eval_splits)} evaluation "
            f"splits ({', '.join(task.eval_splits)}). Fix: set it only for a task with one, e.g. squad"
        )


def split_eval(task, splits, fraction, seed):
    """Where only the evaluation split is at hand (e.g. SQuAD's dev file): a seeded share `fraction` of its
    groups (task.group_key: SQuAD's articles, so no passage is on both sides; else single examples) becomes the
    training split and the rest stays the evaluation split. A deviation from the papers, to be stated."""
    check_one_eval_split(task)
    name = next(iter(task.eval_splits))
    examples = splits[name]
    keys = [ex.get(task.group_key, i) if task.group_key else i for i, ex in enumerate(examples)]
    groups = list(dict.fromkeys(keys))  # in order of first appearance
    k = round(fraction * len(groups))
    if not 0 < k < len(groups):
        raise AqbenchError(
            f"data.train_from_eval {fraction} of task {task.name}'s {len(groups)} "
            f"{'groups' if task.group_key else 'examples'} leaves {'no training' if k == 0 else 'no evaluation'} "
            "examples. Fix: choose a fraction between 0 and 1 that leaves both sides non-empty"
        )
    train = set(random.Random(f"train-from-eval-{seed}").sample(groups, k))
    return {
        "train": [ex for ex, key in zip(examples, keys) if key in train],
        name: [ex for ex, key in zip(examples, keys) if key not in train],
    }


def local_files(task, settings):
    """{split: path} of the files a task reads with data.source local (whether or not they exist yet): the
    declared inputs of its prepare_data job, so that editing one reruns exactly what depends on it."""
    directory = settings.local_dirs.get(task.name)
    if settings.source != "local" or not directory:
        return {}
    files = {**task.local_files, **settings.local_files.get(task.name, {})}
    return {split: Path(directory) / files[split] for split in read_splits(task, settings)}


def _load_local(task, settings):
    if not settings.local_dirs.get(task.name):
        raise AqbenchError(
            f"task {task.name} reads local files but data.local_dirs.{task.name} is not set. Fix: set it "
            f"to a directory holding {', '.join(task.local_files.values())}"
        )
    splits = {}
    for split, path in local_files(task, settings).items():
        if not path.is_file():
            raise AqbenchError(
                f"missing local file for task {task.name}, split {split}: {path}. Fix: put the file there, "
                f"or name it in data.local_files.{task.name}.{split}"
            )
        splits[split] = task.read_local(path)
    return splits


def hub_source(task, settings):
    """The task's hub dataset, with the config's per-task overrides (data.hub.<task>: path, name, revision)."""
    return dataclasses.replace(task.hub, **settings.hub.get(task.name, {}))


def _load_hub(task, settings):
    import datasets

    source = hub_source(task, settings)
    what = f"dataset {source.describe()} for task {task.name}"
    fix = (
        f"set data.source: local and data.local_dirs.{task.name} to a directory holding "
        f"{' and '.join(task.local_files.values())} in their usual format (docs/config.md; config/local-example.yaml "
        "does this), or load it once where the hub is reachable and rerun with HF_HUB_OFFLINE=1 to use the cache"
    )
    hub.ensure_reachable(what, fix)
    try:
        ds = datasets.load_dataset(source.path, source.name, revision=source.revision)
    except datasets.exceptions.DatasetNotFoundError as e:
        raise AqbenchError(
            f"{what} is not on the hub (or is gated): {e}. Fix: set data.hub.{task.name}.path to "
            "an existing dataset, or use local files (data.source: local)"
        ) from e
    except (ConnectionError, OSError) as e:  # unreachable, or HF_HUB_OFFLINE with nothing in the cache
        raise hub.unreachable_error(what, fix) from e
    except (RuntimeError, ValueError) as e:  # a loading script (datasets >= 4 runs none), an unknown config name
        raise AqbenchError(
            f"cannot load {what}: {e}. Fix: data.hub.{task.name} (path, name, revision) must name "
            "a dataset stored as data files; a script-only repository has its parquet export at "
            "revision refs/convert/parquet"
        ) from e
    wanted = read_splits(task, settings)
    missing = [h for s, h in source.splits.items() if s in wanted and h not in ds]
    if missing:
        raise AqbenchError(
            f"{what} has no split {', '.join(missing)} (it has {', '.join(ds)}). Fix: data.hub.{task.name} "
            "must name a copy of the task with its usual splits"
        )
    return {split: source.convert(ds[hub_split]) for split, hub_split in source.splits.items() if split in wanted}


def subsample(examples, n, seed):
    """At most n examples, a seeded random subset in the original order (None = all)."""
    if n is None or n >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in keep]


def split_tuning(n, fraction, seed):
    """(train ids, tuning ids): a seeded share `fraction` of n training examples' indices set aside for tuning,
    both sorted. Whole examples are split, so a SQuAD question's windows are never on both sides."""
    k = round(fraction * n)
    if fraction > 0 and not 0 < k < n:
        raise AqbenchError(
            f"data.tuning_fraction {fraction} of {n} training examples leaves "
            f"{'no tuning' if k == 0 else 'no training'} examples. Fix: change the fraction or use more data"
        )
    tuning = sorted(random.Random(f"tuning-{seed}").sample(range(n), k))
    held = set(tuning)
    return [i for i in range(n) if i not in held], tuning


def prepare(task, settings, out_dir):
    """Write the task's splits as JSONL (train, the eval splits, and tuning: a seeded share of the training
    examples no model trains on), meta.json with their sizes, and ids.json: which of the source's training
    examples (by index) became train and which tuning (data.max_tuning_examples: a seeded subset of the tuning
    share scores, the rest of the share is left out, so it never becomes training data)."""
    splits = load_examples(task, settings)
    train_ids, tuning_ids = split_tuning(len(splits["train"]), settings.tuning_fraction, settings.seed)
    train_ids = subsample(train_ids, settings.max_train_examples, settings.seed)
    tuning_ids = subsample(tuning_ids, settings.max_tuning_examples, settings.seed)
    source_train = splits["train"]
    splits["train"] = [source_train[i] for i in train_ids]
    if tuning_ids:
        splits["tuning"] = [source_train[i] for i in tuning_ids]
    with atomic_dir(out_dir) as tmp:
        counts = {}
        for split, examples in splits.items():
            if split not in ("train", "tuning"):
                examples = subsample(examples, settings.max_eval_examples, settings.seed)
            if not examples:
                raise AqbenchError(f"task {task.name}: split {split} is empty. Fix: check the data files or the limits")
            write_jsonl(tmp / f"{split}.jsonl", examples)
            counts[split] = len(examples)
        meta = {"task": task.name, "source": settings.source, "counts": counts}
        if settings.train_from_eval:  # a deviation from the papers: training examples from the eval split
            meta["train_from_eval"] = settings.train_from_eval
        write_json(tmp / "meta.json", meta)
        write_json(tmp / "ids.json", {"train": train_ids, "tuning": tuning_ids})
    return counts


def load_split(data_dir, split):
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        read_json(Path(data_dir) / "meta.json", what="prepared data")  # names the missing stage if nothing is there
        raise AqbenchError(f"prepared data in {data_dir} has no split {split!r}")
    return read_jsonl(path)
