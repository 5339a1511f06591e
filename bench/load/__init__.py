"""Serving under load: sweeps of concurrencies and request rates against a server, with latency
percentiles, goodput under SLOs and the accuracy and cost of the answers served at each level.

Light to import; the sweep (and httpx, numpy, pandas) load on first use.

- `bench.load.profile`: `Level`, `levels(spec)`, `arrival_times(n, rate, ...)`.
- `bench.load.generator.run_level(level, requests, target, ...) -> list[Outcome]`: the async generator.
- `bench.load.metrics`: `level_summary(rows, slo=...)`, `accuracy_vs_baseline(levels, rows)`, `slo_mask`.
- `bench.load.records`: the Parquet schemas, `read_levels(root)`, `read_requests(root)`.
- `bench.load.sweep.run_sweep(suite, root, resume=...)`: the whole sweep; `bench load SUITE` runs it.
- `bench.load.zero_server`, `bench.load.overhead`: the generator's own overhead, measured.
"""
