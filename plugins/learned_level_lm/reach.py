"""Playability while decoding (numpy/Python only): the corpus-calibrated rules of
:mod:`plugins.learned_levels.rules`, computed incrementally as strips arrive, so the sampler can backtrack
as soon as a level can no longer be finished.

Side view: the same jump model as ``Rules`` (rise up to ``jump_height``, move up to ``jump_distance``
sideways at that height, fall straight down; start = lowest standing cell of the leftmost of the first 5
columns with one; goal = the same from the right). :class:`SideReach` keeps the set of reachable standing
cells of the columns decoded so far, incrementally: a move cut off by the right edge (a walk or jump that
reached the last decoded column with steps left) is kept as a *continuation* and resumed when the next
columns arrive, so no cell is ever expanded twice and a whole level costs one search. Columns' solid and
landing rows are remembered per distinct strip (levels repeat strips a lot).
*Dead* means no reachable cell lies within ``jump_distance`` of the right edge: no later column can ever be
reached, whatever is decoded next, so the sampler backs up at once.

Top down: :func:`room_ok` checks that a room's doors and required cells (stairs, keys, goals…) are all in
one walkable area of the room.
"""
from __future__ import annotations

import numpy as np

EDGE_COLS = 5
_COLUMN_CACHE: dict[bytes, dict] = {}  # per solid table: strip bytes -> (solid rows, landing rows)


class SideReach:
    def __init__(self, solid_table: np.ndarray, h: int, jump_height: int, jump_distance: int):
        self.solid_table = solid_table
        tkey = np.asarray(solid_table, dtype=bool).tobytes() + b"|%d" % h
        self._cols = _COLUMN_CACHE.get(tkey)
        if self._cols is None:
            if len(_COLUMN_CACHE) > 16:
                _COLUMN_CACHE.clear()
            self._cols = _COLUMN_CACHE[tkey] = {}
        self.h = h
        self.jh, self.jd = jump_height, jump_distance
        self.S: list[list[bool]] = [[] for _ in range(h)]  # row-major solid, one entry per column
        self.R: list[list[int]] = [[] for _ in range(h)]  # landing row falling from (x, y), -1 = none
        self.seen: set = set()
        self.start = None
        self.w = 0
        self.snaps: dict[int, tuple] = {0: (set(), None, -1, ())}
        self.maxx = -1  # the largest x of a reachable cell
        self.searched = 0  # columns the reachable set accounts for
        self.pending: list = []  # cells found reachable but not yet expanded
        self.cont: list = []  # moves cut off by the right edge: (next x, row, steps left)

    def _column(self, strip: np.ndarray):
        key = strip.tobytes()
        got = self._cols.get(key)
        if got is None:
            solid = self.solid_table[strip].tolist()
            land = -1  # the standing cell a fall through this column's cells ends on (-1: out of the bottom)
            rest = [-1] * self.h
            for y in range(self.h - 1, -1, -1):
                if solid[y]:
                    land = y - 1
                else:
                    rest[y] = land
            if len(self._cols) > 4096:
                self._cols.clear()
            got = self._cols[key] = (solid, rest)
        solid, rest = got
        for y in range(self.h):
            self.S[y].append(solid[y])
            self.R[y].append(rest[y])
        return solid

    def _search(self, seeds: list, cont: list):
        """Expand ``seeds`` (new reachable cells) and resume the cut-off moves ``cont``, to closure."""
        S, R, jh, jd, w = self.S, self.R, self.jh, self.jd, self.w
        seen = self.seen
        todo = list(seeds)
        out_cont = self.cont
        maxx = self.maxx
        for nx, yy, left in cont:  # moves that reached the old right edge, resumed
            row_s, row_r = S[yy], R[yy]
            for nx in range(nx, nx + left):
                if nx >= w:
                    out_cont.append((nx, yy, left))
                    break
                if row_s[nx]:
                    break
                ly = row_r[nx]
                if ly >= 0 and (nx, ly) not in seen:
                    seen.add((nx, ly))
                    todo.append((nx, ly))
                    if nx > maxx:
                        maxx = nx
                left -= 1
        while todo:
            x, y = todo.pop()
            for rise in range(jh + 1):
                yy = y - rise
                if yy < 0 or S[yy][x]:
                    break
                row_s, row_r = S[yy], R[yy]
                for nx in range(x - 1, max(-1, x - 1 - jd), -1):  # leftwards
                    if row_s[nx]:
                        break
                    ly = row_r[nx]
                    if ly >= 0 and (nx, ly) not in seen:
                        seen.add((nx, ly))
                        todo.append((nx, ly))
                left = jd
                for nx in range(x + 1, x + 1 + jd):  # rightwards; cut off by the edge: a continuation
                    if nx >= w:
                        out_cont.append((nx, yy, left))
                        break
                    if row_s[nx]:
                        break
                    ly = row_r[nx]
                    if ly >= 0 and (nx, ly) not in seen:
                        seen.add((nx, ly))
                        todo.append((nx, ly))
                        if nx > maxx:
                            maxx = nx
                    left -= 1
        self.maxx = maxx

    def add(self, strip: np.ndarray) -> None:
        """Append one column (tile ids, top to bottom); the search runs lazily (:meth:`update`)."""
        solid = self._column(strip)
        x = self.w
        self.w += 1
        if self.start is None and x < EDGE_COLS:
            stand = [y for y in range(self.h - 1) if not solid[y] and solid[y + 1]]
            if stand:
                self.start = (x, stand[-1])
                self.seen.add(self.start)
                self.maxx = max(self.maxx, x)
                self.pending.append(self.start)

    def update(self) -> None:
        """Extend the reachable set to the columns added since the last update."""
        if self.searched == self.w:
            return
        seeds, self.pending = self.pending, []
        cont, self.cont = self.cont, []
        self.searched = self.w
        if seeds or cont:
            self._search(seeds, cont)

    def dead(self) -> bool:
        """No later column can be reached (or no start in the first columns)."""
        self.update()
        if self.start is None:
            return self.w >= EDGE_COLS
        return self.maxx < self.w - self.jd

    def goal_reached(self) -> bool:
        """The finished level's goal (the rules' definition) is reachable."""
        self.update()
        w = self.w
        for x in range(w - 1, max(-1, w - 1 - EDGE_COLS), -1):
            ys = [y for y in range(self.h - 1) if not self.S[y][x] and self.S[y + 1][x]]
            if ys:
                return (x, ys[-1]) in self.seen
        return False

    def snapshot(self) -> None:
        self.update()
        self.snaps[self.w] = (set(self.seen), self.start, self.maxx, tuple(self.cont))

    def rewind(self, w: int) -> int:
        """Back to the latest snapshot at or before width ``w``; returns its width."""
        k = max(s for s in self.snaps if s <= w)
        seen, start, self.maxx, cont = self.snaps[k]
        self.seen = set(seen)
        self.start = start
        self.pending = []
        self.cont = list(cont)
        self.searched = k
        for y in range(self.h):
            del self.S[y][k:]
            del self.R[y][k:]
        self.w = k
        for s in [s for s in self.snaps if s > k]:
            del self.snaps[s]
        return k


def room_ok(room: np.ndarray, masks: dict, required: list[str]) -> bool:
    """A top-down room's door cells and required cells all lie in one 4-connected walkable area."""
    from engine.quality import _label

    walk = ~masks["solid"][room] & ~masks["void"][room]
    need = masks["door"][room] | masks["locked"][room]
    for k in required:
        need = need | masks[k][room]
    need &= walk
    if not need.any():
        return bool(walk.any())
    lab = _label(walk)
    ids = np.unique(lab[need])
    return len(ids) == 1 and ids[0] != 0
