"""Training throughput of the factuality workload, and the evaluator's cost.

For the ``default`` variant (or ``--variant``):

- tokens/s of training for each submission's step (``lm_baseline``: the plain packed stream;
  ``topic_prefix_sc``: TopicPrefix packing and the SC-weighted loss), counting the real (non-pad)
  tokens of each batch, median of ``--repeats`` blocks of ``--steps`` steps after warm-up;
- a peer: the same GPT built from ``torch.nn.TransformerEncoderLayer`` (``norm_first=True``,
  GELU, a causal mask, the same sizes, embeddings and loss) on the same batches, as a ratio;
- one evaluation of the validation split (QA and both sampling settings), median of
  ``--repeats`` calls, in seconds.

Writes benchmarks/results/factuality_throughput-<hw>.{json,md}.

    python benchmarks/factuality_throughput.py --steps 20 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from harness import records
from harness.discovery import build_workload, get_spec, load_submission
from harness.search_space import SearchSpace
from workloads.factuality.model import GPT

RESULTS = Path(__file__).resolve().parent / "results"


class TorchGPT(nn.Module):
    """The peer: torch's encoder layers with a causal mask, otherwise the workload's GPT."""

    def __init__(self, ref: GPT):
        super().__init__()
        a = ref.arch
        self.arch = a
        self.tok, self.pos, self.ln_f = ref.tok, ref.pos, ref.ln_f
        layer = nn.TransformerEncoderLayer(
            a.d_model, a.heads, a.ffn, dropout=0.0, activation="gelu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.layers = nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False)

    def forward(self, ids):
        t = ids.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        x = self.tok(ids) + self.pos(torch.arange(t))
        x = self.layers(x, mask=mask, is_causal=True)
        return self.ln_f(x) @ self.tok.weight.t()


def block(wl, sub, model, state, streams, hp, rng, steps):
    select = sub.fn("data_selection")
    update = sub.fn("update")
    tokens = 0
    t0 = time.perf_counter()
    for step in range(steps):
        batch = select(wl, streams, state, step, rng) if select else next(streams["train"])
        tokens += int((batch.tokens != wl.pad).sum())
        state = update(wl, model, state, batch, hp, step, rng)
    return time.perf_counter() - t0, tokens


def measure(wl, name, model, args):
    sub = load_submission(name)
    hp = SearchSpace.load(sub.search_space_path).resolve({})
    rng = torch.Generator().manual_seed(0)
    state = sub.fn("init")(wl, model, hp, rng)
    streams = wl.train_streams(sub.batch_size(wl), torch.Generator().manual_seed(1))
    block(wl, sub, model, state, streams, hp, rng, args.warmup)
    rates, ms = [], []
    for _ in range(args.repeats):
        s, tok = block(wl, sub, model, state, streams, hp, rng, args.steps)
        rates.append(tok / s)
        ms.append(1000 * s / args.steps)
    return {
        "tokens_per_s": statistics.median(rates),
        "tokens_per_s_range": [min(rates), max(rates)],
        "ms_per_step": statistics.median(ms),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="default")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    device = torch.device("cpu")
    wl = build_workload(get_spec("factuality", args.variant), device, eval_seed=0)
    hw = records.hardware_class()
    res = {"hardware_class": hw, "variant": args.variant, "steps": args.steps,
           "repeats": args.repeats, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "unix_time": time.time(), "rows": {}}  # fmt: skip
    for name in ("lm_baseline", "topic_prefix_sc"):
        torch.manual_seed(0)
        res["rows"][name] = measure(wl, name, GPT(wl.arch), args)
    torch.manual_seed(0)
    res["rows"]["lm_baseline on torch.nn.TransformerEncoder"] = measure(
        wl, "lm_baseline", TorchGPT(GPT(wl.arch)), args
    )
    ours = res["rows"]["lm_baseline"]["tokens_per_s"]
    res["ours_over_peer"] = (
        ours / res["rows"]["lm_baseline on torch.nn.TransformerEncoder"]["tokens_per_s"]
    )
    model = GPT(wl.arch)
    evals = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        wl.evaluate(model, "validation")
        evals.append(time.perf_counter() - t0)
    res["evaluation_s"] = statistics.median(evals)
    res["evaluation_s_range"] = [min(evals), max(evals)]
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"factuality_throughput-{hw}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    md = [
        f"# factuality/{args.variant} training throughput on {hw} ({res['threads']} threads, "
        f"torch {torch.__version__})",
        "",
        f"Median (range) of {args.repeats} blocks of {args.steps} steps after {args.warmup} "
        "warm-up steps; tokens are the non-pad tokens of the packed 32 x 128 batches.",
        "",
        "| step | ms/step | tokens/s (range) |",
        "|---|---|---|",
    ]
    for name, r in res["rows"].items():
        lo, hi = r["tokens_per_s_range"]
        md.append(f"| {name} | {r['ms_per_step']:.1f} | {r['tokens_per_s']:.0f} "
                  f"({lo:.0f}-{hi:.0f}) |")  # fmt: skip
    md += [
        "",
        f"Ours / peer (lm_baseline): {res['ours_over_peer']:.2f}x.",
        "",
        f"One validation evaluation (QA of {wl.spec.eval_samples} people x 6 questions, "
        f"{wl.spec.gen_people} open-ended generations of {wl.spec.gen_tokens} tokens under each "
        f"of 2 settings): {res['evaluation_s']:.2f} s (range {evals and min(evals):.2f}-"
        f"{max(evals):.2f}).",
    ]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
