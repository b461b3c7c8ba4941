"""Playability rules calibrated on a corpus: what "playable" means for *this* game.

:func:`fit_rules` reads the roles of the corpus's tiles from their tags
(:func:`plugins.learned_levels.corpus.roles_of`) and fits the rest on the corpus levels themselves, so that
the corpus passes its own rules (the share that does, and why the others fail, are in ``Rules.report``).
:class:`Rules` works on grids of corpus tile ids (``uint8`` 2-D arrays), is stored with a trained model
(``to_dict``/``from_dict``, plain JSON) and is what ``validate``, repair and ``conjure evaluate`` use.

Side view (``view == "side"``, gravity)
    The player is one tile. **Solid** tiles (role ``solid``) are what one stands on and cannot pass;
    everything else (air, coins, enemies, hazards) can be passed. From a *standing cell* (not solid, solid
    below) the player rises straight up to ``jump_height`` tiles through non-solid cells, moves sideways up
    to ``jump_distance`` tiles at that height, then falls straight down (any height) until landing; falling
    out of the bottom row is death. **Start**: the cell of a tile with role ``start`` if the level has one,
    else the lowest standing cell of the leftmost column (among the first 5) that has one. **Goal**: a
    ``goal`` tile, else the lowest standing cell of the rightmost column (among the last 5) that has one.
    A level more than twice as high as wide is vertical (Kid Icarus): start at the lowest standing cell,
    goal at the highest. **Void** tiles (``null``: VGLC Mega Man's ``@``, outside the level) block like solid.
    **Climbable** tiles (ladders, vines, ropes) are held on to: a ladder is climbed up and down and its top
    stood on; a **rope** (``rope`` role) is hung from and moved along, not climbed up; either is let go of
    (a fall). **One-way platforms** (``platform`` role: VGLC Kid Icarus's ``solidtop``) are jumped up
    through and stood on. A fall ends on solid, a platform, a ladder or a rope.
    A level passes when the goal is reachable from the start. *Fitted*: the smallest ``(jump_height,
    jump_distance)`` (by their sum, then height) under which the most corpus levels pass (all, normally);
    ``jump_height`` 0 (no jumping: Lode Runner) only with ``jump_distance`` 1 (walking). ``max_fall``: the
    longest drop any move from a reached cell of a corpus level takes (rows below the cell it started from),
    kept when under half the lowest level's height, else 0 (any fall). ``required`` ``["collectable"]`` when
    every corpus level that has collectables reaches a standing cell on each of them (Lode Runner's gold; a
    level then passes only if its start reaches every one). ``one_start``/``one_goal`` (both
    views): every corpus level has exactly one ``start`` (``goal``) tile, so a level must have exactly one
    (no "first wins", no edge standing in for a missing one).

Top down (``view == "top"``)
    **Walkable**: every tile not ``solid`` and not ``void``. **Start**: a ``start`` tile (``start``, ``spawn``,
    ``entrance``, ``player`` tags), else the walkable cells on the map's outer edge (a dungeon entrance in
    the outer wall), else the first required cell in reading order. **Locked doors** (``locked``, e.g. tags
    ``["door", "locked"]``) are closed until a **key** (``key`` tag) has been reached: each key reached
    opens one locked door next to the reached area (keys are used up), repeated until nothing changes.
    **Required cells**: the cells of the *required kinds*, which are chosen among ``goal``, ``stairs``,
    ``key``, ``door``, ``collectable`` (the kinds present in the tileset) and *fitted*: a kind is required
    only when every corpus level that has it reaches all its cells (a kind the corpus itself leaves
    unreachable, such as decorative doors into void, is reported and not required). A level passes when
    every required cell is reachable from the start (and it has at least one walkable cell).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import InputError

from .corpus import Corpus, roles_of, tile_tags

MAX_JUMP_HEIGHT = 12
MAX_JUMP_DISTANCE = 16
EDGE_COLS = 5
TOP_KINDS = ("goal", "stairs", "key", "door", "collectable")


def fast_reach(solid: np.ndarray, start: tuple[int, int], jump_height: int, jump_distance: int, *,
               climb: np.ndarray | None = None, rope: np.ndarray | None = None,
               platform: np.ndarray | None = None, max_fall: int = 0, stats: dict | None = None) -> set:
    """Standing cells ``(x, y)`` reachable from ``start`` under the side-view jump model (see the module
    docstring); the same moves as :func:`engine.quality.platformer_reach`, on Python lists for speed.

    Optional bool grids like ``solid``: ``climb`` (ladders, vines, ropes: one holds on to them, climbs up and
    down a ladder and stands on its top), ``rope`` (the climbable cells one only hangs from and moves along:
    no climbing up, nothing stands on them), ``platform`` (one-way platforms: jumped up through, stood on).
    ``max_fall`` > 0 bounds a fall: the rows a move ends lower than the cell it started from (a jump to the
    same height drops 0); 0 = any fall. ``stats``, when given, gets ``max_drop``: the largest drop of any
    move tried from a reached cell (what the level lets a player fall)."""
    h, w = solid.shape
    solid = np.asarray(solid, dtype=bool)
    climb = np.zeros_like(solid) if climb is None else np.asarray(climb, dtype=bool) & ~solid
    rope = np.zeros_like(solid) if rope is None else np.asarray(rope, dtype=bool) & climb
    support = solid.copy() if platform is None else solid | np.asarray(platform, dtype=bool)
    support |= climb & ~rope
    stand = ~solid & climb
    stand[:-1] |= ~solid[:-1] & support[1:]
    rest = np.full((h, w), -1, dtype=np.int64)
    rest[h - 1] = np.where(stand[h - 1], h - 1, -1)
    for y in range(h - 2, -1, -1):
        rest[y] = np.where(stand[y], y, rest[y + 1])
    rest[solid] = -1
    S = solid.tolist()
    R = rest.tolist()
    ST = stand.tolist()
    has_climb = bool(climb.any())
    C = climb.tolist() if has_climb else None
    P = rope.tolist() if has_climb else None
    fall = max_fall if max_fall and max_fall > 0 else h + 1
    seen = {start}
    todo = [start]
    top_drop = 0

    def add(c):
        if c not in seen:
            seen.add(c)
            todo.append(c)

    while todo:
        x, y = todo.pop()
        for rise in range(jump_height + 1):
            yy = y - rise
            if yy < 0 or S[yy][x]:
                break
            if rise and ST[yy][x]:  # straight up onto a one-way platform or a ladder
                add((x, yy))
            row_s, row_r = S[yy], R[yy]
            for step in (-1, 1):
                nx = x
                for _ in range(jump_distance):
                    nx += step
                    if not 0 <= nx < w or row_s[nx]:
                        break
                    ly = row_r[nx]
                    if ly >= 0 and ly - y <= fall:
                        if ly - y > top_drop:
                            top_drop = ly - y
                        if (nx, ly) not in seen:
                            seen.add((nx, ly))
                            todo.append((nx, ly))
        if has_climb:
            if C[y][x] and not P[y][x] and y > 0 and not S[y - 1][x]:
                add((x, y - 1))  # up a ladder (and onto its top)
            if y + 1 < h and not S[y + 1][x]:
                if C[y + 1][x]:
                    add((x, y + 1))  # down a ladder, or onto a rope below
                elif C[y][x]:  # let go of a rope or a ladder's bottom: fall
                    ly = R[y + 1][x]
                    if ly >= 0 and ly - y <= fall:
                        top_drop = max(top_drop, ly - y)
                        add((x, ly))
    if stats is not None:
        stats["max_drop"] = top_drop
    return seen


def _label4(mask: np.ndarray) -> np.ndarray:
    from engine.quality import _label

    return _label(mask)


class Rules:
    """Playability rules for one corpus's tileset (see the module docstring for both views).

    ``roles[i]`` is the sorted role list of tile id ``i``; ``params`` holds the fitted values
    (``jump_height``/``jump_distance`` for side view; ``required`` kinds for top down); ``report`` how the
    corpus fared (``corpus_pass``: share of corpus levels passing; ``failures``: ``[file, problem]``)."""

    def __init__(self, view: str, roles: list[list[str]], params: dict, report: dict | None = None,
                 chars: list[str] | None = None):
        if view not in ("side", "top"):
            raise InputError(f"rules: view must be 'side' or 'top', got {view!r}")
        self.view = view
        self.roles = [sorted(r) for r in roles]
        self.params = dict(params)
        self.report = dict(report or {})
        self.chars = list(chars or [])
        n = 256
        self._mask = {}
        for role in ("solid", "void", "start", "goal", "locked", "key", "stairs", "door", "collectable", "enemy",
                     "climbable", "rope", "platform"):
            m = np.zeros(n, dtype=bool)
            for i, r in enumerate(self.roles):
                if role in r:
                    m[i] = True
            self._mask[role] = m

    # ------------------------------------------------------------------ side view
    @property
    def jump(self) -> tuple[int, int]:
        return int(self.params.get("jump_height", 4)), int(self.params.get("jump_distance", 4))

    @property
    def max_fall(self) -> int:
        """The longest fall allowed (rows), fitted; 0 = any."""
        return int(self.params.get("max_fall", 0))

    def solid(self, grid: np.ndarray) -> np.ndarray:
        """Side view: the cells one cannot pass (solid tiles, and void: outside the level, VGLC's ``@``)."""
        return (self._mask["solid"] | self._mask["void"])[grid] if self.view == "side" else self._mask["solid"][grid]

    def reach(self, grid: np.ndarray, start: tuple[int, int], jh: int | None = None, jd: int | None = None,
              max_fall: int | None = None, stats: dict | None = None) -> set:
        """Side view: the standing cells reachable from ``start`` (:func:`fast_reach` with this corpus's
        climbable, rope and one-way platform tiles)."""
        jh0, jd0 = self.jump
        jh = jh0 if jh is None else jh
        jd = jd0 if jd is None else jd
        mf = self.max_fall if max_fall is None else max_fall
        extra = {}
        for role in ("climbable", "rope", "platform"):
            if self._mask[role].any():
                extra["climb" if role == "climbable" else role] = self._mask[role][grid]
        return fast_reach(self.solid(grid), start, jh, jd, max_fall=mf, stats=stats, **extra)

    def _tile_count_problems(self, grid: np.ndarray) -> list[str]:
        """``one_start``/``one_goal`` (fitted: every corpus level has exactly one such tile): a level must too."""
        out = []
        for role in ("start", "goal"):
            if self.params.get(f"one_{role}"):
                n = int(self._mask[role][grid].sum())
                if n != 1:
                    out.append(f"{n} {role} tiles (every corpus level has exactly one)")
        return out

    def endpoints(self, grid: np.ndarray) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """Side view: (start, goal) as ``(x, y)`` standing cells, or None where there is none."""
        solid = self.solid(grid)
        h, w = grid.shape
        stand = ~solid.copy()
        stand[:-1] &= solid[1:]
        stand[-1] = False

        def tagged(role):
            cells = np.argwhere(self._mask[role][grid])
            return (int(cells[0][1]), int(cells[0][0])) if len(cells) else None

        def edge(cols):
            for x in cols:
                ys = np.nonzero(stand[:, x])[0]
                if len(ys):
                    return (int(x), int(ys[-1]))
            return None

        if h > 2 * w:  # a vertical level (Kid Icarus): from the lowest standing cell up to the highest
            cells = np.argwhere(stand)
            low = (int(cells[-1][1]), int(cells[-1][0])) if len(cells) else None
            high = (int(cells[0][1]), int(cells[0][0])) if len(cells) else None
            return tagged("start") or low, tagged("goal") or high
        start = tagged("start") or edge(range(0, min(EDGE_COLS, w)))
        goal = tagged("goal") or edge(range(w - 1, max(-1, w - 1 - EDGE_COLS), -1))
        return start, goal

    def _side_problems(self, grid: np.ndarray, jh: int | None = None, jd: int | None = None,
                       max_fall: int | None = None) -> list[str]:
        jh0, jd0 = self.jump
        jh = jh0 if jh is None else jh
        jd = jd0 if jd is None else jd
        counts = self._tile_count_problems(grid)
        if counts:
            return counts
        start, goal = self.endpoints(grid)
        if start is None:
            return [f"no start: no standing cell in the first {EDGE_COLS} columns"]
        if goal is None:
            return [f"no goal: no standing cell in the last {EDGE_COLS} columns"]
        reach = self.reach(grid, start, jh, jd, max_fall)
        if goal not in reach:
            mf = self.max_fall if max_fall is None else max_fall
            falls = f", falls of {mf} at most" if mf else ""
            if grid.shape[0] > 2 * grid.shape[1]:
                far = f"highest reached y={min(y for _, y in reach)}"
            else:
                far = f"furthest reached x={max(x for x, _ in reach)}"
            return [f"goal at x={goal[0]}, y={goal[1]} unreachable with jumps {jh} high and {jd} wide{falls} "
                    f"({far})"]
        return self._side_required(grid, reach, self.params.get("required", []))

    def _side_required(self, grid: np.ndarray, reach: set, kinds) -> list[str]:
        """Side view: the cells of the required kinds (fitted: Lode Runner's gold) not among ``reach``."""
        out = []
        for k in kinds:
            cells = [(int(x), int(y)) for y, x in np.argwhere(self._mask[k][grid])]
            miss = [c for c in cells if c not in reach]
            if miss:
                x, y = miss[0]
                ch = self.chars[int(grid[y, x])] if int(grid[y, x]) < len(self.chars) else "?"
                out.append(f"{k} {ch!r} at x={x}, y={y} cannot be reached from the start"
                           + (f" ({len(miss)} such cells)" if len(miss) > 1 else ""))
        return out

    # ------------------------------------------------------------------ top down
    def _top_reach(self, grid: np.ndarray) -> tuple[np.ndarray | None, list[str]]:
        walk = ~self._mask["solid"][grid] & ~self._mask["void"][grid]
        locked = self._mask["locked"][grid] & walk
        keys = self._mask["key"][grid]
        if not walk.any():
            return None, ["no walkable cell"]
        starts = np.argwhere(self._mask["start"][grid] & walk)
        if not len(starts):
            edge = np.zeros_like(walk)
            edge[0, :] = edge[-1, :] = True
            edge[:, 0] = edge[:, -1] = True
            starts = np.argwhere(edge & walk & ~locked)
        if not len(starts):
            req = self._required(grid) & walk & ~locked
            starts = np.argwhere(req)[:1]
        if not len(starts):
            starts = np.argwhere(walk & ~locked)[:1]
        opened = np.zeros_like(walk)
        used = 0
        while True:
            lab = _label4(walk & (~locked | opened))
            ids = {int(lab[y, x]) for y, x in starts if lab[y, x]}
            reached = np.isin(lab, list(ids)) if ids else np.zeros_like(walk)
            got = int((keys & reached).sum())
            if got <= used:
                return reached, []
            # open one closed locked door touching the reached area per key not yet used
            near = np.zeros_like(walk)
            near[1:] |= reached[:-1]
            near[:-1] |= reached[1:]
            near[:, 1:] |= reached[:, :-1]
            near[:, :-1] |= reached[:, 1:]
            cand = np.argwhere(locked & ~opened & near)
            if not len(cand):
                return reached, []
            for y, x in cand[:got - used]:
                opened[y, x] = True
                used += 1

    def _required(self, grid: np.ndarray, kinds=None) -> np.ndarray:
        req = np.zeros(grid.shape, dtype=bool)
        for k in (self.params.get("required", []) if kinds is None else kinds):
            req |= self._mask[k][grid]
        return req

    def _top_problems(self, grid: np.ndarray, kinds=None) -> list[str]:
        counts = self._tile_count_problems(grid)
        if counts:
            return counts
        reached, probs = self._top_reach(grid)
        if probs:
            return probs
        out = []
        kinds = self.params.get("required", []) if kinds is None else kinds
        for k in kinds:
            cells = np.argwhere(self._mask[k][grid] & ~reached)
            if len(cells):
                y, x = cells[0]
                ch = self.chars[int(grid[y, x])] if int(grid[y, x]) < len(self.chars) else "?"
                out.append(f"{k} {ch!r} at x={int(x)}, y={int(y)} cannot be reached from the start"
                           + (f" ({len(cells)} such cells)" if len(cells) > 1 else ""))
        return out

    @staticmethod
    def _count(roles: list[list[str]], grid: np.ndarray, role: str) -> int:
        ids = [i for i, r in enumerate(roles) if role in r]
        return int(np.isin(grid, ids).sum()) if ids else 0

    # ------------------------------------------------------------------ API
    def problems(self, grid: np.ndarray) -> list[str]:
        """Why ``grid`` (corpus tile ids) is not playable under these rules; empty when it is."""
        g = np.asarray(grid)
        if g.ndim != 2 or g.size == 0:
            return ["not a 2-D grid"]
        if int(g.max()) >= len(self.roles):
            return [f"tile id {int(g.max())} is not in the corpus tileset ({len(self.roles)} tiles)"]
        return self._side_problems(g) if self.view == "side" else self._top_problems(g)

    def playable(self, grid: np.ndarray) -> bool:
        return not self.problems(grid)

    def to_dict(self) -> dict:
        return {"view": self.view, "roles": self.roles, "chars": self.chars, "params": self.params,
                "report": self.report}

    @classmethod
    def from_dict(cls, d: Any, where: str = "rules") -> "Rules":
        if not isinstance(d, dict):
            raise InputError(f"{where}: expected a map")
        roles = d.get("roles")
        if not (isinstance(roles, list) and 0 < len(roles) <= 256
                and all(isinstance(r, list) and all(isinstance(x, str) for x in r) for r in roles)):
            raise InputError(f"{where}.roles: expected a list (one per tile id) of role lists")
        params = d.get("params", {})
        if not isinstance(params, dict):
            raise InputError(f"{where}.params: expected a map")
        for k, lo in (("jump_height", 0), ("jump_distance", 1), ("max_fall", 0)):
            v = params.get(k, 1)
            if type(v) is not int or not lo <= v <= (64 if k != "max_fall" else 4096):
                raise InputError(f"{where}.params.{k}: expected an int in {lo}..{64 if k != 'max_fall' else 4096}, "
                                 f"got {v!r}")
        for k in ("one_start", "one_goal"):
            if type(params.get(k, False)) is not bool:
                raise InputError(f"{where}.params.{k}: expected true or false")
        req = params.get("required", [])
        if not isinstance(req, list) or any(k not in TOP_KINDS for k in req):
            raise InputError(f"{where}.params.required: expected kinds among {', '.join(TOP_KINDS)}")
        chars = d.get("chars", [])
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise InputError(f"{where}.chars: expected a list of strings")
        report = d.get("report", {})
        return cls(d.get("view"), roles, params, report if isinstance(report, dict) else {}, chars)

    def describe(self) -> str:
        ends = " and ".join(f"exactly one {r}" for r in ("start", "goal") if self.params.get(f"one_{r}"))
        ends = f"; {ends} tile" if ends else ""
        if self.view == "side":
            jh, jd = self.jump
            jump = f"jumps {jh} high and {jd} wide" if jh else f"no jumping (walks over gaps of {jd - 1} at most)"
            fall = f"falls of {self.max_fall} rows at most" if self.max_fall else "falls of any height"
            climb = ", climbs ladders/ropes" if self._mask["climbable"].any() else ""
            plat = ", stands on one-way platforms" if self._mask["platform"].any() else ""
            req = f"; start reaches every {', '.join(self.params['required'])} tile" if self.params.get("required") \
                else ""
            return f"side view: {jump}, {fall}{climb}{plat}{req}{ends}"
        return "top down: start reaches " + (", ".join(self.params.get("required", [])) or "(nothing required)") \
            + ends


def _roles(corpus: Corpus) -> list[list[str]]:
    return [sorted(roles_of(tile_tags(t))) for t in corpus.tileset.tiles]


def fit_rules(corpus: Corpus) -> Rules:
    """Rules for ``corpus`` fitted so that its own levels pass (see the module docstring)."""
    roles = _roles(corpus)
    chars = [t.char for t in corpus.tileset.tiles]
    lvl_name = corpus.sources if len(corpus.sources) == len(corpus.grids) else \
        [f"level {i}" for i in range(len(corpus.grids))]
    ones = {f"one_{r}": True for r in ("start", "goal") if corpus.grids and all(
        int(Rules._count(roles, g, r)) == 1 for g in corpus.grids)}
    if corpus.view == "side":
        base = Rules("side", roles, {"jump_height": 4, "jump_distance": 4}, chars=chars)
        H = max(g.shape[0] for g in corpus.grids)
        hmax = max(1, min(MAX_JUMP_HEIGHT, H - 2))
        # per level and jump height: the smallest jump distance that passes (inf = none); height 0 (no
        # jumping, Lode Runner) only with distance 1 (walking)
        need = np.full((len(corpus.grids), hmax + 1), np.inf)
        for i, g in enumerate(corpus.grids):
            if not base._side_problems(g, 0, 1):
                need[i, 0] = 1
            top = MAX_JUMP_DISTANCE  # the smallest distance needed never grows with the height
            for jh in range(1, hmax + 1):
                lo, hi = 1, top
                if base._side_problems(g, jh, hi):
                    continue
                while lo < hi:
                    mid = (lo + hi) // 2
                    if base._side_problems(g, jh, mid):
                        lo = mid + 1
                    else:
                        hi = mid
                need[i, jh] = lo
                top = lo
                if lo == 1:
                    need[i, jh + 1:] = 1
                    break
        best = None
        for jh in range(0, hmax + 1):
            for jd in range(1, MAX_JUMP_DISTANCE + 1 if jh else 2):
                n = int((need[:, jh] <= jd).sum())
                key = (-n, jh + jd, jh)
                if best is None or key < best[0]:
                    best = (key, jh, jd)
        _, jh, jd = best
        # falls: the longest drop the corpus's levels let a player take (any move from a reached cell, with
        # the fitted jumps); a bound only when it is under half the lowest level's height (else the levels
        # allow falls as long as they can hold: any fall). Every corpus level keeps passing (its moves all
        # drop that much at most).
        low = min(g.shape[0] for g in corpus.grids)
        longest = 0
        for g in corpus.grids:
            start, _ = base.endpoints(g)
            if start is not None:
                st: dict = {}
                base.reach(g, start, jh, jd, 0, st)
                longest = max(longest, st["max_drop"])
        params = {"jump_height": jh, "jump_distance": jd, **ones}
        if 0 < longest < low // 2:  # absent (the default, 0) = any fall, as rules fitted before
            params["max_fall"] = longest
        # collectables are required when every corpus level that has them can stand on every one of them
        # (Lode Runner's gold: the point of the level); coins in mid-air (Mario) are not stood on: not required
        fitted = Rules("side", roles, dict(params), chars=chars)
        has = [g for g in corpus.grids if fitted._mask["collectable"][g].any()]
        if has and all(not fitted._side_required(g, fitted.reach(g, fitted.endpoints(g)[0]), ["collectable"])
                       for g in has if fitted.endpoints(g)[0] is not None) \
                and all(fitted.endpoints(g)[0] is not None for g in has):
            params["required"] = ["collectable"]
        rules = Rules("side", roles, params, chars=chars)
    else:
        present = [k for k in TOP_KINDS if any(k in r for r in roles)]
        base = Rules("top", roles, {"required": present}, chars=chars)
        required, dropped = [], {}
        for k in present:
            bad = [i for i, g in enumerate(corpus.grids) if base._top_problems(g, [k])]
            has = [i for i, g in enumerate(corpus.grids) if base._mask[k][g].any()]
            if has and not bad:
                required.append(k)
            elif has:
                dropped[k] = f"{len(bad)} of {len(has)} corpus levels with {k} tiles leave some unreachable"
        rules = Rules("top", roles, {"required": required, **ones}, chars=chars)
        if dropped:
            rules.report["not_required"] = dropped
    fails = []
    for i, g in enumerate(corpus.grids):
        p = rules.problems(g)
        if p:
            fails.append([lvl_name[i], p[0]])
    rules.report.update({"corpus_levels": len(corpus.grids),
                         "corpus_pass": round(1 - len(fails) / max(1, len(corpus.grids)), 4),
                         "failures": fails})
    return rules
