"""Reading a task's local data files, and the one error for a bad record in them.

Every loader stops at the first bad record with `<path>:<line>: <what is wrong>; <fix>`, raised as AqbenchError so
the CLI prints that one line. JSON has no line per record, so there a record's name (`data[3].paragraphs[0]`)
stands in for the line.
"""

import codecs
import json
import re

from aqbench.errors import AqbenchError

# Bytes that are not UTF-8 are read as lone surrogates (errors="surrogateescape"), so the line holding them is named
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
UTF8_FIX = "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE)"


def bad_record(path, where, problem, fix):
    """The error for a bad record: `where` is a line number, a record's name, or None for the file as a whole."""
    place = f"{path}:{where}" if where is not None else str(path)
    return AqbenchError(f"{place}: {problem}; {fix}")


def numbered_lines(path):
    """(line number, line without its line end) for each line of a UTF-8 text file, one line at a time.

    Lines end at \\n, \\r\\n or \\r, as for csv and open(); a leading byte-order mark is dropped."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        for number, line in enumerate(f, 1):
            if _NOT_UTF8.search(line):
                raise bad_record(path, number, "this line is not UTF-8 text", UTF8_FIX)
            yield number, line.rstrip("\r\n")


def tsv_rows(path, columns, layout):
    """(line number, {column: field}) for each row of a tab-separated file whose header line names `columns`.

    Fields are never quoted (GLUE's files hold bare quote characters), so each line is one row; blank lines are
    skipped. Every row must have as many fields as the header: a missing or extra tab shifts the columns.
    layout: what a good row looks like, for the messages (e.g. "`sentence<TAB>label` with label 0 or 1")."""
    fix = f"expected {layout}; fix the line or remove it"
    lines = numbered_lines(path)
    first = next(lines, None)
    if first is None:
        raise bad_record(
            path,
            1,
            "the file is empty",
            f"expected a header line naming the columns {', '.join(columns)}, then rows of {layout}",
        )
    number, header_line = first
    header = header_line.split("\t")
    missing = [c for c in columns if c not in header]
    if missing:
        raise bad_record(
            path,
            number,
            f"the header has no {' or '.join(missing)} column (it has {header_line!r})",
            f"the first line must be a header naming the tab-separated columns {', '.join(columns)}",
        )
    rows = 0
    for number, line in lines:
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) == 1 and len(header) > 1:
            raise bad_record(path, number, f"no tab on this line (the header has {len(header)} columns)", fix)
        if len(fields) != len(header):
            raise bad_record(
                path, number, f"{len(fields)} tab-separated fields where the header has {len(header)}", fix
            )
        rows += 1
        yield number, dict(zip(header, fields))
    if not rows:
        raise bad_record(path, number, "the file has a header but no rows", f"add rows of {layout}")


def load_json(path):
    """The value of a JSON file; text that is not UTF-8 or not JSON is an error at its line."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    if not raw.strip():
        raise bad_record(path, 1, "the file is empty", "expected a JSON document")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad_record(path, raw.count(b"\n", 0, e.start) + 1, "this line is not UTF-8 text", UTF8_FIX) from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise bad_record(
            path,
            e.lineno,
            f"not valid JSON ({e.msg}: column {e.colno})",
            "the file is truncated or damaged: download it again or fix it",
        ) from e
