"""bench: accuracy, latency, memory and cost of small and large language models, in the same run."""

__version__ = "0.1.0"
