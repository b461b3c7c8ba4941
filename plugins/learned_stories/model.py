"""The story-lm transformer (torch): a small decoder-only char model with a KV cache and batched sampling.

``TinyGPT.forward(idx)`` is the plain full-sequence forward (training, and the naive no-cache decoding
loop ``sample_naive``). ``sample`` decodes with a key/value cache preallocated for the whole batch: each
step feeds one token per row and attends over the cached keys, so a step costs O(T) instead of O(T²).

Sampling is per row and reproducible: every row brings its own ``torch.Generator`` and draws its uniforms
up front; a token is picked by inverse CDF over the temperature/top-k/top-p filtered distribution (sorted
stably), so a row's tokens do not depend on which other rows share its batch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .tokenizer import EOS

CANDIDATES = 64  # tokens ranked per row when top-p sampling (see pick)


@dataclass
class Config:
    vocab_size: int
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    block: int = 128
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.h, self.hd = c.n_heads, c.d_model // c.n_heads
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.fc = nn.Linear(c.d_model, 4 * c.d_model)
        self.out = nn.Linear(4 * c.d_model, c.d_model)
        self.drop = nn.Dropout(c.dropout)

    def _split(self, x):
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.h * self.hd, dim=2)
        return [t.view(B, T, self.h, self.hd).transpose(1, 2) for t in (q, k, v)]

    def _mlp(self, x):
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self._split(self.ln1(x))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(B, T, C)
        return self._mlp(x + self.drop(self.proj(y)))

    def step(self, x, cache_k, cache_v, pos: int):
        """``x``: (B, 1, C) at position ``pos``; writes its key/value into the cache."""
        B, _, C = x.shape
        q, k, v = self._split(self.ln1(x))
        cache_k[:, :, pos:pos + 1] = k
        cache_v[:, :, pos:pos + 1] = v
        keys, vals = cache_k[:, :, :pos + 1], cache_v[:, :, :pos + 1]
        att = ((q @ keys.transpose(-2, -1)) / math.sqrt(self.hd)).softmax(-1)
        y = (att @ vals).transpose(1, 2).reshape(B, 1, C)
        return self._mlp(x + self.proj(y))


class TinyGPT(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        self.pos = nn.Embedding(c.block, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.ln = nn.LayerNorm(c.d_model)
        self.drop = nn.Dropout(c.dropout)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def head(self, x):
        return self.ln(x) @ self.tok.weight.T  # tied embeddings

    def forward(self, idx):
        T = idx.shape[1]
        x = self.drop(self.tok(idx) + self.pos(torch.arange(T, device=idx.device)))
        for b in self.blocks:
            x = b(x)
        return self.head(x)

    def step(self, tokens, caches, pos: int):
        x = self.tok(tokens[:, None]) + self.pos.weight[pos]
        for b, (ck, cv) in zip(self.blocks, caches):
            x = b.step(x, ck, cv, pos)
        return self.head(x)[:, 0]

    def new_cache(self, batch: int, length: int):
        c = self.config
        shape = (batch, c.n_heads, length, c.d_model // c.n_heads)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(c.n_layers)]


# ----------------------------------------------------------------------------------------- sampling
def pick(logits, u, temperature: float, top_k: int, top_p: float):
    """One token per row from ``logits`` (B, V) with uniforms ``u`` (B,); greedy when temperature is 0.

    Tokens are ranked by probability; top-k keeps the k first, top-p those whose higher-ranked mass is below p;
    the pick is by inverse CDF over what is kept. With top-p, only the ``CANDIDATES`` most likely tokens are
    ranked when they hold at least p of the mass in every row (then nothing below them could be kept: the same
    result as ranking all, for a fraction of the cost); otherwise all are ranked."""
    if temperature <= 0:
        return torch.max(logits, -1).indices
    probs = (logits / temperature).softmax(-1)
    V = probs.shape[-1]
    k = top_k if 0 < top_k < V else V
    sp = si = None
    if 0 < top_p < 1 and k > CANDIDATES:
        sp, si = torch.topk(probs, CANDIDATES, dim=-1, sorted=True)
        if not bool((sp.sum(-1) >= top_p).all()):
            sp = si = None
    if sp is None:
        sp, si = torch.sort(probs, dim=-1, descending=True, stable=True)
    keep = torch.ones_like(sp, dtype=torch.bool)
    if k < sp.shape[-1]:
        keep[:, k:] = False
    if 0 < top_p < 1:
        before = sp.cumsum(-1) - sp  # mass of the tokens ranked above
        keep &= before < top_p
    sp = sp * keep
    cdf = sp.cumsum(-1)
    target = u * cdf[:, -1]
    j = (cdf <= target[:, None]).sum(-1).clamp(max=sp.shape[-1] - 1)
    # never land on a masked (zero-probability) slot
    j = torch.minimum(j, keep.sum(-1) - 1)
    return si.gather(1, j[:, None])[:, 0]


def uniforms(generators, length: int):
    return torch.stack([torch.rand(length, generator=g, dtype=torch.float32) for g in generators])


@torch.inference_mode()
def sample(model: TinyGPT, prompts, generators, max_new: int, temperature=0.8, top_k=0, top_p=1.0):
    """KV-cache decoding. ``prompts``: (B, P) int64 of equal length; returns (B, max_new) new tokens
    (EOS then padding after a row ends). Rows that have ended are dropped from the batch (with their
    cache) once a quarter of it has ended; it stops when every row has ended."""
    B, P = prompts.shape
    length = min(P + max_new, model.config.block)
    caches = model.new_cache(B, length)
    u = uniforms(generators, max_new)
    out = torch.full((B, max_new), EOS, dtype=torch.long)
    rows = torch.arange(B)  # batch row -> output row
    done = torch.zeros(B, dtype=torch.bool)
    logits = None
    for pos in range(P):
        logits = model.step(prompts[:, pos], caches, pos)
    for t in range(min(max_new, length - P)):
        tok = pick(logits, u[rows, t], temperature, top_k, top_p)
        tok = torch.where(done, torch.full_like(tok, EOS), tok)
        out[rows, t] = tok
        done |= tok == EOS
        ended = int(done.sum())
        if ended == len(rows) or P + t + 1 >= length:
            break
        if ended * 4 >= len(rows):  # compact: keep the rows still writing
            keep = (~done).nonzero()[:, 0]
            rows, tok, done = rows[keep], tok[keep], done[keep]
            caches = [(k[keep], v[keep]) for k, v in caches]
        logits = model.step(tok, caches, P + t)
    return out


@torch.inference_mode()
def sample_naive(model: TinyGPT, prompts, generators, max_new: int, temperature=0.8, top_k=0, top_p=1.0):
    """The reference loop without a cache: the full forward over the whole sequence for every token."""
    B, P = prompts.shape
    length = min(P + max_new, model.config.block)
    u = uniforms(generators, max_new)
    seq = prompts.clone()
    out = torch.full((B, max_new), EOS, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    for t in range(min(max_new, length - P)):
        logits = model(seq)[:, -1]
        tok = pick(logits, u[:, t], temperature, top_k, top_p)
        tok = torch.where(done, torch.full_like(tok, EOS), tok)
        out[:, t] = tok
        done |= tok == EOS
        if bool(done.all()):
            break
        seq = torch.cat([seq, tok[:, None]], 1)
    return out
