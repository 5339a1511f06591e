"""The pieces every spec is built from: strict frozen models, and the fields that models and tasks share.

Light to import (pydantic only), so plugins can define their spec classes without importing bench.config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(Strict):
    """$ per million tokens of a hosted model: typed, or named from bench's dated price table
    (bench/prices.py): `price: gpt-4o-mini`, or `{table: gpt-4o-mini, output_per_mtok: 0.5}` where
    a number given wins. The table's numbers and date are filled in when the suite is read, so the
    stored suite keeps the prices used and when they were taken."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
    table: str | None = Field(default=None, description="a model name in bench's price table")
    as_of: str | None = Field(default=None, description="the date of the table's prices (filled in)")

    @model_validator(mode="before")
    @classmethod
    def _from_table(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = {"table": v}
        if not isinstance(v, dict) or v.get("table") is None:
            return v
        given = {k for k in ("input_per_mtok", "output_per_mtok") if v.get(k) is not None}
        if len(given) == 2:  # nothing comes from the table (or it was filled in before)
            return v
        from bench.prices import lookup

        e = lookup(str(v["table"]))
        table = {"input_per_mtok": e.input_per_mtok, "output_per_mtok": e.output_per_mtok, "as_of": e.as_of}
        return {**table, **{k: x for k, x in v.items() if x is not None}}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without the table fields when unused: typed prices dump (and hash) as they always did."""
        out = dict(handler(self))
        for k in ("table", "as_of"):
            if out.get(k) is None:
                out.pop(k, None)
        return out


class ModelSpecBase(Strict):
    """What every model entry has; a backend's spec adds `backend: Literal[<its name>]` and its options."""

    if TYPE_CHECKING:  # declared by every subclass as a Literal; here only for the type checker
        backend: str

    name: str = Field(min_length=1)
    price: Price | None = None
    max_memory_mb: float | None = Field(
        default=None, gt=0, description="kill the model's worker when its resident memory exceeds this"
    )


class LocalDataset(Strict):
    """A local jsonl / json / csv / parquet file."""

    path: str
    format: Literal["auto", "jsonl", "json", "csv", "parquet"] = "auto"


class HubDataset(Strict):
    """A Hugging Face hub dataset, loaded with `datasets` (needs the hub)."""

    hub: str
    config: str | None = None
    split: str = "test"
    revision: str | None = None


DatasetRef = str | LocalDataset | HubDataset


class FieldMap(Strict):
    """Where a custom dataset keeps the parts of a multiple-choice item."""

    id: str | None = None
    question: str = "question"
    choices: str = "choices"
    answer: str = "answer"
    answer_type: Literal["auto", "text", "index", "letter"] = Field(
        default="auto",
        description="how to read the answer; auto: a choice text, else a 0-based index or a letter, "
        "and an error when these point at different choices",
    )


class GenFieldMap(Strict):
    """Where a custom dataset keeps the parts of a generative item."""

    id: str | None = None
    input: str = Field(default="question", description="the question / document")
    target: str = Field(default="answer", description="the reference answer / summary (a list for QA)")
    context: str | None = Field(default=None, description="QA: the passage")


def dataset_label(ref: DatasetRef) -> str:
    """A dataset as results name it: the catalog name, the file's path or the hub id."""
    if isinstance(ref, str):
        return ref
    return str(getattr(ref, "path", None) or getattr(ref, "hub", "custom"))


class TaskSpecBase(Strict):
    """What every task entry has; a kind's spec adds `kind: Literal[<its name>]` and its options.

    limit .. mode override the suite defaults (None: the suite's)."""

    if TYPE_CHECKING:  # declared by every subclass as a Literal; here only for the type checker
        kind: str

    name: str = Field(min_length=1)
    limit: int | None = Field(default=None, ge=1)
    num_fewshot: int | None = Field(default=None, ge=0)
    seed: int | None = None
    batch_size: int | None = Field(default=None, ge=1)
    mode: Literal["throughput", "latency"] | None = None

    def stored_dataset(self) -> str:
        """The `dataset` column of this task's results."""
        return "custom"


class DatasetTaskSpec(TaskSpecBase):
    """A task over a dataset: a catalog name, a local file or a hub dataset."""

    dataset: DatasetRef
    split: str | None = Field(default=None, description="catalog split; default: the dataset's own")

    def stored_dataset(self) -> str:
        return dataset_label(self.dataset)


class GenerativeOptions(Strict):
    """Options shared by the tasks that ask the model to write."""

    prompt: str | None = Field(default=None, description="Jinja template of the request; default: the kind's")
    max_tokens: int | None = Field(default=None, ge=1, description="generation limit; default: the kind's")
    stop: list[str] | None = Field(default=None, description="stop sequences; default: the kind's")
    chat: Literal["auto", "always", "never"] = Field(
        default="auto", description="wrap the prompt in the model's chat template: auto = when it has one"
    )
    system: str | None = Field(default=None, description="system message when the chat template is used")
    cot: bool = Field(default=False, description="ask for step-by-step reasoning before the answer")
