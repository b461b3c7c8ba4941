"""``conjure evaluate``: quality reports for generators, dispatched by kind.

Level metrics live in :mod:`engine.eval_levels`, character metrics in :mod:`engine.eval_characters`, story
metrics in :mod:`engine.eval_stories`; each module has ``evaluate(engine, generator, *, count, seed, params,
report) -> dict`` that returns the metrics and, when ``report`` is a folder, writes ``report.md`` and its PNGs.
"""
from __future__ import annotations

import importlib
import math
import os
from pathlib import Path
from typing import Any

from .errors import InputError

MODULES = {"level": "engine.eval_levels", "character": "engine.eval_characters", "story": "engine.eval_stories"}


def evaluate(engine: Any, gen_id: str, *, count: int = 100, seed: int | str = 0, params: dict | None = None,
             report: str | os.PathLike | None = None, data: list | None = None,
             legend: str | os.PathLike | None = None, controls: int = 0) -> dict:
    """Evaluate ``gen_id``; ``data`` (``--data``, with ``legend``) names a corpus to measure against instead
    of the one the generator declares (level generators only); ``controls`` (``--controls N``): N levels per
    control bucket of a level generator with controls (:mod:`engine.eval_targets`)."""
    gen = engine.generator(gen_id)
    if not 1 <= count <= 1_000_000:
        raise InputError(f"--count must be in 1..1000000, got {count}")
    try:
        mod = importlib.import_module(MODULES[gen.kind])
    except ModuleNotFoundError:
        raise InputError(f"no evaluation is available for {gen.kind} generators yet") from None
    extra = {}
    if data or legend:
        if gen.kind != "level":
            raise InputError(f"--data/--legend: only level generators are evaluated against a corpus, "
                             f"{gen_id!r} makes {gen.kind}s")
        extra = {"data": list(data or []), "legend": legend}
    if controls:
        if gen.kind != "level" or not 1 <= controls <= 10_000:
            raise InputError(f"--controls: {controls} levels per bucket of a level generator's controls "
                             f"(1..10000; {gen_id!r} makes {gen.kind}s)")
        extra["controls"] = controls
    metrics = mod.evaluate(engine, gen, count=count, seed=seed, params=dict(params or {}),
                           report=Path(report) if report is not None else None, **extra)
    return _finite(metrics)


def _finite(v: Any) -> Any:
    """NaN/inf become None (a figure that cannot be measured, e.g. the diversity of fewer than two valid
    levels), so ``--json`` prints strict JSON."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_finite(x) for x in v)
    return v
