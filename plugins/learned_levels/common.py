"""Helpers shared by the learned level plugins (no torch at import time)."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable

from engine.errors import InputError
from engine.weights import load_model_card, load_safetensors

from .corpus import MODELS_ROOT

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], Any] = {}


def weights_path(gen_id: str, weights: str) -> Path:
    """The safetensors file to use: ``weights`` (a file, or a folder holding ``model.safetensors``) or the
    shipped one."""
    if not weights:
        return MODELS_ROOT / gen_id / "model.safetensors"
    p = Path(weights)
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.is_file():
        raise InputError(f"{gen_id}: weights {weights!r}: no such file")
    return p


def load_model(gen_id: str, weights: str, build: Callable[[dict, dict], Any]) -> Any:
    """Load (once per process and path) weights plus the model card beside them, and ``build(tensors,
    card)`` the model. Thread-safe."""
    path = weights_path(gen_id, weights)
    key = (gen_id, str(path.resolve()))
    with _LOCK:
        m = _CACHE.get(key)
        if m is None:
            if not path.is_file():
                raise InputError(f"{gen_id}: no weights at {path} (train some with `conjure train {gen_id}`)")
            card_path = path.with_name("model.json")
            card = load_model_card(card_path) if card_path.is_file() else {}
            tensors = load_safetensors(path, max_bytes=16 * 1024 * 1024)
            m = build(tensors, card)
            _CACHE[key] = m
        return m


def corpus(genre: str) -> list:
    """The shipped corpus levels of a genre (read once per process)."""
    from .corpus import load_levels, shipped_corpus

    with _LOCK:
        key = ("corpus", genre)
        if key not in _CACHE:
            _CACHE[key] = load_levels(shipped_corpus(genre), None, genre)
        return list(_CACHE[key])


def seed_param(text: str):
    """A seed given as a param string: digits are ints (as on the CLI)."""
    t = text.strip()
    return int(t) if t.lstrip("+-").isdigit() else text


#: Sane ranges for every size in a level model's config (weights files are untrusted input).
CONFIG_BOUNDS = {"ch": (1, 256), "classes": (1, 64), "size": (4, 128), "zdim": (1, 512), "stride": (1, 128),
                 "batch": (1, 4096), "h": (4, 128), "w": (4, 256), "ndf": (1, 256), "ngf": (1, 256),
                 "nz": (1, 512), "beta": (0.0, 100.0), "lr": (0.0, 1.0), "noise": (0.0, 1.0)}


def config_of(tensors: dict, card: dict, source: str = "weights") -> dict:
    from engine.weights import check_config

    cfg = card.get("config") or {}
    meta = tensors.get("__config__")
    if meta is not None:  # a uint8 tensor holding the config JSON (written by train)
        try:
            cfg = json.loads(bytes(meta.tolist()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise InputError(f"{source}: the __config__ tensor is not JSON") from None
    return check_config(cfg, CONFIG_BOUNDS, source)


def config_tensor(cfg: dict):
    import torch

    return torch.tensor(list(json.dumps(cfg, sort_keys=True).encode("utf-8")), dtype=torch.uint8)


def single_thread():
    """Context: one torch thread while it runs (the latency path), restored after."""
    import torch

    class _C:
        def __enter__(self):
            self.n = torch.get_num_threads()
            if self.n != 1:
                torch.set_num_threads(1)

        def __exit__(self, *exc):
            if self.n != 1:
                torch.set_num_threads(self.n)

    return _C()
