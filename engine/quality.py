"""Validators for generated levels, shared by classic and learned generators.

- :func:`dungeon_problems`: spawn → key → locked door → exit, where a locked door blocks until the key is
  held (flood fills with ``scipy.ndimage.label``).
- :func:`platformer_problems`: the goal is reachable from the spawn under a jump model (max jump height and
  distance in tiles).

Each returns a list of problems (empty when the level passes), worded for a designer.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .content import Level

FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def _label(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage  # ~200 ms to import: only when a validator first runs

    labels, _ = ndimage.label(mask, structure=FOUR)
    return labels


def _one(level: Level, kind: str, out: list[str]):
    es = level.entities_of(kind)
    if not es:
        out.append(f"no {kind} entity")
        return None
    return es[0]


def dungeon_problems(level: Level, require_lock: bool = True) -> list[str]:
    """Check a top-down dungeon: every entity on a walkable tile, the key reachable from the spawn with
    locked doors closed, the exit reachable once the key is held, and (``require_lock``) the exit *not*
    reachable without the key, so the key matters."""
    out: list[str] = []
    layer = level.tiles
    solid = level.tileset.lookup("solid")[layer]
    locked = level.tileset.lookup("locked")[layer]
    walk_open = ~solid
    walk_closed = walk_open & ~locked
    for e in level.entities:
        if not walk_open[e.y, e.x] or locked[e.y, e.x]:
            out.append(f"{e.kind} {e.id!r} at x={e.x}, y={e.y} stands on a blocked tile")
    spawn, exit_ = _one(level, "spawn", out), _one(level, "exit", out)
    if len(level.entities_of("spawn")) > 1:
        out.append("more than one spawn")
    if out or spawn is None or exit_ is None:
        return out
    closed = _label(walk_closed)
    home = closed[spawn.y, spawn.x]
    if locked.any() or require_lock:
        key = _one(level, "key", out)
        if key is None:
            return out
        if closed[key.y, key.x] != home:
            out.append(f"key at x={key.x}, y={key.y} cannot be reached from the spawn")
        opened = _label(walk_open)
        if opened[exit_.y, exit_.x] != opened[spawn.y, spawn.x]:
            out.append(f"exit at x={exit_.x}, y={exit_.y} cannot be reached even with the key")
        if require_lock:
            if not locked.any():
                out.append("no locked door")
            elif closed[exit_.y, exit_.x] == home:
                out.append("exit can be reached without the key (the locked door guards nothing)")
    else:
        if closed[exit_.y, exit_.x] != home:
            out.append(f"exit at x={exit_.x}, y={exit_.y} cannot be reached from the spawn")
    return out


def platformer_reach(solid: np.ndarray, start: tuple[int, int], jump_height: int,
                     jump_distance: int) -> set[tuple[int, int]]:
    """Standing cells ``(x, y)`` reachable from ``start`` (y grows downwards; the player is one tile).

    Moves: from a standing cell rise straight up to ``jump_height`` tiles through air, then move sideways
    up to ``jump_distance`` tiles through air at that height, then fall straight down until landing (falling
    out of the bottom is death). Walking is the zero-height case. The model is deliberately conservative:
    a level it accepts is passable in any ordinary platformer physics with at least these jump sizes.
    """
    h, w = solid.shape

    def land(x: int, y: int):
        while y + 1 < h and not solid[y + 1, x]:
            y += 1
        return (x, y) if y + 1 < h else None

    seen = {start}
    todo = deque([start])
    while todo:
        x, y = todo.popleft()
        for rise in range(jump_height + 1):
            yy = y - rise
            if yy < 0 or solid[yy, x]:
                break
            for step in (-1, 1):
                for d in range(1, jump_distance + 1):
                    nx = x + step * d
                    if not 0 <= nx < w or solid[yy, nx]:
                        break
                    spot = land(nx, yy)
                    if spot is not None and spot not in seen:
                        seen.add(spot)
                        todo.append(spot)
    return seen


def platformer_problems(level: Level, jump_height: int, jump_distance: int) -> list[str]:
    """The goal must be reachable from the spawn under the jump model of :func:`platformer_reach`."""
    out: list[str] = []
    solid = level.tileset.lookup("solid")[level.tiles]
    spawn, goal = _one(level, "spawn", out), _one(level, "goal", out)
    if spawn is None or goal is None:
        return out
    for e in (spawn, goal):
        if solid[e.y, e.x] or e.y + 1 >= level.height or not solid[e.y + 1, e.x]:
            out.append(f"{e.kind} at x={e.x}, y={e.y} does not stand on solid ground")
    if out:
        return out
    reached = platformer_reach(solid, (spawn.x, spawn.y), jump_height, jump_distance)
    if (goal.x, goal.y) not in reached:
        far = max(x for x, _ in reached)
        out.append(f"goal at x={goal.x} unreachable with jumps {jump_height} high and {jump_distance} wide "
                   f"(furthest reached x={far})")
    return out
