"""ttr-bench: a benchmark of training methods by time-to-result."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("ttr-bench")
except _metadata.PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"
