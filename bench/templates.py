"""Suite prompt templates, rendered in one sandboxed Jinja environment.

Suites are shared files, like the YAML that is read with `safe_load`: a template may format a
record, never run code. Jinja's ImmutableSandboxedEnvironment refuses private and internal
attributes (`__globals__`, `__class__`, `mro`, ...) at render time; `check_suite` also refuses
them when the suite is validated (a static scan plus a render against a probe record), so a bad
template is one error line naming the file and the field before any model loads.
"""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
    SecurityError,
)

from bench.errors import ConfigError, DataError

__all__ = ["ENV", "check_suite", "compile_prompt", "render"]

ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)

# Names the sandbox refuses on the objects that reach code: dunders, frames, code objects.
_INTERNAL = (
    {"mro", "func_globals", "func_code", "f_globals", "f_locals", "f_builtins", "tb_frame"}
    | UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES
    | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)
# A prompt is one string: there is no loader, so these could only fail later, or worse.
_STATEMENTS = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Extends: "extends",
}


def _unsafe_name(name: object) -> bool:
    return isinstance(name, str) and (name.startswith("__") or name in _INTERNAL)


def _scan(ast: nodes.Template) -> str | None:
    """Why the template is refused without rendering it (so branches a probe misses count too)."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Test, *_STATEMENTS)):
        if isinstance(node, nodes.Getattr) and _unsafe_name(node.attr):
            return f"attribute {node.attr!r} is not allowed (templates run no code)"
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and _unsafe_name(node.arg.value)
        ):
            return f"attribute {node.arg.value!r} is not allowed (templates run no code)"
        if isinstance(node, nodes.Filter | nodes.Test):
            why = _filter_args(node)
            if why:
                return why
        for cls, word in _STATEMENTS.items():
            if isinstance(node, cls):
                return f"{{% {word} %}} is not available in prompt templates"
    return None


def _filter_args(node: nodes.Filter | nodes.Test) -> str | None:
    """`attr('__globals__')`, `map(attribute=...)`: attribute names given to filters are literal and public."""
    named = [(k.key, k.value) for k in node.kwargs]
    first = [("attr", node.args[0])] if node.name == "attr" and node.args else []
    for key, arg in [*first, *named, *(("", a) for a in node.args)]:
        if isinstance(arg, nodes.Const) and _unsafe_name(arg.value):
            return f"attribute {arg.value!r} is not allowed (templates run no code)"
        if key in ("attr", "attribute") and not isinstance(arg, nodes.Const):
            return f"filter {node.name!r}: the attribute name must be a literal string"
    return None


def compile_prompt(text: str, where: str) -> jinja2.Template:
    """The template of `text`; `where` names the field in errors ("task 'arc': prompt")."""
    try:
        ast = ENV.parse(text)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"{where}: invalid Jinja template (line {e.lineno}): {e.message}") from None
    why = _scan(ast)
    if why:
        raise ConfigError(f"{where}: {why}")
    return ENV.from_string(ast)


def render(template: jinja2.Template, record: dict[str, Any], where: str, **extra: Any) -> str:
    """Render for one record: a missing field is a data error, a sandbox refusal a config error."""
    try:
        return template.render({**record, **extra})
    except SecurityError as e:
        raise ConfigError(f"{where}: refused by the template sandbox: {e}") from None
    except jinja2.UndefinedError as e:
        raise DataError(f"{where}: {e.message}") from None


class RecordField(str):
    """A stand-in for any record field: a string whose attributes and items are probes too, so a
    probe render reaches as far into a template as a real record would."""

    def __getattr__(self, name: str) -> RecordField:
        if name.startswith("_"):
            raise AttributeError(name)
        return RecordField(name)

    def __getitem__(self, key: Any) -> RecordField:
        return RecordField(str(key))


def probe(text: str, where: str) -> None:
    """Compile `text` and render it once against probe values for every variable it reads."""
    template = compile_prompt(text, where)
    names = meta.find_undeclared_variables(ENV.parse(text)) - set(ENV.globals)
    try:
        template.render({n: RecordField(n) for n in names})
    except SecurityError as e:
        raise ConfigError(f"{where}: refused by the template sandbox: {e}") from None
    except Exception:  # probe values are not real data; real records are checked at run
        pass


def check_suite(suite: Any, source: str) -> None:
    """Compile and probe every prompt template of a suite (`bench validate`, `bench run`)."""
    for i, task in enumerate(suite.tasks):
        text = getattr(task, "prompt", None)
        if text is not None:
            probe(text, f"{source}: tasks[{i}].prompt")
