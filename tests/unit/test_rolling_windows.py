"""The one rolling-window split every backend uses for whole-text log-likelihoods (perplexity):
it must be lm-eval's, window for window, or bench's perplexities differ from lm-eval's on any text
longer than one window."""

from __future__ import annotations

import pytest

from bench.backends.base import rolling_windows
from bench.errors import BackendError


def test_windows_equal_lm_evals_for_every_length_and_window() -> None:
    utils = pytest.importorskip("lm_eval.utils", reason="needs the lmeval extra")
    for n in range(0, 40):
        toks = list(range(100, 100 + n))
        for max_len in (1, 2, 4, 7, 8, 50):
            want = [
                utils.make_disjoint_window(w)
                for w in utils.get_rolling_token_windows(
                    toks, prefix_token=7, max_seq_len=max_len, context_len=1
                )
            ]
            assert rolling_windows(toks, 7, max_len) == [(list(c), list(x)) for c, x in want], (n, max_len)


def test_every_token_once_and_every_window_within_max_len_plus_one() -> None:
    toks = list(range(100, 111))  # 11 tokens
    windows = rolling_windows(toks, 1, 4)
    assert windows == [
        ([1], [100, 101, 102, 103]),
        ([103], [104, 105, 106, 107]),
        ([106, 107], [108, 109, 110]),
    ]
    assert [t for _, x in windows for t in x] == toks
    assert max(len(c) + len(x) for c, x in windows) == 5
    assert rolling_windows([], 1, 4) == []
    with pytest.raises(BackendError, match="max_len >= 1"):
        rolling_windows(toks, 1, 0)
