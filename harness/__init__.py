"""ttr-bench: a benchmark of training methods by time-to-result."""

__version__ = "0.1.0"
