"""Custom datasets: answers are read without guessing, and every bad record is one line naming it.

Real files on disk, read by the real loader and mapped by the real MCQ / generative tasks; the CLI
cases run `bench validate` and `bench run` in a subprocess and check exit 2 with one stderr line.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.config import parse_suite
from bench.data.custom import answer_index, parse_choices
from bench.errors import DataError
from bench.tasks import Task, create_task

# (answer, choices, labels, fields.answer_type) -> gold index, or the error it must raise
ANSWERS: list[tuple[Any, list[str], list[str] | None, str, int | str]] = [
    # the cases: a text that is also a valid index / letter of another choice
    (
        "2",
        ["1", "2", "3"],
        None,
        "auto",
        r"answer '2' is ambiguous: the text of choice 1 \('2'\) but also index",
    ),
    (2, ["1", "2", "3"], None, "auto", r"answer 2 is ambiguous: the text of choice 1"),
    ("A", ["B", "A"], None, "auto", r"answer 'A' is ambiguous: .* also letter 'A' = choice 0 \('B'\)"),
    # ... decided by fields.answer_type
    ("2", ["1", "2", "3"], None, "text", 1),
    ("2", ["1", "2", "3"], None, "index", 2),
    ("A", ["B", "A"], None, "letter", 0),
    ("A", ["B", "A"], None, "text", 1),
    # ... or by labels that come with the choices (ARC-style {"text": [...], "label": [...]})
    ("2", ["x", "y", "z"], ["1", "2", "3"], "auto", 1),
    ("B", ["x", "y"], ["A", "B"], "auto", 1),
    ("C", ["x", "y"], ["A", "B"], "auto", r"answer 'C' is not one of the choice labels \['A', 'B'\]"),
    # texts first: an index out of range, or one agreeing with the text, is no ambiguity
    ("10", ["5", "10"], None, "auto", 1),
    ("1", ["0", "1"], None, "auto", 1),
    ("A", ["A", "B", "C"], None, "auto", 0),
    (" green ", ["red", "green"], None, "auto", 1),
    # plain indices and letters
    (1, ["red", "green"], None, "auto", 1),
    (2.0, ["a", "b", "c"], None, "auto", 2),
    ("1", ["red", "green"], None, "auto", 1),
    ("b", ["red", "green"], None, "auto", 1),
    (True, ["no", "yes"], None, "auto", 1),
    # errors
    ("x", ["x", "y", "x"], None, "auto", r"answer 'x' is the text of choices 0 and 2"),
    ("Z", ["a", "b"], None, "auto", r"answer 'Z' is not a label of the 2 choices \(A-B\)"),
    (5, ["a", "b"], None, "auto", r"answer index 5 out of range for 2 choices"),
    ("-1", ["a", "b"], None, "auto", r"answer index -1 out of range for 2 choices"),
    (
        "maybe",
        ["yes", "no"],
        None,
        "auto",
        r"answer 'maybe' is neither one of the choices, an index \(0-1\) nor a letter \(A-B\)",
    ),
    (
        "maybe",
        ["yes", "no"],
        None,
        "text",
        r"answer 'maybe' is none of the choice texts, as fields.answer_type says",
    ),
    ("B", ["yes", "no"], None, "index", r"answer 'B' is not an index \(0-1\), as fields.answer_type says"),
    (1, ["yes", "no"], None, "letter", r"answer 1 is not a letter \(A-B\), as fields.answer_type says"),
    (None, ["yes", "no"], None, "auto", r"answer is null"),
]


@pytest.mark.parametrize(("value", "options", "labels", "kind", "expected"), ANSWERS)
def test_answer_is_read_without_guessing(
    value: Any, options: list[str], labels: list[str] | None, kind: str, expected: int | str
) -> None:
    if isinstance(expected, int):
        assert answer_index(value, options, "f.jsonl:3: record 2", labels=labels, kind=kind) == expected
    else:
        with pytest.raises(DataError, match="^f.jsonl:3: record 2: " + expected):
            answer_index(value, options, "f.jsonl:3: record 2", labels=labels, kind=kind)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["a", 3, 1.5], (["a", "3", "1.5"], None)),
        ('["a", "b"]', (["a", "b"], None)),
        ("['a', 'b']", (["a", "b"], None)),
        ({"text": ["x", "y"], "label": ["A", " B"]}, (["x", "y"], ["A", "B"])),
        ("{'text': ['x', 'y'], 'label': ['1', '2']}", (["x", "y"], ["1", "2"])),
        ("a|b", r"must be a list of choices, got 'a\|b'"),
        ([], r"must be a non-empty list of choices, got a list"),
        (["a", None], r"choice 1 is null; choices are texts or numbers"),
        (["a", ["b"]], r"choice 1 is a list; choices are texts or numbers"),
        (["a", True], r"choice 1 is a boolean"),
        ({"text": ["x"]}, r"a mapping of choices needs 'text' and 'label' lists"),
        ({"text": ["x", "y"], "label": ["A", "A"]}, r"needs one distinct label per choice"),
    ],
)
def test_choices_are_texts_or_labelled_texts(value: Any, expected: Any) -> None:
    if isinstance(expected, tuple):
        assert parse_choices(value, "w") == expected
    else:
        with pytest.raises(DataError, match="^w: " + expected):
            parse_choices(value, "w")


# ---------------------------------------------------------------- whole files through the MCQ task


def _jsonl(*rows: Any) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


OK = {"id": "q1", "question": "2+2?", "choices": ["3", "4"], "answer": 1}
Q2 = {"id": "q2", "question": "1+1?", "choices": ["2", "5"], "answer": "5"}

# file name, bytes, fields -> the error (after "<path>"), one line
BAD_FILES: list[tuple[str, bytes, dict[str, str], str]] = [
    (
        "missing.jsonl",
        _jsonl(OK, "", {"id": "q2", "question": "x?", "choices": ["a", "b"]}),
        {},
        r":3: record 1: field 'answer' is missing \(has: choices, id, question\)",
    ),
    ("null.jsonl", _jsonl({**OK, "choices": None}), {}, r":1: record 0: field 'choices' is null"),
    (
        "qtype.jsonl",
        _jsonl(OK, {**Q2, "question": ["x"]}),
        {"id": "id"},
        r":2: record 1 \(id q2\): field 'question' must be text, got a list",
    ),
    (
        "ctype.jsonl",
        _jsonl({**OK, "choices": {"a": 1}}),
        {},
        r":1: record 0 \(id 0\): field 'choices': a mapping of choices needs 'text' and 'label'",
    ),
    (
        "idtype.jsonl",
        _jsonl({**OK, "id": {"n": 1}}),
        {"id": "id"},
        r":1: record 0: field 'id' \(the id\) must be a text or an integer, got a mapping",
    ),
    (
        "dup.jsonl",
        _jsonl(OK, Q2, {**Q2, "id": "q1"}),
        {"id": "id"},
        r":3: record 2 \(id q1\): id already used by record 0 \(.*dup.jsonl:1\)",
    ),
    (
        "ambiguous.jsonl",
        _jsonl(OK, {"question": "pick", "choices": ["1", "2", "3"], "answer": "2"}),
        {},
        r":2: record 1 \(id 1\): answer '2' is ambiguous: the text of choice 1 \('2'\) but also index '2'",
    ),
    (
        "latin1.jsonl",
        _jsonl(OK) + '{"question": "caf\xe9?", "choices": ["a", "b"], "answer": 0}\n'.encode("latin-1"),
        {},
        r":2: not UTF-8 text \(byte 0xe9 at byte column 18\); save the file as UTF-8",
    ),
    (
        "latin1.csv",
        b'question,choices,answer\nx,"[""a"",\n""b""]",0\ncaf\xe9,"[""a"", ""b""]",1\n',
        {},
        r":4: not UTF-8 text \(byte 0xe9",
    ),
    (
        "multiline.csv",
        b'question,choices,answer\nx,"[""a"",\n""b""]",0\ny,"[""a"", ""b""]",7\n',
        {},
        r":4: record 1 \(id 1\): answer index 7 out of range for 2 choices",
    ),
    (
        "truncated.jsonl.gz",
        gzip.compress(_jsonl(*[{**OK, "id": f"q{i}"} for i in range(3000)]))[:-400],
        {},
        r": corrupt gzip data \(after line \d+\): the file ends mid-stream \(truncated\)$",
    ),
    ("plain.jsonl.gz", _jsonl(OK), {}, r": corrupt gzip data: not gzip data$"),
    (
        "crc.jsonl.gz",
        (lambda b: b[:-8] + bytes([b[-8] ^ 1]) + b[-7:])(gzip.compress(_jsonl(OK))),
        {},
        r": corrupt gzip data: damaged data \(.*incorrect data check\)$",
    ),
    (
        "junk.jsonl.gz",
        gzip.compress(_jsonl(OK)) + b"junk",
        {},
        r": corrupt gzip data \(after line 1\): junk after the gzip data$",
    ),
    (
        "list.json",
        json.dumps([OK, {**OK, "answer": "7"}]).encode(),
        {},
        r": record 1 \(id 1\): answer index 7 out of range for 2 choices",
    ),
]


def _task(path: Path, fields: dict[str, str] | None = None, kind: str = "mcq") -> Task:
    """The suite's own task for a local file, built the way a run builds it."""
    spec: dict[str, Any] = {"name": "t", "kind": kind, "dataset": {"path": str(path)}}
    if fields:
        spec["fields"] = fields
    suite = parse_suite({"name": "s", "models": [{"name": "f", "backend": "fake"}], "tasks": [spec]})
    return create_task(suite.tasks[0], suite.effective_task(suite.tasks[0]))


def _mcq(path: Path, fields: dict[str, str] | None = None) -> Task:
    return _task(path, fields)


@pytest.mark.parametrize(("name", "content", "fields", "error"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_record_is_one_line_naming_file_and_record(
    tmp_path: Path, name: str, content: bytes, fields: dict[str, str], error: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        _mcq(path, fields).items()
    msg = str(e.value)
    assert "\n" not in msg
    assert re.match(re.escape(str(path)) + error, msg), msg


def test_good_files_map_as_before(tmp_path: Path) -> None:
    """Numeric, letter and text answers, a BOM, a blank line and labelled choices: gold as meant."""
    rows = [
        OK,
        Q2,
        {"id": "q3", "question": "Which?", "choices": ["x", "y", "z"], "answer": "C"},
        {
            "id": "q4",
            "question": "Labels?",
            "choices": {"text": ["1", "2", "3"], "label": ["1", "2", "3"]},
            "answer": "2",
        },
        {"id": "q5", "question": "Count", "choices": ["one", "two"], "answer": "1"},
    ]
    path = tmp_path / "good.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _jsonl(*rows[:2], "", *rows[2:]))
    items = _mcq(path, {"id": "id"}).items()
    assert [(it.id, it.record["answer"]) for it in items] == [
        ("q1", 1),
        ("q2", 1),
        ("q3", 2),
        ("q4", 1),
        ("q5", 1),
    ]
    assert items[3].record["choices"] == ["1", "2", "3"]
    # the record, decided by fields.answer_type
    amb = tmp_path / "amb.jsonl"
    amb.write_bytes(_jsonl({"question": "pick", "choices": ["1", "2", "3"], "answer": "2"}))
    assert _mcq(amb, {"answer_type": "text"}).items()[0].record["answer"] == 1
    assert _mcq(amb, {"answer_type": "index"}).items()[0].record["answer"] == 2
    gz = tmp_path / "good.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert [it.record["answer"] for it in _mcq(gz, {"id": "id"}).items()] == [1, 1, 2, 1, 1]


def test_generative_custom_records_name_line_and_duplicate_ids(tmp_path: Path) -> None:
    def task(path: Path) -> Task:
        return _task(path, {"id": "key", "input": "q", "target": "a"}, kind="math")

    p = tmp_path / "g.jsonl"
    p.write_bytes(_jsonl({"key": "a", "q": "1+1", "a": "2"}, "", {"key": "b", "q": "2+2"}))
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(p))}:3: record 1: field 'a' is missing \(has: key, q\)$"
    ):
        task(p).items()
    p.write_bytes(_jsonl({"key": "a", "q": "1+1", "a": "2"}, {"key": "a", "q": "2+2", "a": "4"}))
    with pytest.raises(
        DataError, match=r"g.jsonl:2: record 1 \(id a\): id already used by record 0 \(.*g.jsonl:1\)$"
    ):
        task(p).items()


# ---------------------------------------------------------------- the CLI: exit 2, one line, before any model


@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_bad_local_record_exits_2_before_any_model(tmp_path: Path, command: str) -> None:
    data = tmp_path / "d.jsonl"
    data.write_bytes(_jsonl(OK, {"question": "pick", "choices": ["1", "2", "3"], "answer": "2"}))
    suite = tmp_path / "s.yaml"
    # a model whose file does not exist: were it loaded, the error would be about the model
    models = [{"name": "m", "backend": "llamacpp", "path": str(tmp_path / "absent.gguf")}]
    tasks = [{"name": "t", "kind": "mcq", "dataset": {"path": str(data)}}]
    suite.write_text(yaml.safe_dump({"name": "s", "models": models, "tasks": tasks}))
    args = [command, str(suite)] + (["-o", str(tmp_path / "out")] if command == "run" else [])
    r = subprocess.run(
        [sys.executable, "-c", "from bench.cli import main; import sys; main(sys.argv[1:])", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{data}:2: record 1 (id 1): answer '2' is ambiguous" in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))


def test_cli_missing_local_file_is_a_note_at_validate_and_exit_2_at_run(tmp_path: Path) -> None:
    """validate may run where the data is not (CI); run may not."""
    absent = tmp_path / "absent.jsonl"
    suite = tmp_path / "s.yaml"
    tasks = [{"name": "t", "kind": "mcq", "dataset": {"path": str(absent)}}]
    suite.write_text(
        yaml.safe_dump({"name": "s", "models": [{"name": "f", "backend": "fake"}], "tasks": tasks})
    )
    code = "from bench.cli import main; import sys; main(sys.argv[1:])"
    r = subprocess.run([sys.executable, "-c", code, "validate", str(suite)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"note: {suite}: {absent} is not here" in r.stdout
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-c", code, "run", str(suite), "-o", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip() == f"error: {absent}: no such dataset file"
