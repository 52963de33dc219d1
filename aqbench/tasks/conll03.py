"""CoNLL-2003 English NER: BIO tags for PER, ORG, LOC, MISC. Entity-level F1 (seqeval) on the dev set."""

import random

from aqbench.errors import AqbenchError
from aqbench.tasks import synthetic as syn
from aqbench.tasks.base import HubSource, Task, register
from aqbench.tasks.files import bad_record, numbered_lines

TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")  # the HF conll2003 order
LAYOUT = "`token POS chunk NER` lines (columns separated by spaces, the NER tag last), a blank line between sentences"


def read_conll(path):
    """CoNLL column file (`token POS chunk NER`, blank line between sentences, -DOCSTART- lines between documents)."""
    known_tags = set(TAGS)
    sentences, tokens, tags = [], [], []
    for line, text in numbered_lines(path):
        parts = text.split()
        if not parts or parts[0] == "-DOCSTART-":
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags})
            tokens, tags = [], []
            continue
        if len(parts) < 2:  # a token without its tag (or columns joined by something other than spaces)
            raise bad_record(
                path, line, f"only one column ({parts[0]!r})", f"expected {LAYOUT}; fix the line or remove it"
            )
        if parts[-1] not in known_tags:  # the model's head has exactly these nine outputs
            raise bad_record(
                path,
                line,
                f"NER tag {parts[-1]!r} is not one of {', '.join(TAGS)}",
                "the last column must be a CoNLL-2003 BIO (IOB2) tag; fix the line or convert the file",
            )
        tokens.append(parts[0])
        tags.append(parts[-1])
    if tokens:
        sentences.append({"tokens": tokens, "tags": tags})
    if not sentences:
        raise bad_record(
            path, 1, "no sentences (the file is empty or holds only blank and -DOCSTART- lines)", f"expected {LAYOUT}"
        )
    return sentences


def from_hub(split):
    """Rows with `tokens` and `ner_tags`, the tags as class ids (conll2003's ClassLabel) or as tag strings (some
    mirrors); tags outside the nine BIO tags are refused, since the model's head has exactly those."""
    feature = split.features["ner_tags"].feature
    names = getattr(feature, "names", None)
    examples = [
        {"tokens": list(r["tokens"]), "tags": [names[t] for t in r["ner_tags"]] if names else list(r["ner_tags"])}
        for r in split
    ]
    unknown = sorted({t for ex in examples for t in ex["tags"]} - set(TAGS))
    if unknown:
        raise AqbenchError(
            f"conll03: the hub dataset has tags {unknown} outside {', '.join(TAGS)}. Fix: data.hub.conll03 "
            "must name a copy of CoNLL-2003 English NER with BIO (IOB2) tags"
        )
    return [ex for ex in examples if ex["tokens"]]


# --- synthetic: news-like sentences where the same word can be a person, a place or part of a company ---------

MULTI_LOC = ["new york", "hong kong", "buenos aires", "los angeles", "sao paulo", "cape town", "new delhi"]
AMBIGUOUS = ["jordan", "lincoln", "victoria", "florence", "chelsea", "georgia"]  # people's and places' names
TEMPLATES = [
    "{PER} said on {day} that {ORG} would buy a stake in {ORG} .",
    "{ORG} shares fell 3 percent in {LOC} after the {MISC} report .",
    "{PER} , a {MISC} citizen , was born in {LOC} .",
    "{LOC} beat {LOC} 2 - 1 in the {MISC} on {day} .",
    "police in {LOC} arrested {PER} on {day} .",
    "{PER} of {ORG} told reporters in {LOC} that prices would rise .",
    "the {MISC} government said {PER} will visit {LOC} next week .",
    "{ORG} signed a deal with {ORG} worth 10 million dollars .",
    "{PER} won the {MISC} ahead of {PER} .",
    "talks between {LOC} and {LOC} ended without agreement , {ORG} said .",
    "{PER} joined {ORG} from {ORG} in {year} .",
    "{ORG} chief {PER} flew to {LOC} on {day} .",
    "{MISC} forces entered {LOC} , {PER} said .",
    "results of the {MISC} : {PER} beat {PER} 6 - 3 .",
    "{ORG} opened a new office in {LOC} .",
    "the {MISC} striker {PER} scored twice for {ORG} .",
    "{PER} met {PER} in {LOC} to discuss the {MISC} dispute .",
    "a spokesman for {ORG} in {LOC} declined to comment .",
]


def _pools(seed, eval_split):
    """Name pools; a quarter of each is held out of training and appears only in evaluation."""
    pools = {}
    for i, (key, pool) in enumerate(
        [
            ("first", syn.FIRST_NAMES + AMBIGUOUS[:3]),
            ("last", syn.LAST_NAMES + AMBIGUOUS[3:]),
            ("city", syn.CITIES + AMBIGUOUS),
            ("country", syn.COUNTRIES),
            ("org", syn.ORG_HEADS),
            ("nat", syn.NATIONALITIES),
        ]
    ):
        seen, held = syn.split_pool(pool, seed * 100 + i)
        pools[key] = seen + held if eval_split else seen
    return pools


def _entity(rng, kind, pools):
    if kind == "PER":
        words = syn.person(rng, pools["first"], pools["last"], full_prob=0.7).split()
    elif kind == "ORG":
        r = rng.random()
        if r < 0.5:
            words = [rng.choice(pools["org"]), rng.choice(syn.ORG_TAILS)]
        elif r < 0.7:
            words = [rng.choice(pools["city"]), "united"]
        elif r < 0.85:
            words = ["bank", "of", rng.choice(pools["country"])]
        else:
            words = [rng.choice(pools["org"])]
    elif kind == "LOC":
        r = rng.random()
        words = (
            rng.choice(MULTI_LOC) if r < 0.15 else rng.choice(pools["city"] if r < 0.6 else pools["country"])
        ).split()
    else:  # MISC
        r = rng.random()
        words = (
            rng.choice(syn.EVENTS)
            if r < 0.35
            else f"{rng.choice(pools['nat'])} open"
            if r < 0.5
            else rng.choice(pools["nat"])
        ).split()
    return words, [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)


def _sentence(rng, pools):
    tokens, tags = [], []
    for piece in rng.choice(TEMPLATES).split():
        if piece in ("{PER}", "{ORG}", "{LOC}", "{MISC}"):
            words, ents = _entity(rng, piece[1:-1], pools)
            tokens += words
            tags += ents
        else:
            tokens.append(piece.format(day=rng.choice(syn.DAYS), year=rng.choice(syn.YEARS)))
            tags.append("O")
    return {"tokens": tokens, "tags": tags}


def synthesize(seed, n_train, n_eval):
    rng = random.Random(seed)
    train_pools, eval_pools = _pools(seed, False), _pools(seed, True)
    return {
        "train": [_sentence(rng, train_pools) for _ in range(n_train)],
        "validation": [_sentence(rng, eval_pools) for _ in range(n_eval)],
    }


TASK = register(
    Task(
        name="conll03",
        kind="tagging",
        description="CoNLL-2003 English named-entity recognition",
        labels=TAGS,
        eval_splits={"validation": ""},
        main_metric="f1",
        # The repository holds a loading script, which datasets >= 4 no longer runs; the hub's own parquet export
        # of it (same rows, same ClassLabel features) lives on the refs/convert/parquet branch.
        hub=HubSource(
            "eriktks/conll2003",
            None,
            {"train": "train", "validation": "validation"},
            from_hub,
            revision="refs/convert/parquet",
        ),
        local_files={"train": "train.txt", "validation": "valid.txt"},
        read_local=read_conll,
        synthesize=synthesize,
        max_length=128,
    )
)
