"""``conjure train``: the engine side of training learned generators.

A trainable generator has a ``train(job: TrainJob) -> dict`` method and may declare ``train_options`` (the
``-O KEY=VALUE`` names it reads; others are refused). The engine expands the data paths,
calls it, and writes the **model card** (``model.json`` beside the weights): generator id and version, the
data files with their SHA-256, config, seed, epochs, wall time, metrics, the weight files with their SHA-256
and the exact ``conjure train`` command that reproduces them. ``train`` returns a dict with at least
``weights`` (file names written into ``job.out``), and optionally ``config``, ``metrics`` and ``epochs``.
"""
from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, PluginError
from .progress import Progress
from .serialize import atomic_write
from .weights import file_digest

MAX_DATA_FILES = 10_000


@dataclass
class TrainJob:
    """What a generator's ``train`` gets: data files, output folder, epochs (None = its default), seed,
    the engine (to ``load`` Tiled/VGLC/pack data through the importers) and a progress factory."""

    data: list[Path]
    out: Path
    epochs: int | None
    seed: int
    engine: Any = None
    show_progress: bool = True
    options: dict = field(default_factory=dict)

    def progress(self, total: int, description: str) -> Progress:
        return Progress(total, description, enabled=self.show_progress)


def expand_data(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given, folders expanded to their files (sorted, hidden files skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"--data {p}: no such file or folder")
    if not out:
        raise InputError("--data: no training files found")
    if len(out) > MAX_DATA_FILES:
        raise InputError(f"--data: {len(out)} files is over the limit of {MAX_DATA_FILES}")
    return out


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def train(engine: Any, gen_id: str, data: list[str | os.PathLike], *, epochs: int | None = None, seed: int = 0,
          out: str | os.PathLike | None = None, show_progress: bool = True, **options: Any) -> dict:
    """Train ``gen_id`` on ``data``; write weights and ``model.json`` into ``out``; return the model card."""
    gen = engine.generator(gen_id)
    if not callable(getattr(gen, "train", None)):
        trainable = ", ".join(g.id for g in engine.generators() if callable(getattr(g, "train", None))) or "none"
        raise InputError(f"generator {gen_id!r} cannot be trained (trainable: {trainable})")
    if epochs is not None and epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}")
    known = getattr(gen, "train_options", None)
    if known is not None:
        unknown = sorted(k for k in options if k not in known)
        if unknown:
            raise InputError(f"generator {gen_id!r} has no training option {unknown[0]!r} "
                             f"(its options: {', '.join(known) or 'none'})")
    files = expand_data(data)
    out_dir = Path(out) if out is not None else Path("trained") / gen_id
    out_dir.mkdir(parents=True, exist_ok=True)
    job = TrainJob(files, out_dir, epochs, seed, engine, show_progress, dict(options))
    t0 = time.time()
    try:
        result = gen.train(job)
    except (InputError, PluginError):
        raise
    except Exception as e:
        raise PluginError(f"train raised {type(e).__name__}: {e}", engine.plugin_of(gen_id), gen_id) from e
    seconds = time.time() - t0
    weights = [out_dir / w for w in result.get("weights", [])]
    for w in weights:
        if not w.is_file():
            raise PluginError(f"train said it wrote {w.name} but it is not in {out_dir}", engine.plugin_of(gen_id),
                              gen_id)
    cmd = ["conjure", "train", gen_id]
    for f in data:
        cmd += ["--data", _rel(Path(f))]
    if result.get("epochs") is not None:
        cmd += ["--epochs", str(result["epochs"])]
    cmd += ["--seed", str(seed), "--out", _rel(out_dir)]
    for k in sorted(options):  # the card's command must reproduce these weights exactly
        cmd += ["-O", f"{k}={options[k]}"]
    card = {
        "generator": gen_id,
        "generator_version": gen.version,
        "command": shlex.join(cmd),
        "data": [{"path": _rel(f), "sha256": file_digest(f), "bytes": f.stat().st_size} for f in files],
        "seed": seed,
        "epochs": result.get("epochs", epochs),
        "seconds": round(seconds, 1),
        "config": result.get("config", {}),
        "metrics": result.get("metrics", {}),
        "weights": [{"file": w.name, "sha256": file_digest(w), "bytes": w.stat().st_size} for w in weights],
    }
    atomic_write(out_dir / "model.json", (json.dumps(card, indent=2) + "\n").encode())
    return card
