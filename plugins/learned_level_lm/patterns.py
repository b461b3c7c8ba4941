"""The corpus's 3×3 tile patterns and the exact per-strip constraint they put on decoding (numpy only).

A level is decoded strip by strip (a *strip* is a column of a side-view level, top to bottom, or a row of a
top-down room, left to right; see :mod:`.strips`). Every strip sequence is padded with a ``BORDER`` symbol
(id ``K - 1``) on all four sides, in the corpus and in the output alike, so the edges of a level must look like
the corpus's edges too (ground at the bottom, walls round a room, a level's first and last columns).

**The constraint.** When strip ``x`` is decoded, strips ``x - 2`` and ``x - 1`` are known. Every 3×3 window of
the padded output whose right-hand strip is ``x`` must occur in the corpus (its set of windows is
:attr:`Patterns.codes`). Within the strip, the windows chain the tiles: the window ending at row ``y`` holds
rows ``y - 2 .. y`` of the new strip. :meth:`Patterns.column` solves that chain exactly by dynamic
programming (backwards feasibility over the pair of the last two tiles), so sampling row by row from
:class:`Column` masks can never reach a dead end inside a strip: a tile is allowed only if the rest of the
strip can still be completed with corpus windows. Only when no tile at all fits the first row is the strip
infeasible, and the sampler backtracks to earlier strips.

The first strip of a level has only the left border beside it; it is checked with the corpus's 3×2 windows
(:attr:`Patterns.codes2`). The last strip is also checked against the right border (windows whose *middle*
strip it is: :meth:`Patterns.column` with ``right=True``).
"""
from __future__ import annotations

import numpy as np

MAX_CACHE = 1536


def pad(strips: np.ndarray, border: int) -> np.ndarray:
    """``(L, h)`` strips → ``(L + 2, h + 2)`` with ``border`` all round."""
    L, h = strips.shape
    out = np.full((L + 2, h + 2), border, dtype=np.int64)
    out[1:-1, 1:-1] = strips
    return out


def window_codes(padded: np.ndarray, K: int, width: int = 3) -> np.ndarray:
    """Codes of all ``width``×3 windows (``width`` strips, 3 rows) of a padded strip array, as int64:
    strip-major, each strip's three tiles top to bottom, base ``K``."""
    L, H = padded.shape
    if L < width or H < 3:
        return np.zeros(0, dtype=np.int64)
    code = np.zeros((L - width + 1, H - 2), dtype=np.int64)
    for s in range(width):
        for dy in range(3):
            code = code * K + padded[s:s + L - width + 1, dy:dy + H - 2]
    return code.ravel()


class Column:
    """The masks for sampling one strip: ``masks[y - 1][p, q]`` (``y`` = 1..h, padded rows) is the bool vector
    over the K symbols allowed at row ``y`` after tiles ``p`` (row ``y - 2``) and ``q`` (row ``y - 1``)."""

    __slots__ = ("masks", "feasible", "_arr", "_allowed")

    def __init__(self, masks: list[np.ndarray], feasible: bool):
        self.masks = masks
        self.feasible = feasible
        self._arr = None
        self._allowed: list[dict] | None = None

    def allowed(self, y: int, p: int, q: int) -> list[int]:
        """The tile ids allowed at row ``y`` (0-based) after tiles ``p`` and ``q``, in increasing order (the
        nonzero entries of ``masks[y][p, q]`` without the border symbol), remembered per (row, p, q)."""
        if self._allowed is None:
            self._allowed = [{} for _ in self.masks]
        d = self._allowed[y]
        key = p * 4096 + q
        got = d.get(key)
        if got is None:
            m = self.masks[y][p, q]
            got = d[key] = np.flatnonzero(m[:len(m) - 1]).tolist()
        return got

    @property
    def arr(self) -> np.ndarray:
        """The masks as one ``(h, K, K, K)`` array (built once; the batched sampler gathers from it)."""
        if self._arr is None:
            self._arr = np.stack(self.masks)
        return self._arr


class Patterns:
    """The 3×3 (and 3×2) windows of a corpus's padded strip arrays, with lazily built lookup tables."""

    def __init__(self, K: int, codes3: np.ndarray, codes2: np.ndarray):
        self.K = int(K)
        self.B = self.K - 1
        self.codes = np.unique(np.asarray(codes3, dtype=np.int64))
        self.codes2 = np.unique(np.asarray(codes2, dtype=np.int64))
        self._left: dict[int, np.ndarray] = {}
        self._outer: dict[tuple[int, int], np.ndarray] = {}
        self._first: dict[int, np.ndarray] = {}
        self._cols: dict[bytes, Column] = {}
        K3 = self.K ** 3
        # windows by their outer strips (left, right) → allowed middle triples (for the last strip)
        left = self.codes // (K3 * K3)
        mid = (self.codes // K3) % K3
        right = self.codes % K3
        self._outer_keys = left * K3 + right
        order = np.argsort(self._outer_keys, kind="stable")
        self._outer_sorted = self._outer_keys[order]
        self._outer_mid = mid[order]

    @classmethod
    def from_strips(cls, seqs: list[np.ndarray], K: int) -> "Patterns":
        """From the corpus's strip arrays ``(L, h)`` (tile ids ``< K - 1``)."""
        c3, c2 = [], []
        for s in seqs:
            p = pad(s, K - 1)
            c3.append(window_codes(p, K, 3))
            c2.append(window_codes(p, K, 2))
        return cls(K, np.concatenate(c3) if c3 else np.zeros(0, np.int64),
                   np.concatenate(c2) if c2 else np.zeros(0, np.int64))

    # ------------------------------------------------------------------ tables
    def _triple(self, s: np.ndarray, y: int) -> int:
        K = self.K
        return (int(s[y - 2]) * K + int(s[y - 1])) * K + int(s[y])

    def _by_left(self, key6: int) -> np.ndarray:
        t = self._left.get(key6)
        if t is None:
            K3 = self.K ** 3
            lo, hi = np.searchsorted(self.codes, [key6 * K3, (key6 + 1) * K3])
            t = np.zeros(K3, dtype=bool)
            t[self.codes[lo:hi] - key6 * K3] = True
            t = t.reshape(self.K, self.K, self.K)
            self._left[key6] = t
        return t

    def _by_first(self, key3: int) -> np.ndarray:
        t = self._first.get(key3)
        if t is None:
            K3 = self.K ** 3
            lo, hi = np.searchsorted(self.codes2, [key3 * K3, (key3 + 1) * K3])
            t = np.zeros(K3, dtype=bool)
            t[self.codes2[lo:hi] - key3 * K3] = True
            t = t.reshape(self.K, self.K, self.K)
            self._first[key3] = t
        return t

    def _by_outer(self, lkey: int, rkey: int) -> np.ndarray:
        t = self._outer.get((lkey, rkey))
        if t is None:
            K3 = self.K ** 3
            k = lkey * K3 + rkey
            lo, hi = np.searchsorted(self._outer_sorted, [k, k + 1])
            t = np.zeros(K3, dtype=bool)
            t[self._outer_mid[lo:hi]] = True
            t = t.reshape(self.K, self.K, self.K)
            self._outer[(lkey, rkey)] = t
        return t

    # ------------------------------------------------------------------ the strip DP
    def column(self, a: np.ndarray | None, b: np.ndarray, unary: np.ndarray, right: bool = False) -> Column:
        """Masks for the next strip given the padded strips ``a`` (two back; None for a level's first strip)
        and ``b`` (the one before), and ``unary`` ``(h, K)`` (symbols allowed per free row by the controls).
        ``right``: the strip is the last one (its windows with the right border must occur too)."""
        K, B = self.K, self.B
        key = b"%d|" % int(right) + (a.tobytes() if a is not None else b"-") + b.tobytes() + unary.tobytes()
        col = self._cols.get(key)
        if col is not None:
            return col
        h = len(b) - 2
        full = np.ones((K, K, K), dtype=bool)
        border_strip = np.full(3, B)
        # allowed symbol per padded row 1..h+1 (row h+1 is the bottom border)
        U = np.zeros((h + 2, K), dtype=bool)
        U[1:h + 1] = unary
        U[h + 1, B] = True
        A = [None, full]  # A[y] for y = 1 (no window ends there) .. h + 1
        for y in range(2, h + 2):
            if a is None:
                t = self._by_first(self._triple(b, y))
            else:
                t = self._by_left(self._triple(a, y) * K ** 3 + self._triple(b, y))
            if right:
                t = t & self._by_outer(self._triple(b, y), self._triple(border_strip, 2))
            A.append(t)
        # G[y][q, t]: rows y+1 .. h+1 can be completed after tiles q (row y-1), t (row y)
        G = np.ones((K, K), dtype=bool)
        masks: list[np.ndarray] = [None] * (h + 2)  # type: ignore[list-item]
        for y in range(h + 1, 0, -1):
            M = A[y] & U[y][None, None, :] & G[None, :, :]
            masks[y] = M
            G = M.any(2)
        masks_out = masks[1:h + 1]
        feasible = bool(masks[1][B, B].any())
        # row h's masks already include the bottom border via G; drop row h+1's (it is fixed)
        col = Column(masks_out, feasible)
        if len(self._cols) >= MAX_CACHE:
            self._cols.clear()
        self._cols[key] = col
        return col

    def fidelity(self, strips: np.ndarray) -> float:
        """Share of the padded strip array's 3×3 windows that occur in the corpus."""
        c = window_codes(pad(strips, self.B), self.K, 3)
        if not len(c):
            return 1.0
        i = np.searchsorted(self.codes, c).clip(max=len(self.codes) - 1)
        return float((self.codes[i] == c).mean()) if len(self.codes) else 0.0
