"""The Parquet schemas of the results store: one row per item (`SAMPLES_SCHEMA`, samples-*.parquet)
and one row per metric of a (model, task) (`RUNS_SCHEMA`, runs-*.parquet and summary.parquet).
Both begin with the columns that say what produced the row (run, suite, hash, seed, versions,
hardware, task, dataset, model, backend). bench/store.py reads and writes them; README "Results
schema" documents every column."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["RUNS_SCHEMA", "RUN_COLUMNS", "SAMPLES_SCHEMA", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

RUN_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("run_id", pa.string()),
    ("suite", pa.string()),
    ("suite_hash", pa.string()),
    ("seed", pa.int64()),
    ("bench_version", pa.string()),
    ("git_sha", pa.string()),
    ("hardware", pa.string()),
    ("task", pa.string()),
    ("task_kind", pa.string()),
    ("dataset", pa.string()),
    ("model", pa.string()),
    ("backend", pa.string()),
]

SAMPLES_SCHEMA = pa.schema(
    RUN_COLUMNS
    + [
        ("item_id", pa.string()),
        ("item_index", pa.int64()),
        ("method", pa.string()),
        ("prompt_hash", pa.string()),
        ("prompt", pa.string()),
        ("prediction", pa.string()),
        ("pred_index", pa.int64()),
        ("reference", pa.string()),
        ("gold_index", pa.int64()),
        ("correct", pa.bool_()),
        ("score", pa.float64()),
        ("scores", pa.map_(pa.string(), pa.float64())),
        ("choice_logliks", pa.list_(pa.float64())),
        ("confidence", pa.float64()),
        ("gold_prob", pa.float64()),
        ("raw_output", pa.string()),
        ("extracted", pa.string()),
        ("finish_reason", pa.string()),  # generation: "stop" / "length" (cut at max_tokens); else null
        ("max_tokens", pa.int64()),  # generation: the token limit asked for
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("tokens_evaluated", pa.int64()),
        ("ttft_s", pa.float64()),
        ("latency_s", pa.float64()),
        ("tpot_s", pa.float64()),
        ("wall_s", pa.float64()),
        ("energy_j", pa.float64()),
        ("mode", pa.string()),
        ("concurrency", pa.int64()),
        ("warmup", pa.bool_()),
        ("error", pa.string()),
        # 1 for an item's first try, +1 each time a resume re-runs it after an error; null in files
        # written before retries existed (read as 1). Readers see only an item's latest attempt.
        ("attempt", pa.int64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
    ]
)

RUNS_SCHEMA = pa.schema(
    RUN_COLUMNS
    + [
        ("status", pa.string()),
        ("error", pa.string()),
        ("metric", pa.string()),
        ("primary", pa.bool_()),
        ("higher_is_better", pa.bool_()),
        ("value", pa.float64()),
        ("stderr", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        # how ci_low/ci_high were made (bench.analysis): wilson (0/1 scores), bootstrap, ratio_bootstrap
        ("ci_method", pa.string()),
        ("n_scored", pa.int64()),  # items behind value and the interval (answered, with a score)
        ("n", pa.int64()),
        ("n_errors", pa.int64()),
        ("num_fewshot", pa.int64()),
        ("item_limit", pa.int64()),
        ("model_params", pa.int64()),
        ("quant", pa.string()),
        ("model_file_mb", pa.float64()),
        # JSON: the engine's own settings as run (llama.cpp: n_threads, chosen by the suite or the
        # `auto` probe, with the probe's seconds per thread count)
        ("engine_settings", pa.string()),
        ("latency_p50", pa.float64()),
        ("latency_p90", pa.float64()),
        ("latency_p95", pa.float64()),
        ("latency_p99", pa.float64()),
        ("ttft_p50", pa.float64()),
        ("ttft_p90", pa.float64()),
        ("tokens_per_s", pa.float64()),
        ("prompt_tokens_per_s", pa.float64()),
        ("decode_tokens_per_s", pa.float64()),
        ("items_per_s", pa.float64()),
        ("wall_s", pa.float64()),
        ("load_s", pa.float64()),
        ("mode", pa.string()),
        ("concurrency", pa.int64()),
        ("device", pa.string()),
        ("peak_rss_mb", pa.float64()),  # sampled every 20 ms during this task only
        ("process_peak_rss_mb", pa.float64()),  # the worker's lifetime high-water mark (ru_maxrss)
        ("gpu_peak_mb", pa.float64()),
        # the fixed CPU workload of measure.calibration_s timed before, during and after this task:
        # median / fastest / slowest seconds and how many timings (nightly scales latency by it)
        ("calib_s", pa.float64()),
        ("calib_min_s", pa.float64()),
        ("calib_max_s", pa.float64()),
        ("calib_n", pa.int64()),
        ("n_truncated", pa.int64()),  # generated outputs cut at max_tokens
        ("truncated_share", pa.float64()),  # n_truncated / outputs with a finish reason
        ("max_tokens", pa.int64()),  # the largest generation limit asked for
        ("energy_j", pa.float64()),
        ("usd_per_hour", pa.float64()),
        ("cost_usd", pa.float64()),
        ("usd_per_1k_items", pa.float64()),
        ("usd_per_correct", pa.float64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("python_version", pa.string()),
        ("packages", pa.string()),  # JSON: {"llama-cpp-python": "0.3.36", ...}
        ("hardware_info", pa.string()),  # JSON: cpu, cores, memory, os, gpu
    ]
)
