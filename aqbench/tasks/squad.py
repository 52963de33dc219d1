"""SQuAD v1.1: extractive question answering. Exact match and F1 (max over gold answers) on the dev set."""

import json
import random

from aqbench.tasks import synthetic as syn
from aqbench.tasks.base import HubSource, Task, register


def read_json(path):
    """The official SQuAD v1.1 JSON (data -> paragraphs -> qas)."""
    with open(path) as f:
        data = json.load(f)["data"]
    examples = []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                examples.append({
                    "id": qa["id"],
                    "question": qa["question"],
                    "context": para["context"],
                    "answers": {"text": [a["text"] for a in qa["answers"]],
                                "answer_start": [a["answer_start"] for a in qa["answers"]]},
                })
    return examples


def from_hub(split):
    return [{"id": r["id"], "question": r["question"], "context": r["context"],
             "answers": {"text": list(r["answers"]["text"]), "answer_start": list(r["answers"]["answer_start"])}}
            for r in split]


# --- synthetic: short biographies of several people; a question about one of them ----------------------------

FACTS = {  # relation -> (sentences that state it, questions that ask it)
    "city": (["{n} was born in {v} .", "{n} grew up in {v} ."],
             ["where was {n} born ?", "in which city did {n} grow up ?", "what is the home town of {n} ?"]),
    "year": (["{n} was born in the year {v} .", "in {v} , {n} was born ."],
             ["when was {n} born ?", "in what year was {n} born ?"]),
    "job": (["{n} works as a {v} .", "{n} is a {v} by training ."],
            ["what is the job of {n} ?", "what does {n} do for a living ?"]),
    "org": (["{n} works for {v} .", "{n} joined {v} last year ."],
            ["which company does {n} work for ?", "who employs {n} ?"]),
    "instrument": (["{n} plays the {v} .", "in the evenings {n} practices the {v} ."],
                   ["what instrument does {n} play ?", "which instrument does {n} practice ?"]),
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
    assert all(context[s:s + len(t)] == t for s, t in zip(answer_starts, texts))
    return {"id": f"{split}-{idx}", "question": question, "context": context,
            "answers": {"text": texts, "answer_start": answer_starts}}


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
    )
)
