"""Suite validation: every malformed suite gets one line naming file, field and what is allowed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.config import load_suite, parse_suite
from bench.errors import ConfigError

GOOD = """
name: demo
defaults: {limit: 5, seed: 7, num_fewshot: 1}
hardware: {name: laptop, usd_per_hour: 0.5}
models:
  - name: smollm2-135m
  - {name: other, backend: llamacpp, path: /models/x.gguf, n_threads: 2}
  - {name: scripted, backend: fake, accuracy: 0.9}
tasks:
  - {name: arc, kind: mcq, dataset: arc_easy}
  - {name: arc5, kind: mcq, dataset: arc_challenge, num_fewshot: 5, limit: 3}
  - name: mine
    kind: mcq
    dataset: {path: data/my.jsonl}
    fields: {question: q, choices: opts, answer: label}
    prompt: "Q: {{ question }}\\nA:"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "suite.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_good_suite_loads_with_defaults_and_overrides(tmp_path: Path) -> None:
    s = load_suite(write(tmp_path, GOOD))
    assert [m.name for m in s.models] == ["smollm2-135m", "other", "scripted"]
    assert s.models[0].backend == "llamacpp" and s.models[2].backend == "fake"
    assert s.effective_task(s.tasks[0]) == {
        "limit": 5,
        "num_fewshot": 1,
        "seed": 7,
        "batch_size": 8,
        "mode": "throughput",
        "warmup": 1,
    }
    assert s.effective_task(s.tasks[1])["num_fewshot"] == 5
    assert s.effective_task(s.tasks[1])["limit"] == 3
    assert s.hardware.usd_per_hour == 0.5


def test_suite_hash_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    a = load_suite(write(tmp_path, GOOD)).suite_hash()
    reformatted = GOOD.replace(
        "{limit: 5, seed: 7, num_fewshot: 1}", "\n  limit: 5\n  seed: 7\n  num_fewshot: 1"
    )
    assert load_suite(write(tmp_path, reformatted)).suite_hash() == a
    assert load_suite(write(tmp_path, GOOD.replace("seed: 7", "seed: 8"))).suite_hash() != a


BASE = {
    "name": "x",
    "models": [{"name": "smollm2-135m"}],
    "tasks": [{"name": "t", "kind": "mcq", "dataset": "arc_easy"}],
}


def _with(**patch: object) -> dict[str, object]:
    d = {k: v for k, v in BASE.items()}
    d.update(patch)
    return d


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            _with(tasks=[{"name": "t", "kind": "mcq", "dataset": "arc_easy", "num_fewshots": 2}]),
            "tasks[0].num_fewshots: unknown field; did you mean 'num_fewshot'?",
        ),
        (
            _with(tasks=[{"name": "t", "kind": "mcqq", "dataset": "arc_easy"}]),
            "tasks[0].kind: unknown task kind 'mcqq'; did you mean 'mcq'?",
        ),
        (_with(tasks=[{"name": "t", "dataset": "arc_easy"}]), "tasks[0].kind: missing; allowed: mcq"),
        (
            _with(tasks=[{"name": "t", "kind": "mcq", "dataset": "arc_eazy"}]),
            "tasks[0].dataset: unknown dataset 'arc_eazy'; did you mean 'arc_easy'?",
        ),
        (
            _with(models=[{"name": "smollm-135m"}]),
            "models[0].name: 'smollm-135m' is not a catalog model and has no path; did you mean 'smollm2-135m'?",
        ),
        (
            _with(models=[{"name": "m", "backend": "llamacp", "path": "x"}]),
            "models[0].backend: unknown backend 'llamacp'; did you mean 'llamacpp'?",
        ),
        (
            _with(models=[{"name": "m", "path": "x", "n_thread": 1}]),
            "models[0].n_thread: unknown field; did you mean 'n_threads'?",
        ),
        (_with(defaults={"limit": 0}), "defaults.limit: Input should be greater than or equal to 1"),
        (_with(defaults={"limt": 3}), "defaults.limt: unknown field; did you mean 'limit'?"),
        (_with(models=[]), "models: List should have at least 1 item"),
        (
            _with(tasks=[{"name": "t", "kind": "mcq", "dataset": "gsm8k"}]),
            "tasks[0].dataset: 'gsm8k' is a math dataset, not usable by a task of kind 'mcq'",
        ),
        (_with(models=[{"name": "smollm2-135m"}, {"name": "smollm2-135m"}]), "names must be unique"),
        (
            _with(hardware={"usd_per_hour": -1}),
            "hardware.usd_per_hour: Input should be greater than or equal to 0",
        ),
        (_with(name="has space"), "name: String should match pattern"),
        (_with(model=[]), "model: unknown field; did you mean 'models'?"),
        ({"name": "x"}, "required field is missing"),
    ],
)
def test_malformed_suites_name_field_and_allowed(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_suite(data, "s.yaml")
    msg = str(e.value)
    assert msg.startswith("s.yaml: "), msg
    assert expected in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "invalid YAML"),
        ("- just\n- a list\n", "a suite must be a mapping"),
        ("", "a suite must be a mapping"),
    ],
)
def test_yaml_level_errors(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=expected) as e:
        load_suite(p)
    assert str(p) in str(e.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such suite file"):
        load_suite("does/not/exist.yaml")


def test_cli_validate_exit_codes_and_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path, GOOD.replace("num_fewshot: 5", "num_fewshots: 5"))
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "validate", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert (
        str(bad) in lines[0]
        and "tasks[1].num_fewshots" in lines[0]
        and "did you mean 'num_fewshot'" in lines[0]
    )
    good = write(tmp_path, GOOD)
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "validate", str(good)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "3 models x 3 tasks" in r.stdout


def test_shipped_suites_validate() -> None:
    root = Path(__file__).resolve().parents[2] / "suites"
    suites = sorted(root.glob("*.yaml"))
    assert suites
    for p in suites:
        assert load_suite(p).name
