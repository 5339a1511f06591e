"""A backend that answers from a stored run's rows instead of a model (bench rescore).

Each request is answered from the stored row of its item: the raw output of a generation, the
choice log-likelihoods of a multiple-choice item, the log-likelihood of a whole text, with the
tokens and timings measured in the run. It loads and calls nothing. A request the rows cannot
answer raises `NeedsModel`: an item never stored, a prompt or token limit that changed since the
run, or an answer of another kind (lm-eval's rows lack the greedy flags its metrics may read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.backends.base import (
    GenerateRequest,
    GenerateResponse,
    LoglikelihoodRequest,
    LoglikelihoodResponse,
    ModelInfo,
    RollingRequest,
    RollingResponse,
)
from bench.errors import BenchError

__all__ = ["NeedsModel", "ReplayBackend"]

_GENERATED = ("generate", "chat", "generate_letter", "chat_letter")


class NeedsModel(BenchError):
    """A task asked for something the stored rows do not hold: only the model could answer it."""


class ReplayBackend:
    """A backend that answers from one (model, task)'s stored rows; it loads and calls nothing."""

    name = "replay"

    def __init__(self, model: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.model = model
        self.rows = {str(r["item_id"]): r for r in rows}
        methods = {r.get("method") for r in rows}
        self._info = ModelInfo(
            name=model,
            backend=self.name,
            chat_template=bool(methods & {"chat", "chat_letter"}),
            loglikelihood=not (methods & {"generate_letter", "chat_letter"}),
        )

    def info(self) -> ModelInfo:
        return self._info

    def _row(self, item_id: str, wanted: tuple[str, ...], what: str) -> Mapping[str, Any]:
        row = self.rows.get(item_id)
        if row is None:
            raise NeedsModel(f"item {item_id!r} has no stored answer (a re-run is needed)")
        if row.get("method") not in wanted:
            raise NeedsModel(f"the task asks for {what}; the stored rows hold {row.get('method')!r} answers")
        return row

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResponse]:
        out = []
        for r in reqs:
            row = self._row(r.item_id, _GENERATED, "generations")
            if row.get("max_tokens") is not None and row["max_tokens"] != r.max_tokens:
                raise NeedsModel(
                    f"item {r.item_id!r}: max_tokens is {r.max_tokens}, the stored output had {row['max_tokens']}"
                )
            if row.get("prompt") is not None and row["prompt"] != r.prompt:
                raise NeedsModel(f"item {r.item_id!r}: the prompt changed since the run")
            out.append(
                GenerateResponse(
                    text=row.get("raw_output") or "",
                    input_tokens=row.get("input_tokens"),
                    output_tokens=row.get("output_tokens") or 0,
                    ttft_s=row.get("ttft_s"),
                    latency_s=row.get("latency_s") or 0.0,
                    finish_reason=row.get("finish_reason"),
                )
            )
        return out

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResponse]:
        out = []
        for r in reqs:
            row = self._row(r.item_id, ("loglikelihood",), "choice log-likelihoods")
            lls = row.get("choice_logliks")
            if lls is None or len(lls) != len(r.pairs):
                raise NeedsModel(f"item {r.item_id!r}: {len(r.pairs)} choices asked, stored {len(lls or [])}")
            if row.get("prompt") is not None and r.pairs and row["prompt"] != r.pairs[0][0]:
                raise NeedsModel(f"item {r.item_id!r}: the prompt changed since the run")
            out.append(
                LoglikelihoodResponse(
                    logliks=[float(x) for x in lls],
                    is_greedy=[False] * len(lls),  # not stored; bench's own mcq scoring never reads it
                    continuation_tokens=[0] * len(lls),
                    input_tokens=row.get("input_tokens") or 0,
                    tokens_evaluated=row.get("tokens_evaluated") or 0,
                    latency_s=row.get("latency_s") or 0.0,
                )
            )
        return out

    def loglikelihood_rolling(self, reqs: Sequence[RollingRequest]) -> list[RollingResponse]:
        out = []
        for r in reqs:
            row = self._row(r.item_id, ("loglikelihood_rolling",), "whole-text log-likelihoods")
            scores = dict(row.get("scores") or {})
            if "nll" not in scores:
                raise NeedsModel(f"item {r.item_id!r}: no stored log-likelihood")
            if row.get("prompt") is not None and row["prompt"] != r.text:
                raise NeedsModel(f"item {r.item_id!r}: the text changed since the run")
            out.append(
                RollingResponse(
                    loglik=-float(scores["nll"]),
                    tokens=row.get("input_tokens") or 0,
                    tokens_evaluated=row.get("tokens_evaluated") or 0,
                    latency_s=row.get("latency_s") or 0.0,
                )
            )
        return out

    def close(self) -> None:
        pass
