"""Training throughput of the translation workload and where a step's time goes.

For the ``default`` variant (or ``--variant``), with temperature sampling at T = 5 and AdamW:

- tokens/s: target tokens (and source + target tokens) per second of training, median of
  ``--repeats`` blocks of ``--steps`` steps after warm-up;
- step shares: wall time inside the attention modules (forward and backward), the feed-forward
  modules (forward and backward), data selection (drawing the mixture and building the batch),
  and the rest (embeddings, layer norms, output projection and loss, optimizer), measured with
  forward and backward hooks on the modules (the CPU runs synchronously, so a module's hook
  interval is its time). The hooks' own overhead is reported as the ratio of the hooked to the
  plain step time;
- a peer: ``torch.nn.Transformer`` (``norm_first=True``, the same sizes, the same embeddings and
  loss) on the same batches, as a throughput ratio.

Writes benchmarks/results/translation_step_profile-<hw>.{json,md}.

    python benchmarks/translation_step_profile.py --steps 40 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from harness import records
from harness.discovery import build_workload, get_spec
from workloads.translation import smoothed_losses
from workloads.translation.data import PAD, temperature_probs
from workloads.translation.model import Attention, FeedForward, Seq2Seq

RESULTS = Path(__file__).resolve().parent / "results"


class Timer:
    """Accumulates wall time of module categories from forward and backward hooks."""

    def __init__(self, model: nn.Module):
        self.total = {"attention": 0.0, "feed_forward": 0.0}
        self._start: dict[int, float] = {}
        self.handles = []
        for m in model.modules():
            kind = (
                "attention"
                if isinstance(m, Attention)
                else "feed_forward"
                if isinstance(m, FeedForward)
                else None
            )
            if kind is None:
                continue
            self.handles += [
                m.register_forward_pre_hook(self._begin),
                m.register_forward_hook(lambda mod, i, o, k=kind: self._end(mod, k)),
                m.register_full_backward_pre_hook(lambda mod, g: self._begin(mod)),
                m.register_full_backward_hook(lambda mod, gi, go, k=kind: self._end(mod, k)),
            ]

    def _begin(self, module, *args):
        self._start[id(module)] = time.perf_counter()

    def _end(self, module, kind):
        self.total[kind] += time.perf_counter() - self._start.pop(id(module))

    def remove(self):
        for h in self.handles:
            h.remove()


class TorchTransformer(nn.Module):
    """The peer: ``nn.Transformer`` (pre-LN) with the workload's embeddings and positions."""

    def __init__(self, ref: Seq2Seq):
        super().__init__()
        a = ref.arch
        self.arch = a
        self.embed = nn.Embedding(a.vocab, a.d_model, padding_idx=a.pad)
        self.register_buffer("positions", ref.positions.clone(), persistent=False)
        self.core = nn.Transformer(
            a.d_model,
            a.heads,
            a.encoder_layers,
            a.decoder_layers,
            a.ffn,
            a.dropout,
            batch_first=True,
            norm_first=True,
        )

    def forward(self, src, tgt_in):
        d = math.sqrt(self.arch.d_model)
        s = self.embed(src) * d + self.positions[: src.shape[1]]
        t = self.embed(tgt_in) * d + self.positions[: tgt_in.shape[1]]
        mask = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], dtype=s.dtype)
        pad = src == PAD
        h = self.core(
            s,
            t,
            tgt_mask=mask,
            tgt_is_causal=True,
            src_key_padding_mask=pad,
            memory_key_padding_mask=pad,
        )
        return h @ self.embed.weight.t()


def train_block(wl, model, opt, streams, probs, batch_size, rng, steps, timer=None):
    data_s, tokens, all_tokens = 0.0, 0, 0
    t0 = time.perf_counter()
    for _ in range(steps):
        d0 = time.perf_counter()
        batch = wl.mixture_batch(streams, probs, batch_size, rng)
        data_s += time.perf_counter() - d0
        loss_rows, toks = smoothed_losses(model(batch.src, batch.tgt_in), batch.tgt_out, 0.1)
        loss = loss_rows.sum() / toks.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tokens += batch.tokens
        all_tokens += batch.tokens + int((batch.src != PAD).sum())
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "data_s": data_s, "tokens": tokens, "all_tokens": all_tokens}


def measure(wl, model, args, hooks: bool):
    torch.manual_seed(0)
    rng = torch.Generator().manual_seed(0)
    streams = wl.train_streams(args.batch, torch.Generator().manual_seed(1))
    probs = temperature_probs(wl.train_sizes, 5.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    model.train()
    train_block(wl, model, opt, streams, probs, args.batch, rng, args.warmup)
    blocks = []
    for _ in range(args.repeats):
        timer = Timer(model) if hooks else None
        r = train_block(wl, model, opt, streams, probs, args.batch, rng, args.steps)
        if timer is not None:
            r.update(timer.total)
            timer.remove()
        blocks.append(r)
    return blocks


def summarize(blocks, steps):
    out = {
        "ms_per_step": statistics.median(1000 * b["wall_s"] / steps for b in blocks),
        "target_tokens_per_s": statistics.median(b["tokens"] / b["wall_s"] for b in blocks),
        "all_tokens_per_s": statistics.median(b["all_tokens"] / b["wall_s"] for b in blocks),
        "tokens_per_step": statistics.median(b["tokens"] / steps for b in blocks),
    }
    spread = [b["tokens"] / b["wall_s"] for b in blocks]
    out["target_tokens_per_s_range"] = [min(spread), max(spread)]
    if "attention" in blocks[0]:
        for k in ("attention", "feed_forward", "data_s"):
            out[f"share_{k.removesuffix('_s')}"] = statistics.median(
                b[k] / b["wall_s"] for b in blocks
            )
        out["share_other"] = 1.0 - sum(
            out[f"share_{k}"] for k in ("attention", "feed_forward", "data")
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="default")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    wl = build_workload(get_spec("translation", args.variant), device)
    hw = records.hardware_class()
    res = {"hardware_class": hw, "variant": args.variant, "batch": args.batch,
           "steps": args.steps, "repeats": args.repeats, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "unix_time": time.time()}  # fmt: skip
    torch.manual_seed(0)
    ours = Seq2Seq(wl.arch)
    res["params"] = sum(q.numel() for q in ours.parameters())
    res["plain"] = summarize(measure(wl, ours, args, hooks=False), args.steps)
    res["hooked"] = summarize(measure(wl, ours, args, hooks=True), args.steps)
    torch.manual_seed(0)
    peer = TorchTransformer(ours)
    res["peer_params"] = sum(q.numel() for q in peer.parameters())
    res["peer"] = summarize(measure(wl, peer, args, hooks=False), args.steps)
    res["ours_over_peer_tokens_per_s"] = (
        res["plain"]["target_tokens_per_s"] / res["peer"]["target_tokens_per_s"]
    )
    res["hook_overhead"] = res["hooked"]["ms_per_step"] / res["plain"]["ms_per_step"]
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"translation_step_profile-{hw}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    h, pl, pe = res["hooked"], res["plain"], res["peer"]
    md = [
        f"# translation/{args.variant} training step on {hw} ({res['threads']} threads, "
        f"torch {torch.__version__})",
        "",
        f"Batch {args.batch} sentences; median of {args.repeats} blocks of {args.steps} steps "
        f"after {args.warmup} warm-up steps; temperature sampling T = 5, AdamW.",
        "",
        "| model | params | ms/step | target tokens/s (range) | all tokens/s |",
        "|---|---|---|---|---|",
        f"| ttr-bench Seq2Seq | {res['params']:,} | {pl['ms_per_step']:.1f} | "
        f"{pl['target_tokens_per_s']:.0f} ({pl['target_tokens_per_s_range'][0]:.0f}-"
        f"{pl['target_tokens_per_s_range'][1]:.0f}) | {pl['all_tokens_per_s']:.0f} |",
        f"| torch.nn.Transformer (norm_first) | {res['peer_params']:,} | {pe['ms_per_step']:.1f} "
        f"| {pe['target_tokens_per_s']:.0f} ({pe['target_tokens_per_s_range'][0]:.0f}-"
        f"{pe['target_tokens_per_s_range'][1]:.0f}) | {pe['all_tokens_per_s']:.0f} |",
        "",
        f"Ours / peer throughput: {res['ours_over_peer_tokens_per_s']:.2f}x.",
        "",
        "Step time shares (hooked run; hooks cost "
        f"{100 * (res['hook_overhead'] - 1):.1f}% of the step):",
        "",
        "| attention | feed-forward | data | other (embeddings, norms, output + loss, optimizer) |",
        "|---|---|---|---|",
        f"| {100 * h['share_attention']:.1f}% | {100 * h['share_feed_forward']:.1f}% | "
        f"{100 * h['share_data']:.1f}% | {100 * h['share_other']:.1f}% |",
    ]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
