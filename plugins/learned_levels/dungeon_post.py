"""From a decoded top-down grid to a playable level: placing the start/key/goal, then (only if needed) repair.

Works on any corpus tileset through a :class:`Palette` of tile ids taken from the tags (floor, wall, void,
door, locked door, and the entity tiles for start, key and goal when the corpus has them).

- :func:`place` looks for a *vault* the network drew — a walkable area that only a locked door joins to a
  larger area — and puts the exit in it, the spawn and key outside. No tile changes: if it succeeds the
  decoded level is playable as drawn (``raw_valid``).
- :func:`repair` changes tiles: carves corridors joining stray areas to the largest one, then builds a
  5×5 vault (walls, 3×3 floor, one locked door) where it overwrites the fewest walkable cells.
"""
from __future__ import annotations

import numpy as np

from engine.quality import _label

from dataclasses import dataclass


@dataclass
class Palette:
    """Tile ids of one corpus tileset; ``walkable[id]`` is True for tiles one can stand on (not solid, not
    void, not a locked door, not an entity tile)."""

    floor: int
    wall: int
    void: int
    door: int
    locked: int | None
    walkable: np.ndarray


def _walk(tiles, P: Palette):
    return P.walkable[tiles]


def place(tiles: np.ndarray, rng: np.random.Generator, P: Palette):
    """``(spawn, key, exit)`` as (y, x) using a vault already in ``tiles``, or None."""
    walk = _walk(tiles, P)
    lab = _label(walk)
    sizes = np.bincount(lab.ravel())
    h, w = tiles.shape
    best = None
    for y, x in np.argwhere(tiles == P.locked):
        around = set()
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            yy, xx = y + dy, x + dx
            if 0 <= yy < h and 0 <= xx < w and lab[yy, xx]:
                around.add(int(lab[yy, xx]))
        if len(around) < 2:
            continue
        home = max(around, key=lambda k: (sizes[k], -k))
        vaults = [k for k in around if k != home]
        vault = max(vaults, key=lambda k: (sizes[k], -k))
        score = (int(sizes[home] >= 2), int(sizes[home]) + int(sizes[vault]))
        if best is None or score > best[0]:
            best = (score, home, vault, (int(y), int(x)))
    if best is None or best[0][0] == 0:
        return None
    _, home, vault, (dy_, dx_) = best
    hc = np.argwhere(lab == home)
    vc = np.argwhere(lab == vault)
    dist_h = np.abs(hc[:, 0] - dy_) + np.abs(hc[:, 1] - dx_)
    spawn = tuple(int(v) for v in hc[int(np.argmax(dist_h))])
    rest = [tuple(int(v) for v in c) for c in hc if tuple(int(v) for v in c) != spawn]
    key = rest[int(rng.integers(len(rest)))]
    dist_v = np.abs(vc[:, 0] - dy_) + np.abs(vc[:, 1] - dx_)
    exit_ = tuple(int(v) for v in vc[int(np.argmax(dist_v))])
    return spawn, key, exit_


def _carve(tiles, a, b, horizontal_first, P: Palette):
    (y0, x0), (y1, x1) = a, b
    pts = []
    if horizontal_first:
        pts += [(y0, x) for x in range(min(x0, x1), max(x0, x1) + 1)]
        pts += [(y, x1) for y in range(min(y0, y1), max(y0, y1) + 1)]
    else:
        pts += [(y, x0) for y in range(min(y0, y1), max(y0, y1) + 1)]
        pts += [(y1, x) for x in range(min(x0, x1), max(x0, x1) + 1)]
    n = 0
    for y, x in pts:
        if not P.walkable[tiles[y, x]]:
            tiles[y, x] = P.floor
            n += 1
    return n


def repair(tiles: np.ndarray, rng: np.random.Generator, P: Palette, min_area: int = 6, vault: bool = True) -> int:
    """Edit ``tiles`` in place into a level :func:`place` accepts; return the number of tiles changed
    (``-1`` when no vault fits)."""
    edits = 0
    h, w = tiles.shape
    vault = vault and P.locked is not None
    if vault:
        tiles[tiles == P.locked] = P.wall  # stray locked doors: the vault below gets the only one
    lab = _label(_walk(tiles, P))
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    if sizes.max(initial=0) < 8:  # next to nothing walkable: carve a hall in the middle to build on
        cy, cx = h // 2, w // 2
        before = tiles[cy - 4:cy + 4, cx - 6:cx + 6].copy()
        tiles[cy - 4:cy + 4, cx - 6:cx + 6] = P.wall
        tiles[cy - 3:cy + 3, cx - 5:cx + 5] = P.floor
        edits += int((before != tiles[cy - 4:cy + 4, cx - 6:cx + 6]).sum())
        lab = _label(_walk(tiles, P))
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
    main = int(np.argmax(sizes))
    main_cells = np.argwhere(lab == main)
    for k in np.argsort(-sizes, kind="stable"):
        k = int(k)
        if k == main or sizes[k] < min_area:
            continue
        cells = np.argwhere(lab == k)
        d = np.abs(cells[:, None, :] - main_cells[None, :, :]).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        edits += _carve(tiles, tuple(cells[i]), tuple(main_cells[j]), bool(rng.integers(2)), P)
    if not vault:
        return edits + _wall_in(tiles, P)
    # build the vault: a 5x5 block whose door cell faces a walkable cell of the (now) largest area
    lab = _label(_walk(tiles, P))
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    main = int(np.argmax(sizes))
    walk = _walk(tiles, P)
    cum = np.pad(walk.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ny, nx = h - 4, w - 4  # block origins (by, bx) with the 5x5 block inside the map
    covered = cum[5:5 + ny, 5:5 + nx] - cum[0:ny, 5:5 + nx] - cum[5:5 + ny, 0:nx] + cum[0:ny, 0:nx]
    gy, gx = np.mgrid[0:ny, 0:nx]
    centre = np.abs(gy - h // 2) + np.abs(gx - w // 2)
    mainp = np.pad(lab == main, 1)  # mainp[y + 1, x + 1] == (lab[y, x] == main), False outside the map
    sides = (  # door cell offset in the block, the outside cell offset
        ((0, 2), (-1, 2)), ((4, 2), (5, 2)), ((2, 0), (2, -1)), ((2, 4), (2, 5)))
    best = None
    for (ddy, ddx), (oy, ox) in sides:
        ok = mainp[oy + 1:oy + 1 + ny, ox + 1:ox + 1 + nx]
        if not ok.any():
            continue
        cost = np.where(ok, covered * 10_000 + centre, np.iinfo(np.int64).max)
        i = int(np.argmin(cost))  # first minimum in row-major order: deterministic
        c = int(cost.flat[i])
        by, bx = divmod(i, nx)
        if best is None or c < best[0]:
            best = (c, by, bx, (by + ddy, bx + ddx))
    if best is None:
        return -1
    _, by, bx, (dy, dx) = best
    before = tiles[by:by + 5, bx:bx + 5].copy()
    tiles[by:by + 5, bx:bx + 5] = P.wall
    tiles[by + 1:by + 4, bx + 1:bx + 4] = P.floor
    tiles[dy, dx] = P.locked
    edits += int((before != tiles[by:by + 5, bx:bx + 5]).sum())
    return edits + _wall_in(tiles, P)


def _wall_in(tiles: np.ndarray, P: Palette) -> int:
    """Void next to walkable becomes wall (connectivity unchanged); returns the tiles changed."""
    h, w = tiles.shape
    walk = _walk(tiles, P) | ((tiles == P.locked) if P.locked is not None else False)
    p = np.pad(walk, 1)
    near = np.zeros_like(walk)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    add = (tiles == P.void) & near & (P.void != P.wall)
    tiles[add] = P.wall
    return int(add.sum())


def place_simple(tiles: np.ndarray, P: Palette):
    """``(spawn, exit)`` as (y, x): the two cells of the largest walkable area farthest apart (a double
    sweep by Manhattan distance), or None when there is no walkable area of 2 cells."""
    lab = _label(_walk(tiles, P))
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    if sizes.max(initial=0) < 2:
        return None
    cells = np.argwhere(lab == int(np.argmax(sizes)))
    a = cells[0]
    b = cells[int(np.argmax(np.abs(cells - a).sum(1)))]
    c = cells[int(np.argmax(np.abs(cells - b).sum(1)))]
    return tuple(int(v) for v in b), tuple(int(v) for v in c)
