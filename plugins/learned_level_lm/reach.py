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

Corpora whose rules are more than that jump model (ladders, ropes, one-way platforms, void, bounded falls,
required collectables, exactly one start/goal, vertical levels): :class:`RulesReach`, the rules' own search on
the decoded part (:func:`exact_jump_model` tells which).

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


_BIT_COLUMNS: dict[bytes, dict] = {}  # per solid table: strip bytes -> (air bits, standing bits)


class BitReach:
    """:class:`SideReach`'s interface and results (the same reachable standing cells under the same jump model,
    start, goal, *dead* test, snapshots and rewinds) on bitmasks: a column is a Python int per set of rows
    (bit ``y`` = row ``y``), so one move of the jump model is a few integer operations for all the rows at once.

    Per column ``x``: ``air[x]`` (non-solid rows), ``stand[x]`` (non-solid with a solid row below, not the
    bottom row) and ``R[x]`` (reachable standing cells). From new reachable cells ``N`` of column ``x``:

    - *rise*: ``A = N | up(N) | up²(N) …`` (``jump_height`` times, ``up(g) = (g >> 1) & air[x]``: a rise stops
      at a solid cell);
    - *move* one column at that height: ``g = A & air[x ± 1]``, then ``& air[x ± 2]`` … up to ``jump_distance``
      columns (a move stops at a solid cell);
    - *fall* from every cell of ``g`` in column ``nx`` to the end of its run of air: the runs ``g`` touches end
      where ``air + g`` carries past them, so the landing cells are ``(((air + g) & ~air) >> 1) & stand[nx]``
      (a run reaching the bottom row lands nowhere: falling out of the level).

    New landing cells are propagated the same way until nothing changes (a worklist of (column, new cells)).
    Columns arriving later resume the moves of the last ``jump_distance`` columns into them."""

    def __init__(self, solid_table: np.ndarray, h: int, jump_height: int, jump_distance: int):
        self.solid_table = np.asarray(solid_table, dtype=bool)
        tkey = self.solid_table.tobytes() + b"|%d" % h
        self._cols = _BIT_COLUMNS.get(tkey)
        if self._cols is None:
            if len(_BIT_COLUMNS) > 16:
                _BIT_COLUMNS.clear()
            self._cols = _BIT_COLUMNS[tkey] = {}
        self.h = h
        self.jh, self.jd = jump_height, jump_distance
        self.air: list[int] = []
        self.stand: list[int] = []
        self.R: list[int] = []
        self.start = None
        self.w = 0
        self.maxx = -1
        self.searched = 0
        self.snaps: dict[int, tuple] = {0: ((), None, -1)}

    def _column(self, strip: np.ndarray) -> tuple[int, int]:
        key = strip.tobytes()
        got = self._cols.get(key)
        if got is None:
            solid = self.solid_table[strip].tolist()
            air = stand = 0
            for y in range(self.h):
                if not solid[y]:
                    air |= 1 << y
                    if y + 1 < self.h and solid[y + 1]:
                        stand |= 1 << y
            if len(self._cols) > 4096:
                self._cols.clear()
            got = self._cols[key] = (air, stand)
        return got

    def add(self, strip: np.ndarray) -> None:
        """Append one column (tile ids, top to bottom); the search runs lazily (:meth:`update`)."""
        air, stand = self._column(strip)
        self.air.append(air)
        self.stand.append(stand)
        self.R.append(0)
        self.w += 1

    def _propagate(self, todo: list) -> None:
        air, stand, R = self.air, self.stand, self.R
        jh, jd, w = self.jh, self.jd, self.w
        maxx = self.maxx
        while todo:
            x, new = todo.pop()
            a = air[x]
            A = g = new
            for _ in range(jh):  # rise
                g = (g >> 1) & a
                if not g:
                    break
                A |= g
            g = A
            for nx in range(x + 1, min(w, x + 1 + jd)):  # rightwards
                an = air[nx]
                g &= an
                if not g:
                    break
                got = (((an + g) & ~an) >> 1) & stand[nx] & ~R[nx]
                if got:
                    R[nx] |= got
                    todo.append((nx, got))
                    if nx > maxx:
                        maxx = nx
            g = A
            for nx in range(x - 1, max(-1, x - 1 - jd), -1):  # leftwards
                an = air[nx]
                g &= an
                if not g:
                    break
                got = (((an + g) & ~an) >> 1) & stand[nx] & ~R[nx]
                if got:
                    R[nx] |= got
                    todo.append((nx, got))
        self.maxx = maxx

    def update(self) -> None:
        """Extend the reachable set to the columns added since the last update."""
        old, w = self.searched, self.w
        if old == w:
            return
        self.searched = w
        todo = []
        if self.start is None:
            for x in range(old, min(w, EDGE_COLS)):
                s = self.stand[x]
                if s:
                    y = s.bit_length() - 1  # the lowest standing cell
                    self.start = (x, y)
                    self.R[x] |= 1 << y
                    self.maxx = max(self.maxx, x)
                    todo.append((x, 1 << y))
                    break
        # moves of the columns before the old edge resume into the new columns: only the rightward moves,
        # landing only in new columns (the old columns are already closed under the old cells' moves)
        air, stand, R, jh, jd = self.air, self.stand, self.R, self.jh, self.jd
        maxx = self.maxx
        for x in range(max(0, old - jd), old):
            A = g = R[x]
            if not g:
                continue
            a = air[x]
            for _ in range(jh):
                g = (g >> 1) & a
                if not g:
                    break
                A |= g
            g = A
            for nx in range(x + 1, min(w, x + 1 + jd)):
                an = air[nx]
                g &= an
                if not g:
                    break
                if nx >= old:
                    got = (((an + g) & ~an) >> 1) & stand[nx] & ~R[nx]
                    if got:
                        R[nx] |= got
                        todo.append((nx, got))
                        if nx > maxx:
                            maxx = nx
        self.maxx = maxx
        if todo:
            self._propagate(todo)

    def dead(self) -> bool:
        """No later column can be reached (or no start in the first columns)."""
        self.update()
        if self.start is None:
            return self.w >= EDGE_COLS
        return self.maxx < self.w - self.jd

    def goal(self) -> tuple[int, int] | None:
        """The rules' goal of the columns so far: the lowest standing cell of the rightmost of the last
        ``EDGE_COLS`` columns that has one."""
        w = self.w
        for x in range(w - 1, max(-1, w - 1 - EDGE_COLS), -1):
            s = self.stand[x]
            if s:
                return (x, s.bit_length() - 1)
        return None

    def goal_reached(self) -> bool:
        """The finished level's goal (the rules' definition) is reachable."""
        self.update()
        g = self.goal()
        return g is not None and bool(self.R[g[0]] >> g[1] & 1)

    def cells(self) -> set:
        """The reachable standing cells ``(x, y)`` (as :attr:`SideReach.seen`)."""
        self.update()
        return {(x, y) for x, r in enumerate(self.R) for y in range(self.h) if r >> y & 1}

    def snapshot(self) -> None:
        self.update()
        self.snaps[self.w] = (tuple(self.R), self.start, self.maxx)

    def rewind(self, w: int) -> int:
        """Back to the latest snapshot at or before width ``w``; returns its width."""
        k = max(s for s in self.snaps if s <= w)
        R, self.start, self.maxx = self.snaps[k]
        self.R = list(R)
        del self.air[k:]
        del self.stand[k:]
        self.w = self.searched = k
        for s in [s for s in self.snaps if s > k]:
            del self.snaps[s]
        return k


def exact_jump_model(rules, vertical: bool = False) -> bool:
    """The rules are exactly :class:`BitReach`'s model: only the jump is fitted (no bounded fall, no exact
    start/goal, nothing required), no tile has a role that changes the moves or the endpoints, and the levels
    run left to right. Then BitReach's answer is the rules' answer; else :class:`RulesReach` is used."""
    roles = {r for rs in rules.roles for r in rs}
    return (rules.view == "side" and not vertical
            and not any(v for k, v in rules.params.items() if k not in ("jump_height", "jump_distance"))
            and not roles & {"start", "goal", "void", "climbable", "rope", "platform"})


BOOST = 8.0  # RulesReach: ladders' weight while a required cell waits to be reached


class RulesReach:
    """:class:`BitReach`'s interface answered by the rules themselves (:class:`plugins.learned_levels.rules.Rules`:
    climbing, ropes, one-way platforms, void, bounded falls, required collectables, exactly one start/goal),
    for corpora whose rules are more than the jump model.

    Strips are a side-view level's columns (left to right) or, for a **vertical** level (Kid Icarus), its rows
    from the bottom up (the player's way), so the decoded part is always the level's first ``w`` strips. Every
    check runs the rules' own search (:meth:`Rules.reach`) on that part. The part's reachable cells are a
    subset of the whole level's (a move cut by the part's edge only goes further in the whole level; a fall or
    a landing does not depend on what lies beyond the edge), so *dead* is sound where BitReach's is: no reached
    cell within a jump of the edge (within ``jump_height`` of the top for vertical levels), or a second
    start/goal tile where the corpus has exactly one. Kept stricter than the rules (the level is steered, not
    judged): a required cell (Lode Runner's gold) must be reached already or *open* — the rules' moves from it
    lead to the edge, so strips to come may still join it to the start (a floor whose ladder lies further
    on); at the last strip every one must be reached. The end check is the rules' :meth:`Rules.problems` on the whole level, so a level this reach
    passes is playable under the rules by definition (``proven``)."""

    def __init__(self, rules, h: int, vertical: bool = False, length: int = 0):
        self.rules = rules
        self.length = length  # the whole level's strips: there, every required cell must be reached
        self.h = h
        self.vertical = vertical
        self.jh, self.jd = rules.jump
        self.strips: list[np.ndarray] = []
        self.w = 0
        self.snaps: dict[int, np.ndarray | None] = {0: None}  # width -> the boost then
        self.proven_key: bytes | None = None
        m = rules._mask
        self._solid = m["solid"] | m["void"]
        self._start = m["start"]
        self._goal = m["goal"]
        self._req = np.zeros(256, dtype=bool)
        for k in rules.params.get("required", []):
            self._req |= m[k]
        self.one = [m[r] for r in ("start", "goal") if rules.params.get(f"one_{r}")]
        #: per tile kind, a factor on the sampler's weights while a required cell is not reached yet (ladders:
        #: the way up to Lode Runner's gold), else None (:attr:`sampler.Job` reads it)
        self.boost = None
        self._ladder = np.ones(256)
        self._ladder[m["climbable"] & ~m["rope"]] = BOOST

    def grid(self) -> np.ndarray:
        """The decoded part as a grid (tile ids): columns left to right, or rows with the newest on top."""
        S = np.stack(self.strips) if self.strips else np.zeros((0, self.h), dtype=np.uint8)
        return np.ascontiguousarray(S[::-1] if self.vertical else S.T)

    def add(self, strip: np.ndarray) -> None:
        self.strips.append(np.asarray(strip).astype(np.uint8))
        self.w += 1

    def _start_cell(self, g: np.ndarray):
        """The rules' start (``Rules.endpoints``) as it will be in the whole level, in ``g``'s coordinates."""
        tagged = np.argwhere(self._start[g])
        if len(tagged):
            return int(tagged[0][1]), int(tagged[0][0])
        if self.rules.params.get("one_start"):
            return None  # not decoded yet
        solid = self._solid[g]
        stand = ~solid
        stand[:-1] &= solid[1:]
        stand[-1] = False
        if self.vertical:
            cells = np.argwhere(stand)
            return (int(cells[-1][1]), int(cells[-1][0])) if len(cells) else None
        for x in range(min(EDGE_COLS, g.shape[1])):
            ys = np.nonzero(stand[:, x])[0]
            if len(ys):
                return int(x), int(ys[-1])
        return None

    def dead(self) -> bool:
        """No later strip can be reached, or the part already breaks a rule no later strip can mend."""
        g = self.grid()
        for m in self.one:
            if int(m[g].sum()) > 1:
                return True
        start = self._start_cell(g)
        if start is None:
            if self.rules.params.get("one_start"):
                return False
            return self.w >= EDGE_COLS
        cells = self.rules.reach(g, start)
        if not self._frontier(cells):
            return True
        waiting = False
        for y, x in np.argwhere(self._req[g]):
            c = (int(x), int(y))
            if c not in cells:
                if self.w >= self.length or not self._open(g, c):
                    return True
                waiting = True
        self.boost = self._ladder if waiting else None
        return False

    def _frontier(self, cells) -> bool:
        """Some cell of ``cells`` lies within a move of the decoded part's edge (right, or top if vertical)."""
        if self.vertical:
            return min(y for _, y in cells) <= max(1, self.jh)
        return max(x for x, _ in cells) >= self.w - self.jd

    def _open(self, g: np.ndarray, cell) -> bool:
        """A required cell not reached yet may still be, through strips to come: from it the rules' moves
        lead to the edge (Lode Runner's gold on a floor whose ladder is further right)."""
        return self._frontier(self.rules.reach(g, cell))

    def goal_reached(self) -> bool:
        """The whole level passes the rules (:meth:`Rules.problems` is empty)."""
        g = self.grid()
        key = b"%d,%d|" % g.shape + g.tobytes()
        if self.proven_key == key:
            return True
        if self.rules.problems(g):
            return False
        self.proven_key = key
        return True

    def proven(self, grid: np.ndarray) -> bool:
        """``grid`` is the level this reach found playable under the rules (their own check, run once)."""
        g = np.asarray(grid).astype(np.uint8)
        return self.proven_key is not None and self.proven_key == b"%d,%d|" % g.shape + g.tobytes()

    def snapshot(self) -> None:
        self.snaps[self.w] = self.boost

    def rewind(self, w: int) -> int:
        k = max(s for s in self.snaps if s <= w)
        self.boost = self.snaps[k]
        del self.strips[k:]
        self.w = k
        for s in [s for s in self.snaps if s > k]:
            del self.snaps[s]
        return k
