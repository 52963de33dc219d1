"""A malformed local data file stops at its first bad record with one line, `<path>:<line>: <problem>; <fix>`
(a JSON record's name in place of the line), raised as AqbenchError; good files still load to the same records."""

import json
import subprocess
import sys

import pytest
from conftest import SHARED_DATA

from aqbench.errors import AqbenchError
from aqbench.tasks import get_task

SST2_FIX = "expected `sentence<TAB>label` with label 0 or 1; fix the line or remove it"
MNLI_HEADER = "index\tgenre\tsentence1\tsentence2\tgold_label"
SQUAD_FIX = "; expected SQuAD v1.1 JSON: "


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(task, path):
    """The one-line message that loading `path` with the task's local reader fails with."""
    with pytest.raises(AqbenchError) as info:
        get_task(task).read_local(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def squad_file(tmp_path, qa=None, paragraph=None, document=None):
    """A SQuAD v1.1 file of two questions whose second one (or the paragraph, or the whole document) is replaced."""
    good = {"id": "q1", "question": "who?", "answers": [{"text": "Ann", "answer_start": 0}]}
    rome = {"id": "q2", "question": "where?", "answers": [{"text": "Rome", "answer_start": 11}]}
    second = qa if qa is not None else rome
    para = paragraph if paragraph is not None else {"context": "Ann was in Rome.", "qas": [good, second]}
    doc = document if document is not None else {"version": "1.1", "data": [{"title": "t", "paragraphs": [para]}]}
    return write(tmp_path, "dev-v1.1.json", json.dumps(doc, indent=1))


# --- SST-2 ----------------------------------------------------------------------------------------------------


def test_sst2_line_without_a_tab(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\tlabel\ngood film .\t1\na line without a tab 1\n")
    assert error("sst2", path) == f"{path}:3: no tab on this line (the header has 2 columns); {SST2_FIX}"


def test_sst2_header_without_a_label_column(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\ngood film .\n")
    assert error("sst2", path) == (
        f"{path}:1: the header has no label column (it has 'sentence'); the first line must "
        "be a header naming the tab-separated columns sentence, label"
    )


def test_sst2_header_without_a_sentence_column(tmp_path):
    path = write(tmp_path, "dev.tsv", "text\tlabel\ngood film .\t1\n")
    assert error("sst2", path).startswith(f"{path}:1: the header has no sentence column (it has 'text\\tlabel'); ")


def test_sst2_label_that_is_a_word(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\tlabel\ngood film .\t1\nbad film .\t0\ngreat film .\tpositive\n")
    assert error("sst2", path) == f"{path}:4: label 'positive' is not 0 or 1; {SST2_FIX}"


def test_sst2_label_out_of_range(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\tlabel\ngood film .\t5\n")
    assert error("sst2", path) == f"{path}:2: label '5' is not 0 or 1; {SST2_FIX}"


def test_sst2_empty_sentence(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\tlabel\ngood film .\t1\n \t0\n")
    assert error("sst2", path) == f"{path}:3: the sentence is empty; {SST2_FIX}"


def test_sst2_empty_file(tmp_path):
    path = write(tmp_path, "dev.tsv", "")
    assert error("sst2", path).startswith(
        f"{path}:1: the file is empty; expected a header line naming the columns sentence, label"
    )


def test_sst2_header_only(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\tlabel\n")
    assert error("sst2", path) == (
        f"{path}:1: the file has a header but no rows; add rows of `sentence<TAB>label` with label 0 or 1"
    )


def test_sst2_not_utf8(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_bytes("sentence\tlabel\ngood film .\t1\nun film ennuyé .\t0\n".encode("latin-1"))
    assert error("sst2", path).startswith(f"{path}:3: this line is not UTF-8 text; save the file as UTF-8")


# --- MNLI -----------------------------------------------------------------------------------------------------


def test_mnli_header_without_gold_label(tmp_path):
    path = write(tmp_path, "dev_matched.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tneutral\n")
    assert error("mnli", path).startswith(f"{path}:1: the header has no gold_label column (it has ")


def test_mnli_header_without_both_sentences(tmp_path):
    path = write(tmp_path, "dev_matched.tsv", "index\tpremise\thypothesis\tgold_label\n0\ta\tb\tneutral\n")
    assert error("mnli", path).startswith(f"{path}:1: the header has no sentence1 or sentence2 column (it has ")


def test_mnli_row_with_too_few_fields(tmp_path):
    path = write(
        tmp_path,
        "dev_matched.tsv",
        f"{MNLI_HEADER}\n0\tfiction\ta man sleeps .\ta man rests .\tentailment\n1\tfiction\ta cat sits .\tneutral\n",
    )
    assert error("mnli", path) == (
        f"{path}:3: 4 tab-separated fields where the header has 5; expected GLUE's MNLI "
        "columns (sentence1, sentence2 and gold_label among them), tab-separated; fix the "
        "line or remove it"
    )


def test_mnli_unknown_label(tmp_path):
    path = write(tmp_path, "dev_matched.tsv", f"{MNLI_HEADER}\n0\tfiction\ta man sleeps .\ta man rests .\tentails\n")
    assert error("mnli", path) == (
        f"{path}:2: gold_label 'entails' is not one of entailment, neutral, contradiction "
        "(or '-', which is skipped); fix the line or remove it"
    )


def test_mnli_header_only(tmp_path):
    path = write(tmp_path, "dev_matched.tsv", f"{MNLI_HEADER}\n")
    assert error("mnli", path).startswith(f"{path}:1: the file has a header but no rows; ")


def test_mnli_no_labelled_row(tmp_path):
    path = write(tmp_path, "dev_matched.tsv", f"{MNLI_HEADER}\n0\tfiction\ta man sleeps .\ta man rests .\t-\n")
    assert error("mnli", path).startswith(f"{path}:2: no row has a gold_label (every one is '-'); ")


# --- CoNLL-2003 -----------------------------------------------------------------------------------------------


def test_conll_line_with_one_column(tmp_path):
    path = write(tmp_path, "valid.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects\n")
    assert error("conll03", path) == (
        f"{path}:4: only one column ('rejects'); expected `token POS chunk NER` lines "
        "(columns separated by spaces, the NER tag last), a blank line between "
        "sentences; fix the line or remove it"
    )


def test_conll_tag_outside_the_bio_tags(tmp_path):
    path = write(tmp_path, "valid.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n\nPeter NNP B-NP B-PERSON\n")
    assert error("conll03", path) == (
        f"{path}:5: NER tag 'B-PERSON' is not one of O, B-PER, I-PER, B-ORG, I-ORG, "
        "B-LOC, I-LOC, B-MISC, I-MISC; the last column must be a CoNLL-2003 BIO (IOB2) "
        "tag; fix the line or convert the file"
    )


def test_conll_no_sentences(tmp_path):
    path = write(tmp_path, "valid.txt", "-DOCSTART- -X- -X- O\n\n")
    assert error("conll03", path).startswith(
        f"{path}:1: no sentences (the file is empty or holds only blank and "
        "-DOCSTART- lines); expected `token POS chunk NER` lines"
    )
    assert error("conll03", write(tmp_path, "empty.txt", "")).startswith(f"{tmp_path / 'empty.txt'}:1: no sentences")


def test_conll_not_utf8(tmp_path):
    path = tmp_path / "valid.txt"
    path.write_bytes("-DOCSTART- -X- -X- O\n\nMünchen NNP B-NP B-LOC\n".encode("latin-1"))
    assert error("conll03", path).startswith(f"{path}:3: this line is not UTF-8 text; save the file as UTF-8")


# --- SQuAD v1.1 -----------------------------------------------------------------------------------------------


def test_squad_truncated_json(tmp_path):
    good = squad_file(tmp_path).read_text()
    path = write(tmp_path, "cut.json", good[: len(good) // 2])
    line = good[: len(good) // 2].count("\n") + 1  # json reports the end of the text
    message = error("squad", path)
    assert message.startswith(f"{path}:{line}: not valid JSON (")
    assert message.endswith("; the file is truncated or damaged: download it again or fix it")


def test_squad_invalid_json(tmp_path):
    path = write(tmp_path, "bad.json", '{"data": [\n  {"paragraphs": []},\n  {"paragraphs": [}\n]}\n')
    assert error("squad", path) == (
        f"{path}:3: not valid JSON (Expecting value: column 19); the file is truncated or "
        "damaged: download it again or fix it"
    )


def test_squad_empty_file(tmp_path):
    path = write(tmp_path, "dev-v1.1.json", "\n")
    assert error("squad", path) == f"{path}:1: the file is empty; expected a JSON document"


def test_squad_no_top_level_data(tmp_path):
    path = squad_file(tmp_path, document={"version": "1.1", "articles": []})
    assert error("squad", path).startswith(f'{path}: no top-level "data" list{SQUAD_FIX}')


def test_squad_question_without_answers(tmp_path):
    path = squad_file(tmp_path, qa={"id": "q2", "question": "where?"})
    assert error("squad", path).startswith(f'{path}:data[0].paragraphs[0].qas[1] (id q2): no "answers"{SQUAD_FIX}')


def test_squad_empty_answers(tmp_path):
    path = squad_file(tmp_path, qa={"id": "q2", "question": "where?", "answers": []})
    assert error("squad", path) == (
        f'{path}:data[0].paragraphs[0].qas[1] (id q2): "answers" is empty; every SQuAD '
        "v1.1 question has at least one answer; add one or remove the question"
    )


@pytest.mark.parametrize("key", ["id", "question"])
def test_squad_question_without_id_or_question(tmp_path, key):
    qa = {"id": "q2", "question": "where?", "answers": [{"text": "Rome", "answer_start": 11}]}
    del qa[key]
    where = "data[0].paragraphs[0].qas[1]" + (" (id q2)" if key != "id" else "")
    assert error("squad", squad_file(tmp_path, qa=qa)).startswith(
        f'{tmp_path / "dev-v1.1.json"}:{where}: no "{key}"{SQUAD_FIX}'
    )


def test_squad_paragraph_without_context(tmp_path):
    path = squad_file(tmp_path, paragraph={"qas": []})
    assert error("squad", path).startswith(f'{path}:data[0].paragraphs[0]: no "context"{SQUAD_FIX}')


def test_squad_answer_of_the_wrong_type(tmp_path):
    path = squad_file(
        tmp_path, qa={"id": "q2", "question": "where?", "answers": [{"text": "Rome", "answer_start": "11"}]}
    )
    assert error("squad", path).startswith(
        f'{path}:data[0].paragraphs[0].qas[1].answers[0] (id q2): "answer_start" '
        f"is a string where an integer is expected{SQUAD_FIX}"
    )


def test_squad_answer_not_in_the_context(tmp_path):
    path = squad_file(tmp_path, qa={"id": "q2", "question": "where?", "answers": [{"text": "Rome", "answer_start": 3}]})
    assert error("squad", path) == (
        f"{path}:data[0].paragraphs[0].qas[1].answers[0] (id q2): the context at "
        "answer_start 3 does not read 'Rome'; answer_start must be the character offset of "
        "the answer's text in the paragraph's context; fix it or remove the answer"
    )


def test_squad_no_questions(tmp_path):
    path = squad_file(tmp_path, document={"data": []})
    assert error("squad", path).startswith(f'{path}: no questions in "data"{SQUAD_FIX}')


# --- good files load as before, and the CLI prints one line ---------------------------------------------------


def test_good_small_files_load_to_their_records(tmp_path):
    sst2 = write(tmp_path, "sst2.tsv", 'sentence\tlabel\nit \'s a "charming" journey . \t1\n\nthe plot is dull . \t0\n')
    assert get_task("sst2").read_local(sst2) == [
        {"sentence": 'it \'s a "charming" journey .', "label": 1},
        {"sentence": "the plot is dull .", "label": 0},
    ]

    mnli = write(
        tmp_path,
        "mnli.tsv",
        f"{MNLI_HEADER}\n0\tfiction\ta man sleeps .\ta man rests .\tentailment\n"
        "1\tnews\ta cat sits .\ta dog sits .\t-\n2\ttravel\tit rains .\tit is dry .\tcontradiction\n",
    )
    assert get_task("mnli").read_local(mnli) == [
        {"premise": "a man sleeps .", "hypothesis": "a man rests .", "label": 0},
        {"premise": "it rains .", "hypothesis": "it is dry .", "label": 2},
    ]

    conll = tmp_path / "conll.txt"  # CRLF line ends, as an editor on Windows may save it
    conll.write_bytes(
        b"-DOCSTART- -X- -X- O\r\n\r\nEU NNP B-NP B-ORG\r\nrejects VBZ B-VP O\r\n\r\n"
        b"-DOCSTART- -X- -X- O\r\n\r\nPeter NNP B-NP B-PER\r\nBlackburn NNP I-NP I-PER\r\n"
    )
    assert get_task("conll03").read_local(conll) == [
        {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]},
        {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "I-PER"]},
    ]

    squad = squad_file(tmp_path)
    assert get_task("squad").read_local(squad) == [
        {
            "id": "q1",
            "title": "t",
            "question": "who?",
            "context": "Ann was in Rome.",
            "answers": {"text": ["Ann"], "answer_start": [0]},
        },
        {
            "id": "q2",
            "title": "t",
            "question": "where?",
            "context": "Ann was in Rome.",
            "answers": {"text": ["Rome"], "answer_start": [11]},
        },
    ]


def test_a_byte_order_mark_is_dropped(tmp_path):
    # editors on Windows may start a UTF-8 file with one; it is not part of the header or of the first token
    sst2, conll = tmp_path / "sst2.tsv", tmp_path / "conll.txt"
    sst2.write_bytes("\ufeffsentence\tlabel\ngood film .\t1\n".encode("utf-8"))
    conll.write_bytes("\ufeff-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n".encode("utf-8"))
    assert get_task("sst2").read_local(sst2) == [{"sentence": "good film .", "label": 1}]
    assert get_task("conll03").read_local(conll) == [{"tokens": ["EU"], "tags": ["B-ORG"]}]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
def test_the_real_files_still_load():
    assert len(get_task("sst2").read_local(SHARED_DATA / "sst2" / "train.tsv")) == 67349
    assert len(get_task("conll03").read_local(SHARED_DATA / "conll2003" / "test.txt")) == 3453
    assert len(get_task("squad").read_local(SHARED_DATA / "squad" / "dev-v1.1.json")) == 10570


def test_the_cli_prints_a_bad_file_as_one_line(tmp_path):
    write(tmp_path, "train.tsv", "sentence\tlabel\ngood film .\tpositive\n")
    write(tmp_path, "dev.tsv", "sentence\tlabel\ngood film .\t1\n")
    settings = {"source": "local", "seed": 0, "local_dirs": {"sst2": str(tmp_path)}}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "aqbench",
            "prepare",
            "--task",
            "sst2",
            "--settings",
            json.dumps(settings),
            "--out",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(
        f"aqbench prepare: error: {tmp_path}/train.tsv:2: label 'positive' is not 0 or 1; {SST2_FIX}"
    )
