"""Per-item scores for math word problems: GSM8K (numeric exact match, in bench/metrics/gsm8k.py,
re-exported here) and MATH-500 (equivalence).

MATH-500 (minerva_math style) extracts the final answer (last `\\boxed{}`/`\\fbox{}`, else the
minerva "Final Answer: The final answer is X. I hope it is correct." line) and compares it with
the reference by mathematical equivalence (math-verify, falling back to sympy), under a time budget
per item because symbolic simplification can run for minutes on adversarial input (see
bench/metrics/budget.py; math-verify's own alarms are turned off: they would cancel it).
"""

from __future__ import annotations

import logging
import re
from typing import Any, TypedDict

from bench.metrics.budget import call_with_budget, shutdown_helper
from bench.metrics.gsm8k import GsmExtraction, GsmScore, extract_gsm8k, normalize_number, score_gsm8k

__all__ = [
    "DEFAULT_MATH_BUDGET_S",
    "GsmExtraction",
    "GsmScore",
    "MathScore",
    "extract_gsm8k",
    "extract_math_answer",
    "is_math_equiv",
    "normalize_final_answer",
    "normalize_number",
    "score_gsm8k",
    "score_math",
    "shutdown_helper",
]

# --------------------------------------------------------------------------------------------------
# MATH-500: answer extraction
# --------------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_FINAL_ANSWER_RE = re.compile(r"Final Answer: The final answer is(.*?)\.?\s*I hope it is correct", re.DOTALL)
_MATH_DELIMS = [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")]


class MathScore(TypedDict):
    exact_match: float
    extracted: str | None


def _box_content(text: str, start: int) -> str | None:
    """Content of the box command whose name ends at `start`, or None if it is cut off."""
    i = start
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        return None
    if text[i] != "{":
        # lm-eval's `\boxed 5` form: everything up to the closing `$`.
        if i == start:
            return None
        content = re.split(r"[$\n]", text[i:], maxsplit=1)[0].strip()
        return content or None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _strip_math_delims(s: str) -> str:
    s = s.strip()
    for left, right in _MATH_DELIMS:
        if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
            return s[len(left) : -len(right)].strip()
    return s


def extract_math_answer(text: str) -> str | None:
    """The final answer of a solution, or None.

    Precedence: the last complete `\\boxed{...}`/`\\fbox{...}` (braces balanced; an unclosed last
    box, e.g. from a truncated output, falls back to the previous one), then minerva's
    "Final Answer: The final answer is X. I hope it is correct." (first occurrence, as lm-eval).
    Surrounding `$...$`, `\\(...\\)` and a final period are removed.
    """
    for box in reversed(list(_BOX_RE.finditer(text))):
        content = _box_content(text, box.end())
        if content is not None:
            return content
    m = _FINAL_ANSWER_RE.search(text + " I hope it is correct.")
    if m is None:
        return None
    answer = _strip_math_delims(m.group(1).strip().rstrip("."))
    return answer or None


# --------------------------------------------------------------------------------------------------
# MATH-500: equivalence
# --------------------------------------------------------------------------------------------------

# lm-eval minerva_math normalize_final_answer (Lewkowycz et al. 2022, appendix D, as patched in
# lm-eval 0.4.13): cheap string canonicalization tried before any symbolic comparison.
_SUBSTITUTIONS = [
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    (r"\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
]
_REMOVED_EXPRESSIONS = [
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "ft",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    r"\mathrm{th}",
    r"^\circ",
    r"^{\circ}",
    r"\;",
    r",\!",
    "{,}",
    '"',
    "\\dots",
]


def normalize_final_answer(final_answer: str) -> str:
    """lm-eval minerva_math's answer normalization (units, `\\text`, `$`, shorthand `\\frac12`)."""
    final_answer = final_answer.split("=")[-1]
    for expr in _REMOVED_EXPRESSIONS:
        if expr.isalpha():
            final_answer = re.sub(rf"(?<!\\)\b{expr}\b", "", final_answer)
    for before, after in _SUBSTITUTIONS:
        final_answer = final_answer.replace(before, after)
    for expr in _REMOVED_EXPRESSIONS:
        if expr.isalpha():
            segments = re.split(r"(\\[a-zA-Z]+)", final_answer)
            for i in range(0, len(segments), 2):
                segments[i] = segments[i].replace(expr, "")
            final_answer = "".join(segments)
        else:
            final_answer = final_answer.replace(expr, "")
    final_answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", final_answer)
    final_answer = re.sub(r"(\\text\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\textbf\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\overline\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", final_answer)
    final_answer = re.sub(r"(sqrt)(\[[^\]]*\])(\w)", "\\1\\2{\\3}", final_answer)
    final_answer = re.sub(r"(sqrt)(?!\[)([^{])", "sqrt{\\2}", final_answer)
    final_answer = final_answer.replace("$", "")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", final_answer):
        final_answer = final_answer.replace(",", "")
    return final_answer


try:
    from math_verify import parse as _mv_parse
    from math_verify import verify as _mv_verify

    HAVE_MATH_VERIFY = True
except ImportError:  # pragma: no cover - exercised only where math-verify is not installed
    HAVE_MATH_VERIFY = False


class _DropDisabledTimeoutNotice(logging.Filter):
    """math-verify logs a warning once when its own (signal based) timeouts are off; ours replace
    them, because its alarm would cancel our per-item budget."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropDisabledTimeoutNotice())


def _equiv_math_verify(pred: str, reference: str) -> bool:
    gold = _mv_parse(f"${reference}$", parsing_timeout=None)
    target = _mv_parse(f"${pred}$", parsing_timeout=None)
    return bool(_mv_verify(gold, target, timeout_seconds=None))


# Fallback when math-verify is missing: LaTeX -> sympy by rewriting a small, safe subset.
_LATEX_REWRITES = [
    (r"\\[dt]frac", r"\\frac"),
    (r"\\left|\\right|\\!|\\,|\\;|\\ ", ""),
    (r"\\(?:cdot|times)", "*"),
    (r"\\pi", "pi"),
    (r"\^", "**"),
]
_SAFE_EXPR_RE = re.compile(r"^(?:[0-9.+\-*/() ]|sqrt|pi|[a-z](?![a-z]))*$")
_LETTER_ANSWER_RE = re.compile(r"\(?([A-Za-z])\)?")
_SMALL_EXPONENT_RE = re.compile(r"[\s(]*-?\s*(?:\d{1,2}|[a-z]|pi)(?![\d*])")


def _latex_to_sympy(s: str) -> Any:
    import sympy
    from sympy.parsing.sympy_parser import (
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    for pattern, repl in _LATEX_REWRITES:
        s = re.sub(pattern, repl, s)
    previous = None
    while previous != s:  # innermost first: \frac{a}{b} -> ((a)/(b)), \sqrt{a} -> sqrt(a)
        previous = s
        s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
        s = re.sub(r"\{([^{}]*)\}", r"(\1)", s)
    if not s.strip() or not _SAFE_EXPR_RE.match(s):  # parse_expr evals: only known tokens
        return None
    # Big integer powers (9**9**9) run in C, where no alarm can stop them: small exponents only.
    if not all(_SMALL_EXPONENT_RE.match(s, m.end()) for m in re.finditer(r"\*\*", s)):
        return None
    transformations = (*standard_transformations, implicit_multiplication_application)
    return sympy.sympify(parse_expr(s, transformations=transformations))


def _equiv_sympy(a: str, b: str) -> bool:
    """lm-eval minerva's is_equiv on two normalized answers: sympy simplify(a - b) == 0."""
    import sympy

    letters = [_LETTER_ANSWER_RE.fullmatch(x) for x in (a, b)]
    if letters[0] and letters[1]:  # multiple-choice answers: "(A)" == "A"
        return letters[0].group(1).lower() == letters[1].group(1).lower()
    try:
        x, y = _latex_to_sympy(a), _latex_to_sympy(b)
        if x is None or y is None:
            return False
        return bool(sympy.simplify(x - y) == 0)
    except Exception:  # unparsable or incomparable: not equivalent
        return False


def _equivalent_unbounded(pred: str, reference: str, use_math_verify: bool) -> bool:
    a, b = normalize_final_answer(pred), normalize_final_answer(reference)
    if a and a == b:
        return True
    if use_math_verify:
        return _equiv_math_verify(pred, reference)
    return _equiv_sympy(a, b)


def _warm_up() -> bool:
    """Load math-verify's grammar in the helper, so that the first item's budget is not spent on it."""
    return _equivalent_unbounded("1/2", "0.5", HAVE_MATH_VERIFY)


DEFAULT_MATH_BUDGET_S = 5.0


def is_math_equiv(
    pred: str, reference: str, *, budget_s: float = DEFAULT_MATH_BUDGET_S, use_math_verify: bool | None = None
) -> bool:
    """Whether two final answers are mathematically equal; False when undecided within budget_s.

    minerva's normalized-string match first (cheap, covers units and `\\text{}`), then math-verify
    (`\\frac{1}{2}` == 0.5, `2\\sqrt{2}` == `\\sqrt{8}`, intervals, sets, `x = 5` vs 5; 1/3 != 0.33
    because it rounds to 6 decimals), or sympy when math-verify is not installed.
    """
    if not budget_s > 0:
        raise ValueError(f"budget_s must be positive, got {budget_s}")
    mv = HAVE_MATH_VERIFY if use_math_verify is None else use_math_verify and HAVE_MATH_VERIFY
    return bool(call_with_budget(_equivalent_unbounded, (pred, reference, mv), budget_s, warmup=_warm_up))


def score_math(text: str, reference: str, *, budget_s: float = DEFAULT_MATH_BUDGET_S) -> MathScore:
    """Score one MATH output against a reference answer (or a full reference solution with a box)."""
    extracted = extract_math_answer(text)
    ref = extract_math_answer(reference) if _BOX_RE.search(reference) else None
    ref = ref if ref is not None else _strip_math_delims(reference)
    ok = extracted is not None and is_math_equiv(extracted, ref, budget_s=budget_s)
    return MathScore(exact_match=float(ok), extracted=extracted)
