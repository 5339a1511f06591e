"""Executors beyond the local process pool (bench.runner): Ray, for suites bigger than one machine."""
