"""MNLI: 3-way inference (entailment / neutral / contradiction) on sentence pairs (GLUE). Accuracy on the
matched and the mismatched dev sets (MNLI-m, MNLI-mm)."""

import random

from aqbench.tasks import synthetic as syn
from aqbench.tasks.base import HubSource, Task, register
from aqbench.tasks.files import bad_record, tsv_rows

LABELS = ("entailment", "neutral", "contradiction")  # GLUE's label order
TSV_LAYOUT = "GLUE's MNLI columns (sentence1, sentence2 and gold_label among them), tab-separated"


def read_tsv(path):
    """GLUE MNLI TSV (train.tsv, dev_matched.tsv, dev_mismatched.tsv): columns sentence1, sentence2, gold_label.

    A gold_label of '-' (MultiNLI's mark for pairs the annotators did not agree on) is skipped; any other label
    outside LABELS is an error."""
    label_id = {name: i for i, name in enumerate(LABELS)}
    examples, last_line = [], 1
    for line, row in tsv_rows(path, ("sentence1", "sentence2", "gold_label"), TSV_LAYOUT):
        last_line = line
        gold = row["gold_label"]
        if gold == "-":
            continue
        if gold not in label_id:
            raise bad_record(
                path,
                line,
                f"gold_label {gold!r} is not one of {', '.join(LABELS)} (or '-', which is skipped)",
                "fix the line or remove it",
            )
        examples.append({"premise": row["sentence1"], "hypothesis": row["sentence2"], "label": label_id[gold]})
    if not examples:
        raise bad_record(
            path,
            last_line,
            "no row has a gold_label (every one is '-')",
            f"use a file with labelled rows, gold_label one of {', '.join(LABELS)}",
        )
    return examples


def from_hub(split):
    return [
        {"premise": r["premise"], "hypothesis": r["hypothesis"], "label": int(r["label"])}
        for r in split
        if r["label"] >= 0
    ]


# --- synthetic: facts about people; the hypothesis restates, contradicts or goes beyond them -------------------
# A relation: value pool, whether it is one-valued (a different value contradicts), and paraphrases. The
# mismatched split frames the same facts in genres that training never sees, as MNLI's mismatched dev set does.

RELATIONS = {
    "lives": (
        syn.CITIES,
        True,
        ["{p} lives in {v}", "{p} has a home in {v}"],
        ["{p} does not live in {v}", "{p} has no home in {v}"],
    ),
    "job": (syn.JOBS, True, ["{p} works as a {v}", "{p} is a {v}"], ["{p} does not work as a {v}", "{p} is not a {v}"]),
    "plays": (
        syn.INSTRUMENTS,
        False,
        ["{p} plays the {v}", "{p} can play the {v}"],
        ["{p} does not play the {v}", "{p} cannot play the {v}"],
    ),
    "owns": (syn.VEHICLES, False, ["{p} owns a {v}", "{p} has a {v}"], ["{p} does not own a {v}", "{p} has no {v}"]),
    "visited": (
        syn.COUNTRIES,
        False,
        ["{p} visited {v}", "{p} has been to {v}"],
        ["{p} never visited {v}", "{p} has never been to {v}"],
    ),
}
MATCHED_GENRES = {
    "fiction": ("{facts} .", " . "),
    "letters": ("dear friend , {facts} .", " , and "),
    "government": ("the records show that {facts} .", " ; "),
}
MISMATCHED_GENRES = {
    "travel": ("on the trip we learned that {facts} .", " , while "),
    "news": ("reporters said on monday that {facts} .", " . also , "),
}


def _say(rng, person, relation, value, negated):
    _, _, positive, negative = RELATIONS[relation]
    return rng.choice(negative if negated else positive).format(p=person, v=value)


def _pair(rng, mismatched):
    genres = MISMATCHED_GENRES if mismatched else MATCHED_GENRES
    frame, joiner = genres[rng.choice(sorted(genres))]
    people = syn.distinct(rng, syn.FIRST_NAMES, 2)
    facts = [
        (people[0], rel, rng.choice(RELATIONS[rel][0]), rng.random() < 0.1)
        for rel in rng.sample(sorted(RELATIONS), rng.choice([1, 2]))
    ]
    if rng.random() < 0.3:  # a fact about somebody else, to be told apart
        rel = rng.choice(sorted(RELATIONS))
        facts.append((people[1], rel, rng.choice(RELATIONS[rel][0]), False))
    rng.shuffle(facts)
    premise = frame.format(facts=joiner.join(_say(rng, *f) for f in facts))

    label = rng.randrange(3)
    p, rel, value, negated = rng.choice(facts)
    pool, one_valued = RELATIONS[rel][0], RELATIONS[rel][1]
    if label == 0:  # entailment: restate a fact
        hyp = (p, rel, value, negated)
    elif label == 2:  # contradiction: deny a fact, or give another value of a one-valued relation
        if negated or not one_valued or rng.random() < 0.5:
            hyp = (p, rel, value, not negated)
        else:
            hyp = (p, rel, rng.choice([v for v in pool if v != value]), False)
    else:  # neutral: a relation the premise does not state, or a person it does not mention
        known = {(f[0], f[1]) for f in facts}
        q, r = rng.choice([(q, r) for q in people for r in RELATIONS if (q, r) not in known])
        hyp = (q, r, rng.choice(RELATIONS[r][0]), rng.random() < 0.1)
    return {"premise": premise, "hypothesis": _say(rng, *hyp) + " .", "label": label}


def synthesize(seed, n_train, n_eval):
    rng = random.Random(seed)
    return {
        "train": [_pair(rng, False) for _ in range(n_train)],
        "validation_matched": [_pair(rng, False) for _ in range(n_eval)],
        "validation_mismatched": [_pair(rng, True) for _ in range(n_eval)],
    }


TASK = register(
    Task(
        name="mnli",
        kind="classification",
        description="MNLI sentence-pair inference, matched and mismatched (GLUE)",
        labels=LABELS,
        text_fields=("premise", "hypothesis"),
        eval_splits={"validation_matched": "m", "validation_mismatched": "mm"},
        main_metric="accuracy_m",
        hub=HubSource(
            "nyu-mll/glue",
            "mnli",
            {
                "train": "train",
                "validation_matched": "validation_matched",
                "validation_mismatched": "validation_mismatched",
            },
            from_hub,
        ),
        local_files={
            "train": "train.tsv",
            "validation_matched": "dev_matched.tsv",
            "validation_mismatched": "dev_mismatched.tsv",
        },
        read_local=read_tsv,
        synthesize=synthesize,
        max_length=128,
    )
)
