"""Faithful decoding for ``dungeon-vae`` and ``platformer-gan``: tiles *sampled* from the network's per-cell
distributions, strip by strip in scan order, so that every 3×3 window of the output occurs in the training
corpus (numpy only; torch stays in the callers).

The pattern table, the per-strip constraint and the backtracking sampler are ``level-lm``'s
(:mod:`plugins.learned_level_lm.patterns`, :mod:`plugins.learned_level_lm.sampler`), reused as they are: a
*strip* is a column of a side-view level (top to bottom) or a row of a top-down room or window (left to
right); the corpus's strips are padded with a border symbol, so edges look like the corpus's edges too. For
each strip the sampler allows only tiles whose 3×3 windows with the two strips before occur in the corpus
and after which the rest of the strip can still be completed (exact, by dynamic programming), and draws
among them in proportion to the network's probability. A strip with no allowed tile steps back 1, 2, 4…
strips; side-view levels also step back when the corpus-fitted jump model can no longer reach further
right (:class:`plugins.learned_level_lm.reach.SideReach`), and a top-down room is decoded again when a
``check`` on the whole room fails. Past a budget of re-decoded strips the sampler stops backtracking for
playability and, where no pattern-allowed strip exists, draws each cell among the tiles whose window with the
cells already decoded occurs in the corpus, else the network's most likely tile (such strips are counted in
``pattern_fallbacks``).

Determinism: each level draws from its own ``numpy`` generator; a level decoded in a batch uses the batch's
probabilities, which may differ from those computed alone in the last float bits, so a level with a draw
within ``TIE`` of a boundary is *flagged* and the caller decodes it again from probabilities computed alone.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def strips_side(grid: np.ndarray) -> np.ndarray:
    """A side-view grid ``(h, w)`` as strips ``(w, h)`` (columns, top to bottom)."""
    return np.ascontiguousarray(grid.T)


def build_patterns(seqs: list[np.ndarray], classes: int):
    """The corpus pattern table of strip arrays ``(L, h)`` (tile ids ``< classes``)."""
    from plugins.learned_level_lm.patterns import Patterns

    return Patterns.from_strips([np.asarray(s, dtype=np.int64) for s in seqs if s.size], classes + 1)


def patterns_from_codes(codes3: np.ndarray, codes2: np.ndarray, classes: int):
    from plugins.learned_level_lm.patterns import Patterns

    return Patterns(classes + 1, codes3, codes2)


class Result:
    __slots__ = ("strips", "flagged", "backtracks", "fallbacks", "gave_up")

    def __init__(self, job):
        self.strips = job.S.copy()
        self.flagged = job.flagged
        self.backtracks = job.backtracks
        self.fallbacks = job.pattern_fallbacks
        self.gave_up = job.giveup


def sample(probs: np.ndarray, patterns, rng: np.random.Generator, *, reach=None,
           check: Callable[[np.ndarray], bool] | None = None,
           unary: np.ndarray | Callable[[int], np.ndarray] | None = None, budget: int | None = None,
           steers: list | None = None) -> Result:
    """Sample strips ``(L, h)`` from per-strip, per-row probabilities ``probs`` ``(L, h, V)``.

    ``reach``: a :class:`~plugins.learned_level_lm.reach.SideReach` (side view: backtrack when the level can
    no longer be finished); ``check(strips) -> bool``: the whole sequence is decoded again while it fails
    (within the budget); ``unary``: ``(h, V + 1)`` bool, tiles allowed per row (or a function of the strip
    index), default all tiles; ``steers``: :class:`~plugins.learned_level_lm.sampler.Steer` controls (``none``
    bans the attribute's tiles, other buckets steer the count towards a target)."""
    return sample_batch([dict(probs=probs, rng=rng, reach=reach, check=check, unary=unary, budget=budget,
                              steers=steers)], patterns)[0]


def sample_batch(items: list[dict], patterns) -> list[Result]:
    """:func:`sample` for many sequences at once (each item: the keyword arguments of :func:`sample`, with
    ``probs`` and ``rng``; ``vbig``: ``(V + 1, V)`` factors by the tile above, as level-lm's vertical bigram,
    the same object for all items; ``hbig``: ``(h, V + 1, V)`` factors per row by the tile to the left). From ``sampler.BATCH_SAMPLE`` sequences sampling a strip together, their strips are
    drawn by ``level-lm``'s vectorised ``sampler.sample_many`` (the same float64 products, running sums and
    inverse-CDF choices as one sequence alone), so each result equals :func:`sample` of its item alone."""
    from plugins.learned_level_lm.sampler import BATCH_SAMPLE, sample_many

    Job = _job_class()
    jobs, logits, Ps = [], [], []
    for it in items:
        probs = np.asarray(it["probs"], dtype=np.float64)
        L, h, V = probs.shape
        unary = it.get("unary")
        if unary is None:
            unary = np.ones((h, V + 1), dtype=bool)
            unary[:, V] = False
        lg = np.log(np.maximum(probs, 1e-300))
        job = Job(width=L, h=h, V=V, attrs=np.zeros(1, dtype=np.int64), rng=it["rng"],
                  steers=list(it.get("steers") or []), unary=unary, reach=it.get("reach"),
                  room_check=it.get("check"), budget=it.get("budget"))
        job.patterns = patterns
        job.hbig = it.get("hbig")
        jobs.append(job)
        logits.append(lg)
        Ps.append(None)
    if not jobs:
        return []
    V = jobs[0].V
    vb = items[0].get("vbig")
    expB_arr = np.ones((V + 1, V)) if vb is None else np.asarray(vb, dtype=np.float64)
    expB = expB_arr.tolist()
    if len(jobs) < BATCH_SAMPLE or len({(j.h, j.V) for j in jobs}) > 1 or \
            any(it.get("vbig") is not vb for it in items):
        for job, lg, it in zip(jobs, logits, items):
            eb = expB if it.get("vbig") is vb else np.asarray(it["vbig"], dtype=np.float64).tolist()
            while not job.done:
                job.advance(lg[job.t], patterns, eb)
        return [Result(j) for j in jobs]
    # exp(logits - max) per cell, as Job.prepare computes it for one strip (the same elementwise float64 math)
    Ps = [np.exp(lg - lg.max(2, keepdims=True)) for lg in logits]
    while True:
        act = [k for k, j in enumerate(jobs) if not j.done]
        if not act:
            break
        if len(act) < BATCH_SAMPLE:
            for k in act:
                jobs[k].advance(logits[k][jobs[k].t], patterns, expB)
            continue
        ready, cols, Pw, caps = [], [], [], []
        for k in act:
            j = jobs[k]
            got = j.prepare(logits[k][j.t], patterns, expB, Ps[k][j.t].copy())
            if got is not None:
                ready.append(j)
                cols.append(got[0])
                Pw.append(got[1])
                caps.append(got[2])
        if not ready:
            continue
        if len(ready) < BATCH_SAMPLE:
            for j, col, P, cp in zip(ready, cols, Pw, caps):
                j._commit(j._sample(col, P, expB, cp))
            continue
        strips = sample_many(ready, cols, Pw, caps, expB_arr)
        for j, strip in zip(ready, strips):
            j._commit(strip)
    return [Result(j) for j in jobs]


_JOB = None
_ROWS = np.arange(256)


def _job_class():
    """``level-lm``'s :class:`~plugins.learned_level_lm.sampler.Job` with a per-cell fallback: when no
    pattern-allowed strip exists (past the budget), each cell is drawn among the tiles whose 3×3 window with
    the cells already decoded occurs in the corpus (no look-ahead), and where none does, the network's most
    likely tile is taken; so a dead end costs a few windows rather than a whole strip of free draws."""
    global _JOB
    if _JOB is None:
        from plugins.learned_level_lm.sampler import Job

        class GreedyFallbackJob(Job):
            patterns = None
            _steer_cols = None
            hbig = None  # (h, V + 1, V): per row, a factor per tile by the tile left of it (or None)

            def _weights(self, logits, t, P=None):
                """``Job._weights`` to the bit (the same bonus — Python's min/max clip the same doubles as
                ``np.clip`` —, the same ``np.exp`` of it, the same products: the other tiles' factor there is
                1.0), scaling only the steered tiles' cells through precomputed indices (it runs once per
                strip of every level)."""
                if P is None:
                    P = np.exp((logits - logits.max(1, keepdims=True)).astype(np.float64))
                if self.hbig is not None:
                    P *= self.hbig[_ROWS[:self.h], (self.border if t == 0 else self._padded(t - 1))[1:-1]]
                if not self.steers:
                    return P
                if self._steer_cols is None:
                    idx = []
                    for st in self.steers:
                        cols = np.nonzero(st.tiles[:self.V])[0]
                        rows = np.arange(self.h) if st.rows is None else np.asarray(st.rows)
                        idx.append((rows[:, None], cols[None, :]))
                    self._steer_cols = idx
                c = self.counts[t].tolist()
                W = self.W
                for k, st in enumerate(self.steers):
                    ck = c[k]
                    if st.hi == 0 or ck >= st.hi:
                        continue
                    expected = st.target * (t + 1) / W
                    need = st.lo - ck
                    late = 2.0 if need > 0 and W - t <= 6 * need + 4 else 0.0  # running out of room
                    bonus = min(max(2.0 * (expected - ck) + late, -3.0), 4.0)
                    if abs(bonus) < 0.05:
                        continue
                    P[self._steer_cols[k]] *= np.exp(bonus)
                return P

            def _free_strip(self, logits, unary, expB):
                pats = self.patterns
                V, B, K = self.V, self.B, pats.K
                t = self.t
                a = None if t == 0 else (self.border if t == 1 else self._padded(t - 2))
                b = self.border if t == 0 else self._padded(t - 1)
                P = np.exp((logits - logits.max(1, keepdims=True)).astype(np.float64)) * unary[:, :V]
                u = self.rng.random(self.h)
                cur = [B, B]
                for r in range(1, self.h + 1):  # padded row r; cur[-2], cur[-1] are rows r - 2, r - 1
                    w = P[r - 1]
                    if r >= 2:
                        if a is None:
                            tab = pats._by_first(pats._triple(b, r))
                        else:
                            tab = pats._by_left(pats._triple(a, r) * K ** 3 + pats._triple(b, r))
                        w = w * tab[cur[-2], cur[-1], :V]
                    if not w.sum() > 0:
                        cur.append(int(np.argmax(P[r - 1])))
                        continue
                    c = np.cumsum(w)
                    cur.append(min(int(np.searchsorted(c, u[r - 1] * c[-1], side="right")), V - 1))
                return np.array(cur[2:], dtype=np.int64)

        _JOB = GreedyFallbackJob
    return _JOB


def sample_free(probs: np.ndarray, rng: np.random.Generator) -> Result:
    """Without a pattern table (weights copied away from their corpus, from before tables were stored):
    every cell drawn from the network's distribution on its own (still keeps rare kinds)."""
    from plugins.learned_level_lm.sampler import TIE

    P = np.asarray(probs, dtype=np.float64)
    c = np.cumsum(P, -1)
    tot = c[..., -1:]
    x = rng.random(P.shape[:2])[..., None] * tot
    idx = np.minimum((c <= x).sum(-1), P.shape[-1] - 1)
    near = np.abs(c - x).min(-1) < TIE * tot[..., 0]

    class _J:
        S = idx.astype(np.int64)
        flagged = bool(near.any())
        backtracks = pattern_fallbacks = 0
        giveup = False

    return Result(_J)


# ---------------------------------------------------------------------------------------------- reachability
def exact_jump_model(rules) -> bool:
    """Side-view ``rules`` that are exactly the jump model of ``level-lm``'s ``BitReach`` (only the jump is
    fitted: no bounded fall, no exact start/goal count, nothing required; no tile with a role that changes the
    moves or the endpoints: ``start``, ``goal``, ``void``, ``climbable``, ``rope``, ``platform``). Then the
    sampler may track reachability with ``BitReach`` (its answer is the rules' answer); else with
    :class:`RulesReach` (the rules' own search)."""
    roles = {r for rs in rules.roles for r in rs}
    return (rules.view == "side"
            and not any(v for k, v in rules.params.items() if k not in ("jump_height", "jump_distance"))
            and not roles & {"start", "goal", "void", "climbable", "rope", "platform"})


class RulesReach:
    """``BitReach``'s interface for the sampler (``add``, ``dead``, ``goal_reached``, ``snapshot``, ``rewind``,
    ``w``), answered by the corpus rules themselves (:class:`plugins.learned_levels.rules.Rules`: climbing,
    ropes, one-way platforms, void, bounded falls, exactly one start/goal, required collectables), for corpora
    whose rules are more than the jump model (Lode Runner, Mega Man).

    ``dead`` is sound, never stricter than the rules: the reachable cells of the decoded columns (the rules'
    :meth:`~plugins.learned_levels.rules.Rules.reach` on them alone) are a subset of the whole level's, and
    when none lies within ``jump_distance`` of the last column no move can ever cross it (moves go at most
    that far sideways; climbs and falls stay in their column); a second start (goal) tile where the corpus
    has exactly one cannot be undone either. Required cells (Lode Runner's gold) may still be reached from
    columns not yet decoded, so they are judged at the end only. ``goal_reached`` is ``problems(grid) == []``
    on the whole level: ``problems`` is the caller's (the rules' check, with the request's jump overrides,
    remembered per grid), so a level the sampler finishes is playable by the rules' own verdict."""

    def __init__(self, rules, h: int, jump_height: int, jump_distance: int, problems: Callable):
        self.rules = rules
        self.h = h
        self.jh, self.jd = jump_height, jump_distance
        self.problems = problems
        self.strips: list[np.ndarray] = []
        self.w = 0
        self.snaps: dict[int, int] = {0: 0}
        m = rules._mask
        self._solid = m["solid"] | m["void"]
        self._start = m["start"]
        self.one = [m[r] for r in ("start", "goal") if rules.params.get(f"one_{r}")]
        self.one_start = bool(rules.params.get("one_start"))
        self._req = np.zeros(256, dtype=bool)
        for k in rules.params.get("required", []):
            self._req |= m[k]
        self._cells: tuple | None = None  # (w, reached cells of the decoded columns)

    def unary(self, base: np.ndarray) -> Callable[[int], np.ndarray]:
        """A ``unary`` for the sampler (tiles allowed per row of strip ``t``): ``base``, with the required
        kinds' tiles (Lode Runner's gold) drawn only in rows the decoded columns already reach within a jump
        (a reached cell in the last ``jump_distance`` columns at most ``jump_height`` rows lower; reached from
        the start, or before a required start tile is decoded, from where the rules' start would be without
        one). It steers where gold is drawn (gold elsewhere would mostly be out of reach); it judges
        nothing: the rules' check at the end does."""
        V = base.shape[1] - 1
        req = self._req[:V]
        if not req.any():
            return base

        def allowed(t: int) -> np.ndarray:
            if t != self.w or t == 0:
                return base
            cells = self._reached(provisional=True)
            if cells is None:
                return base
            ok = np.zeros(self.h, dtype=bool)
            for x, y in cells:
                if x >= t - self.jd:
                    ok[max(0, y - self.jh):] = True  # rise up to jh, then any fall
            if ok.all():
                return base
            u = base.copy()
            u[~ok, :V] &= ~req
            return u

        return allowed

    def _reached(self, provisional: bool = False):
        if self._cells is not None and self._cells[:2] == (self.w, provisional):
            return self._cells[2]
        g = self.grid()
        start = self._start_cell(g, provisional)
        cells = None if start is None else self.rules.reach(g, start, self.jh, self.jd)
        self._cells = (self.w, provisional, cells)
        return cells

    def grid(self) -> np.ndarray:
        if not self.strips:
            return np.zeros((self.h, 0), dtype=np.int64)
        return np.ascontiguousarray(np.stack(self.strips).T)

    def add(self, strip: np.ndarray) -> None:
        self.strips.append(np.array(strip, dtype=np.int64))
        self.w += 1
        self._cells = None

    def _start_cell(self, g: np.ndarray, provisional: bool = False):
        """The rules' start (``Rules.endpoints``) as it will be in the whole level, or None while unknown;
        ``provisional``: while a required start tile is not decoded yet, the start the rules take without one
        (the lowest standing cell of the first columns), for steering only."""
        tagged = np.argwhere(self._start[g])
        if len(tagged):
            return int(tagged[0][1]), int(tagged[0][0])
        if self.one_start and not provisional:
            return None  # its tile is not decoded yet
        from .rules import EDGE_COLS

        solid = self._solid[g]
        stand = ~solid
        stand[:-1] &= solid[1:]
        stand[-1] = False
        for x in range(min(EDGE_COLS, g.shape[1])):
            ys = np.nonzero(stand[:, x])[0]
            if len(ys):
                return int(x), int(ys[-1])
        return None

    def dead(self) -> bool:
        g = self.grid()
        for m in self.one:
            if int(m[g].sum()) > 1:
                return True
        start = self._start_cell(g)
        if start is None:
            if self.one_start:
                return False
            from .rules import EDGE_COLS

            return self.w >= EDGE_COLS  # no standing cell in the first columns: no start, ever
        cells = self._reached()
        return max(x for x, _ in cells) < self.w - self.jd

    def goal_reached(self) -> bool:
        return not self.problems(self.grid())

    def snapshot(self) -> None:
        self.snaps[self.w] = self.w

    def rewind(self, w: int) -> int:
        k = max(s for s in self.snaps if s <= w)
        del self.strips[k:]
        self.w = k
        self._cells = None
        for s in [s for s in self.snaps if s > k]:
            del self.snaps[s]
        return k
