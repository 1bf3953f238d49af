"""The workload's fixed model: a small decoder-only GPT (pre-LN, learned positions, tied
embeddings, causal scaled-dot-product attention), trained from scratch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GPTArch:
    vocab: int
    context: int = 128
    d_model: int = 128
    heads: int = 4
    layers: int = 4
    ffn: int = 512
    dropout: float = 0.0


class Block(nn.Module):
    def __init__(self, a: GPTArch):
        super().__init__()
        self.heads = a.heads
        self.ln1 = nn.LayerNorm(a.d_model)
        self.qkv = nn.Linear(a.d_model, 3 * a.d_model)
        self.proj = nn.Linear(a.d_model, a.d_model)
        self.ln2 = nn.LayerNorm(a.d_model)
        self.fc1 = nn.Linear(a.d_model, a.ffn)
        self.fc2 = nn.Linear(a.ffn, a.d_model)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class GPT(nn.Module):
    def __init__(self, arch: GPTArch):
        super().__init__()
        if arch.d_model % arch.heads:
            raise ValueError(f"d_model {arch.d_model} is not divisible by heads {arch.heads}")
        self.arch = arch
        self.tok = nn.Embedding(arch.vocab, arch.d_model)
        self.pos = nn.Embedding(arch.context, arch.d_model)
        self.blocks = nn.ModuleList(Block(arch) for _ in range(arch.layers))
        self.ln_f = nn.LayerNorm(arch.d_model)
        self.drop = nn.Dropout(arch.dropout)
        self.apply(_init)
        for block in self.blocks:  # GPT-2: residual projections scaled by 1/sqrt(2 layers)
            for lin in (block.proj, block.fc2):
                nn.init.normal_(lin.weight, std=0.02 / (2 * arch.layers) ** 0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, vocab) next-token logits."""
        t = ids.shape[1]
        if t > self.arch.context:
            raise ValueError(f"sequence of {t} tokens exceeds the context of {self.arch.context}")
        pos = torch.arange(t, device=ids.device)
        x = self.drop(self.tok(ids) + self.pos(pos))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.tok.weight.t()


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)
