"""Training corpora: reading levels, turning them into model classes, cutting windows, augmenting.

Levels are read through the engine's importers (``engine.load``: VGLC text with its legend, Tiled maps,
content packs when ``engine.packs`` is there).

A *model class* grid is a level's tile layer with the entities the model learns (enemies, treasure, coins)
written over the tiles as extra classes, as VGLC does with its enemy glyphs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from engine.content import Level
from engine.errors import InputError

VGLC_SUFFIX = ".vglc.txt"
LEGEND_SUFFIX = ".legend.json"
DATA_ROOT = Path(__file__).resolve().parent.parent / "data"
LEVELS_ROOT = DATA_ROOT / "levels"
MODELS_ROOT = DATA_ROOT / "models"


# --------------------------------------------------------------------------------------------- reading
def reader_engine() -> Any:
    """A small engine with just the VGLC and Tiled importers, for reading corpora outside ``conjure train``."""
    from engine import Engine

    return Engine(load=["plugins.vglc", "plugins.tiled", "plugins.formats"], entry_points=False)


SKIP_SUFFIXES = (LEGEND_SUFFIX, ".py", ".md", ".png", ".tsx", ".pyc")


def load_levels(paths: Iterable[Path], engine: Any = None, genre: str | None = None) -> list[Level]:
    """Read every level in ``paths`` through the engine's importers (VGLC text, Tiled maps, content packs
    when the engine has them); legend files, scripts and images are skipped. Keeps levels whose tileset is
    ``genre``."""
    engine = engine if engine is not None else reader_engine()
    out: list[Level] = []
    for p in map(Path, paths):
        if p.name.lower().endswith(SKIP_SUFFIXES):
            continue
        out += [lv for lv in _engine_load(engine, p) if genre is None or lv.tileset.name == genre]
    return out


def _engine_load(engine: Any, p: Path) -> list[Level]:
    """Levels from one file through the engine (importers, or a content pack when the engine has packs)."""
    try:
        c = engine.load(p)
    except InputError:
        c = None
    if isinstance(c, Level):
        return [c]
    if c is not None:
        return []
    try:  # a content pack (engine/packs.py, when present)
        from engine import packs  # type: ignore[attr-defined]
    except ImportError:
        return []
    reader = getattr(packs, "read_pack", None) or getattr(packs, "open_pack", None)
    if reader is None:
        return []
    try:
        pack = reader(p)
        items = list(pack) if not hasattr(pack, "items") else list(pack.items())
    except Exception:
        return []
    return [x for x in items if isinstance(x, Level)]


# --------------------------------------------------------------------------------------------- classes
def to_classes(level: Level, entity_classes: dict[str, int]) -> np.ndarray:
    """The level's tile ids as int64 classes, entities in ``entity_classes`` written over their cell."""
    g = level.tiles.astype(np.int64).copy()
    for e in level.entities:
        c = entity_classes.get(e.kind)
        if c is not None and 0 <= e.y < g.shape[0] and 0 <= e.x < g.shape[1]:
            g[e.y, e.x] = c
    return g


def windows(grid: np.ndarray, h: int, w: int, stride_y: int = 1, stride_x: int = 1) -> np.ndarray:
    """All ``h×w`` windows of ``grid`` at the given strides, as ``(n, h, w)`` (the last window always
    touches the far edge). A grid smaller than the window gives none."""
    H, W = grid.shape
    if H < h or W < w:
        return np.zeros((0, h, w), dtype=grid.dtype)
    ys = sorted(set(list(range(0, H - h + 1, stride_y)) + [H - h]))
    xs = sorted(set(list(range(0, W - w + 1, stride_x)) + [W - w]))
    return np.stack([grid[y:y + h, x:x + w] for y in ys for x in xs])


def augment(wins: np.ndarray, mode: str) -> np.ndarray:
    """``"hflip"``: originals and left-right mirrors; ``"d4"``: the 8 symmetries of the square."""
    if mode == "hflip":
        return np.concatenate([wins, wins[:, :, ::-1]])
    if mode == "d4":
        out = []
        for k in range(4):
            r = np.rot90(wins, k, axes=(1, 2))
            out += [r, r[:, :, ::-1]]
        return np.concatenate(out)
    return wins


def corpus_dir(genre: str) -> Path:
    return LEVELS_ROOT / genre


def shipped_corpus(genre: str) -> list[Path]:
    d = corpus_dir(genre)
    return sorted(d.glob("*" + VGLC_SUFFIX)) if d.is_dir() else []
