"""The fixed model: a pre-LN encoder-decoder Transformer with shared embeddings.

Pre-LN as in fairseq's ``--encoder-normalize-before --decoder-normalize-before`` (a layer norm
before each sublayer and one after the last layer of each stack), sinusoidal positions,
embeddings scaled by sqrt(d) and shared between encoder, decoder and the output projection
(fairseq's ``--share-all-embeddings``, the usual multilingual setup). The target language is a
tag token at the start of the source. Attention uses ``F.scaled_dot_product_attention``.

``greedy`` decodes with a key/value cache (cross-attention keys and values computed once); the
tests check it against decoding by re-running the decoder on the whole prefix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Arch:
    vocab: int
    d_model: int = 128
    heads: int = 4
    ffn: int = 512
    encoder_layers: int = 3
    decoder_layers: int = 3
    dropout: float = 0.1
    max_len: int = 64
    pad: int = 0


def sinusoids(length: int, d: int) -> torch.Tensor:
    """Vaswani et al.'s positional encodings (sin on even, cos on odd channels)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def split(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d) -> (B, h, L, d/h)
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(
        self,
        x: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        q = self.split(self.q(x))
        k, v = kv
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal,
        )
        b, h, n, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, n, h * dh))


class FeedForward(nn.Module):
    """fc2(relu(fc1(x))); no dropout inside (fairseq's ``--activation-dropout`` default 0)."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, a: Arch):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(a.d_model), nn.LayerNorm(a.d_model)
        self.attn = Attention(a.d_model, a.heads, 0.0)  # fairseq: attention dropout 0
        self.ffn = FeedForward(a.d_model, a.ffn)
        self.dropout = a.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + F.dropout(self.attn(h, self.attn.keys_values(h), mask), self.dropout, self.training)
        return x + F.dropout(self.ffn(self.norm2(x)), self.dropout, self.training)


class DecoderLayer(nn.Module):
    def __init__(self, a: Arch):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(a.d_model) for _ in range(3))
        self.self_attn = Attention(a.d_model, a.heads, 0.0)
        self.cross_attn = Attention(a.d_model, a.heads, 0.0)
        self.ffn = FeedForward(a.d_model, a.ffn)
        self.dropout = a.dropout

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        h = self.norm1(x)
        k, v = self.self_attn.keys_values(h)
        if cache is not None:  # incremental decoding: x is the newest position only
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        causal = cache is None and x.shape[1] > 1
        drop = self.dropout
        x = x + F.dropout(self.self_attn(h, (k, v), causal=causal), drop, self.training)
        h = self.norm2(x)
        x = x + F.dropout(self.cross_attn(h, memory_kv, memory_mask), drop, self.training)
        return x + F.dropout(self.ffn(self.norm3(x)), drop, self.training)


class Seq2Seq(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        self.arch = arch
        d = arch.d_model
        self.embed = nn.Embedding(arch.vocab, d, padding_idx=arch.pad)
        nn.init.normal_(self.embed.weight, 0.0, d**-0.5)  # fairseq's Embedding init
        with torch.no_grad():
            self.embed.weight[arch.pad].zero_()
        self.register_buffer("positions", sinusoids(arch.max_len, d), persistent=False)
        self.encoder = nn.ModuleList(EncoderLayer(arch) for _ in range(arch.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(arch) for _ in range(arch.decoder_layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d), nn.LayerNorm(d)

    def _embed(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        n = tokens.shape[1]
        if offset + n > self.arch.max_len:
            raise ValueError(f"sequence of {offset + n} tokens exceeds max_len {self.arch.max_len}")
        x = self.embed(tokens) * math.sqrt(self.arch.d_model) + self.positions[offset : offset + n]
        return F.dropout(x, self.arch.dropout, self.training)

    def padding_mask(self, src: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, S) boolean: True where attention may look (not padding)."""
        return (src != self.arch.pad)[:, None, None, :]

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.padding_mask(src)
        x = self._embed(src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def decode(
        self, tgt_in: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, T, V) for every target position (teacher forcing)."""
        x = self._embed(tgt_in)
        for layer in self.decoder:
            x = layer(x, layer.cross_attn.keys_values(memory), mask)
        return self.decoder_norm(x) @ self.embed.weight.t()

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, mask = self.encode(src)
        return self.decode(tgt_in, memory, mask)

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, bos: int, eos: int, max_len: int) -> torch.Tensor:
        """Greedy decoding with a key/value cache: (B, <= max_len) tokens, ``pad`` after eos."""
        memory, mask = self.encode(src)
        memory_kv = [layer.cross_attn.keys_values(memory) for layer in self.decoder]
        caches: list[dict[str, torch.Tensor]] = [{} for _ in self.decoder]
        b = src.shape[0]
        token = torch.full((b, 1), bos, dtype=torch.long, device=src.device)
        done = torch.zeros(b, dtype=torch.bool, device=src.device)
        out = []
        for t in range(min(max_len, self.arch.max_len)):
            x = self._embed(token, offset=t)
            for layer, kv, cache in zip(self.decoder, memory_kv, caches, strict=True):
                x = layer(x, kv, mask, cache)
            logits = self.decoder_norm(x[:, -1]) @ self.embed.weight.t()
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.arch.pad), nxt)
            out.append(nxt)
            done |= nxt == eos
            if bool(done.all()):
                break
            token = nxt[:, None]
        return torch.stack(out, 1)
