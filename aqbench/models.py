"""Models and tokenizers: a small BERT built from a config (demo, tests), a local directory, or a hub name.

A fine-tuned checkpoint is an ordinary HF directory (config.json + model.safetensors + tokenizer files), so
every later stage loads it the same way as a user's local model.
"""

import contextlib
import json
from pathlib import Path

from aqbench import hub
from aqbench.errors import AqbenchError
from aqbench.tasks.kinds import get_kind

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def auto_class(task):
    import transformers

    return getattr(transformers, get_kind(task.kind).HEAD)


def head_kwargs(task):
    if task.kind == "span_qa":
        return {}
    return {
        "num_labels": len(task.labels),
        "id2label": dict(enumerate(task.labels)),
        "label2id": {label: i for i, label in enumerate(task.labels)},
    }


def texts(task, examples):
    """The raw text of examples, to train a tokenizer on."""
    for ex in examples:
        if task.kind == "classification":
            yield from (ex[f] for f in task.text_fields)
        elif task.kind == "tagging":
            yield " ".join(ex["tokens"])
        else:
            yield ex["question"]
            yield ex["context"]


def train_tokenizer(corpus, vocab_size):
    """An uncased WordPiece tokenizer (tokenizers library; BERT's normalizer, pre-tokenizer and [CLS]/[SEP]
    template) whose vocabulary is learned from the corpus: every character (and ##character) as fallback, then
    the most frequent words, ties broken alphabetically.

    Deterministic by construction: the library's WordPieceTrainer breaks ties between equally frequent merges
    in hash-map order, and gave a different vocabulary on each of 6 runs over the same corpus.
    """
    import collections

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts = collections.Counter(
        word for text in corpus for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    )
    chars = sorted({c for word in counts for c in word})
    vocab = SPECIAL_TOKENS + chars + [f"##{c}" for c in chars]
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    vocab += words[: max(0, vocab_size - len(vocab))]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


# The small encoder `aqbench make-model` saves when no pretrained model can be had (4 layers, hidden 256).
SMALL_ARCHITECTURE = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "max_position_embeddings": 512,
}


def make_model_dir(out_dir, corpus, vocab_size=8000, architecture=None, seed=0, note=None):
    """Save a randomly initialised BERT encoder (no task head) and an uncased WordPiece tokenizer learned on
    `corpus` to out_dir, laid out as a downloaded model is (config.json, model.safetensors, tokenizer files), so
    that `source: local` can point at it: a stand-in for bert-base-uncased where none can be downloaded. It is
    not pretrained, so what is fine-tuned from it learns the task from scratch."""
    import torch
    from transformers import BertConfig, BertModel

    from aqbench.io import atomic_dir, write_json
    from aqbench.versions import versions

    architecture = {**SMALL_ARCHITECTURE, **(architecture or {})}
    tokenizer = train_tokenizer(corpus, vocab_size)
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **architecture)
    torch.manual_seed(seed)
    model = BertModel(config)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "aqbench-model.json",
            {
                "made_by": "aqbench make-model",
                "pretrained": False,
                "seed": seed,
                "vocab_size": len(tokenizer),
                "architecture": architecture,
                "parameters": sum(p.numel() for p in model.parameters()),
                "tokenizer_corpus": note,
                "versions": versions(),
            },
        )
    return model, tokenizer


def build(task, spec, train_examples, seed):
    """The model to fine-tune, with its tokenizer, from a model spec of the config (`models.<name>`)."""
    import torch

    source = spec["source"]
    if source == "config":
        from transformers import BertConfig

        tokenizer = train_tokenizer(texts(task, train_examples), spec.get("tokenizer_vocab_size", 2000))
        config = BertConfig(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **spec["architecture"], **head_kwargs(task)
        )
        torch.manual_seed(seed)
        return auto_class(task).from_config(config), tokenizer
    if source in ("local", "hub"):
        return load_pretrained(task, spec["path"], from_hub=source == "hub", seed=seed, revision=spec.get("revision"))
    raise AqbenchError(f"unknown model source {source!r}: use config, local or hub")


def load_pretrained(task, name_or_path, from_hub=False, seed=0, revision=None):
    """A pretrained encoder with a fresh task head (seeded), from a local directory or a hub name (at `revision`, a
    hub commit, tag or branch, when given; a local directory is what it holds, so it takes none)."""
    import torch
    from transformers import AutoTokenizer

    local_only = not from_hub or hub.offline()
    pin = {"revision": revision} if from_hub and revision else {}  # every hub load: the tokenizer and the model
    if from_hub:
        hub.ensure_reachable(
            f"model {name_or_path!r}",
            fix=(
                f"download it once where the hub is reachable (`hf download {name_or_path} "
                + (f"--revision {revision} " if revision else "")
                + "--local-dir DIR`), then set source: local and path: DIR for this model in the config"
            ),
        )
    else:
        check_model_dir(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only, **pin)
        torch.manual_seed(seed)
        # a head of another task (or label count) in the directory is replaced by a fresh one
        model = auto_class(task).from_pretrained(
            name_or_path, local_files_only=local_only, ignore_mismatched_sizes=True, **pin, **head_kwargs(task)
        )
    except OSError as e:
        from huggingface_hub.errors import RevisionNotFoundError

        if pin and isinstance(e.__cause__, RevisionNotFoundError):  # the hub answered: no such commit, tag or branch
            raise AqbenchError(
                f"model {name_or_path!r} has no revision {revision!r} on the hub. Fix: set its revision in the "
                f"config to a commit hash, tag or branch of https://huggingface.co/{name_or_path}, or to null"
            ) from e
        if from_hub:
            raise hub.unreachable_error(
                f"model {name_or_path!r}",
                fix=("set source: local and path: a directory with config.json, the weights and the tokenizer files"),
            ) from e
        raise AqbenchError(f"cannot load model from {name_or_path}: {e}") from e
    check_vocabulary(name_or_path, model, tokenizer)
    return model, tokenizer


# the tokenizer files a BERT-style directory holds (a fast tokenizer's tokenizer.json, or WordPiece's vocab.txt)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def model_dir_files(path):
    """The files of a model directory that determine what is trained from it (config, weights, tokenizer): the
    declared inputs of the jobs that read it, so that editing one reruns them."""
    p = Path(path)
    if not p.is_dir():
        return []
    return sorted(str(f) for f in p.iterdir() if f.is_file() and not f.name.startswith("."))


def check_model_dir(path):
    """A directory to train from: config.json, readable weights and tokenizer files; one line with the fix if not."""
    from aqbench.integrity import check_safetensors

    p = Path(path)
    fix = (
        "point the model's path at a directory saved with save_pretrained (config.json, model.safetensors, "
        "tokenizer files), e.g. one downloaded with `hf download NAME --local-dir DIR`"
    )
    if not (p / "config.json").is_file():
        raise AqbenchError(f"model directory {p} has no config.json (or does not exist). Fix: {fix}")
    try:
        json.loads((p / "config.json").read_text())
    except ValueError as e:
        raise AqbenchError(f"{p / 'config.json'} is not valid JSON ({e}). Fix: {fix}") from None
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise AqbenchError(f"model directory {p} has no weights ({' or '.join(WEIGHT_FILES)}). Fix: {fix}")
    for weights in sorted(p.glob("*.safetensors")):
        check_safetensors(weights, f"download or save the model again into {p}")
    if not any((p / t).is_file() for t in TOKENIZER_FILES):
        # transformers would build a tokenizer with only its 5 special tokens and train on [UNK]s
        raise AqbenchError(
            f"model directory {p} has no tokenizer ({' or '.join(TOKENIZER_FILES)}). Fix: save the "
            f"model's tokenizer there too (tokenizer.save_pretrained(DIR)), or download the whole model"
        )


def check_vocabulary(path, model, tokenizer):
    """The tokenizer and the embedding table belong together: no token id beyond the table, and the tokenizer
    covers most of it (a tokenizer of another model, or a nearly empty one, would turn text into [UNK]s)."""
    rows, size = model.config.vocab_size, len(tokenizer)
    if size > rows or size < rows // 2:
        raise AqbenchError(
            f"model directory {path}: its tokenizer has {size} tokens but the model's vocab_size is "
            f"{rows}; they do not belong together. Fix: save the model's own tokenizer in {path}"
        )


def load_checkpoint(task, path):
    """A fine-tuned checkpoint written by `aqbench finetune` (or any HF directory with this task's head). Its
    files are checked against the record written with it (aqbench.integrity) before anything is loaded.
    Within reusing_checkpoints(), a checkpoint whose files are unchanged is read once and copied after."""
    import copy

    key = _checkpoint_key(task, path) if _reuse is not None else None
    if key is not None and _reuse.get("key") == key:
        return copy.deepcopy(_reuse["model"]), _reuse["tokenizer"]
    model, tokenizer = _read_checkpoint(task, path)
    if key is not None:
        _reuse.update(key=key, model=copy.deepcopy(model), tokenizer=tokenizer)
    return model, tokenizer


def _read_checkpoint(task, path):
    from transformers import AutoTokenizer

    from aqbench.integrity import check_record

    if not check_record(path, f"delete {path} and rerun snakemake, which fine-tunes it again"):
        check_model_dir(path)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = auto_class(task).from_pretrained(path, local_files_only=True)
    return model, tokenizer


_reuse = None  # within reusing_checkpoints(): {key, model (never handed out), tokenizer}


def _checkpoint_key(task, path):
    """The task, the directory and every file's size and modification time: a rewritten checkpoint is read
    (and checked) again."""
    p = Path(path).resolve()
    if not p.is_dir():
        return None
    stats = {f.name: f.stat() for f in p.iterdir() if f.is_file()}
    return task.name, str(p), tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats.items()))


@contextlib.contextmanager
def reusing_checkpoints():
    """Within the block, load_checkpoint reads a checkpoint from disk once and hands out deep copies (the same
    weights, each free to be quantized in place) while its files are unchanged; the tokenizer is shared. A
    method's sweep or an export job loads one checkpoint once per run (more with its checks): each load is
    transformers' from_pretrained plus the integrity check, a copy a fraction of that. Holds one extra copy of
    the model while it lasts."""
    global _reuse
    outer, _reuse = _reuse, {}
    try:
        yield
    finally:
        _reuse = outer
