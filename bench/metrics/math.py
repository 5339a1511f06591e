"""Per-item scores for math word problems: GSM8K (numeric exact match) and MATH-500 (equivalence).

GSM8K follows lm-eval's `gsm8k` task so numbers are comparable with published lm-eval results:

* `strict`: lm-eval's "strict-match" filter, the first `#### N`; when there is none, the first
  `The answer is N` (the gsm8k-cot strict regex). Differences from lm-eval's regexes, all of them
  cases lm-eval scores wrong for format reasons only: an optional `$` before the number, the
  captured answer must contain a digit, and "The answer is N" needs no character after N
  (gsm8k-cot's `The answer is (...).` ends in a bare `.`, which truncates "The answer is 18" at
  the very end of the output to "1").
* `flexible`: lm-eval's "flexible-extract", exactly: the last match of
  `(-?[$0-9.,]{2,})|(-?[0-9]+)` (so "..." counts as a match, as it does in lm-eval).

Both are compared with lm-eval's exact_match (`regexes_to_ignore: [",", "\\$", "(?s).*#### ",
"\\.$"]`, ignore_case) and, when that fails, after `normalize_number` (units, currency, percent,
trailing zeros), so bench's scores are never below lm-eval's and only above them on a numerically
equal answer.

MATH-500 (minerva_math style) extracts the final answer (last `\\boxed{}`/`\\fbox{}`, else the
minerva "Final Answer: The final answer is X. I hope it is correct." line) and compares it with
the reference by mathematical equivalence (math-verify, falling back to sympy), under a time budget
per item because symbolic simplification can run for minutes on adversarial input. The budget is
a SIGALRM timer on the main thread (math-verify's own alarms are turned off: they would cancel it);
off the main thread, where signals cannot be used, the comparison runs in a helper process (spawned
once, so the caller's main module must be import-safe) that is killed when the budget runs out.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.pool
import re
import signal
import threading
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, TypedDict

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
]

# --------------------------------------------------------------------------------------------------
# GSM8K
# --------------------------------------------------------------------------------------------------

# A number that contains at least one digit ("...", "," alone are not answers).
_NUM = r"(-?[.,]*[0-9][0-9.,]*)"
_STRICT_HASH_RE = re.compile(r"#### ?\$?" + _NUM)
_STRICT_ANSWER_IS_RE = re.compile(r"[Tt]he answer is:? ?\$?" + _NUM)
# lm-eval gsm8k flexible-extract, verbatim (group_select -1).
_FLEXIBLE_RE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
# lm-eval gsm8k exact_match regexes_to_ignore, in order.
_LM_EVAL_IGNORE = [re.compile(p) for p in (",", r"\$", r"(?s).*#### ", r"\.$")]

_CURRENCY = "$€£¥₹"
_NUMBER_RE = re.compile(
    rf"""^(?P<s1>[-+−]?)\s*[{_CURRENCY}]?\s*(?P<s2>[-+−]?)\s*
    (?P<num>\d+(?:\.\d*)?|\.\d+)\s*
    (?:%|[{_CURRENCY}]|[a-z][a-z/ ]*)?$""",
    re.VERBOSE,
)


class GsmExtraction(NamedTuple):
    """The two answers lm-eval's gsm8k filters would extract; None where lm-eval says "[invalid]"."""

    strict: str | None
    flexible: str | None


class GsmScore(TypedDict):
    exact_match_strict: float
    exact_match_flexible: float
    extracted_strict: str | None
    extracted_flexible: str | None


def extract_gsm8k(text: str) -> GsmExtraction:
    """Extract the strict (`#### N`, else `The answer is N`) and flexible (last number) answers."""
    m = _STRICT_HASH_RE.search(text) or _STRICT_ANSWER_IS_RE.search(text)
    strict = m.group(1).strip() if m else None
    flexible: str | None = None
    matches = _FLEXIBLE_RE.findall(text)
    if matches:
        groups = [g for g in matches[-1] if g]
        flexible = groups[0].strip() if groups else None
    return GsmExtraction(strict=strict, flexible=flexible)


def _lm_eval_normalize(s: str) -> str:
    """lm-eval's gsm8k exact_match preprocessing (regexes_to_ignore, then ignore_case)."""
    for rx in _LM_EVAL_IGNORE:
        s = rx.sub("", s)
    return s.lower()


def normalize_number(s: str) -> str | None:
    """Canonical decimal string for a numeric answer, or None if `s` is not a single number.

    Removes what lm-eval's string match trips over although the number is right: thousands
    commas, currency ("$18", "18$"), a trailing unit word or percent sign ("18 dollars", "18%"),
    a final period, and trailing zeros ("18.00" -> "18", "18.50" -> "18.5"; "-0" -> "0").
    Percentages are not divided by 100: GSM8K references write "18" for an answer of 18%.
    """
    t = s.strip().lower().replace(",", "").replace("\\$", "$").rstrip(". ")
    m = _NUMBER_RE.match(t)
    if m is None:
        return None
    signs = (m.group("s1") + m.group("s2")).replace("−", "-")
    if len(signs) > 1:
        return None
    try:
        value = Decimal(m.group("num"))
    except InvalidOperation:  # pragma: no cover - the regex only admits valid decimals
        return None
    if signs == "-":
        value = -value
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _gsm_match(pred: str | None, reference: str) -> bool:
    if pred is None:
        return False
    p, r = _lm_eval_normalize(pred), _lm_eval_normalize(reference)
    if p == r:
        return True
    np_ = normalize_number(p)
    return np_ is not None and np_ == normalize_number(r)


def score_gsm8k(text: str, reference: str) -> GsmScore:
    """Score one GSM8K output; `reference` may be the full solution ("... #### 72") or "72"."""
    ex = extract_gsm8k(text)
    return GsmScore(
        exact_match_strict=float(_gsm_match(ex.strict, reference)),
        exact_match_flexible=float(_gsm_match(ex.flexible, reference)),
        extracted_strict=ex.strict,
        extracted_flexible=ex.flexible,
    )


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


class _BudgetExceeded(BaseException):
    """Raised from SIGALRM; a BaseException so library `except Exception` blocks cannot swallow it."""


def _run_with_alarm(fn: Callable[..., bool], args: tuple[Any, ...], budget_s: float) -> bool | None:
    def on_alarm(signum: int, frame: object) -> None:
        raise _BudgetExceeded

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, budget_s)
    start = time.monotonic()
    try:
        try:
            return fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _BudgetExceeded:
        return None
    finally:
        signal.signal(signal.SIGALRM, old_handler if old_handler is not None else signal.SIG_DFL)
        if old_delay > 0:  # someone else's timer was running: give it back what is left
            signal.setitimer(
                signal.ITIMER_REAL, max(old_delay - (time.monotonic() - start), 1e-3), old_interval
            )


_pool: multiprocessing.pool.Pool | None = None
_pool_lock = threading.Lock()


def _worker_ready() -> bool:
    """Load math-verify's grammar in the helper, so that the first item's budget is not spent on it."""
    return _equivalent_unbounded("1/2", "0.5", HAVE_MATH_VERIFY)


@atexit.register
def _shutdown_worker() -> None:
    """Stop the helper process (if one was started) so no pool outlives the interpreter."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.terminate()
        pool.join()


def _run_in_worker(fn: Callable[..., bool], args: tuple[Any, ...], budget_s: float) -> bool | None:
    """Off the main thread there is no SIGALRM: run in a helper process and kill it on overrun."""
    global _pool
    with _pool_lock:
        if _pool is None:
            fresh = multiprocessing.get_context("spawn").Pool(processes=1)
            try:
                fresh.apply(_worker_ready)  # pay the interpreter start outside the item's budget
            except BaseException:
                fresh.terminate()
                raise
            _pool = fresh
        pool = _pool
    result = pool.apply_async(fn, args)
    try:
        return bool(result.get(timeout=budget_s))
    except multiprocessing.TimeoutError:
        with _pool_lock:
            if _pool is pool:
                _pool = None
        pool.terminate()
        return None


def _call_with_budget(fn: Callable[..., bool], args: tuple[Any, ...], budget_s: float) -> bool | None:
    """fn(*args), or None if it ran longer than budget_s seconds."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _run_with_alarm(fn, args, budget_s)
    return _run_in_worker(fn, args, budget_s)


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
    return bool(_call_with_budget(_equivalent_unbounded, (pred, reference, mv), budget_s))


def score_math(text: str, reference: str, *, budget_s: float = DEFAULT_MATH_BUDGET_S) -> MathScore:
    """Score one MATH output against a reference answer (or a full reference solution with a box)."""
    extracted = extract_math_answer(text)
    ref = extract_math_answer(reference) if _BOX_RE.search(reference) else None
    ref = ref if ref is not None else _strip_math_delims(reference)
    ok = extracted is not None and is_math_equiv(extracted, ref, budget_s=budget_s)
    return MathScore(exact_match=float(ok), extracted=extracted)
