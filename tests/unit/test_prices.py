"""The dated price table: suites name a hosted model's prices, numbers given win, unknown names are one
line with the close ones, typed prices hash as before, and every cost from the table shows its date."""

from __future__ import annotations

import copy
import datetime as dt
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from bench import store
from bench.cli import app
from bench.config import parse_suite
from bench.errors import ConfigError
from bench.prices import lookup, price_notes, price_table, table_date
from bench.runner import NullDisplay, execute, plan_run
from tests.conftest import fake_suite


def _suite(price: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": "api", "backend": "fake"}
    if price is not None:
        m["price"] = price
    return {"name": "p", "models": [m], "tasks": [{"name": "t", "kind": "mcq", "dataset": "arc_easy"}]}


def test_the_table_is_dated_sourced_and_says_it_must_be_checked() -> None:
    text = resources.files("bench.catalog").joinpath("prices.yaml").read_text()
    data = yaml.safe_load(text)
    assert dt.date.fromisoformat(table_date()) <= dt.date.today()
    assert "NOT" in text and "Check the" in text  # copied on that date, not re-checked
    table = price_table()
    assert len(table) == len(data["models"]) >= 20
    for e in table.values():
        assert e.provider in data["sources"], e
        assert 0 < e.input_per_mtok <= e.output_per_mtok, e  # output tokens never cost less here
        assert e.as_of == table_date()
    for family in (
        "gpt-4o-mini",
        "gpt-4.1",
        "o4-mini",
        "claude-sonnet-4",
        "gemini-2.5-flash",
        "mistral-large",
    ):
        assert family in table


@pytest.mark.parametrize(
    ("price", "expect"),
    [
        ("gpt-4o-mini", (0.15, 0.60, "gpt-4o-mini", True)),
        ({"table": "gpt-4o-mini"}, (0.15, 0.60, "gpt-4o-mini", True)),
        ({"table": "gpt-4o-mini", "output_per_mtok": 0.5}, (0.15, 0.5, "gpt-4o-mini", True)),  # yours wins
        ({"table": "gpt-4o", "input_per_mtok": 1, "output_per_mtok": 2}, (1.0, 2.0, "gpt-4o", False)),
        ({"input_per_mtok": 1.5}, (1.5, 0.0, None, False)),
    ],
)
def test_a_suite_names_its_prices(price: Any, expect: tuple[float, float, str | None, bool]) -> None:
    s = parse_suite(_suite(price))
    p = s.models[0].price
    assert p is not None
    e = lookup(expect[2]) if expect[2] else None
    assert (p.input_per_mtok, p.output_per_mtok, p.table) == expect[:3]
    assert p.as_of == (e.as_of if expect[3] and e else None)
    again = parse_suite(s.model_dump(mode="json"))  # a worker re-reads the stored suite: nothing moves
    assert again.models[0].price == p and again.suite_hash() == s.suite_hash()


def test_typed_prices_dump_and_hash_as_they_always_did() -> None:
    s = parse_suite(_suite({"input_per_mtok": 1.5, "output_per_mtok": 2}))
    assert s.model_dump(mode="json")["models"][0]["price"] == {"input_per_mtok": 1.5, "output_per_mtok": 2.0}
    assert '"price":{"input_per_mtok":1.5,"output_per_mtok":2.0}' in s.canonical_json()


def test_an_unknown_name_is_one_line_with_the_close_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        parse_suite(_suite("gpt4o-mini"), "s.yaml")
    assert "\n" not in str(e.value)
    assert str(e.value).startswith("s.yaml: models[0].price: ")
    assert "'gpt4o-mini' is not in bench's price table" in str(e.value)
    assert "did you mean 'gpt-4o-mini'" in str(e.value)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(_suite("claude-sonet-4")))
    r = CliRunner().invoke(app, ["validate", str(f)], standalone_mode=True)
    assert r.exit_code != 0
    msg = str(r.exception)
    assert "claude-sonnet-4" in msg and "price table" in msg and "\n" not in msg


def test_costs_from_the_table_use_its_prices_and_show_its_date(tmp_path: Path, mcq_jsonl: Path) -> None:
    cfg = fake_suite(
        mcq_jsonl, models=[{"name": "api", "backend": "fake", "accuracy": 0.5, "price": "o4-mini"}]
    )
    plan = plan_run(parse_suite(copy.deepcopy(cfg)), tmp_path)
    execute(plan, NullDisplay(), executor="inline")
    samples = store.samples_dataset(tmp_path).to_table().to_pylist()
    runs = store.runs_dataset(tmp_path).to_table().to_pylist()
    e = lookup("o4-mini")
    tokens_in = sum(r["input_tokens"] or 0 for r in samples)
    tokens_out = sum(r["output_tokens"] or 0 for r in samples)
    wall = sum(r["wall_s"] for r in samples)
    expected = wall * 3.6 / 3600 + (tokens_in * e.input_per_mtok + tokens_out * e.output_per_mtok) / 1e6
    assert tokens_in > 0
    assert runs[0]["cost_usd"] == pytest.approx(expected, rel=1e-9)

    console = Console(record=True, width=200)
    from bench.display import print_leaderboard

    print_leaderboard(console, tmp_path, plan.run_id, str(plan.dir), None)
    out = console.export_text()
    assert re.search(rf"api: token prices of 'o4-mini' from bench's price table as of {e.as_of}", out), out

    from bench.nightly import judge
    from bench.nightly_report import markdown

    md = markdown(tmp_path, judge(tmp_path, plan.run_id), plan.dir, None)
    assert f"as of {e.as_of}" in md
    cfg["models"] = [{"name": "api", "backend": "fake", "price": {"input_per_mtok": 1, "output_per_mtok": 1}}]
    assert price_notes(parse_suite(cfg).model_dump(mode="json")) == []  # typed prices carry no table date
