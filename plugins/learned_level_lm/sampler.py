"""Constrained, steered, backtracking decoding of many strip sequences at once (numpy only).

A :class:`Job` is one sequence to decode: a side-view level (its columns) or a top-down room (its rows).
All active jobs of a batch take one network step together (:meth:`infer.Net.step`, each job at its own
position); then each job samples its strip tile by tile down the strip:

1. **Pattern constraint** — only tiles allowed by :meth:`patterns.Patterns.column` (every 3×3 window with
   the two strips before occurs in the corpus, and the rest of the strip can still be completed).
2. **Controls** — ``none`` bans the attribute's tiles outright; once an attribute reaches the top of its
   bucket its tiles are banned; while it is behind its target (a count drawn inside the bucket, spread
   evenly over the level) its tiles' probabilities are raised, ahead of it lowered.
3. **Sampling** — probabilities are the network's, times the vertical bigram of the tile above, masked;
   one uniform per tile from the job's own generator, inverse CDF.

**Backtracking**: a strip with no allowed first tile steps the job back 1, 2, 4… strips; a side-view level
whose reachable set can no longer grow to the right (:class:`reach.SideReach`, checked every ``CHECK``
strips) or whose goal is unreachable at the end steps back to the previous checkpoint (and further when
that fails again); a room whose doors and required cells are not connected is decoded again. A job has a
budget of re-decoded strips; past it the job stops backtracking for playability (the level is then simply
reported unplayable), and a strip with no pattern-allowed tile drops the pattern constraint (counted in
``pattern_fallbacks``).

**Batch = alone**: a job's decisions depend only on its own logits and draws. Logits computed in a batch
can differ from those computed alone in the last float bits, so a job whose draw falls within
``TIE`` of a CDF boundary is flagged; the caller decodes flagged jobs again alone (a batch of one is the
reference).
"""
from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

import numpy as np

from .infer import BACKTRACK
from .reach import SideReach

CHECK = 4
TIE = 1e-6


class Steer:
    """One counted attribute: ``kind`` names how its events are counted (see :meth:`Job._count`)."""

    __slots__ = ("attr", "kind", "tiles", "rows", "target", "lo", "hi")

    def __init__(self, attr: str, kind: str, tiles: np.ndarray, rows: np.ndarray | None, target: int, lo: int,
                 hi: int):
        self.attr, self.kind, self.tiles, self.rows = attr, kind, tiles, rows
        self.target, self.lo, self.hi = target, lo, hi


class Job:
    #: per tile kind, a factor on the network's probabilities ((V,) float64; level-lm's calibrated kind
    #: weights), or None
    kind_w = None

    def __init__(self, *, width: int, h: int, V: int, attrs: np.ndarray, rng: np.random.Generator,
                 steers: list[Steer], unary, reach: SideReach | None = None, room_check=None,
                 budget: int | None = None):
        self.W, self.h, self.V, self.B = width, h, V, V
        self.attrs = attrs
        self.rng = rng
        self.steers = steers
        self.unary_base = unary  # (h, V+1) bool, or a function t -> (h, V+1)
        self.reach = reach
        self.room_check = room_check
        self.Sp = np.full((width, h + 2), V, dtype=np.int64)  # the strips with the border above and below
        self.S = self.Sp[:, 1:-1]  # (width, h): a view, so a padded strip is a row of Sp (no copy per step)
        self.t = 0
        self.max_written = 0
        self.done = False
        self.flagged = False
        self.giveup = False
        self.budget = budget if budget is not None else 3 * width + 60
        self.redone = 0
        self.backtracks = 0
        self.pattern_fallbacks = 0
        self.fails: dict[int, int] = {}
        self.rfails: dict[int, int] = {}
        self.counts = [np.zeros(len(steers), dtype=np.int64)]
        self.border = np.full(h + 2, V, dtype=np.int64)

    # ------------------------------------------------------------------ pieces
    def prev_strip(self) -> np.ndarray:
        return self.S[self.t - 1] if self.t > 0 else self.border[1:-1]

    def _padded(self, t: int) -> np.ndarray:
        return self.Sp[t]

    def _count(self, st: Steer, strip: np.ndarray, prev: np.ndarray | None) -> int:
        if st.kind == "tiles":
            return int(st.tiles[strip].sum())
        if st.kind == "start":  # a new structure: its tiles here, none in the strip before
            here = bool(st.tiles[strip].any())
            return int(here and (prev is None or not st.tiles[prev].any()))
        if st.kind == "gap":
            r = int(st.rows[0])
            here = bool(st.tiles[strip[r]])
            return int(here and (prev is None or not st.tiles[prev[r]]))
        if st.kind == "elev":
            r = int(st.rows[0])  # the row just above the usual ground: elevated when the stack reaches it
            stack = st.tiles[strip[r:]]
            return int(bool(stack.all()))
        return 0

    def _unary(self, t: int) -> np.ndarray:
        base = self.unary_base(t) if callable(self.unary_base) else self.unary_base
        u = base
        c = self.counts[t]
        prev = self.S[t - 1] if t > 0 else None
        for k, st in enumerate(self.steers):
            if c[k] < st.hi:
                continue
            ban = np.zeros(self.V + 1, dtype=bool)
            ban[:self.V] = st.tiles[:self.V]
            if st.kind == "start" and prev is not None and st.tiles[prev].any():
                continue  # finish the structure already started
            if st.kind == "gap" and prev is not None and st.tiles[prev[int(st.rows[0])]]:
                continue  # a gap may end where it likes
            rows = st.rows if st.rows is not None else slice(None)
            if u is base:  # copied only when a control bans something
                u = base.copy()
            u[rows] &= ~ban
        return u

    def _weights(self, logits: np.ndarray, t: int, P: np.ndarray | None = None) -> np.ndarray:
        """``P``: ``exp(logits - max)`` when the caller computed it for the whole batch at once (the same
        elementwise float64 values; this level's slice is scaled in place)."""
        if P is None:
            P = np.exp((logits - logits.max(1, keepdims=True)).astype(np.float64))
        if self.kind_w is not None:
            P *= self.kind_w
        boost = getattr(self.reach, "boost", None)  # RulesReach: ladders while a required cell waits
        if boost is not None:
            P *= boost[:P.shape[1]]
        c = self.counts[t]
        for k, st in enumerate(self.steers):
            if st.hi == 0 or c[k] >= st.hi:
                continue
            expected = st.target * (t + 1) / self.W
            need = st.lo - c[k]
            late = 2.0 if need > 0 and self.W - t <= 6 * need + 4 else 0.0  # running out of room
            bonus = float(np.clip(2.0 * (expected - c[k]) + late, -3.0, 4.0))
            if abs(bonus) < 0.05:
                continue
            rows = st.rows if st.rows is not None else slice(None)
            P[rows, :] *= np.where(st.tiles[:self.V], np.exp(bonus), 1.0)
        return P

    # ------------------------------------------------------------------ one strip
    def advance(self, logits: np.ndarray, patterns, expB: np.ndarray) -> None:
        got = self.prepare(logits, patterns, expB)
        if got is not None:
            col, P, caps = got
            self._commit(self._sample(col, P, expB, caps))

    def prepare(self, logits: np.ndarray, patterns, expB: np.ndarray, P: np.ndarray | None = None):
        """Everything of :meth:`advance` before the strip is sampled: ``(column masks, weights, caps)`` to
        sample from, or None when this step was handled here (a step back, or a strip sampled past the
        budget without the pattern constraint)."""
        t = self.t
        self.max_written = max(self.max_written, t)
        a = None if t == 0 else (self.border if t == 1 else self._padded(t - 2))
        b = self.border if t == 0 else self._padded(t - 1)
        unary = self._unary(t)
        col = patterns.column(a, b, unary, right=(t == self.W - 1))
        if not col.feasible:
            if self.giveup:
                col = patterns.column(a, b, unary, right=False)
                if not col.feasible:
                    self.pattern_fallbacks += 1
                    self._commit(self._free_strip(logits, unary, expB))
                    return None
            else:
                n = self.fails[t] = self.fails.get(t, 0) + 1
                self._back(t - min(t, 1 << min(n - 1, 4)) if t > 0 else 0, pattern=True)
                return None
        return col, self._weights(logits, t, P), self._caps(t)

    def _caps(self, t: int) -> list:
        """Per counted tile kind (``tiles`` steers): how many more this strip may hold before its bucket's top
        is reached, as ``[tile mask (list of bool), room left]``."""
        out = []
        c = self.counts[t]
        for k, st in enumerate(self.steers):
            if st.kind == "tiles" and c[k] < st.hi:
                out.append([st.tiles[:self.V].tolist(), int(st.hi - c[k])])
        return out

    def _sample(self, col, P: np.ndarray, expB: list, caps: list = ()) -> np.ndarray:
        """Tiles down the strip: weights = network × bigram of the tile above × pattern mask; inverse CDF
        (plain Python floats: a strip is ~15 tiles of ~15 kinds, where numpy's per-call cost dominates).
        A counted tile kind whose ``caps`` room is used up is masked for the rest of the strip (unless nothing
        else would be allowed)."""
        if not caps and hasattr(col, "allowed"):
            return self._sample_allowed(col, P, expB)
        V = self.V
        cur = [self.B, self.B]
        u = self.rng.random(self.h).tolist()
        rows = P.tolist()
        masks = col.masks
        for y in range(self.h):
            m = masks[y][cur[y], cur[y + 1]].tolist()
            for cap in caps:
                if cap[1] <= 0:
                    m2 = [ok and not bad for ok, bad in zip(m, cap[0])]
                    if any(m2[:V]):
                        m = m2
            eb = expB[cur[y + 1]]
            w = [a * b if ok else 0.0 for a, b, ok in zip(rows[y], eb, m)]
            cum = list(accumulate(w))  # left-to-right sums, as sample_many's cumsum
            tot = cum[-1]
            if not tot > 0:  # the network gives the allowed tiles no mass: uniform over them
                w = [1.0 if ok else 0.0 for ok in m[:V]]
                cum = list(accumulate(w))
                tot = cum[-1]
            x = u[y] * tot
            j = bisect_right(cum, x)  # the first tile whose cumulative weight passes x (it has w > 0)
            if j < V:
                lo = cum[j - 1] if j else 0.0
                if min(cum[j] - x, x - lo) < TIE * tot:
                    self.flagged = True
            else:  # rounding: the last allowed tile
                j = max(k for k in range(V) if w[k] > 0.0)
            cur.append(j)
            for cap in caps:
                if cap[0][j]:
                    cap[1] -= 1
        return np.array(cur[2:], dtype=np.int64)

    def _sample_allowed(self, col, P: np.ndarray, expB: list) -> np.ndarray:
        """:meth:`_sample` without caps, over the allowed tiles only (:meth:`patterns.Column.allowed`): a
        disallowed tile's weight is 0.0, and adding 0.0 leaves a running sum as it is, so the running sums at
        the allowed tiles, the tile chosen and the near-tie test are exactly those of the full-length sums
        (and of :func:`sample_many`). A row with one allowed tile takes it (any draw chooses it)."""
        cur = [self.B, self.B]
        u = self.rng.random(self.h).tolist()
        rows = P.tolist()
        allowed = col.allowed
        tie = TIE
        for y in range(self.h):
            al = allowed(y, cur[y], cur[y + 1])
            if len(al) == 1:
                cur.append(al[0])
                continue
            eb = expB[cur[y + 1]]
            pr = rows[y]
            c = 0.0
            cum = []
            for k in al:
                c += pr[k] * eb[k]
                cum.append(c)
            tot = c
            if not tot > 0:  # the network gives the allowed tiles no mass: uniform over them
                cum = [float(i + 1) for i in range(len(al))]
                tot = cum[-1]
            x = u[y] * tot
            i = bisect_right(cum, x)
            if i < len(al):
                lo = cum[i - 1] if i else 0.0
                if min(cum[i] - x, x - lo) < tie * tot:
                    self.flagged = True
                cur.append(al[i])
            else:  # rounding: the last allowed tile with weight
                i = len(al) - 1
                while i > 0 and cum[i] == cum[i - 1]:
                    i -= 1
                cur.append(al[i])
        return np.array(cur[2:], dtype=np.int64)

    def _free_strip(self, logits, unary, expB) -> np.ndarray:
        """No pattern-allowed strip exists (only past the budget): sample under the controls alone."""
        V = self.V
        P = np.exp((logits - logits.max(1, keepdims=True)).astype(np.float64)) * unary[:, :V]
        u = self.rng.random(self.h)
        out = []
        prev = self.B
        for y in range(self.h):
            w = P[y] * np.array(expB[prev])
            if not w.sum() > 0:
                w = unary[y, :V].astype(np.float64) + 1e-12
            c = np.cumsum(w)
            j = min(int(np.searchsorted(c, u[y] * c[-1], side="right")), V - 1)
            out.append(j)
            prev = j
        return np.array(out, dtype=np.int64)

    def _commit(self, strip: np.ndarray) -> None:
        t = self.t
        self.S[t] = strip
        prev = self.S[t - 1] if t > 0 else None
        c = self.counts[t].copy()
        for k, st in enumerate(self.steers):
            c[k] += self._count(st, strip, prev)
        del self.counts[t + 1:]
        self.counts.append(c)
        self.t = t + 1
        if self.reach is not None:
            self.reach.add(strip)
            if not self.giveup and (self.t % CHECK == 0 or self.t == self.W):
                if self.reach.dead():
                    self._back_reach()
                    return
                self.reach.snapshot()
        if self.t == self.W:
            if self.reach is not None and not self.giveup and not self.reach.goal_reached():
                self._back_reach()
                return
            if self.room_check is not None and not self.giveup and not self.room_check(self.S):
                self.backtracks += 1
                self._back(0)
                return
            self.done = True

    def _back_reach(self) -> None:
        t = self.t
        n = self.rfails[t] = self.rfails.get(t, 0) + 1
        self.backtracks += 1
        self._back(max(0, t - CHECK * (1 << min(n - 1, 3))))

    def _back(self, to: int, pattern: bool = False) -> None:
        lo = max(0, self.max_written - (BACKTRACK - CHECK))
        to = max(to, lo)
        if self.reach is not None:
            to = self.reach.rewind(to)  # a checkpoint (at most CHECK strips before ``to`` normally)
        self.redone += max(1, self.t - to)
        if pattern:
            self.backtracks += 1
        self.t = to
        del self.counts[to + 1:]
        if self.reach is not None:
            for x in range(self.reach.w, to):
                self.reach.add(self.S[x])
        if self.redone > self.budget:
            self.giveup = True


BATCH_SAMPLE = 4  # from this many jobs sampling a strip together, :func:`sample_many` (numpy) samples them


def sample_many(jobs: list[Job], cols: list, Ps: list, caps: list, expB: np.ndarray) -> np.ndarray:
    """:meth:`Job._sample` for many jobs at once, vectorised over the jobs (row by row down the strip):
    the same float64 products, the same left-to-right sums (``cumsum``) and the same inverse-CDF choice,
    so each job gets exactly the strip :meth:`Job._sample` would give it. Returns ``(n, h)`` tile ids."""
    n = len(jobs)
    h, V = jobs[0].h, jobs[0].V
    B = jobs[0].B
    ar = np.arange(n)
    uniq: dict[int, int] = {}  # jobs in the same context share a Column: stack each one once
    ci = np.array([uniq.setdefault(id(c), len(uniq)) for c in cols], dtype=np.int64)
    first = {v: c for c, v in zip(cols, ci.tolist())}
    M = np.stack([first[k].arr for k in range(len(uniq))])  # (distinct columns, h, K, K, K)
    P = np.stack(Ps)  # (n, h, V)
    U = np.stack([j.rng.random(h) for j in jobs])  # (n, h): each job's own draws, as _sample takes them
    C = max(len(c) for c in caps)
    if C:
        ctiles = np.zeros((n, C, V), dtype=bool)
        croom = np.full((n, C), 1 << 30, dtype=np.int64)
        for i, cs in enumerate(caps):
            for c, (tiles, room) in enumerate(cs):
                ctiles[i, c] = tiles
                croom[i, c] = room
    out = np.empty((n, h + 2), dtype=np.int64)
    out[:, :2] = B
    flagged = np.zeros(n, dtype=bool)
    for y in range(h):
        p, q = out[:, y], out[:, y + 1]
        m = M[ci, y, p, q][:, :V]
        for c in range(C):
            m2 = m & ~ctiles[:, c]
            use = (croom[:, c] <= 0) & m2.any(1)
            if use.any():
                m = np.where(use[:, None], m2, m)
        w = np.where(m, P[:, y] * expB[q], 0.0)
        cum = np.cumsum(w, axis=1)
        tot = cum[:, -1]
        bad = ~(tot > 0)
        if bad.any():  # the network gives the allowed tiles no mass: uniform over them
            w[bad] = m[bad].astype(np.float64)
            cum[bad] = np.cumsum(w[bad], axis=1)
            tot = cum[:, -1]
        x = U[:, y] * tot
        over = cum > x[:, None]
        hit = over.any(1)
        j = over.argmax(1)
        lo = np.where(j > 0, cum[ar, j - 1], 0.0)
        near = np.minimum(cum[ar, j] - x, x - lo) < TIE * tot
        flagged |= hit & near
        if not hit.all():  # rounding: the last allowed tile
            last = V - 1 - (w[:, ::-1] > 0.0).argmax(1)
            j = np.where(hit, j, last)
        out[:, y + 2] = j
        for c in range(C):
            croom[:, c] -= ctiles[ar, c, j]
    for i in np.nonzero(flagged)[0]:
        jobs[i].flagged = True
    return out[:, 2:]


def run(net, patterns, jobs: list[Job]) -> None:
    """Decode all ``jobs`` (in place), one network step per strip for all active jobs at once."""
    expB_arr = np.exp(net.vbig.astype(np.float64))
    expB = expB_arr.tolist()
    cache = net.new_cache(len(jobs))
    n_attr = max(1, net.cfg["n_attr"])
    if len(jobs) == 1:  # one level: no stacking, the same step and sampling
        job = jobs[0]
        rows = np.zeros(1, dtype=np.int64)
        attrs = job.attrs.reshape(1, n_attr)
        while not job.done:
            logits = net.step(job.prev_strip()[None], attrs, cache, rows, np.array([job.t], dtype=np.int64))
            job.advance(logits[0], patterns, expB)
        return
    while True:
        act = [i for i, j in enumerate(jobs) if not j.done]
        if not act:
            return
        strips = np.stack([jobs[i].prev_strip() for i in act])
        attrs = np.stack([jobs[i].attrs for i in act]).reshape(len(act), n_attr)
        pos = np.array([jobs[i].t for i in act], dtype=np.int64)
        logits = net.step(strips, attrs, cache, np.array(act, dtype=np.int64), pos)
        if len(act) < BATCH_SAMPLE:
            for k, i in enumerate(act):
                jobs[i].advance(logits[k], patterns, expB)
            continue
        ready, cols, Ps, caps = [], [], [], []
        P_all = np.exp((logits - logits.max(2, keepdims=True)).astype(np.float64))
        for k, i in enumerate(act):
            got = jobs[i].prepare(logits[k], patterns, expB, P_all[k])
            if got is not None:
                ready.append(jobs[i])
                cols.append(got[0])
                Ps.append(got[1])
                caps.append(got[2])
        if not ready:
            continue
        if len(ready) < BATCH_SAMPLE:
            for j, col, P, cp in zip(ready, cols, Ps, caps):
                j._commit(j._sample(col, P, expB, cp))
            continue
        strips = sample_many(ready, cols, Ps, caps, expB_arr)
        for j, strip in zip(ready, strips):
            j._commit(strip)
