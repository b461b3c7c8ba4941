"""Training story-lm on ``QUEST|TONE|KIND|text`` lines (or plain lines of a user's own text)."""
from __future__ import annotations

import json
import re
import time

import torch
from torch.nn import functional as F

from engine.errors import InputError
from engine.weights import save_safetensors

from .model import Config, TinyGPT
from .tokenizer import PAD, Tokenizer, parse_line

WEIGHTS = "story-lm.safetensors"
MAX_TEXT = 120
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
PLACEHOLDER = re.compile(r"\{[a-z0-9_]*\}")


def read_examples(files) -> list[tuple[str, str, str, str]]:
    out = []
    for f in files:
        try:
            text = f.read_text("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"--data {f}: not UTF-8 text") from None
        for line in text.splitlines():
            ex = parse_line(line)
            if ex and 2 <= len(ex[3]) <= MAX_TEXT:
                out.append(ex)
    if not out:
        raise InputError("--data: no usable lines (want QUEST|TONE|KIND|text or plain text lines)")
    return out


def encode_all(examples, tok: Tokenizer, block: int):
    rows = []
    for q, t, k, text in examples:
        ids = tok.control(q, t, k) + tok.encode(text) + [2]
        rows.append(ids[:block + 1])
    x = torch.full((len(rows), block + 1), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, :len(r)] = torch.tensor(r)
    return x


def train(files, out_dir, *, seed: int = 0, steps: int = 1000, batch: int = 24, lr: float = 3e-3,
          d_model: int = 128, n_layers: int = 2, n_heads: int = 4, block: int = 128, progress=None,
          time_limit: float | None = None) -> dict:
    """Train and write ``story-lm.safetensors`` into ``out_dir``; returns config and metrics."""
    torch.set_num_threads(1)
    examples = read_examples(files)
    tok = Tokenizer("".join(e[3] for e in examples))
    cfg = Config(tok.vocab_size, d_model, n_layers, n_heads, block)
    torch.manual_seed(seed)
    model = TinyGPT(cfg)
    data = encode_all(examples, tok, block)
    # hold out every 20th line to report generalisation
    idx = torch.arange(len(data))
    val_mask = (idx % 20) == 19 if len(data) >= 40 else torch.zeros(len(data), dtype=torch.bool)
    train_x, val_x = data[~val_mask], data[val_mask]
    # balance line kinds: rare kinds (beats, lore questions) are drawn far more often than their share
    kind_of = torch.tensor([tok.control(*e[:3])[3] for e in examples])[~val_mask]
    counts = torch.bincount(kind_of).float()
    weights = counts[kind_of].pow(-0.7)
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
    for step in range(steps):
        lr_now = lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(step / steps * 3.14159)).item()))
        for group in opt.param_groups:
            group["lr"] = lr_now
        sel = torch.multinomial(weights, batch, replacement=True, generator=g)
        x = train_x[sel]
        model.train()
        loss = loss_of(x)
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
        val = float(loss_of(val_x)) if len(val_x) else float("nan")
    words = sorted({w for e in examples for w in WORD.findall(PLACEHOLDER.sub(" ", e[3]).lower())})
    meta = {"config": str(cfg.to_dict()).replace("'", '"'), "chars": tok.to_json(), "format": "story-lm/1",
            "words": json.dumps(words)}
    save_safetensors({k: v for k, v in model.state_dict().items()}, out_dir / WEIGHTS, metadata=meta)
    return {"weights": [WEIGHTS], "config": {**cfg.to_dict(), "steps": done, "batch": batch, "lr": lr,
                                              "examples": len(examples)},
            "metrics": {"first_loss": round(first, 4), "final_loss": round(last, 4), "val_loss": round(val, 4),
                        "train_seconds": round(time.time() - t0, 1)},
            "epochs": None}
