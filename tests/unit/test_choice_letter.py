"""Answer-letter extraction from generated multiple-choice answers, rule by rule."""

from __future__ import annotations

import pytest

from bench.metrics.choice_letter import extract_letter

A, B, C, D, E = range(5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 1. explicit answer statements (the last one wins)
        ("The answer is B", B),
        ("The answer is B.", B),
        ("the answer is (c)", C),
        ("Answer: b) Paris", B),
        ("Answer: D", D),
        ("**Answer:** D", D),
        ("**Answer**: (A)", A),
        ("Final answer: (a)", A),
        ("The correct answer is: C", C),
        ("The answer would be option C", C),
        ("The answer is **C**", C),
        ("Answer - B", B),
        ("The answer is E. Actually, the answer is B", B),
        ("A dog is a mammal, so the answer is C.", C),
        ("(A) looks plausible, but the answer is (D).", D),
        ("The answer is a bit unclear, but (D)", D),  # lowercase unmarked "a" is the article
        (r"Therefore $\boxed{C}$", C),
        (r"\boxed{\text{(B)}}", B),
        ("The answer is I.", None),  # beyond the 4 choices, and nothing else to go on
        ("The answer is 42", None),
        # 2. the output opens with the letter
        ("B", B),
        ("b", B),
        ("(B)", B),
        ("B.", B),
        ("B)", B),
        ("[B]", B),
        ("**C**", C),
        ("  \n**B.** Because the others are wrong.", B),
        ("C: the mitochondria", C),
        ("c) blue", C),
        ("B, because it is larger", B),
        ("D is the correct choice", D),
        ("A is correct", A),
        ("A because it is the largest", A),
        ("(A) is wrong, (C) is right", A),  # a leading marker wins over later ones
        ("Option C", C),
        # 3. marked letters anywhere
        ("I think it's (C).", C),
        ("Looking at the options, **B** fits best.", B),
        ("My pick: [D]", D),
        ("I'd go with option B here", B),
        ("Not sure, (B) maybe, yes (B)", B),
        ("Not (A); I'd go with (C)", None),  # two different marks: ambiguous
        # 4. standalone capitals
        ("I think B", B),
        ("I'd pick B here", B),
        ("It's A good guess: B", B),  # "A good" is the article
        ("Probably D, given the data", D),
        ("B or C", None),
        ("B and C are both plausible", None),
        # nothing usable
        ("A dog is a mammal.", None),
        ("a dog is a mammal.", None),
        ("I", None),
        ("I.", None),
        ("I don't know", None),
        ("E", None),
        ("(E)", None),
        ("The capital of France is Paris.", None),
        ("", None),
        ("   ", None),
    ],
)
def test_extract_letter(text: str, expected: int | None) -> None:
    assert extract_letter(text, 4) == expected


@pytest.mark.parametrize(
    ("text", "n_choices", "expected"),
    [
        ("E", 5, E),
        ("E", 4, None),
        ("The answer is E. Actually, the answer is B", 5, B),
        ("The answer is B. No wait, the answer is E", 4, B),  # E is skipped, B remains
        ("The answer is I.", 9, 8),
        ("I.", 9, 8),
        ("I think", 9, None),  # still the pronoun
        ("(J)", 10, 9),
        ("Z", 26, 25),
        ("B", 1, None),
        ("A", 1, A),
        ("(C) or (E)", 4, C),  # E is out of range
    ],
)
def test_extract_letter_respects_n_choices(text: str, n_choices: int, expected: int | None) -> None:
    assert extract_letter(text, n_choices) == expected


@pytest.mark.parametrize("n_choices", [0, -1, 27])
def test_bad_n_choices_raise(n_choices: int) -> None:
    with pytest.raises(ValueError):
        extract_letter("A", n_choices)
