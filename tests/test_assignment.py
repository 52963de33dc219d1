"""The bit-assignment contract: JSON round trip and validation."""

import json

import pytest

from aqbench.errors import AqbenchError
from aqbench.quant import Assignment, uniform


def test_round_trip_through_json(tmp_path, tiny_bert):
    a = uniform(tiny_bert, 3, 4, "sym", 8, 8, meta={"method": "lq"})
    a.layers[next(iter(a.layers))].bits[1] = 0
    a.save(tmp_path / "a.json")
    b = Assignment.load(tmp_path / "a.json")
    assert b.to_json() == a.to_json()
    assert json.loads((tmp_path / "a.json").read_text())["format"] == "aqbench-assignment/1"


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda d: d["layers"][next(iter(d["layers"]))]["bits"].__setitem__(0, 1), "bit-widths"),
        (lambda d: d.__setitem__("grid", "nf4"), "unknown grid"),
        (lambda d: d.__setitem__("format", "other"), "format"),
    ],
)
def test_invalid_assignments_are_refused(tiny_bert, edit, match):
    d = uniform(tiny_bert, 4, 4).to_json()
    edit(d)
    with pytest.raises(AqbenchError, match=match):
        Assignment.from_json(d)
