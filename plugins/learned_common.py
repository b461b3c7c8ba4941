"""What every learned plugin shares: weights loading and caching, config checks, torch threads, devices and
the training loop. Nothing here imports torch at module level.

- :func:`load_cached` — load a model once per process and weights file (thread-safe), from
  ``model.safetensors`` (a file, or a folder holding it) plus the model card beside it.
- :func:`weights_path` — the file a ``weights`` param names (or the shipped one).
- :func:`checked_config` — a model config read from an untrusted weights file, checked against bounds.
- :func:`json_tensor` / :func:`tensor_json` — small JSON documents (config, tileset, rules) carried in the
  weights file as uint8 tensors (safetensors holds tensors only; no pickle anywhere).
- :func:`torch_threads` — torch's intra-op threads, set **once per process** (default 1, or
  ``CONJURE_TORCH_THREADS``); generation and training call it, nothing toggles it per call.
- :func:`resolve_device` — ``"cpu"``, ``"cuda"`` or ``"auto"``; ``cuda`` without a GPU falls back to the CPU
  with a one-line message on stderr (``auto`` silently).
- :func:`train_loop` — epochs over a training set with a held-out figure every epoch, linear learning-rate
  warm-up then cosine decay, the best held-out checkpoint kept, and divergence (a NaN or infinite loss, or a
  training loss jumping to more than ``JUMP`` times its best epoch) stopped with an error naming the option
  to change (``-O lr=...``). Its history holds only finite numbers, so a model card is always valid JSON.
"""
from __future__ import annotations

import json
import math
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from engine.errors import InputError
from engine.resources import data_path

DATA_ROOT = data_path("plugins", "data")
MODELS_ROOT = DATA_ROOT / "models"
_LOCK = threading.Lock()  # guards _CACHE and _KEY_LOCKS only: never held while a model is built
_THREADS_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str, str], Any] = {}
#: one lock per cache key, held while that model is built (re-entrant: a build may load other models, set
#: torch threads or anything else without deadlocking; two different models build at the same time)
_KEY_LOCKS: dict[tuple[str, str, str], threading.RLock] = {}
_THREADS: int | None = None
_WARNED: set[str] = set()
JUMP = 10.0


# --------------------------------------------------------------------------------------------- torch
def torch_threads() -> int:
    """Set torch's intra-op thread count once per process (``CONJURE_TORCH_THREADS``, default 1: on a busy
    small box two threads are slower and their tail latency explodes); return it."""
    global _THREADS
    if _THREADS is None:
        with _THREADS_LOCK:
            if _THREADS is None:
                import torch

                try:
                    n = max(1, int(os.environ.get("CONJURE_TORCH_THREADS", "1")))
                except ValueError:
                    n = 1
                if torch.get_num_threads() != n:
                    torch.set_num_threads(n)
                _THREADS = n
    return _THREADS


def resolve_device(device: str | None, who: str = "training") -> str:
    """``"cpu"`` or ``"cuda"`` for a ``--device``/``device`` value of ``cpu``, ``cuda`` or ``auto``."""
    d = (device or "cpu").strip().lower()
    if d not in ("cpu", "cuda", "auto"):
        raise InputError(f"device: expected cpu, cuda or auto, got {device!r}")
    if d == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if d == "cuda" and who not in _WARNED:
        _WARNED.add(who)
        print(f"{who}: device cuda asked, but torch sees no CUDA GPU here; running on the CPU instead",
              file=sys.stderr)
    return "cpu"


# --------------------------------------------------------------------------------------------- weights
def weights_path(gen_id: str, weights: str, shipped: str | None = None) -> Path:
    """The safetensors file to use: ``weights`` (a file, or a folder holding ``model.safetensors``) or the
    shipped ``plugins/data/models/<shipped or gen_id>/model.safetensors``."""
    if not weights:
        return MODELS_ROOT / (shipped or gen_id) / "model.safetensors"
    p = Path(weights)
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.is_file():
        raise InputError(f"{gen_id}: weights {weights!r}: no such file")
    return p


def load_cached(gen_id: str, weights: str, build: Callable[[dict, dict, Path], Any], device: str = "cpu",
                max_bytes: int = 16 * 1024 * 1024) -> Any:
    """``build(tensors, card, path)`` once per process, weights file and device (thread-safe: threads asking
    for one model wait for its one build; the build runs under that model's own lock, not a global one, so it
    may call :func:`torch_threads` or load other models)."""
    from engine.weights import load_model_card, load_safetensors

    path = weights_path(gen_id, weights)
    key = (gen_id, str(path.resolve()), device)
    with _LOCK:
        m = _CACHE.get(key)
        if m is not None:
            return m
        lock = _KEY_LOCKS.setdefault(key, threading.RLock())
    with lock:
        with _LOCK:
            m = _CACHE.get(key)
        if m is None:
            if not path.is_file():
                raise InputError(f"{gen_id}: no weights at {path} (train some with `conjure train {gen_id}`)")
            card_path = path.with_name("model.json")
            card = load_model_card(card_path) if card_path.is_file() else {}
            tensors = load_safetensors(path, max_bytes=max_bytes)
            m = build(tensors, card, path)
            with _LOCK:
                _CACHE[key] = m
        return m


def json_tensor(doc: Any):
    """A JSON document as a uint8 tensor (sorted keys: the same document gives the same bytes)."""
    import torch

    raw = json.dumps(doc, sort_keys=True, allow_nan=False).encode("utf-8")
    return torch.tensor(list(raw), dtype=torch.uint8)


def tensor_json(tensors: dict, name: str, source: str, default: Any = None) -> Any:
    """The JSON document in tensor ``name`` (``default`` when absent)."""
    t = tensors.get(name)
    if t is None:
        return default
    try:
        return json.loads(bytes(t.tolist()).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError):
        raise InputError(f"{source}: the {name} tensor is not JSON") from None


def checked_config(tensors: dict, card: dict, bounds: dict, source: str) -> dict:
    """The model config from the ``__config__`` tensor (else the card's ``config``), checked against
    ``bounds`` (see :func:`engine.weights.check_config`)."""
    from engine.weights import check_config

    cfg = tensor_json(tensors, "__config__", source, None)
    if cfg is None:
        cfg = card.get("config") or {}
    return check_config(cfg, bounds, source)


def finite(x: float, nd: int = 5) -> float | None:
    """``round(x, nd)``, or None for NaN/inf (model cards are strict JSON)."""
    return round(float(x), nd) if math.isfinite(float(x)) else None


# --------------------------------------------------------------------------------------------- training
class Diverged(InputError):
    """Training stopped: the loss became NaN/inf or jumped; the message names the option to change."""


def lr_factor(step: int, total: int, warmup: int, floor: float = 0.1) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``floor`` of the base rate."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def train_loop(*, name: str, epochs: int, steps_per_epoch: int, optimizers: list, base_lrs: list[float],
               step: Callable[[int, int], dict], held_out: Callable[[], float] | None,
               snapshot: Callable[[], Any], restore: Callable[[Any], None], progress=None,
               warmup_frac: float = 0.05, lr_option: str = "lr", base_lr_value: float | None = None,
               check_jump: bool = True) -> dict:
    """Run ``epochs`` × ``steps_per_epoch`` calls of ``step(epoch, i)`` (which computes, backpropagates and
    steps; returns floats, ``"loss"`` among them) with the learning rate of every optimizer scheduled by
    :func:`lr_factor`; after each epoch ``held_out()`` (lower is better) is recorded and the best epoch's
    ``snapshot()`` kept; at the end ``restore(best)``. Returns ``{"history": [...], "best_epoch": n,
    "best_held_out": x}``; raises :class:`Diverged` naming ``-O {lr_option}=`` on NaN/inf or a jump."""
    total = max(1, epochs * steps_per_epoch)
    warmup = max(1, int(total * warmup_frac))
    history: list[dict] = []
    best = None
    best_train = math.inf
    k = 0
    lr0 = base_lr_value if base_lr_value is not None else (base_lrs[0] if base_lrs else 0.0)
    for ep in range(epochs):
        sums: dict[str, float] = {}
        for i in range(steps_per_epoch):
            f = lr_factor(k, total, warmup)
            for opt, lr in zip(optimizers, base_lrs):
                for g in opt.param_groups:
                    g["lr"] = lr * f
            out = step(ep, i)
            k += 1
            loss = float(out.get("loss", 0.0))
            if not math.isfinite(loss):
                raise Diverged(f"{name}: training diverged at epoch {ep + 1}, step {i + 1} (loss {loss}); "
                               f"lower the learning rate, e.g. -O {lr_option}={lr0 / 3:.3g}")
            for key, v in out.items():
                sums[key] = sums.get(key, 0.0) + float(v)
            if progress is not None:
                progress.advance(1, epoch=ep + 1, loss=loss)
        rec = {"epoch": ep + 1, "lr": finite(base_lrs[0] * lr_factor(k - 1, total, warmup), 7) if base_lrs else None}
        rec.update({f"train_{key}": finite(v / max(1, steps_per_epoch)) for key, v in sums.items()})
        tl = sums.get("loss", 0.0) / max(1, steps_per_epoch)
        if check_jump and ep > 0 and best_train > 0 and tl > JUMP * best_train:
            raise Diverged(f"{name}: training diverged at epoch {ep + 1} (loss {tl:.4g}, over {JUMP:g}x its best "
                           f"{best_train:.4g}); lower the learning rate, e.g. -O {lr_option}={lr0 / 3:.3g}")
        best_train = min(best_train, tl)
        if held_out is not None:
            h = float(held_out())
            if not math.isfinite(h):
                raise Diverged(f"{name}: training diverged: held-out loss is {h} at epoch {ep + 1}; lower the learning rate, "
                               f"e.g. -O {lr_option}={lr0 / 3:.3g}")
            rec["held_out"] = finite(h)
            if best is None or h < best[0]:
                best = (h, ep + 1, snapshot())
        history.append(rec)
    if best is None:
        best = (math.nan, epochs, snapshot())
    restore(best[2])
    return {"history": history, "best_epoch": best[1], "best_held_out": finite(best[0])}


def state_copy(module) -> dict:
    """A detached copy of a module's state dict (a checkpoint in memory)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
