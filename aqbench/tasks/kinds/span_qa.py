"""Extractive span QA (SQuAD v1.1): question + context windows with a doc stride, start/end logits, best valid
span over the n-best starts and ends of every window, mapped back to the context text; EM and F1.

A window is [CLS] question [SEP] context [SEP]. Questions longer than max_query_length(max_length) tokens are
truncated (as BERT's run_squad.py does at 64), so every window holds at least context_length(max_length)
context tokens whatever the question: the config requires doc_stride (the tokens two windows share) below that,
which the tokenizer needs and could otherwise fail on one long question."""

import collections

import numpy as np

from aqbench.tasks.kinds.features import Features
from aqbench.tasks.metrics import squad_exact, squad_f1, squad_scores

HEAD = "AutoModelForQuestionAnswering"
METRICS = ("exact_match", "f1")
MAX_QUERY_LENGTH = 64  # BERT's run_squad.py max_query_length


def max_query_length(max_length):
    """Tokens a question keeps at most: BERT's 64, and no more than half of a window's non-special tokens, so
    the context always has the other half."""
    return max(1, min(MAX_QUERY_LENGTH, (max_length - 3) // 2))


def context_length(max_length):
    """The context tokens a window holds at the least (with the longest question allowed)."""
    return max_length - 3 - max_query_length(max_length)


def min_length(task):
    """The shortest max_length that keeps a token of the question and of the context: [CLS] q [SEP] c [SEP]
    (the config also requires doc_stride < context_length(max_length))."""
    return 5


def truncate_question(question, tokenizer, limit):
    """The question cut to at most `limit` tokens, at the start of the word the limit falls in (a prefix of whole
    words tokenizes as it did in the whole question); inside a single word longer than the limit."""
    while True:
        enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) <= limit:
            return question
        words, cut = enc.word_ids(), limit
        while cut > 0 and words[cut] is not None and words[cut] == words[cut - 1]:
            cut -= 1
        question = question[: enc["offset_mapping"][cut or limit][0]].rstrip()


def featurize(task, examples, tokenizer, max_length, with_labels=True, doc_stride=128, **_):
    questions = [ex["question"].lstrip() for ex in examples]
    limit = max_query_length(max_length)
    counts = tokenizer(questions, add_special_tokens=False)["input_ids"]
    questions = [truncate_question(q, tokenizer, limit) if len(ids) > limit else q for q, ids in zip(questions, counts)]
    enc = tokenizer(
        questions,
        [ex["context"] for ex in examples],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    inputs, example_index, extra = [], [], []
    for i, ex_i in enumerate(enc["overflow_to_sample_mapping"]):
        seq_ids = enc.sequence_ids(i)
        offsets = [o if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq_ids)]
        row = {k: enc[k][i] for k in keys}
        if with_labels:
            row["start_positions"], row["end_positions"] = _answer_tokens(examples[ex_i], offsets)
        inputs.append(row)
        example_index.append(ex_i)
        extra.append({"offsets": offsets})
    return Features(inputs, example_index, extra)


def _answer_tokens(example, offsets):
    """Token start/end of the first gold answer, or (0, 0) = [CLS] when the window does not contain it."""
    start_char = example["answers"]["answer_start"][0]
    end_char = start_char + len(example["answers"]["text"][0])
    ctx = [j for j, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > start_char or offsets[ctx[-1]][1] < end_char:
        return 0, 0
    start = next(j for j in ctx if offsets[j][1] > start_char)
    end = next(j for j in reversed(ctx) if offsets[j][0] < end_char)
    return start, end


def decode(task, features, outputs, examples, n_best=20, max_answer_length=30, **_):
    """Best span (max start + end logit) with start <= end, both inside the context, at most max_answer_length
    tokens long, over all windows of an example; '' when no window has a valid span."""
    return [span[-1] for span in best_spans(features, outputs, examples, n_best, max_answer_length)]


def best_spans(features, outputs, examples, n_best=20, max_answer_length=30):
    """Per example, decode's choice as (score, feature, start token, end token, text); (-inf, None, None, None,
    '') when no window has a valid span. Per window, the n_best starts and ends by logit (descending) form an
    n_best x n_best table of start + end logits, invalid pairs at -inf; its first maximum in row-major order is
    the pair a loop over starts, then ends, keeping only strictly better scores, would keep; across windows the
    first window with the best score wins the same way."""
    by_example = collections.defaultdict(list)
    for f, ex_i in enumerate(features.example_index):
        by_example[ex_i].append(f)
    spans = []
    for ex_i, ex in enumerate(examples):
        best = (-np.inf, None, None, None, "")
        for f in by_example[ex_i]:
            start_logits, end_logits = outputs[f]["start_logits"], outputs[f]["end_logits"]
            offsets = features.extra[f]["offsets"]
            in_context = np.array([o is not None for o in offsets] + [False])  # positions past the offsets: invalid
            starts = np.argsort(start_logits)[::-1][:n_best]
            ends = np.argsort(end_logits)[::-1][:n_best]
            s_ok = in_context[np.minimum(starts, len(offsets))]
            e_ok = in_context[np.minimum(ends, len(offsets))]
            length = ends[None, :] - starts[:, None] + 1
            valid = s_ok[:, None] & e_ok[None, :] & (length >= 1) & (length <= max_answer_length)
            table = start_logits[starts][:, None] + end_logits[ends][None, :]
            table = np.where(valid & ~np.isnan(table), table, -np.inf)
            i, j = divmod(int(np.argmax(table)), table.shape[1])
            if table[i, j] > best[0]:
                s, e = int(starts[i]), int(ends[j])
                best = (table[i, j], f, s, e, ex["context"][offsets[s][0] : offsets[e][1]])
        spans.append(best)
    return spans


def score(task, predictions, examples):
    return {k: 100.0 * v for k, v in squad_scores(predictions, [ex["answers"]["text"] for ex in examples]).items()}


def outcomes(task, predictions, examples):
    """Per question (not per window), its EM and F1: the best over its gold answers, as the official script."""
    em = [max(squad_exact(p, g) for g in ex["answers"]["text"]) for p, ex in zip(predictions, examples, strict=True)]
    f1 = [max(squad_f1(p, g) for g in ex["answers"]["text"]) for p, ex in zip(predictions, examples, strict=True)]
    return {"exact_match": np.array(em), "f1": np.array(f1)}


def from_outcomes(outcomes):
    """score() recomputed from outcomes; keeps a leading resample axis."""
    return {k: 100.0 * outcomes[k].mean(-1) for k in ("exact_match", "f1")}
