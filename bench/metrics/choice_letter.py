"""Answer-letter extraction for multiple choice asked generatively ("Answer with the letter").

`extract_letter` tries these rules in order and returns at the first that yields a letter within
the first `n_choices` letters of the alphabet (letters beyond them are skipped, never clamped):

1. An explicit answer statement, the LAST one in the text, since models restate their final choice
   at the end: "The answer is B", "answer: (c)", "**Answer:** B", "Final answer: D", "\\boxed{B}".
2. The output opens with a letter marker: "B", "(B)", "B.", "B)", "b) ...", "**C**", "[B]", "C: ...".
   A bare letter followed by more text counts only as a capital that is not the article or the
   pronoun ("B is right", "A is correct" yes; "a dog", "A dog", "I think" no) and not in "B or C".
   So "(A) is wrong, (C) is right" answers A.
3. A marked letter anywhere: "(B)", "**B**", "[B]", "Option B", "choice (B)". Only when every such
   mark names the same letter; "Not (A); I'd go with (C)" is ambiguous and falls through.
4. Standalone capital letters ("I'd pick B here"), again only when exactly one distinct letter
   occurs; "A" directly followed by a lowercase word is an article, "I" followed by anything but
   punctuation is the pronoun.

Anything else returns None (scored as wrong), rather than guessing.
"""

from __future__ import annotations

import re
import string

__all__ = ["extract_letter"]

_END = r"(?![A-Za-z0-9'’])"  # the letter is a whole token

# 1. "answer is B", "answer: (b)", "**Answer**: B", "answer would be option C", "\boxed{B}".
_ANSWER_RE = re.compile(
    r"""\banswer\b\**
        (?:\s+(?:is|would\s+be|will\s+be|should\s+be))?
        [\s:=*_\-]*
        (?:(?:option|choice|letter)\s*)?
        (?P<pre>[(\[{*"']*)
        (?P<letter>[A-Za-z])"""
    + _END
    + r"""(?P<post>[)\]}.*:"']?)""",
    re.IGNORECASE | re.VERBOSE,
)
_BOXED_RE = re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?\(?([A-Za-z])\)?\s*\}")

# 2. The output opens with a letter marker.
_LEADING_RE = re.compile(
    r"""^[\s*_#>"']*
        (?:(?:option|choice)\s+)?
        (?P<pre>[(\[]?)
        (?P<letter>[A-Za-z])"""
    + _END
    + r"""(?P<post>[)\]]|\.|:|\*\*|,)?
        \s*(?P<next>\S*)""",
    re.IGNORECASE | re.VERBOSE,
)

# 3. Marked letters anywhere.
_MARKED_RE = re.compile(
    r"""\((?P<a>[A-Za-z])\)
      | \[(?P<b>[A-Za-z])\]
      | \*\*(?P<c>[A-Za-z])[.):]?\*\*
      | \b(?:option|choice)\s+\(?(?P<d>[A-Za-z])"""
    + _END,
    re.IGNORECASE | re.VERBOSE,
)

# 4. Standalone capitals.
_CAPITAL_RE = re.compile(r"(?<![A-Za-z0-9'’\-])([A-Z])" + _END + r"\s*(?P<next>\S*)")
# Words after which "A"/"I" is still a choice ("A is correct", "I because ...").
_ANSWER_WORDS = frozenset({"is", "was", "would", "seems", "looks", "because", "since", "as"})


def _is_word(letter: str, next_word: str) -> bool:
    """Whether a capital "A"/"I" is the article/pronoun ("A dog", "I think") rather than a choice."""
    if letter not in "AI" or not next_word or not next_word[0].isalpha():
        return False
    if next_word.lower().rstrip(".,;:!?") in _ANSWER_WORDS:
        return False
    return letter == "I" or next_word[0].islower()


def _index(letter: str, n_choices: int) -> int | None:
    i = string.ascii_uppercase.index(letter.upper())
    return i if i < n_choices else None


def _explicit(text: str, n_choices: int) -> int | None:
    candidates: list[tuple[int, int]] = []  # (position, index)
    for m in _ANSWER_RE.finditer(text):
        letter = m.group("letter")
        # A lowercase letter must be marked ("answer: b)", "answer is (a)") so that
        # "the answer is a bit unclear" does not read as choice A.
        if letter.islower() and not (m.group("pre") or m.group("post")):
            continue
        i = _index(letter, n_choices)
        if i is not None:
            candidates.append((m.start(), i))
    for m in _BOXED_RE.finditer(text):
        i = _index(m.group(1), n_choices)
        if i is not None:
            candidates.append((m.start(), i))
    return max(candidates)[1] if candidates else None


def _leading(text: str, n_choices: int) -> int | None:
    m = _LEADING_RE.match(text)
    if m is None:
        return None
    letter, marked = m.group("letter"), bool(m.group("pre") or m.group("post"))
    alone = m.end("letter") == len(text.rstrip(" *\n\t\"'"))
    # A bare letter followed by more text is an answer only if capital and not an
    # article/pronoun: "B is right" yes; "a dog", "A dog", "I think" no.
    # "B or C ..." names two choices: leave it to the rules that check for a single letter.
    if not (marked or alone) and (
        letter.islower() or _is_word(letter, m.group("next")) or m.group("next").lower() in ("and", "or")
    ):
        return None
    return _index(letter, n_choices)


def _unique(indices: list[int | None]) -> int | None:
    found = {i for i in indices if i is not None}
    return found.pop() if len(found) == 1 else None


def _marked(text: str, n_choices: int) -> int | None:
    letters = [next(g for g in m.groups() if g) for m in _MARKED_RE.finditer(text)]
    return _unique([_index(x, n_choices) for x in letters])


def _standalone(text: str, n_choices: int) -> int | None:
    indices: list[int | None] = []
    for m in _CAPITAL_RE.finditer(text):
        if _is_word(m.group(1), m.group("next")):
            continue
        indices.append(_index(m.group(1), n_choices))
    return _unique(indices)


def extract_letter(text: str, n_choices: int) -> int | None:
    """0-based index of the answer letter in a generated answer, or None if there is no clear one.

    See the module docstring for the precedence of the four rules.
    """
    if not 1 <= n_choices <= 26:
        raise ValueError(f"n_choices must be between 1 and 26, got {n_choices}")
    for rule in (_explicit, _leading, _marked, _standalone):
        i = rule(text, n_choices)
        if i is not None:
            return i
    return None
