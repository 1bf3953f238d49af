"""Shared pieces of the benchmark scripts: the machine description and the results files."""

from __future__ import annotations

import json
import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch


def hardware(modules: tuple[str, ...] = ()) -> dict:
    """CPU model, cores, torch threads, GPU, and the versions of python, torch and ``modules``."""
    cpu = platform.processor() or "unknown CPU"
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    for mod in modules:
        try:
            versions[mod] = version(mod)
        except PackageNotFoundError:
            versions[mod] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "versions": versions,
    }


def hardware_slug(hw: dict) -> str:
    name = hw["gpu"] or f"{hw['cpu']} {hw['cores']}c"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def write_results(out: Path, stem: str, result: dict, md: str) -> None:
    """``<out>/<stem>.json`` and ``<stem>.md``; prints where they went."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(md)
    print(f"wrote {out / stem}.json and .md")


def result_record(hw: dict, args, rows: list, **extra) -> dict:
    """The JSON a benchmark writes: UTC date, machine, extra fields, arguments, rows."""
    import datetime

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hw,
        **extra,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": rows,
    }
