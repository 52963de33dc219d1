"""SST-2: binary sentiment of a movie-review sentence (GLUE). Accuracy on the dev set."""

import random

from aqbench.tasks.base import HubSource, Task, register
from aqbench.tasks.files import bad_record, tsv_rows

LABELS = ("negative", "positive")
TSV_LAYOUT = "`sentence<TAB>label` with label 0 or 1"


def read_tsv(path):
    """GLUE SST-2 TSV: header `sentence<TAB>label`, label 0 (negative) or 1 (positive)."""
    fix = f"expected {TSV_LAYOUT}; fix the line or remove it"
    examples = []
    for line, row in tsv_rows(path, ("sentence", "label"), TSV_LAYOUT):
        sentence, label = row["sentence"].strip(), row["label"].strip()
        if label not in ("0", "1"):
            raise bad_record(path, line, f"label {row['label']!r} is not 0 or 1", fix)
        if not sentence:  # nothing to classify; most likely a column shifted or a line cut short
            raise bad_record(path, line, "the sentence is empty", fix)
        examples.append({"sentence": sentence, "label": int(label)})
    return examples


def from_hub(split):
    """GLUE sst2 rows (sentence, label, idx); unlabelled rows (label -1, GLUE's test split) are dropped."""
    return [{"sentence": r["sentence"].strip(), "label": int(r["label"])} for r in split if r["label"] >= 0]


# --- synthetic: sentiment that needs negation and contrast to get right ---------------------------------------

POSITIVE = (
    "good great brilliant charming moving funny clever delightful superb touching fresh gripping beautiful smart "
    "warm engaging witty powerful lovely wonderful"
).split()
NEGATIVE = (
    "bad dull boring awful weak messy tedious silly bland clumsy stale flat lifeless predictable pointless "
    "tiresome shallow ugly painful terrible"
).split()
NOUNS = (
    "film movie plot story script cast acting ending dialogue soundtrack pacing direction performance humor "
    "premise lead sequel comedy drama romance thriller"
).split()
INTENSIFIERS = "very really truly quite so remarkably rather".split()
NEGATORS = ["not", "never", "hardly", "far from", "not at all"]
FILLERS = [
    "from start to finish",
    "for most of its running time",
    "in the second half",
    "as you might expect",
    "despite the big budget",
    "for a summer release",
    "on the whole",
    "at times",
]


def _clause(rng, polarity):
    """A clause whose sentiment is `polarity` (+1/-1), expressed directly or as a negated opposite adjective."""
    negate = rng.random() < 0.35
    adj_polarity = -polarity if negate else polarity
    adj = rng.choice(POSITIVE if adj_polarity > 0 else NEGATIVE)
    if rng.random() < 0.4:
        adj = f"{rng.choice(INTENSIFIERS)} {adj}"
    neg = rng.choice(NEGATORS) + " " if negate else ""
    noun = rng.choice(NOUNS)
    form = rng.randrange(4)
    if form == 0:
        text = f"the {noun} is {neg}{adj}"
    elif form == 1:
        text = f"i found the {noun} {neg}{adj}"
    elif form == 2:
        text = f"the {noun} was {neg}{adj}"
    else:
        text = f"this {noun} feels {neg}{adj}"
    if rng.random() < 0.3:
        text = f"{text} {rng.choice(FILLERS)}"
    return text


def _sentence(rng):
    label = rng.randrange(2)
    pol = 1 if label else -1
    shape = rng.random()
    if shape < 0.4:  # one clause
        text = _clause(rng, pol)
    elif shape < 0.55:  # agreeing clauses
        text = f"{_clause(rng, pol)} and {_clause(rng, pol)}"
    elif shape < 0.75:  # "A but B": B decides
        text = f"{_clause(rng, -pol)} , but {_clause(rng, pol)}"
    elif shape < 0.9:  # "although A , B": B decides
        text = f"although {_clause(rng, -pol)} , {_clause(rng, pol)}"
    else:  # "A , although B": A decides
        text = f"{_clause(rng, pol)} , although {_clause(rng, -pol)}"
    return {"sentence": text + " .", "label": label}


def synthesize(seed, n_train, n_eval):
    rng = random.Random(seed)
    return {
        "train": [_sentence(rng) for _ in range(n_train)],
        "validation": [_sentence(rng) for _ in range(n_eval)],
    }


TASK = register(
    Task(
        name="sst2",
        kind="classification",
        description="SST-2 sentence sentiment (GLUE)",
        labels=LABELS,
        text_fields=("sentence",),
        eval_splits={"validation": ""},
        main_metric="accuracy",
        hub=HubSource("nyu-mll/glue", "sst2", {"train": "train", "validation": "validation"}, from_hub),
        local_files={"train": "train.tsv", "validation": "dev.tsv"},
        read_local=read_tsv,
        synthesize=synthesize,
        max_length=128,
    )
)
