"""Everything the demo asks of the engine lives here; no drawing code.

A :class:`FloorSource` turns (world seed, floor number) into a :class:`Floor`: a dungeon level, the cast
made for it, a quest about both, and the tileset image. Floor ``n+1`` is made in the background
(a thread of our own, the level through ``engine.submit``) while ``n`` is played. The tile images are drawn
from a tile theme (``DEFAULT_THEME``, Kenney's CC0 art; ``--theme none`` for the flat colours).
"""
from __future__ import annotations

import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import engine
from engine import Cast, Character, Level, Story, derive

FLOOR_PARAMS = {"width": 40, "height": 30, "rooms": 7, "enemy_density": 0.02, "treasure": 3, "npcs": 1}
# the first generator of each list that is installed is used: learned ones when present, classic otherwise
LEVEL_GENERATORS = ("dungeon",)
CHARACTER_GENERATORS = ("character-ml", "classic-character")
STORY_GENERATORS = ("story-lm", "grammar-story")
WORLD_PARAMS = {"width": 96, "height": 64, "towns": 5}
TILE_SIZE = 16
DEFAULT_THEME = "kenney"  # plugins/data/themes/kenney: walls, floors and doors drawn from Kenney's CC0 tiles


@dataclass
class Floor:
    number: int
    level: Level
    cast: Cast
    story: Story
    tileset_rgb: np.ndarray  # (n_tiles, TILE_SIZE, TILE_SIZE, 3), indexed by tile id
    seconds: float
    characters: dict[str, Character] = field(default_factory=dict)  # entity id -> character

    def __post_init__(self):
        self.characters = {c.metadata.get("entity", c.id): c for c in self.cast.characters}


def check_theme(theme: str | None) -> str | None:
    """``theme`` if it names an installed tile theme (None or ``"none"``: the flat colours); an InputError
    naming the known ones otherwise."""
    if theme is None or theme == "none":
        return None
    from engine.themes import theme as find_theme

    return find_theme(theme).name


def tileset_tiles(eng: engine.Engine, level: Level, theme: str | None = None) -> np.ndarray:
    """Tile images by id, cut from the tileset PNG the Tiled exporter writes (plain colors without it), its
    tiles drawn from ``theme`` (``-O theme=NAME``) where the theme maps them."""
    n = max(t.id for t in level.tileset.tiles) + 1
    out = np.zeros((n, TILE_SIZE, TILE_SIZE, 3), dtype=np.uint8)
    for t in level.tileset.tiles:
        out[t.id] = t.color
    if not any(e.id == "tmj" for e in eng.exporters()):
        return out
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        options = {"tile_size": TILE_SIZE} if theme is None else {"tile_size": TILE_SIZE, "theme": theme}
        written = eng.export(level, Path(tmp) / "floor.tmj", **options)
        pngs = [p for p in written if p.suffix == ".png"]
        if not pngs:
            return out
        sheet = np.asarray(Image.open(pngs[0]).convert("RGB"))
    cols = max(1, sheet.shape[1] // TILE_SIZE)
    for t in level.tileset.tiles:
        y, x = divmod(t.id, cols)
        tile = sheet[y * TILE_SIZE:(y + 1) * TILE_SIZE, x * TILE_SIZE:(x + 1) * TILE_SIZE]
        if tile.shape[:2] == (TILE_SIZE, TILE_SIZE):
            out[t.id] = tile
    return out


class FloorSource:
    """Makes floors of one world from its seed, one ahead in the background."""

    def __init__(self, world_seed: int | str, eng: engine.Engine | None = None, theme: str | None = DEFAULT_THEME):
        self.seed = world_seed
        self.theme = check_theme(theme)
        self.engine = eng or engine.Engine()
        have = {g.id for g in self.engine.generators()}
        pick = lambda options: next(g for g in options if g in have)  # noqa: E731
        self.level_gen = pick(LEVEL_GENERATORS)
        self.character_gen = pick(CHARACTER_GENERATORS)
        self.story_gen = pick(STORY_GENERATORS)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floorgen")
        self._pending: dict[int, Future] = {}

    def _make(self, number: int) -> Floor:
        t0 = time.perf_counter()
        seed = derive(self.seed, "floor", number)
        eng = self.engine
        # through the runtime service: cached and thread-safe
        level = eng.submit("level", self.level_gen, seed=seed, params=FLOOR_PARAMS).result()
        cast = eng.generate("character", self.character_gen, seed=seed, context={"level": level})
        story = eng.generate("story", self.story_gen, seed=seed, context={"level": level, "cast": cast})
        tiles = tileset_tiles(eng, level, self.theme)
        return Floor(number, level, cast, story, tiles, time.perf_counter() - t0)

    def prefetch(self, number: int) -> None:
        if number not in self._pending:
            self._pending[number] = self._pool.submit(self._make, number)

    def get(self, number: int) -> Floor:
        """The floor, waiting for it if its background generation is still running."""
        self.prefetch(number)
        return self._pending.pop(number).result()

    def world_map(self) -> Level:
        return self.engine.generate("level", "terrain", seed=derive(self.seed, "world"), params=WORLD_PARAMS)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
