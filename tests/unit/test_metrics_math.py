"""GSM8K and MATH-500 per-item scoring, cross-checked against lm-eval's own gsm8k / minerva code."""

from __future__ import annotations

import ast
import re
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml

from bench.metrics import math as bm
from bench.metrics.math import (
    GsmExtraction,
    extract_gsm8k,
    extract_math_answer,
    is_math_equiv,
    normalize_final_answer,
    normalize_number,
    score_gsm8k,
    score_math,
)

GSM_REF = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18"

# --------------------------------------------------------------------------------------------------
# GSM8K
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "strict", "flexible"),
    [
        ("She makes 9 * 2 = $18 every day.\n#### 18", "18", "18"),
        ("#### -5", "-5", "-5"),
        ("#### 1,234", "1,234", "1,234"),
        ("####5", "5", "5"),  # no space: lm-eval needs one, bench does not
        ("#### $18", "18", "$18"),
        ("The answer is 1,234.", "1,234.", "1,234."),
        ("So the answer is -3.5.", "-3.5.", "-3.5."),
        ("The answer is 18", "18", "18"),  # lm-eval's gsm8k-cot regex would give "1" here
        ("The answer is: $42.", "42.", "$42."),
        ("The answer is 5. #### 6", "6", "6"),  # "####" takes precedence
        ("#### 7 and later #### 8", "7", "8"),  # first strict match, last flexible one
        ("The answer is 42.\nThe answer is 43.", "42.", "43."),
        ("First 12, then 15, finally 20 apples.", None, "20"),
        ("It costs 18 dollars.", None, "18"),
        ("Answer: 0", None, "0"),
        ("The result is 10. Hmm...", None, "..."),  # lm-eval flexible-extract quirk, kept
        ("#### ...", None, "..."),
        ("No numbers here.", None, None),
        ("", None, None),
    ],
)
def test_extract_gsm8k(text: str, strict: str | None, flexible: str | None) -> None:
    assert extract_gsm8k(text) == GsmExtraction(strict=strict, flexible=flexible)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("18", "18"),
        ("$18", "18"),
        ("18$", "18"),
        ("\\$18", "18"),
        ("18 dollars", "18"),
        ("18 km/h", "18"),
        ("18%", "18"),
        ("18 percent", "18"),
        ("18.00", "18"),
        ("18.50", "18.5"),
        ("18.", "18"),
        ("18...", "18"),
        (".5", "0.5"),
        ("1,234", "1234"),
        ("1,234.50", "1234.5"),
        ("1000", "1000"),
        ("100.0", "100"),
        ("-5", "-5"),
        ("-$5", "-5"),
        ("$-5", "-5"),
        ("−3", "-3"),
        ("+7", "7"),
        ("-0", "0"),
        ("0.000", "0"),
        (" 42 ", "42"),
        ("abc", None),
        ("", None),
        ("...", None),
        ("1/2", None),
        ("1e5", None),
        ("--5", None),
        ("5 - 3", None),
        ("18.5.4", None),
    ],
)
def test_normalize_number(raw: str, expected: str | None) -> None:
    assert normalize_number(raw) == expected


@pytest.mark.parametrize(
    ("text", "reference", "strict", "flexible"),
    [
        ("9 * 2 = 18\n#### 18", GSM_REF, 1.0, 1.0),
        ("9 * 2 = 18\n#### 18", "18", 1.0, 1.0),
        ("#### 17", GSM_REF, 0.0, 0.0),
        ("The answer is 1,234.", "1234", 1.0, 1.0),
        ("The answer is 1,234.", "1,234", 1.0, 1.0),
        ("#### -5", "-5", 1.0, 1.0),
        ("#### 5", "-5", 0.0, 0.0),
        ("The answer is -12.", "-12", 1.0, 1.0),
        ("#### 18.00", "18", 1.0, 1.0),
        ("#### 18.50", "18.5", 1.0, 1.0),
        ("She pays $18.00 in total. The answer is $18.00.", "18", 1.0, 1.0),
        ("It costs 18 dollars.", "18", 0.0, 1.0),
        ("The discount is 18%.", "18", 0.0, 1.0),
        ("The answer is 18, since 20 - 2 = 18", "18", 1.0, 1.0),
        ("The answer is 18. Check: 20 - 3 = 17", "18", 1.0, 0.0),
        ("I get 3,000,000 in the end", "3000000", 0.0, 1.0),
        ("The answer is 5. Let me double check...", "5", 1.0, 0.0),
        ("I don't know.", "5", 0.0, 0.0),
        ("#### 1000", "1,000", 1.0, 1.0),
    ],
)
def test_score_gsm8k(text: str, reference: str, strict: float, flexible: float) -> None:
    s = score_gsm8k(text, reference)
    assert (s["exact_match_strict"], s["exact_match_flexible"]) == (strict, flexible)
    ex = extract_gsm8k(text)
    assert (s["extracted_strict"], s["extracted_flexible"]) == (ex.strict, ex.flexible)


# Outputs for the lm-eval cross-check: (output, numeric gold, which bench score may differ).
# "strict"/"flexible" mark cases where bench's extras (digit-only captures, "$", no space after
# "####", numeric normalization, no trailing character after "The answer is N") apply; there bench
# must score 1 and lm-eval 0. Everywhere else both must agree exactly.
LM_EVAL_CASES: list[tuple[str, str, set[str]]] = [
    ("Janet sells 16 - 3 - 4 = 9 duck eggs a day. She makes 9 * 2 = $18 every day.\n#### 18", "18", set()),
    ("#### 18", "17", set()),
    ("#### -5", "-5", set()),
    ("#### 1,234,567", "1234567", set()),
    ("She has $1,000 left.\n#### 1000", "1000", set()),
    ("2 + 2 = 4. So 4 x 3 = 12.\n#### 12", "12", set()),
    ("#### 7 #### 8", "7", set()),
    ("#### 0.5", "0.5", set()),
    ("The answer is 5. #### 6", "6", set()),
    ("The answer is 18.", "18", set()),
    ("The answer is 1,234.", "1234", set()),
    ("So the answer is -3.5.", "-3.5", {"strict"}),  # lm-eval wants a capital T
    ("The answer is 12.\n", "12", set()),
    ("The answer is 42.\nThe answer is 43.", "42", set()),
    ("The answer is 42.\nThe answer is 43.", "43", set()),
    ("No numbers here.", "5", set()),
    ("First 12, then 15, finally 20 apples.", "20", set()),
    ("It costs 18 dollars.", "18", set()),
    ("We get 18%.", "18", set()),
    ("Total: 3,000,000", "3000000", set()),
    ("The temperature drops to -7 degrees", "-7", set()),
    ("Let me think... #### 5", "5", set()),
    ("The result is 10. Hmm...", "10", set()),
    ("She lost -$5", "-5", set()),
    ("Answer: 0", "0", set()),
    ("The answer is 100, not 1000.", "100", set()),
    ("#### 1000.00", "1000", {"strict", "flexible"}),
    ("#### 18.50", "18.5", {"strict", "flexible"}),
    ("The answer is 18", "18", {"strict"}),
    ("The answer is $18.", "18", {"strict"}),
    ("She pays $18.00.", "18", {"flexible"}),
    ("answer 5...", "5", {"flexible"}),
    ("####5", "5", {"strict"}),
    ("the answer is 9.", "9", {"strict"}),
]


def _lm_eval_gsm8k() -> Any:
    """lm-eval's gsm8k / gsm8k-cot filters and metric, built from the installed task YAMLs."""
    lm_eval = pytest.importorskip(
        "lm_eval", reason="lm-eval is the reference here: pip install 'bench[lmeval]'"
    )
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    tasks = Path(lm_eval.__file__).parent / "tasks" / "gsm8k"
    cfg = yaml.safe_load((tasks / "gsm8k.yaml").read_text())
    cot = yaml.safe_load((tasks / "gsm8k-cot.yaml").read_text())

    def filt(config: dict[str, Any], name: str) -> Any:
        (entry,) = [f for f in config["filter_list"] if f["name"] == name]
        step = entry["filter"][0]
        assert step["function"] == "regex" and entry["filter"][1]["function"] == "take_first"
        return RegexFilter(regex_pattern=step["regex_pattern"], group_select=step.get("group_select", 0))

    (metric,) = cfg["metric_list"]
    assert [m["regexes_to_ignore"] for m in cot["metric_list"]] == [metric["regexes_to_ignore"]]

    def em(pred: str, ref: str) -> float:
        return float(
            exact_match_hf_evaluate(
                predictions=[pred],
                references=[ref],
                regexes_to_ignore=metric["regexes_to_ignore"],
                ignore_case=metric["ignore_case"],
                ignore_punctuation=metric["ignore_punctuation"],
            )["exact_match"]
        )

    def run(f: Any, text: str) -> str:
        return str(f.apply([[text]], [{}])[0][0])  # take_first

    strict, cot_strict, flexible = (
        filt(cfg, "strict-match"),
        filt(cot, "strict-match"),
        filt(cfg, "flexible-extract"),
    )

    def scores(text: str, gold: str) -> tuple[float, float]:
        hashed = run(strict, text)
        # bench's strict = gsm8k's strict-match when "####" matched, else gsm8k-cot's
        s = em(hashed, f"... #### {gold}") if hashed != "[invalid]" else em(run(cot_strict, text), gold)
        return s, em(run(flexible, text), f"... #### {gold}")

    return scores


def test_gsm8k_agrees_with_lm_eval() -> None:
    lm_scores = _lm_eval_gsm8k()
    assert len(LM_EVAL_CASES) >= 30
    for text, gold, differs in LM_EVAL_CASES:
        lm_strict, lm_flex = lm_scores(text, gold)
        ours = score_gsm8k(text, f"Some reasoning.\n#### {gold}")
        for key, lm in (("strict", lm_strict), ("flexible", lm_flex)):
            got = ours[f"exact_match_{key}"]  # type: ignore[literal-required]
            if key in differs:
                assert (got, lm) == (1.0, 0.0), (text, key)
            else:
                assert got == lm, (text, key, got, lm)


# --------------------------------------------------------------------------------------------------
# MATH-500: extraction
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so the answer is $\boxed{5}$.", "5"),
        (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),
        (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}"),
        (r"first \boxed{1}, then \boxed{2}", "2"),
        (r"\boxed{3} and a truncated \boxed{\frac{1}{", "3"),
        (r"\fbox{7}", "7"),
        (r"\boxed{1} then \fbox{7}", "7"),
        (r"\boxed 5$ is it", "5"),
        (r"$\boxed{(1, 2]}$", "(1, 2]"),
        (r"\boxed{\text{(A)}}", r"\text{(A)}"),
        (r"\boxed{ x = 5 }", "x = 5"),
        (r"\boxed{}", ""),
        ("We have 30n = 480.\nFinal Answer: The final answer is $16$. I hope it is correct.", "16"),
        ("Final Answer: The final answer is $[2,5)$. I hope it is correct.", "[2,5)"),
        ("Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.", r"-\frac{2}{3}"),
        ("Final Answer: The final answer is 5.5. I hope it is correct.", "5.5"),
        ("Final Answer: The final answer is $5$", "5"),  # cut off before "I hope it is correct."
        ("Final Answer: The final answer is 12", "12"),
        (r"= \boxed{24}.\nFinal Answer: The final answer is $24$. I hope it is correct.", "24"),
        ("The answer is 5.", None),
        ("", None),
        (r"\boxed{unclosed", None),
        (r"\boxedfoo{3}", None),
    ],
)
def test_extract_math_answer(text: str, expected: str | None) -> None:
    assert extract_math_answer(text) == expected


# --------------------------------------------------------------------------------------------------
# MATH-500: equivalence
# --------------------------------------------------------------------------------------------------

EQUIV_CASES: list[tuple[str, str, bool]] = [
    (r"\frac{1}{2}", "0.5", True),
    (r"\dfrac12", r"\frac{1}{2}", True),
    (r"\tfrac{1}{2}", "0.5", True),
    (r"\frac12", "1/2", True),
    (r"2\sqrt{2}", r"\sqrt{8}", True),
    (r"\sqrt{117}", r"3\sqrt{13}", True),
    ("(1, 2]", "(1,2]", True),
    ("(1,2)", "(1,2]", False),
    (r"(-\infty, 3)", r"(-\infty,3)", True),
    ("(3, 4)", "(3,4)", True),
    ("(4,3)", "(3, 4)", False),
    (r"\{2,1\}", r"\{1,2\}", True),
    ("x = 5", "5", True),
    ("x=5", "5", True),
    ("5", "5", True),
    (r"\text{(A)}", "A", True),
    ("(A)", r"\text{(A)}", True),
    (r"\text{(B)}", r"\text{(A)}", False),
    (r"\text{Evelyn}", r"\text{Evelyn}", True),
    (r"90^\circ", "90", True),
    ("90", r"90^{\circ}", True),
    (r"5\text{ cm}", "5", True),
    (r"\$18", "18", True),
    ("1,000", "1000", True),
    (r"11,\! 111,\! 111,\! 100", "11111111100", True),
    ("0.33", "1/3", False),
    ("0.33", r"\frac{1}{3}", False),
    ("0.333", r"\frac13", False),
    (r"\frac{-2}{3}", r"-\frac{2}{3}", True),
    ("(x+1)^2", "x^2+2x+1", True),
    (r"\pi", r"\pi", True),
    ("3.14", r"\pi", False),
    ("4", "3", False),
    ("-3", "3", False),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", True),
    ("", "5", False),
]


@pytest.mark.parametrize(("pred", "ref", "equal"), EQUIV_CASES)
def test_is_math_equiv(pred: str, ref: str, equal: bool) -> None:
    assert is_math_equiv(pred, ref) is equal


# Without math-verify, the sympy fallback still gets the common cases; these are the ones it must.
FALLBACK_CASES = [
    (r"\frac{1}{2}", "0.5", True),
    (r"\dfrac12", r"\frac{1}{2}", True),
    (r"2\sqrt{2}", r"\sqrt{8}", True),
    ("(1, 2]", "(1,2]", True),
    ("x = 5", "5", True),
    (r"\text{(A)}", "A", True),
    (r"90^\circ", "90", True),
    ("(x+1)^2", "x^2+2x+1", True),
    ("0.33", "1/3", False),
    ("4", "3", False),
    (r"\text{(B)}", "A", False),
    ("__import__('os').getcwd()", "1", False),  # never reaches eval
    (r"9^{9^{9}}", "5", False),  # refused, not computed
]


@pytest.mark.parametrize(("pred", "ref", "equal"), FALLBACK_CASES)
def test_sympy_fallback(pred: str, ref: str, equal: bool) -> None:
    assert is_math_equiv(pred, ref, use_math_verify=False) is equal


@pytest.mark.parametrize(
    ("text", "reference", "exact_match", "extracted"),
    [
        (r"So $x = \boxed{\dfrac{1}{2}}$.", "0.5", 1.0, r"\dfrac{1}{2}"),
        (r"\boxed{0.33}", r"\frac{1}{3}", 0.0, "0.33"),
        ("Final Answer: The final answer is $[2,5)$. I hope it is correct.", "[2,5)", 1.0, "[2,5)"),
        # the reference may be a full solution: its last box is the answer
        (r"\boxed{24}", r"We have $(2)(12) = \boxed{24}.$", 1.0, "24"),
        (r"\boxed{25}", r"We have $(2)(12) = \boxed{24}.$", 0.0, "25"),
        ("The answer is 24.", "24", 0.0, None),  # no box, no minerva line: nothing to score
        (r"\boxed{B}", r"\text{(B)}", 1.0, "B"),
        (r"\boxed{90^\circ}", "$90$", 1.0, r"90^\circ"),
    ],
)
def test_score_math(text: str, reference: str, exact_match: float, extracted: str | None) -> None:
    assert score_math(text, reference) == {"exact_match": exact_match, "extracted": extracted}


def test_hard_item_is_cut_off_by_the_budget() -> None:
    start = time.monotonic()
    assert is_math_equiv(r"2^{2^{40}}", "5", budget_s=0.5) is False
    assert time.monotonic() - start < 1.5
    assert is_math_equiv(r"\frac{1}{2}", "0.5", budget_s=1.0) is True  # and scoring goes on


def test_budget_leaves_an_outer_timer_alone() -> None:
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        fired.append(signum)

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert is_math_equiv(r"2\sqrt{2}", r"\sqrt{8}") is True
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < remaining <= 30.0
        assert signal.getsignal(signal.SIGALRM) is handler
        assert not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_budget_holds_off_the_main_thread() -> None:
    """No SIGALRM outside the main thread: the item runs in a helper process that is killed."""
    results: list[tuple[bool, bool, float]] = []

    def work() -> None:
        assert is_math_equiv("1/2", "0.5", budget_s=1.0)  # starts the helper (not timed)
        start = time.monotonic()
        hard = is_math_equiv(r"2^{2^{40}}", "5", budget_s=0.5)
        elapsed = time.monotonic() - start
        easy = is_math_equiv(r"2\sqrt{2}", r"\sqrt{8}", budget_s=5.0)  # a fresh helper after the kill
        results.append((hard, easy, elapsed))

    try:
        t = threading.Thread(target=work)
        t.start()
        t.join(timeout=60)
    finally:
        bm.shutdown_helper()
    assert len(results) == 1
    hard, easy, elapsed = results[0]
    assert (hard, easy) == (False, True)
    assert elapsed < 2.5  # 0.5 s budget + killing the helper


# --------------------------------------------------------------------------------------------------
# Cross-check with lm-eval's minerva_math helpers
# --------------------------------------------------------------------------------------------------


def _lm_eval_minerva() -> dict[str, Any]:
    """lm-eval's minerva_math string helpers, without importing the module: its import insists on
    antlr4 4.11 for sympy's LaTeX parser, while math-verify installs 4.13."""
    lm_eval = pytest.importorskip(
        "lm_eval", reason="lm-eval is the reference here: pip install 'bench[lmeval]'"
    )
    source = (Path(lm_eval.__file__).parent / "tasks" / "minerva_math" / "utils.py").read_text()
    wanted = {
        "SUBSTITUTIONS",
        "REMOVED_EXPRESSIONS",
        "normalize_final_answer",
        "last_boxed_only_string",
        "remove_boxed",
        "get_unnormalized_answer",
    }
    nodes: list[ast.stmt] = [
        n
        for n in ast.parse(source).body
        if (isinstance(n, ast.FunctionDef) and n.name in wanted)
        or (isinstance(n, ast.Assign) and {getattr(t, "id", None) for t in n.targets} & wanted)
    ]
    namespace: dict[str, Any] = {"re": re}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), "minerva_utils", "exec"), namespace)
    missing = wanted - namespace.keys()
    if missing:
        pytest.skip(f"lm-eval's minerva_math utils changed: {sorted(missing)} not found")
    return namespace


NORMALIZE_INPUTS = [
    "5",
    "x = 5",
    r"\frac12",
    r"\dfrac{1}{2}",
    r"\sqrt2",
    r"\sqrt[3]{8}",
    r"90^\circ",
    r"90^{\circ}",
    r"\text{(A)}",
    r"\textbf{yes}",
    r"5\text{ cm}",
    "10 dollars",
    "1,000,000",
    "0,1",
    r"\$18",
    r"\left( 3, \frac{\pi}{2} \right)",
    r"2\pi cm",
    r"\overline{AB}",
    r"\{1, 2\}",
    r"\mbox{odd}",
    "an apple",
]


def test_normalize_final_answer_is_lm_evals() -> None:
    ns = _lm_eval_minerva()
    for s in NORMALIZE_INPUTS:
        assert normalize_final_answer(s) == ns["normalize_final_answer"](s), s


@pytest.mark.parametrize(
    "text",
    [
        r"so $\boxed{5}$.",
        r"$\boxed{\frac{1}{2}}$",
        r"\boxed{\frac{\sqrt{3}}{2}} is it",
        r"first \boxed{1}, then \boxed{2}",
        r"\fbox{7}",
        r"\boxed{(1, 2]}",
        "We have 30n = 480.\nFinal Answer: The final answer is $16$. I hope it is correct.",
        "Final Answer: The final answer is $[2,5)$. I hope it is correct.",
        "Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.",
        "Final Answer: The final answer is 5.5. I hope it is correct.",
        # not "Final Answer: The final answer is $5$" (cut off): lm-eval's regex then needs a space
        # before its appended "I hope it is correct." and gives [invalidanswer]; bench reads 5.
    ],
)
def test_extraction_agrees_with_lm_eval(text: str) -> None:
    """Same answer (after minerva normalization) as lm-eval's gold (box) / prediction (line) path."""
    ns = _lm_eval_minerva()
    if "Final Answer" in text:
        lm = ns["get_unnormalized_answer"](text)
    else:
        boxed = ns["last_boxed_only_string"](text)
        lm = ns["remove_boxed"](boxed) if boxed.startswith("\\boxed") else boxed[len("\\fbox{") : -1]
    ours = extract_math_answer(text)
    assert ours is not None
    assert normalize_final_answer(ours) == ns["normalize_final_answer"](lm)


@pytest.mark.parametrize("budget", [0.0, -1.0])
def test_budget_must_be_positive(budget: float) -> None:
    with pytest.raises(ValueError):
        is_math_equiv("1", "1", budget_s=budget)
