"""GSM8K answer extraction and numeric exact match, following lm-eval's `gsm8k` task so numbers are
comparable with published lm-eval results:

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
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import NamedTuple, TypedDict

__all__ = ["GsmExtraction", "GsmScore", "extract_gsm8k", "normalize_number", "score_gsm8k"]

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
