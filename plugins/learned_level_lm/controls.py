"""Attributes a level-lm level can be asked for, how they are measured, their buckets and the prompt parser
(numpy only).

Side view: ``pipes`` (pipe structures: 4-connected groups of ``pipe`` tiles), ``enemies`` (``enemy`` tiles),
``gaps`` (runs of non-solid cells in the bottom row), ``elevation`` (columns whose ground — solid, non-pipe
tiles stacked from the bottom row — stands higher than the corpus's usual ground). Counts are per 100
columns. Top down: ``rooms`` (rooms in the dungeon), ``enemies`` (per room), ``keys`` (in the dungeon).

Buckets: ``none`` is exactly zero; ``few``/``some``/``many`` split the non-zero values of the corpus at their
tertiles (fitted at training, stored with the weights), so a bucket means the same share of *this* corpus.
"""
from __future__ import annotations

import re

import numpy as np

from engine.errors import InputError

BUCKETS = ("none", "few", "some", "many")
CHOICES = ("any",) + BUCKETS
ATTRS = {"side": ("pipes", "enemies", "gaps", "elevation"), "top": ("rooms", "enemies", "keys")}
ALL_ATTRS = ("pipes", "enemies", "gaps", "elevation", "rooms", "keys")
#: the role whose tiles an attribute counts (an attribute whose role no tile has cannot be asked for)
ATTR_ROLE = {"pipes": "pipe", "enemies": "enemy", "gaps": "solid", "elevation": "solid", "rooms": None,
             "keys": "key"}


# --------------------------------------------------------------------------------------------- measuring
def ground_heights(solid_np: np.ndarray) -> np.ndarray:
    """Per column: how many solid non-pipe tiles stand stacked from the bottom row. ``solid_np``: (H, W)."""
    H = solid_np.shape[0]
    # first non-solid from the bottom
    rev = solid_np[::-1]
    full = rev.all(0)
    first_gap = np.argmin(rev, axis=0)
    return np.where(full, H, first_gap)


def side_counts(grid: np.ndarray, masks: dict, base: int) -> dict[str, int]:
    """Raw counts of the side-view attributes of a grid of tile ids."""
    solid = masks["solid"][grid]
    pipe = masks["pipe"][grid]
    out = {"enemies": int(masks["enemy"][grid].sum())}
    bottom = ~(solid[-1] | masks["void"][grid[-1]])  # void (outside the level, Mega Man's @) is no pit
    out["gaps"] = int(bottom[0]) + int((bottom[1:] & ~bottom[:-1]).sum())
    out["elevation"] = int((ground_heights(solid & ~pipe) > base).sum())
    if pipe.any():
        from engine.quality import _label

        out["pipes"] = int(_label(pipe).max())
    else:
        out["pipes"] = 0
    return out


def density(count: int, width: int) -> float:
    return 100.0 * count / max(1, width)


class Buckets:
    """Bucket thresholds per attribute: ``value`` is a density (side view: per 100 columns) or a count."""

    def __init__(self, thresholds: dict[str, list[float]]):
        self.t = {k: [float(v[0]), float(v[1]), float(v[2])] for k, v in thresholds.items()}

    @classmethod
    def fit(cls, values: dict[str, list[float]]) -> "Buckets":
        t = {}
        for k, vs in values.items():
            nz = np.array([v for v in vs if v > 0], dtype=np.float64)
            if len(nz) == 0:
                t[k] = [1.0, 2.0, 3.0]
                continue
            t1, t2 = np.quantile(nz, [1 / 3, 2 / 3])
            if t2 <= t1:
                t2 = t1 + 1e-6
            t[k] = [float(t1), float(t2), float(nz.max())]
        return cls(t)

    def bucket(self, attr: str, value: float) -> str:
        if value <= 0:
            return "none"
        t1, t2, _ = self.t[attr]
        return "few" if value < t1 else ("some" if value < t2 else "many")

    def count_range(self, attr: str, bucket: str, width: int) -> tuple[int, int, bool]:
        """``(lo, hi, exact)``: the counts (inclusive) that land in ``bucket`` for a side-view level ``width``
        columns wide (for a count attribute ``width`` is 100), up to 1.5× the bucket's top seen in the corpus.
        ``exact`` is False when no count lands in the bucket at this width (a level too short for "few"
        pipes); the range is then the count nearest the bucket, and the control is not checked."""
        if bucket == "none":
            return 0, 0, True
        t1, t2, top = self.t[attr]
        cap = max(top * 1.5, t2 * 1.5)
        inb = [c for c in range(1, int(cap * width / 100) + 3) if self.bucket(attr, density(c, width)) == bucket]
        if inb:
            capped = [c for c in inb if density(c, width) <= cap]
            return inb[0], (capped[-1] if capped else inb[0]), True
        want = {"few": t1 * 0.5, "some": (t1 + t2) / 2, "many": t2 * 1.2}[bucket]
        c = max(1, int(round(want * width / 100)))
        return c, c, False

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.t.items()}

    @classmethod
    def from_dict(cls, d, where: str) -> "Buckets":
        if not isinstance(d, dict):
            raise InputError(f"{where}: expected a map of attribute thresholds")
        for k, v in d.items():
            if k not in ALL_ATTRS or not (isinstance(v, list) and len(v) == 3 and
                                          all(isinstance(x, (int, float)) and x >= 0 for x in v)):
                raise InputError(f"{where}.{k}: expected three non-negative numbers")
        return cls(d)


# --------------------------------------------------------------------------------------------- prompts
QUANTITY = {
    "none": "none", "no": "none", "zero": "none", "without": "none", "flat": "none",
    "few": "few", "little": "few", "low": "few", "rare": "few", "sparse": "few",
    "some": "some", "several": "some", "medium": "some", "moderate": "some", "average": "some",
    "many": "many", "lots": "many", "lot": "many", "plenty": "many", "high": "many", "much": "many",
    "dense": "many", "hilly": "many", "more": "many",
}
ATTR_WORDS = {
    "pipe": "pipes", "pipes": "pipes",
    "enemy": "enemies", "enemies": "enemies", "monster": "enemies", "monsters": "enemies", "foes": "enemies",
    "gap": "gaps", "gaps": "gaps", "hole": "gaps", "holes": "gaps", "pit": "gaps", "pits": "gaps",
    "elevation": "elevation", "elevated": "elevation", "height": "elevation", "heights": "elevation",
    "hills": "elevation", "terrain": "elevation", "ground": "elevation",
    "room": "rooms", "rooms": "rooms", "key": "keys", "keys": "keys",
}
FILLER = {"a", "an", "and", "with", "of", "the", "level", "levels", "dungeon", "dungeons", "very", "in", "it",
          "please", "map"}
#: words that are an attribute and its bucket at once ("flat" alone means elevation none)
ALONE = {"flat": ("elevation", "none"), "hilly": ("elevation", "many")}


def parse_prompt(prompt: str, view: str) -> dict[str, str]:
    """``"many pipes, no enemies, high elevation"`` → ``{"pipes": "many", "enemies": "none",
    "elevation": "many"}``. Clauses are separated by commas, ``;`` or ``and``; each names one attribute and
    one quantity in either order. An unknown word, a clause without an attribute or a quantity, or an
    attribute that this kind of level does not have is an :class:`InputError` naming it."""
    out: dict[str, str] = {}
    text = prompt.strip().lower()
    if not text:
        return out
    for clause in re.split(r"[,;]|\band\b|\bbut\b", text):
        words = re.findall(r"[^\s.!]+", clause)
        if not words:
            continue
        attr = qty = None
        for w in words:
            if w in FILLER:
                continue
            if w in ALONE and len([x for x in words if x not in FILLER]) == 1:
                attr, qty = ALONE[w]
                continue
            if w in ATTR_WORDS:
                if attr is not None:
                    raise InputError(f"prompt: clause {clause.strip()!r} names two attributes; separate them "
                                     "with commas")
                attr = ATTR_WORDS[w]
            elif w in QUANTITY:
                if qty is not None:
                    raise InputError(f"prompt: clause {clause.strip()!r} has two quantities")
                qty = QUANTITY[w]
            else:
                raise InputError(f"prompt: unknown word {w!r} (attributes: "
                                 f"{', '.join(ATTRS[view])}; quantities: none, few, some, many)")
        if attr is None:
            raise InputError(f"prompt: clause {clause.strip()!r} names no attribute "
                             f"({', '.join(ATTRS[view])})")
        if qty is None:
            raise InputError(f"prompt: clause {clause.strip()!r} names no quantity (none, few, some, many)")
        if attr not in ATTRS[view]:
            raise InputError(f"prompt: {attr!r} is not an attribute of {view}-view levels "
                             f"({', '.join(ATTRS[view])})")
        if attr in out and out[attr] != qty:
            raise InputError(f"prompt: {attr} asked as both {out[attr]!r} and {qty!r}")
        out[attr] = qty
    return out
