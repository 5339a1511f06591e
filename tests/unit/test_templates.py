"""Suite prompt templates run no code: known Jinja escapes are refused by `bench validate` and
`bench run` (exit 2, one line naming the file and the field, nothing executed), and whatever a
static check cannot see is refused by the sandbox when a record is rendered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.errors import ConfigError, DataError
from bench.templates import check_suite, compile_prompt, render

# Each payload runs `touch MARKER` under a plain jinja2.Environment.
PAYLOADS = [
    "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('touch MARKER').read() }}",
    "{{ (lipsum|attr('__globals__'))['os'].popen('touch MARKER').read() }}",
    "{{ (lipsum|attr('__glo' ~ 'bals__'))['os'].popen('touch MARKER').read() }}",
    "{{ lipsum['__glo' ~ 'bals__']['os'].popen('touch MARKER').read() }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
    "{{ c(['touch', 'MARKER']).wait() }}{% endif %}{% endfor %}",
    "{% set g = cycler.__init__['__glo' ~ 'bals__'] %}{{ g.os.popen('touch MARKER').read() }}",
]


def _suite(tmp_path: Path, prompt: str, kind: str = "mcq") -> Path:
    data = tmp_path / "items.jsonl"
    rows = [
        {"id": f"q{i}-gold:0", "q": f"What is item {i}?", "opts": ["a", "b"], "label": 0, "a": "1"}
        for i in range(4)
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task: dict[str, object] = {"name": "t", "kind": kind, "dataset": {"path": str(data)}, "prompt": prompt}
    if kind == "mcq":
        task["fields"] = {"id": "id", "question": "q", "choices": "opts", "answer": "label"}
    else:
        task["fields"] = {"id": "id", "input": "q", "target": "a"}
    suite = {
        "name": "payload",
        "models": [{"name": "m", "backend": "fake", "accuracy": 1.0}],
        "tasks": [
            {
                "name": "plain",
                "kind": "mcq",
                "dataset": {"path": str(data)},
                "fields": {"question": "q", "choices": "opts", "answer": "label"},
            },
            task,
        ],
    }
    p = tmp_path / "suite.yaml"
    p.write_text(yaml.safe_dump(suite, sort_keys=False))
    return p


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def _check_refused(tmp_path: Path, suite: Path, marker: Path, code: int, stderr: str) -> None:
    assert not marker.exists(), "the template ran a shell command"
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"error: {suite}: tasks[1].prompt: "), lines[0]
    assert "not allowed" in lines[0] or "sandbox" in lines[0] or "literal" in lines[0], lines[0]
    assert not (tmp_path / "results").exists()  # refused before a run directory or a model


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_escape_payloads_are_refused_before_anything_runs(
    tmp_path: Path, payload: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import main

    marker = tmp_path / "pwned"
    kind = "math" if "cycler" in payload else "mcq"
    suite = _suite(tmp_path, payload.replace("MARKER", str(marker)), kind=kind)
    args = [command, str(suite)] + (["-o", str(tmp_path / "results")] if command == "run" else [])
    with pytest.raises(SystemExit) as e:
        main(args)
    _check_refused(tmp_path, suite, marker, int(e.value.code or 0), capsys.readouterr().err)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_the_command_line_exits_2_with_one_line(tmp_path: Path, command: str) -> None:
    marker = tmp_path / "pwned"
    suite = _suite(tmp_path, PAYLOADS[0].replace("MARKER", str(marker)))
    args = [command, str(suite)] + (["-o", str(tmp_path / "results")] if command == "run" else [])
    p = _bench(*args, cwd=tmp_path)
    _check_refused(tmp_path, suite, marker, p.returncode, p.stderr)


def test_syntax_error_names_file_field_and_line(tmp_path: Path) -> None:
    suite = _suite(tmp_path, "Question: {{ question }}\n{% for c in choices %}{{ c }}")
    p = _bench("validate", str(suite), cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == (
        f"error: {suite}: tasks[1].prompt: invalid Jinja template (line 2): Unexpected end of template. "
        "Jinja was looking for the following tags: 'endfor' or 'else'. The innermost block that needs to "
        "be closed is 'for'."
    )


def test_a_branch_only_a_real_record_takes_is_refused_by_the_sandbox(tmp_path: Path) -> None:
    """No static check or probe value reaches this branch; the sandbox refuses it when record 2
    is rendered (by the local-data preflight: exit 2, or in the worker: that task's stored error)."""
    marker = tmp_path / "pwned"
    payload = (
        "{% if question == 'What is item 2?' %}{{ lipsum['__glo' ~ 'bals__']['os']"
        ".popen('touch MARKER').read() }}{% endif %}{{ question }}"
    )
    suite = _suite(tmp_path, payload.replace("MARKER", str(marker)))
    out = tmp_path / "results"
    p = _bench("run", str(suite), "-o", str(out), "--executor", "inline", cwd=tmp_path)
    assert not marker.exists()
    assert "Traceback" not in p.stderr, p.stderr
    if p.returncode == 2:
        message = p.stderr
    else:
        from bench import store

        assert p.returncode in (0, 1), p.stdout + p.stderr  # the other task ran
        runs = store.runs_dataset(out).to_table().to_pandas()
        assert (runs[runs.task == "plain"]["status"] == "ok").all()
        message = " | ".join(runs[runs.task == "t"]["error"].astype(str))
    assert "record 2 (id q2-gold:0): prompt: refused by the template sandbox" in message, message
    assert "__globals__" in message


def test_tasks_render_through_the_sandbox(tmp_path: Path) -> None:
    from bench.config import load_suite
    from bench.tasks import create_task

    payload = (
        "{% if question == 'What is item 1?' %}{{ lipsum['__glo' ~ 'bals__'] }}{% endif %}{{ question }}"
    )
    for kind in ("mcq", "math"):
        spec = load_suite(_suite(tmp_path, payload, kind=kind))
        task = create_task(spec.tasks[1], spec.effective_task(spec.tasks[1]))
        with pytest.raises(ConfigError, match=r"record .*1.*: prompt: refused by the template sandbox"):
            for it in task.items():  # multiple choice renders every record here
                task.completion_prompt(it.record)  # generative kinds per request


def test_validate_accepts_ordinary_templates_of_every_shape(tmp_path: Path) -> None:
    prompt = (
        "{% for c in choices %}{{ letters[loop.index0] }}. {{ c | trim }}\n{% endfor %}"
        "{{ question.strip() | upper }} {{ options | join(', ') }} {{ id[:2] }}\nAnswer:"
    )
    p = _bench("validate", str(_suite(tmp_path, prompt)), cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.startswith("ok: "), p.stderr


def test_render_keeps_trailing_newlines_and_needs_every_field() -> None:
    t = compile_prompt("Q: {{ question }}\n", "task 'x': prompt")
    assert render(t, {"question": "why?"}, "d: record 0: prompt") == "Q: why?\n"
    with pytest.raises(DataError, match=r"^d: record 0: prompt: 'question' is undefined$"):
        render(t, {}, "d: record 0: prompt")


@pytest.mark.parametrize(
    ("template", "record"),
    [
        ("{{ lipsum[name] }}", {"name": "__globals__"}),  # the attribute comes from the data
        ("{{ choices.append('x') }}{{ choices }}", {"choices": ["a"]}),  # records are read-only
        ("{{ '{0.__class__}'.format(question) }}", {"question": "q"}),  # str.format reaching attributes
        ("{{ question.__len__() }}", {"question": "q"}),
    ],
)
def test_the_sandbox_refuses_at_render_what_no_static_check_sees(template: str, record: dict) -> None:
    try:
        t = compile_prompt(template, "task 'x': prompt")
    except ConfigError:
        return  # refused even earlier
    with pytest.raises(ConfigError, match=r"^d: record 0: prompt: refused by the template sandbox: "):
        render(t, record, "d: record 0: prompt")
    assert record.get("choices", ["a"]) == ["a"]


def test_check_suite_names_the_task_index(tmp_path: Path) -> None:
    from bench.config import load_suite

    suite = load_suite(_suite(tmp_path, "{{ lipsum.__globals__ }}"))
    with pytest.raises(
        ConfigError, match=r"suite.yaml: tasks\[1\]\.prompt: attribute '__globals__' is not allowed"
    ):
        check_suite(suite, str(tmp_path / "suite.yaml"))
