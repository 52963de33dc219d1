"""SQuAD v1.1: extractive question answering. Exact match and F1 (max over gold answers) on the dev set."""

import random

from aqbench.tasks import synthetic as syn
from aqbench.tasks.base import HubSource, Task, register
from aqbench.tasks.files import bad_record, load_json

LAYOUT = (
    'SQuAD v1.1 JSON: {"data": [{"paragraphs": [{"context": ..., "qas": [{"id": ..., "question": ..., '
    '"answers": [{"text": ..., "answer_start": ...}, ...]}]}]}]}'
)
JSON_TYPES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


def _get(path, record, key, kind, where):
    """record[key], which must be of type `kind`; anything else is an error that names the record."""
    fix = f"expected {LAYOUT}; fix the record or remove it"
    if not isinstance(record, dict):
        raise bad_record(path, where, f"{JSON_TYPES.get(type(record), 'a value')} where an object is expected", fix)
    if key not in record:
        raise bad_record(path, where, f'no "{key}"', fix)
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool):  # JSON's true/false are Python ints too
        raise bad_record(
            path,
            where,
            f'"{key}" is {JSON_TYPES.get(type(value), "a value")} where {JSON_TYPES[kind]} is expected',
            fix,
        )
    return value


def read_json(path):
    """The official SQuAD v1.1 JSON (data -> paragraphs -> qas). A bad record is named by its place in the file,
    e.g. `data[3].paragraphs[0].qas[2] (id ...)`, since JSON has no line per record."""
    document = load_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise bad_record(path, None, 'no top-level "data" list', f"expected {LAYOUT}")
    examples = []
    for i, article in enumerate(document["data"]):
        for j, para in enumerate(_get(path, article, "paragraphs", list, f"data[{i}]")):
            para_at = f"data[{i}].paragraphs[{j}]"
            context = _get(path, para, "context", str, para_at)
            for k, qa in enumerate(_get(path, para, "qas", list, para_at)):
                qa_at = f"{para_at}.qas[{k}]"
                qid = _get(path, qa, "id", str, qa_at)
                where = f"{qa_at} (id {qid})"
                question = _get(path, qa, "question", str, where)
                answers = _get(path, qa, "answers", list, where)
                if not answers:  # SQuAD v2.0's unanswerable questions have none; v1.1 has no such questions
                    raise bad_record(
                        path,
                        where,
                        '"answers" is empty',
                        "every SQuAD v1.1 question has at least one answer; add one or remove the question",
                    )
                texts, starts = [], []
                for a, answer in enumerate(answers):
                    answer_at = f"{qa_at}.answers[{a}] (id {qid})"
                    text = _get(path, answer, "text", str, answer_at)
                    start = _get(path, answer, "answer_start", int, answer_at)
                    # training labels the span at answer_start, so it must hold the answer's text
                    if start < 0 or context[start : start + len(text)] != text:
                        raise bad_record(
                            path,
                            answer_at,
                            f"the context at answer_start {start} does not read {text!r}",
                            "answer_start must be the character offset of the "
                            "answer's text in the paragraph's context; fix it or remove the answer",
                        )
                    texts.append(text)
                    starts.append(start)
                examples.append(
                    {
                        "id": qid,
                        "title": article.get("title", f"data[{i}]"),  # the article: a split keeps it whole
                        "question": question,
                        "context": context,
                        "answers": {"text": texts, "answer_start": starts},
                    }
                )
    if not examples:
        raise bad_record(path, None, 'no questions in "data"', f"expected {LAYOUT}")
    return examples


def from_hub(split):
    return [
        {
            "id": r["id"],
            "title": r["title"],
            "question": r["question"],
            "context": r["context"],
            "answers": {"text": list(r["answers"]["text"]), "answer_start": list(r["answers"]["answer_start"])},
        }
        for r in split
    ]


# --- synthetic: short biographies of several people; a question about one of them ----------------------------

FACTS = {  # relation -> (sentences that state it, questions that ask it)
    "city": (
        ["{n} was born in {v} .", "{n} grew up in {v} ."],
        ["where was {n} born ?", "in which city did {n} grow up ?", "what is the home town of {n} ?"],
    ),
    "year": (
        ["{n} was born in the year {v} .", "in {v} , {n} was born ."],
        ["when was {n} born ?", "in what year was {n} born ?"],
    ),
    "job": (
        ["{n} works as a {v} .", "{n} is a {v} by training ."],
        ["what is the job of {n} ?", "what does {n} do for a living ?"],
    ),
    "org": (
        ["{n} works for {v} .", "{n} joined {v} last year ."],
        ["which company does {n} work for ?", "who employs {n} ?"],
    ),
    "instrument": (
        ["{n} plays the {v} .", "in the evenings {n} practices the {v} ."],
        ["what instrument does {n} play ?", "which instrument does {n} practice ?"],
    ),
}
VALUES = {
    "city": lambda rng: rng.choice(syn.CITIES),
    "year": lambda rng: rng.choice(syn.YEARS),
    "job": lambda rng: rng.choice(syn.JOBS),
    "org": lambda rng: f"{rng.choice(syn.ORG_HEADS)} {rng.choice(syn.ORG_TAILS)}",
    "instrument": lambda rng: rng.choice(syn.INSTRUMENTS),
}


def _example(rng, idx, split):
    firsts = syn.distinct(rng, syn.FIRST_NAMES, rng.choice([2, 3]))
    people = [f"{f} {rng.choice(syn.LAST_NAMES)}" for f in firsts]
    sentences, facts = [], []
    for p in people:
        for rel in rng.sample(sorted(FACTS), 2):
            value = VALUES[rel](rng)
            name = p if rng.random() < 0.5 else p.split()[0]
            sentences.append((rng.choice(FACTS[rel][0]), name, value))
            facts.append((p, rel, value, len(sentences) - 1))
    order = list(range(len(sentences)))
    rng.shuffle(order)
    context, starts = "", {}
    for i in order:
        template, name, value = sentences[i]
        prefix = template.split("{v}")[0].format(n=name)
        starts[i] = len(context) + len(prefix)
        context += template.format(n=name, v=value) + " "
    context = context.strip()
    person, rel, value, sent = rng.choice(facts)
    asked = person if rng.random() < 0.5 else person.split()[0]
    question = rng.choice(FACTS[rel][1]).format(n=asked)
    texts, answer_starts = [value], [starts[sent]]
    if rel == "instrument":  # a second annotator's answer, as SQuAD has several
        texts.append(f"the {value}")
        answer_starts.append(starts[sent] - len("the "))
    assert all(context[s : s + len(t)] == t for s, t in zip(answer_starts, texts))
    return {
        "id": f"{split}-{idx}",
        "question": question,
        "context": context,
        "answers": {"text": texts, "answer_start": answer_starts},
    }


def synthesize(seed, n_train, n_eval):
    rng = random.Random(seed)
    return {
        "train": [_example(rng, i, "train") for i in range(n_train)],
        "validation": [_example(rng, i, "validation") for i in range(n_eval)],
    }


TASK = register(
    Task(
        name="squad",
        kind="span_qa",
        description="SQuAD v1.1 extractive question answering",
        eval_splits={"validation": ""},
        main_metric="f1",
        hub=HubSource("rajpurkar/squad", None, {"train": "train", "validation": "validation"}, from_hub),
        local_files={"train": "train-v1.1.json", "validation": "dev-v1.1.json"},
        read_local=read_json,
        synthesize=synthesize,
        max_length=384,
        extra={"doc_stride": 128, "max_answer_length": 30},
        group_key="title",
    )
)
