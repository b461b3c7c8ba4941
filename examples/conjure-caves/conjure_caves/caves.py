"""``caves``: caves grown by a cellular automaton.

1. Fill the map at random: each cell is rock with probability ``fill`` (the border is always rock).
2. ``steps`` times, a cell becomes rock when at least 5 of the 9 cells around it (itself included,
   outside the map counting as rock) are rock, and floor otherwise: noise smooths into caverns.
3. Keep the largest open region (4-connected); fill the others with rock.
4. Spawn and exit go as far apart as the cave allows (two breadth-first sweeps); treasure goes into nooks.

Everything random comes from ``request.rng()``, so a seed gives the same cave on every machine. The validator
checks the cave is one connected region, open enough, and that the exit can be reached from the spawn.
"""
from __future__ import annotations

import numpy as np

from engine import Entity, Generator, Level, Param, TileDef, Tileset
from engine.quality import dungeon_problems

FLOOR, ROCK = 0, 1
FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
NINE = np.ones((3, 3), dtype=np.uint8)
RULE = 5  # rock when at least 5 of the 9 cells around are rock (the classic 4-5 rule)


def tileset() -> Tileset:
    return Tileset("caves", [
        TileDef(FLOOR, "floor", ".", (120, 104, 88)),
        TileDef(ROCK, "rock", "#", (48, 44, 52), {"solid": True}),
    ])


def _distances(open_: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Breadth-first 4-neighbour distances from ``start`` (y, x) over ``open_``; -1 where unreachable."""
    dist = np.full(open_.shape, -1, dtype=np.int32)
    frontier = np.zeros(open_.shape, dtype=bool)
    frontier[start] = True
    d = 0
    while frontier.any():
        dist[frontier] = d
        grow = np.zeros_like(frontier)
        grow[1:, :] |= frontier[:-1, :]
        grow[:-1, :] |= frontier[1:, :]
        grow[:, 1:] |= frontier[:, :-1]
        grow[:, :-1] |= frontier[:, 1:]
        frontier = grow & open_ & (dist < 0)
        d += 1
    return dist


def _farthest(dist: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)  # first in row-major order on ties
    return int(y), int(x)


class Caves(Generator):
    id = "caves"
    kind = "level"
    version = "1"  # bump whenever the same request would give a different cave
    description = "Cellular-automata caves: one connected cavern, spawn and exit far apart, treasure in nooks"
    params = (
        Param("width", "int", 64, min=16, max=256, help="map width in tiles"),
        Param("height", "int", 40, min=16, max=256, help="map height in tiles"),
        Param("fill", "float", 0.45, min=0.35, max=0.5, help="share of rock in the initial noise"),
        Param("steps", "int", 4, min=1, max=10, help="smoothing steps of the automaton"),
        Param("min_open", "float", 0.25, min=0.0, max=0.6, help="least share of the map that must be floor"),
        Param("treasure", "int", 4, min=0, max=50, help="treasure chests, placed in nooks"),
    )

    def generate(self, request):
        from scipy import ndimage  # imported on first use: keeps `conjure list` fast

        p = request.params
        rng = request.rng()
        w, h = p["width"], p["height"]
        rock = rng.random((h, w)) < p["fill"]
        border = np.ones((h, w), dtype=bool)
        border[1:-1, 1:-1] = False
        rock |= border
        for _ in range(p["steps"]):
            around = ndimage.convolve(rock.astype(np.uint8), NINE, mode="constant", cval=1)
            rock = (around >= RULE) | border
        labels, count = ndimage.label(~rock, structure=FOUR)
        tiles = np.where(rock, ROCK, FLOOR).astype(np.uint8)
        meta = {"genre": "caves", "regions_before_culling": int(count)}
        if count == 0:  # solid rock: an invalid level, the engine resamples
            return Level({"tiles": tiles}, tileset(), [], [], meta)
        sizes = np.bincount(labels.ravel())[1:]
        open_ = labels == 1 + int(np.argmax(sizes))
        tiles = np.where(open_, FLOOR, ROCK).astype(np.uint8)

        cells = np.argwhere(open_)
        first = tuple(int(v) for v in cells[int(rng.integers(len(cells)))])
        exit_ = _farthest(_distances(open_, first))
        spawn = _farthest(_distances(open_, exit_))
        entities = [Entity("spawn", "spawn", spawn[1], spawn[0]), Entity("exit", "exit", exit_[1], exit_[0])]

        rock_around = ndimage.convolve((~open_).astype(np.uint8), FOUR.astype(np.uint8), mode="constant", cval=1)
        nooks = open_ & (rock_around >= 3)
        taken = {spawn, exit_}
        chosen: list[tuple[int, int]] = []
        for pool in (nooks, open_ & ~nooks):  # nooks first, then anywhere on the floor
            spots = [s for s in (tuple(int(v) for v in c) for c in np.argwhere(pool)) if s not in taken]
            n = min(p["treasure"] - len(chosen), len(spots))
            if n > 0:
                chosen += [spots[int(k)] for k in sorted(rng.choice(len(spots), size=n, replace=False))]
        for i, (y, x) in enumerate(chosen):
            entities.append(Entity(f"treasure-{i}", "treasure", x, y, {"gold": int(rng.integers(5, 50))}))
        meta["open_share"] = round(float(open_.mean()), 4)
        return Level({"tiles": tiles}, tileset(), entities, [], meta)

    def validate(self, level, request):
        from scipy import ndimage

        out = dungeon_problems(level, require_lock=False)  # entities on floor, exit reachable from spawn
        open_ = ~level.tileset.lookup("solid")[level.tiles]
        _, count = ndimage.label(open_, structure=FOUR)
        if count != 1:
            out.append(f"the cave is {count} separate regions, expected one connected region")
        share = float(open_.mean())
        if share < request.params["min_open"]:
            out.append(f"only {share:.0%} of the map is floor (min_open={request.params['min_open']})")
        return out
