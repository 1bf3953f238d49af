"""Cost of one certified training step over a standard step, per certification submission.

For each network shape (``default``: the scaled-down CNN7 on 8x8 digits; ``cnn7``: the ``full``
CNN7 on 64x64 images with 200 classes) and each method, time one optimizer step (forward,
backward, Adam, gradient clip) with the submission's own ``update`` in the phase that dominates
its run, and divide by the time of a standard step (natural cross-entropy, Adam):
- ``ibp``: after the ramp (IBP margins + natural CE, one pass);
- ``ibp_short_warmup:ramp``: during the ramp (IBP with the per-layer trace + regularizers);
- ``ibp_short_warmup``: after the ramp (robust loss alone);
- ``taps``: after the ramp (IBP through the features, PGD in the head, connector).
Steps are timed one after another in one process, round-robin over the methods so drift hits
them alike; the median of ``--reps`` rounds after ``--warmup`` is reported, with min and max.
The ``cnn7`` shape uses random 64x64 images (``--cnn7-batch``, default 16 on a CPU): timing does
not depend on the pixels, and TinyImageNet cannot be downloaded here.
Writes benchmarks/results/cert_step_cost-<hw>.json and .md.

    python benchmarks/cert_step_cost.py --reps 20
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import hardware, hardware_slug, result_record, write_results  # noqa: E402

import workloads.certification as cert  # noqa: E402
from harness.discovery import load_submission  # noqa: E402
from harness.search_space import SearchSpace  # noqa: E402
from workloads.certification.data import ImageSplits  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("standard", "ibp", "ibp_short_warmup:ramp", "ibp_short_warmup", "taps")


def random_splits(n: int, size: int, classes: int) -> ImageSplits:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % classes
    s = {"train": x, "validation": x[:classes], "test": x[:classes]}
    ys = {"train": y, "validation": y[:classes], "test": y[:classes]}
    return ImageSplits(s, ys, classes, 255.0, (0.5,) * 3, (0.25,) * 3)


def make_workload(shape: str, device, batch: int):
    if shape == "default":
        return cert.WORKLOAD(cert.SPECS["default"], device)
    spec = dataclasses.replace(cert.SPECS["full"], dataset="digits", augment=False)
    original = cert.load_splits
    cert.load_splits = lambda s: random_splits(max(4 * batch, 400), 64, 200)
    try:
        return cert.WORKLOAD(spec, device)
    finally:
        cert.load_splits = original


class Method:
    """One method's step, frozen in the phase being measured."""

    def __init__(self, name: str, wl, batch_size: int, device):
        self.name = name
        sub_name, _, phase = name.partition(":")
        self.model = wl.init_model(torch.Generator(device=device).manual_seed(0))
        self.model.train()
        self.wl = wl
        self.rng = torch.Generator(device=device).manual_seed(1)
        self.stream = wl.train_streams(batch_size, torch.Generator(device=device).manual_seed(2))[
            "train"
        ]
        if sub_name == "standard":
            self.sub = None
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
            return
        self.sub = load_submission(sub_name)
        self.hp = SearchSpace.load(self.sub.search_space_path).resolve({})
        self.state = self.sub.fn("init")(wl, self.model, self.hp, self.rng)
        # the measured phase: mid-ramp or after the ramp (the eps then is the workload's)
        end = self.state["start"] + self.state["length"]
        self.step = self.state["start"] + self.state["length"] // 2 if phase == "ramp" else end

    def __call__(self) -> float:
        batch = next(self.stream)
        self.wl.synchronize()
        t0 = time.perf_counter()
        if self.sub is None:
            loss = F.cross_entropy(self.model(batch.x), batch.y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        else:
            self.state = self.sub.fn("update")(
                self.wl, self.model, self.state, batch, self.hp, self.step, self.rng
            )
        self.wl.synchronize()
        return time.perf_counter() - t0


def measure(shape: str, device, batch: int, reps: int, warmup: int) -> list[dict]:
    wl = make_workload(shape, device, batch)
    methods = [Method(m, wl, batch, device) for m in METHODS]
    times: dict[str, list[float]] = {m.name: [] for m in methods}
    for i in range(warmup + reps):
        for m in methods:
            t = m()
            if i >= warmup:
                times[m.name].append(t)
    base = statistics.median(times["standard"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(
            {
                "shape": shape,
                "batch": batch,
                "method": name,
                "median_ms": round(1e3 * med, 3),
                "min_ms": round(1e3 * min(ts), 3),
                "max_ms": round(1e3 * max(ts), 3),
                "ratio": round(med / base, 2),
                "reps": len(ts),
            }
        )
        print(f"{shape:8s} {name:24s} {1e3 * med:9.2f} ms  x{med / base:.2f}", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="*", default=["default", "cnn7"])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--default-batch", type=int, default=128)
    p.add_argument("--cnn7-batch", type=int, default=16)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    hw = hardware()
    rows = []
    for shape in args.shapes:
        batch = args.default_batch if shape == "default" else args.cnn7_batch
        reps = args.reps if shape == "default" else max(3, args.reps // 4)
        rows += measure(shape, device, batch, reps, args.warmup)
    lines = [
        "# Certified training step cost over a standard step",
        "",
        f"{hw['cpu'] if device.type == 'cpu' else hw['gpu']}, {hw['cores']} cores, "
        f"{hw['torch_threads']} torch threads, torch {hw['versions']['torch']}. One process, "
        "methods timed round-robin; median over the reps (min-max in brackets).",
        "",
        "| shape | batch | method | ms/step (median) | [min, max] | x standard |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['batch']} | {r['method']} | {r['median_ms']:.1f} | "
            f"[{r['min_ms']:.1f}, {r['max_ms']:.1f}] | {r['ratio']:.2f} |"
        )
    write_results(
        RESULTS,
        f"cert_step_cost-{hardware_slug(hw)}",
        result_record(hw, args, rows),
        "\n".join(lines) + "\n",
    )


if __name__ == "__main__":
    main()
