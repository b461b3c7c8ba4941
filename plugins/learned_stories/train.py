"""Training story-lm on ``QUEST|TONE|KIND|text`` lines (or plain lines of a user's own text).

The tokenizer (byte-level BPE, :mod:`.tokenizer`) is learned from the same lines first; it travels inside the
weights file's metadata with the config, the words of the training lines (the line checks accept exactly
these), the line kinds and the placeholders the lines use (a model trained on plain text is prompted with
the ``line`` kind and is not asked for placeholders it never saw).
"""
from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import time

import torch
from torch.nn import functional as F

from engine.errors import InputError
from engine.serialize import read_bytes
from engine.weights import save_safetensors

from .model import Config, TinyGPT
from .tokenizer import DEFAULT_VOCAB, EOS, KINDS, PAD, SLOTS, Tokenizer, copy_key, parse_line

WEIGHTS = "story-lm.safetensors"
FORMAT = "story-lm/2"
MAX_TEXT = 200          # characters; longer lines are skipped (and counted)
MAX_DATA_BYTES = 16 * 1024 * 1024  # one training file: larger is an error naming it (not read into memory)
SMALL_CORPUS = 500      # fewer lines than this: a warning (the model will mostly repeat them)
HOLD_OUT_EVERY = 20     # every 20th line is held out for val_loss (when there are at least 40)
WARMUP_STEPS = 50
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
PLACEHOLDER = re.compile(r"\{([a-z0-9_]*)\}")


def words_of(text: str) -> list[str]:
    """Lower-case words of a line, placeholders left out (the check for made-up words uses these)."""
    return WORD.findall(PLACEHOLDER.sub(" ", text).lower())


def read_examples(files) -> tuple[list[tuple[str, str, str, str]], int]:
    """(examples, lines skipped for length); a header with an unknown quest/tone/kind is an error naming it."""
    out, skipped = [], 0
    for f in files:
        try:
            text = read_bytes(f, MAX_DATA_BYTES).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"--data {f}: not UTF-8 text") from None
        for n, line in enumerate(text.splitlines(), 1):
            ex = parse_line(line, f"--data {f}:{n}")
            if ex is None:
                continue
            if 2 <= len(ex[3]) <= MAX_TEXT:
                out.append(ex)
            else:
                skipped += 1
    if not out:
        raise InputError("--data: no usable lines (want QUEST|TONE|KIND|text or plain text lines, "
                         f"2..{MAX_TEXT} characters)")
    return out, skipped


def encode_all(examples, tok: Tokenizer, block: int):
    rows = [(tok.control(q, t, k) + tok.encode(text) + [EOS])[:block + 1] for q, t, k, text in examples]
    x = torch.full((len(rows), block + 1), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, :len(r)] = torch.tensor(r)
    return x


def lr_at(step: int, steps: int, lr: float) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    warm = min(1.0, (step + 1) / WARMUP_STEPS)
    return lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))


def train(files, out_dir, *, seed: int = 0, epochs: int = 8, batch: int = 48, lr: float = 3e-3,
          d_model: int = 128, n_layers: int = 3, n_heads: int = 4, block: int = 64,
          vocab_size: int = DEFAULT_VOCAB, progress_factory=None, time_limit: float | None = None) -> dict:
    """Train and write ``story-lm.safetensors`` into ``out_dir``; returns config, metrics and warnings.

    ``progress_factory(total_steps)`` returns a progress context (``advance(n, loss=...)``)."""
    torch.set_num_threads(1)
    examples, skipped = read_examples(files)
    warnings = []
    if len(examples) < SMALL_CORPUS:
        warnings.append(f"only {len(examples)} training lines (at least {SMALL_CORPUS} are needed for new "
                        "lines; with fewer the model mostly repeats its own lines)")
    if skipped:
        warnings.append(f"{skipped} lines skipped (longer than {MAX_TEXT} characters)")
    for w in warnings:
        print(f"conjure: warning: story-lm: {w}", file=sys.stderr)
    tok = Tokenizer.train((e[3] for e in examples), vocab_size)
    cfg = Config(tok.vocab_size, d_model, n_layers, n_heads, block)
    torch.manual_seed(seed)
    model = TinyGPT(cfg)
    data = encode_all(examples, tok, block)
    idx = torch.arange(len(data))
    val_mask = (idx % HOLD_OUT_EVERY) == HOLD_OUT_EVERY - 1 if len(data) >= 2 * HOLD_OUT_EVERY else \
        torch.zeros(len(data), dtype=torch.bool)
    train_x, val_x = data[~val_mask], data[val_mask]
    # balance line kinds: rare kinds (beats, titles) are drawn more often than their share
    kind_of = torch.tensor([tok.control(*e[:3])[3] for e in examples])[~val_mask]
    counts = torch.bincount(kind_of).float()
    weights = counts[kind_of].pow(-0.5)
    steps = max(1, -(-epochs * len(train_x) // batch))
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.99))

    def loss_of(x):
        T = int((x != PAD).sum(1).max())
        inp, tgt = x[:, :T - 1], x[:, 1:T].clone()
        tgt[:, :3] = PAD  # the control tokens are given, not predicted
        logits = model(inp)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=PAD)

    first = last = None
    t0 = time.time()
    done = 0
    with (progress_factory(steps) if progress_factory else contextlib.nullcontext()) as progress:
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps, lr)
            sel = torch.multinomial(weights, batch, replacement=True, generator=g)
            model.train()
            loss = loss_of(train_x[sel])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            v = loss.item()
            first = v if first is None else first
            last = v if last is None else 0.9 * last + 0.1 * v
            done = step + 1
            if progress is not None:
                progress.advance(1, loss=last)
            if time_limit is not None and time.time() - t0 > time_limit:
                break
    model.eval()
    with torch.no_grad():
        val = round(float(loss_of(val_x)), 4) if len(val_x) else None  # None, never NaN: the card stays JSON
    kinds = sorted({e[2] for e in examples}, key=KINDS.index)
    slots = sorted({s for e in examples for s in PLACEHOLDER.findall(e[3]) if s in SLOTS}, key=SLOTS.index)
    words = sorted({w for e in examples for w in words_of(e[3])})
    meta = {"format": FORMAT, "config": json.dumps(cfg.to_dict(), sort_keys=True), "tokenizer": tok.to_json(),
            "words": json.dumps(words), "kinds": json.dumps(kinds), "slots": json.dumps(slots),
            "cells": json.dumps(sorted({"|".join(e[:3]) for e in examples})),
            "copies": json.dumps(sorted({k for e in examples if (k := copy_key(e[3]))}))}
    save_safetensors(dict(model.state_dict()), out_dir / WEIGHTS, metadata=meta)
    metrics = {"first_loss": round(first, 4), "final_loss": round(last, 4), "train_seconds": round(time.time() - t0, 1)}
    if val is not None:
        metrics["val_loss"] = val
    for k, v in metrics.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(f"story-lm training diverged ({k} = {v}); try a lower -O lr or more data")
    config = {**cfg.to_dict(), "steps": done, "batch": batch, "lr": lr, "examples": len(examples),
              "kinds": kinds, "slots": slots}
    if warnings:
        config["warnings"] = warnings
    return {"weights": [WEIGHTS], "config": config, "metrics": metrics, "epochs": epochs}
