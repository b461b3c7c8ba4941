"""The level-lm network (torch): a decoder-only transformer over *strips* of tiles, with a KV cache.

A level is a sequence of strips (columns of a side-view level, top to bottom; rows of a top-down room, left
to right), each ``h`` tiles long. Step ``t`` reads strip ``t - 1`` (a strip of ``BORDER`` symbols before the
first) and predicts strip ``t``: one distribution over the ``V`` tiles per position in the strip, plus a
learned *vertical bigram* (the logit of each tile given the tile just above it in the same strip), so the
strip's tiles are chained as they are sampled (MarioGPT's column-by-column serialisation, one column per
step instead of one tile per step: 14 times fewer network steps).

- A strip is embedded as the sum of one embedding per (position in the strip, symbol).
- **Control tokens**: one embedding per (attribute, bucket) — ``any`` included — added to every step.
- Attention is causal over the last ``ctx`` strips with a learned **relative position bias** per head (no
  absolute positions), so a model trained on windows generates levels of any width.
- ``step`` runs one strip per row of a batch with a **KV cache** (keys and values of all earlier strips kept;
  each step costs O(ctx) instead of re-running the whole window); every row may be at its own position, so
  rows that backtrack in the constrained sampler do not hold the others back. ``forward`` is the plain
  full-window computation (training, and the no-cache reference in ``bench/level_lm.py``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

N_BUCKET = 5  # any, none, few, some, many


@dataclass
class Config:
    h: int
    K: int  # symbols: V tiles + BORDER
    n_attr: int
    d: int = 96
    layers: int = 3
    heads: int = 4
    ctx: int = 48
    dropout: float = 0.0

    @property
    def V(self) -> int:
        return self.K - 1

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.nh, self.hd = c.heads, c.d // c.heads
        self.ln1, self.ln2 = nn.LayerNorm(c.d), nn.LayerNorm(c.d)
        self.qkv = nn.Linear(c.d, 3 * c.d)
        self.proj = nn.Linear(c.d, c.d)
        self.fc = nn.Linear(c.d, 4 * c.d)
        self.out = nn.Linear(4 * c.d, c.d)
        self.rel = nn.Parameter(torch.zeros(c.heads, c.ctx))
        self.drop = nn.Dropout(c.dropout)
        self.ctx = c.ctx

    def _mlp(self, x):
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.nh, self.hd).transpose(1, 2) for t in (q, k, v))
        ar = torch.arange(T)
        dist = ar[:, None] - ar[None, :]
        ok = (dist >= 0) & (dist < self.ctx)
        bias = self.rel[:, dist.clamp(0, self.ctx - 1)].masked_fill(~ok, float("-inf"))
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(self.hd) + bias).softmax(-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(B, T, C)
        return self._mlp(x + self.drop(self.proj(y)))

    def step(self, x, ck, cv, pos, rows, win, valid):
        """``x`` (B, C) at positions ``pos`` (B,); keys/values written into the caches ``ck``/``cv``
        (B, L, nh, hd); attends to cache slots ``win`` (B, ctx) (``valid`` marks real ones)."""
        B, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=1)
        ck[rows, pos] = k.view(B, self.nh, self.hd)
        cv[rows, pos] = v.view(B, self.nh, self.hd)
        keys = ck[rows[:, None], win]  # (B, ctx, nh, hd)
        vals = cv[rows[:, None], win]
        att = torch.einsum("bhd,bchd->bhc", q.view(B, self.nh, self.hd), keys) / math.sqrt(self.hd)
        att = (att + self.rel[None]).masked_fill(~valid[:, None, :], float("-inf")).softmax(-1)
        y = torch.einsum("bhc,bchd->bhd", att, vals).reshape(B, C)
        return self._mlp(x + self.proj(y))


class LevelLM(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.emb = nn.Embedding(c.h * c.K, c.d)
        self.attr = nn.Embedding(max(1, c.n_attr) * N_BUCKET, c.d)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.ln = nn.LayerNorm(c.d)
        self.head = nn.Linear(c.d, c.h * c.V)
        self.vbig = nn.Parameter(torch.zeros(c.K, c.V))
        self.drop = nn.Dropout(c.dropout)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        self.register_buffer("row_off", torch.arange(c.h) * c.K, persistent=False)
        self.register_buffer("attr_off", torch.arange(max(1, c.n_attr)) * N_BUCKET, persistent=False)

    # ------------------------------------------------------------------ pieces
    def embed(self, strips, attrs):
        """``strips`` (..., h) symbols, ``attrs`` (B, n_attr) bucket ids → (..., d)."""
        x = self.emb(strips + self.row_off).sum(-2)
        a = self.attr(attrs + self.attr_off).sum(-2)
        return x + (a[:, None] if x.dim() == 3 else a)

    def strip_logits(self, hidden, prev):
        """Per-position tile logits ``(..., h, V)``: the head's plus the vertical bigram of the symbol above
        (``prev``: (..., h), the symbol above each position, BORDER for the first)."""
        c = self.config
        return self.head(self.ln(hidden)).view(*hidden.shape[:-1], c.h, c.V) + self.vbig[prev]

    def head_logits(self, hidden):
        """The head's part only ``(..., h, V)`` (the sampler adds the bigram as it goes down the strip)."""
        c = self.config
        return self.head(self.ln(hidden)).view(*hidden.shape[:-1], c.h, c.V)

    def forward(self, strips_in, attrs):
        """Full computation: ``strips_in`` (B, T, h) → hidden (B, T, d)."""
        x = self.drop(self.embed(strips_in, attrs))
        for b in self.blocks:
            x = b(x)
        return x

    def loss(self, strips_in, targets, attrs):
        """Mean cross-entropy of ``targets`` (B, T, h) (tile ids < V) given the previous strips."""
        B = targets.shape[0]
        hidden = self(strips_in, attrs)
        prev = torch.cat([torch.full_like(targets[..., :1], self.config.K - 1), targets[..., :-1]], -1)
        logits = self.strip_logits(hidden, prev)
        return F.cross_entropy(logits.reshape(-1, self.config.V), targets.reshape(-1)), B

    # ------------------------------------------------------------------ cached decoding
    def new_cache(self, batch: int, length: int):
        c = self.config
        shape = (batch, length, c.heads, c.d // c.heads)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(c.layers)]

    def step(self, strips, attrs, caches, pos):
        """One strip per row: ``strips`` (B, h) is the strip before position ``pos`` (B,) (long); returns the
        head logits (B, h, V) for the strip at ``pos``."""
        c = self.config
        B = strips.shape[0]
        rows = torch.arange(B)
        ar = torch.arange(c.ctx)
        idx = pos[:, None] - ar[None, :]
        valid = idx >= 0
        win = idx.clamp(min=0)
        x = self.embed(strips, attrs)
        for b, (ck, cv) in zip(self.blocks, caches):
            x = b.step(x, ck, cv, pos, rows, win, valid)
        return self.head_logits(x)

    def window_logits(self, strips_in, attrs):
        """No-cache reference: the whole window (B, T, h) → head logits of its last strip (B, h, V)."""
        return self.head_logits(self(strips_in, attrs)[:, -1])
