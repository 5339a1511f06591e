"""Where the offline summarization files come from, and what happens without them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.data import dataset_status, load_dataset, summarization
from bench.errors import DataError


def test_env_dir_wins_and_files_are_read_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "xsum.jsonl").write_text(
        json.dumps({"id": "a1", "document": "Doc text.", "summary": "Sum."}) + "\n"
    )
    monkeypatch.setenv(summarization.ENV, str(tmp_path))
    assert summarization.local_file("xsum") == tmp_path / "xsum.jsonl"
    assert load_dataset("xsum") == [{"id": "a1", "document": "Doc text.", "summary": "Sum."}]
    assert dataset_status("xsum") == "available"


def test_shared_copy_beside_the_checkout_is_found() -> None:
    p = summarization.local_file("cnn_dailymail")
    if p is None:
        pytest.skip("no ../shared/data/summarization beside this checkout")
    rows = load_dataset("cnn_dailymail")
    assert len(rows) == 150 and all(r["document"] and r["summary"] for r in rows)


def test_bad_record_and_missing_files_give_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "xsum.jsonl").write_text(json.dumps({"id": "a1", "document": "", "summary": "Sum."}) + "\n")
    monkeypatch.setenv(summarization.ENV, str(tmp_path))
    with pytest.raises(DataError, match=r"xsum: record 0 \(id a1\): missing or empty field 'document'"):
        load_dataset("xsum")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(summarization, "candidate_dirs", lambda: [empty])
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"no offline copy .*set BENCH_SUMMARIZATION_DIR"):
        load_dataset("xsum")
