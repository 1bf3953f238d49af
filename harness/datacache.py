"""A content-hashed disk cache of generated data sets, shared by the trials of one machine.

A workload whose data are a pure function of their inputs (generator arguments, seed) wraps
the generating call in ``cached(...)``: the first trial generates and stores the result, every
later trial (another process, another method, another seed of the method) loads it. The key is
the SHA-256 of

- a name, the generator's inputs (JSON, sorted keys),
- the bytes of the generator's source files (a code change makes a new key), and
- the versions of torch, numpy and the named packages (their random streams may change).

Entries live in ``$TTR_CACHE_DIR`` (default ``~/.cache/ttr-bench/data``) as ``<sha256>.pt``,
written to a temporary file in the same folder and renamed into place (atomic: a reader sees
a whole entry or none, and two trials generating at once both succeed). A file that does not
load is regenerated with a warning. ``TTR_NO_CACHE=1`` bypasses the cache (no read, no write).

Values: what ``torch.load(weights_only=True)`` reads back: tensors, numbers, strings, and
lists, tuples and dicts of them. Cache only data that are a pure function of the key's inputs:
never anything seeded by a secret or by the trial.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")
ENV_DIR = "TTR_CACHE_DIR"
ENV_OFF = "TTR_NO_CACHE"


def cache_dir() -> Path:
    """``$TTR_CACHE_DIR``, else ``~/.cache/ttr-bench/data``."""
    env = os.environ.get(ENV_DIR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ttr-bench" / "data"


def enabled() -> bool:
    """False when ``TTR_NO_CACHE`` is set to anything but "", "0"."""
    return os.environ.get(ENV_OFF, "").strip() in ("", "0")


def _versions(packages: Iterable[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {"torch": torch.__version__}
    for p in ("numpy", *packages):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


_SCALARS = (bool, int, float, str, bytes, type(None))


def check_value(value: Any, name: str) -> None:
    """A TypeError unless ``value`` is tensors, scalars, and lists/tuples/dicts of them (what
    ``torch.load(weights_only=True)`` reads back)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (torch.Tensor, *_SCALARS)):
            continue
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        else:
            raise TypeError(
                f"datacache: {name!r} holds a {type(v).__name__}; only tensors, numbers, "
                "strings and lists/tuples/dicts of them can be cached"
            )


def key(
    name: str,
    inputs: Mapping[str, Any],
    sources: Iterable[str | Path],
    packages: Iterable[str] = (),
) -> str:
    """SHA-256 hex digest of the name, the inputs (JSON), the sources' bytes and versions."""
    try:
        blob = json.dumps(
            {"name": name, "inputs": dict(inputs), "versions": _versions(packages)},
            sort_keys=True,
        )
    except TypeError as e:
        raise TypeError(f"datacache inputs of {name!r} must be JSON-serializable: {e}") from None
    h = hashlib.sha256(blob.encode())
    for src in sources:
        path = Path(src)
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def cached(
    name: str,
    inputs: Mapping[str, Any],
    generate: Callable[[], T],
    sources: Iterable[str | Path],
    packages: Iterable[str] = (),
) -> T:
    """``generate()``, or the stored result of an earlier call with the same key.

    name: what is generated (part of the key and of warnings); inputs: every argument that
    changes the result; sources: the files whose code produces it (at least the generator's
    module, ``__file__``); packages: third-party generators whose version matters.
    """
    if not enabled():
        return generate()
    digest = key(name, inputs, sources, packages)
    folder = cache_dir()
    path = folder / f"{digest}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable entry is regenerated
            warnings.warn(
                f"datacache: entry {path} of {name!r} does not load ({type(e).__name__}: {e}); "
                "regenerating it",
                RuntimeWarning,
                stacklevel=2,
            )
    value = generate()
    check_value(value, name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{digest[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(value, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:  # a read-only or full disk costs time, never the trial
        warnings.warn(f"datacache: could not store {name!r} ({e})", RuntimeWarning, stacklevel=2)
    return value


__all__ = ["ENV_DIR", "ENV_OFF", "cache_dir", "cached", "check_value", "enabled", "key"]
