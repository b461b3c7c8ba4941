"""What a level-lm model knows about its corpus besides the network (numpy only): the tileset, the view, the
strip length, the calibrated rules, the control buckets, the pattern set. Built from a
:class:`plugins.learned_levels.corpus.Corpus` at training and stored in the weights file (JSON in a
``__spec__`` tensor, the pattern codes as an int64 tensor), so a model generates in its own corpus's tileset.

Strips: a side-view level ``(H, W)`` is ``W`` strips of ``H`` tiles (its columns, top to bottom); a top-down
room ``(rh, rw)`` is ``rh`` strips of ``rw`` tiles (its rows, left to right).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from engine.errors import InputError

from .controls import ATTRS, Buckets, density, side_counts
from .patterns import Patterns

ROLE_NAMES = ("solid", "void", "pipe", "enemy", "door", "locked", "key", "start", "goal", "stairs", "collectable")
SIDES = ("n", "e", "s", "w")
WINDOW = 100  # side view: control densities are fitted on windows of this many columns (stride 25)


def role_masks(roles: list[list[str]]) -> dict[str, np.ndarray]:
    """Per role a bool table over tile ids (256 long, so it indexes any uint8 grid)."""
    out = {}
    for r in ROLE_NAMES:
        m = np.zeros(256, dtype=bool)
        for i, rs in enumerate(roles):
            if r in rs:
                m[i] = True
        out[r] = m
    return out


def rooms_of(grid: np.ndarray, room: tuple[int, int], void: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """The rooms ``(row, col, tiles)`` of a top-down map made of a grid of ``room``-sized rooms; all-void
    slots are not rooms."""
    rh, rw = room
    out = []
    for r in range(grid.shape[0] // rh):
        for c in range(grid.shape[1] // rw):
            t = grid[r * rh:(r + 1) * rh, c * rw:(c + 1) * rw]
            if not void[t].all():
                out.append((r, c, t))
    return out


def door_sides(room: np.ndarray, masks: dict, wall: int) -> dict[str, bool]:
    """Which sides of a top-down room have a door tile in their wall band (``wall`` tiles thick)."""
    door = masks["door"][room] | masks["locked"][room]
    return {"n": bool(door[:wall].any()), "s": bool(door[-wall:].any()),
            "w": bool(door[:, :wall].any()), "e": bool(door[:, -wall:].any())}


class Spec:
    """Everything but the network. ``attrs``: the control slots of the network, in order (side view: the
    side attributes; top down: ``enemies``, ``keys`` and one slot per door side)."""

    def __init__(self, d: dict, codes3: np.ndarray, codes2: np.ndarray):
        self.d = d
        self.view: str = d["view"]
        self.h: int = int(d["h"])
        self.room = tuple(d["room"]) if d.get("room") else None
        #: side view, levels climbed from the bottom up (Kid Icarus): strips are rows, bottom first
        self.vertical: bool = d.get("orientation") == "vertical"
        #: vertical: the corpus's median level height (the default ``height``)
        self.height: int = int(d.get("height", 0))
        #: vertical: the training levels' heights, lowest and highest (``height`` 0 draws one in between)
        self.heights: list[int] = [int(x) for x in d.get("heights", [])]
        #: horizontal side view: the corpus's median level width (the default ``width``; 0 = 150)
        self.width: int = int(d.get("width", 0))
        self.V: int = int(d["V"])
        self.K = self.V + 1
        self.B = self.V
        self.roles: list[list[str]] = d["rules"]["roles"]
        self.masks = role_masks(self.roles)
        self.buckets = Buckets.from_dict(d["buckets"], "spec.buckets")
        self.base: int = int(d.get("base", 0))
        self.attrs: list[str] = list(d["attrs"])
        self.available: list[str] = list(d["available"])
        self.doors: dict[str, list] = d.get("doors", {})
        self.temperature: float = float(d.get("temperature", 1.0))
        #: per tile kind, a factor on the network's probability (calibrated after training), or None
        self.kind_weights = (np.array(d["kind_weights"], dtype=np.float64) if d.get("kind_weights") is not None
                             else None)
        self.patterns = Patterns(self.K, codes3, codes2)
        self._rules = None
        self._tileset = None

    # ------------------------------------------------------------------ lazily built pieces
    @property
    def rules(self):
        if self._rules is None:
            from plugins.learned_levels.rules import Rules

            self._rules = Rules.from_dict(self.d["rules"], "level-lm weights: rules")
        return self._rules

    @property
    def tileset_parts(self):
        if self._tileset is None:
            from plugins.learned_levels.corpus import tileset_from_dict

            self._tileset = tileset_from_dict(self.d["tileset"], "level-lm weights: tileset")
        return self._tileset

    def level(self, grid: np.ndarray, metadata: dict, regions=None):
        from plugins.learned_levels.corpus import level_from_grid

        ts, under, kind = self.tileset_parts
        return level_from_grid(grid, ts, under, kind, metadata, regions)

    def to_strips(self, grid: np.ndarray) -> np.ndarray:
        if self.vertical:
            return np.ascontiguousarray(grid[::-1])
        return np.ascontiguousarray(grid.T if self.view == "side" else grid)

    def from_strips(self, strips: np.ndarray) -> np.ndarray:
        if self.vertical:
            return np.ascontiguousarray(strips[::-1])
        return np.ascontiguousarray(strips.T if self.view == "side" else strips)

    def extent(self, grid: np.ndarray) -> int:
        """Side view: the level's length in strips (columns; rows for a vertical level)."""
        return int(grid.shape[0] if self.vertical else grid.shape[1])

    # ------------------------------------------------------------------ measuring
    def side_counts(self, grid: np.ndarray) -> dict[str, int]:
        return side_counts(grid, self.masks, self.base)

    def side_buckets(self, grid: np.ndarray) -> dict[str, str]:
        c = self.side_counts(grid)
        w = self.extent(grid)
        return {a: self.buckets.bucket(a, density(c[a], w)) for a in ATTRS["side"] if a in self.available}

    def door_sides(self, room: np.ndarray) -> dict[str, bool]:
        return door_sides(room, self.masks, self.d.get("wall", 2))

    def to_json(self) -> str:
        return json.dumps(self.d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, codes3: np.ndarray, codes2: np.ndarray) -> "Spec":
        try:
            d = json.loads(text)
        except (ValueError, RecursionError):
            raise InputError("level-lm weights: __spec__ is not JSON") from None
        check(d)
        return cls(d, codes3, codes2)


def check(d: Any) -> None:
    """Check a spec read from an (untrusted) weights file."""
    w = "level-lm weights: spec"
    if not isinstance(d, dict):
        raise InputError(f"{w}: expected a map")
    if d.get("view") not in ("side", "top"):
        raise InputError(f"{w}.view: expected 'side' or 'top'")
    t = d.get("temperature", 1.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.1 <= t <= 4.0:
        raise InputError(f"{w}.temperature: expected a number in 0.1..4, got {t!r}")
    if d.get("orientation", "horizontal") not in ("horizontal", "vertical"):
        raise InputError(f"{w}.orientation: expected 'horizontal' or 'vertical'")
    for k, lo, hi in (("h", 3, 128), ("V", 2, 64), ("base", 0, 128), ("wall", 1, 16), ("height", 0, 4096),
                      ("width", 0, 4096)):
        v = d.get(k, lo)
        if type(v) is not int or not lo <= v <= hi:
            raise InputError(f"{w}.{k}: expected an int in {lo}..{hi}, got {v!r}")
    r = d.get("room")
    if d["view"] == "top" and not (isinstance(r, list) and len(r) == 2 and all(type(x) is int and 3 <= x <= 128
                                                                             for x in r)):
        raise InputError(f"{w}.room: expected [height, width]")
    for k in ("attrs", "available"):
        v = d.get(k)
        if not (isinstance(v, list) and all(isinstance(x, str) for x in v) and len(v) <= 16):
            raise InputError(f"{w}.{k}: expected a list of names")
    if not isinstance(d.get("rules"), dict) or not isinstance(d["rules"].get("roles"), list) or \
            len(d["rules"]["roles"]) != d["V"]:
        raise InputError(f"{w}.rules: expected the rules with one role list per tile")
    if not isinstance(d.get("tileset"), dict):
        raise InputError(f"{w}.tileset: expected a map")
    if not isinstance(d.get("buckets"), dict):
        raise InputError(f"{w}.buckets: expected a map")
    hs = d.get("heights", [])
    if not (isinstance(hs, list) and len(hs) in (0, 2) and all(type(x) is int and 3 <= x <= 4096 for x in hs)
            and hs == sorted(hs)):
        raise InputError(f"{w}.heights: expected [lowest, highest] level heights")
    kw = d.get("kind_weights")
    if kw is not None and not (isinstance(kw, list) and len(kw) == d["V"] and all(
            not isinstance(x, bool) and isinstance(x, (int, float)) and 0.01 <= x <= 100 for x in kw)):
        raise InputError(f"{w}.kind_weights: expected one number in 0.01..100 per tile kind")


# --------------------------------------------------------------------------------------------- building
def build(corpus, rules, train_idx: list[int]) -> tuple[dict, list[np.ndarray], list[dict]]:
    """(spec dict, strip sequences, per-sequence info) from a corpus and its fitted rules. Sequences are the
    training levels (side view) or the training levels' rooms (top down)."""
    roles = rules.to_dict()["roles"]
    masks = role_masks(roles)
    V = corpus.classes
    if V + 1 > 64:
        raise InputError(f"level-lm: the corpus has {V} tile kinds; at most 63 are supported")
    d: dict[str, Any] = {"view": corpus.view, "V": V, "rules": rules.to_dict(), "tileset": corpus.tileset_dict()}
    seqs: list[np.ndarray] = []
    info: list[dict] = []
    grids = [corpus.grids[i].astype(np.int64) for i in train_idx]
    if corpus.view == "side" and getattr(corpus, "orientation", "horizontal") == "vertical":
        # Kid Icarus: one width, heights differ, climbed from the bottom up: a strip is a row (left to
        # right), the rows bottom first (the player's progress)
        Wd = grids[0].shape[1]
        if not 3 <= Wd <= 128:
            raise InputError(f"level-lm: the corpus's vertical levels are {Wd} columns wide; 3..128 are supported")
        d.update({"h": int(Wd), "room": None, "base": 0, "orientation": "vertical",
                  "height": int(np.median([g.shape[0] for g in grids])),
                  "heights": [int(min(g.shape[0] for g in grids)), int(max(g.shape[0] for g in grids))]})
        available = [a for a in ("enemies",) if masks["enemy"][:V].any()]
        vals = {a: [] for a in available}
        for g in grids:
            H = g.shape[0]
            win = min(WINDOW, H)
            for y in sorted(set(range(0, H - win + 1, 25)) | {H - win}):
                c = side_counts(g[y:y + win], masks, 0)
                for a in available:
                    vals[a].append(density(c[a], win))
            seqs.append(np.ascontiguousarray(g[::-1]))
            info.append({})
        d["buckets"] = Buckets.fit(vals).to_dict()
        d["attrs"] = list(ATTRS["side"])
        d["available"] = available
    elif corpus.view == "side":
        H = grids[0].shape[0]
        if not 3 <= H <= 128:  # the bound the weights are checked against when loaded (spec check, CONFIG_BOUNDS)
            raise InputError(f"level-lm: the corpus's levels are {H} rows high; side-view levels of 3..128 rows "
                             "are supported (a vertical game is read column by column: its levels are too tall)")
        d["h"] = H
        d["room"] = None
        d["width"] = int(np.clip(np.median([g.shape[1] for g in grids]), 16, 2000))
        solid_np = masks["solid"] & ~masks["pipe"]
        from .controls import ground_heights

        gh = np.concatenate([ground_heights(solid_np[g]) for g in grids])
        nz = gh[gh > 0]
        d["base"] = int(np.bincount(nz).argmax()) if len(nz) else 0
        available = [a for a in ATTRS["side"] if a in ("gaps", "elevation") or
                     masks[{"pipes": "pipe", "enemies": "enemy"}[a]][:V].any()]
        vals: dict[str, list[float]] = {a: [] for a in available}
        for g in grids:
            W = g.shape[1]
            win = min(WINDOW, W)
            for x in sorted(set(range(0, W - win + 1, 25)) | {W - win}):
                c = side_counts(g[:, x:x + win], masks, d["base"])
                for a in available:
                    vals[a].append(density(c[a], win))
            seqs.append(np.ascontiguousarray(g.T))
            info.append({})
        d["buckets"] = Buckets.fit(vals).to_dict()
        d["attrs"] = list(ATTRS["side"])
        # gaps and elevation only where the corpus has some (Mega Man's floors have no pits)
        d["available"] = [a for a in available if a not in ("gaps", "elevation") or max(vals[a], default=0) > 0]
    else:
        if corpus.room is None:
            raise InputError("level-lm: a top-down corpus must be maps made of equal rooms (like VGLC's Zelda "
                             "dungeons); no room grid was found (give one with --mapping {\"room\": [h, w]})")
        rh, rw = corpus.room
        d["room"] = [int(rh), int(rw)]
        d["h"] = int(rw)
        d["wall"] = 2 if min(rh, rw) >= 7 else 1
        d["base"] = 0
        void = masks["void"]
        enemy_counts, keys_counts, room_counts = [], [], []
        door_cells: dict[str, dict] = {s: {} for s in SIDES}
        for g in grids:
            rooms = rooms_of(g, (rh, rw), void)
            room_counts.append(len(rooms))
            keys_counts.append(int(masks["key"][g].sum()))
            for _, _, t in rooms:
                enemy_counts.append(int(masks["enemy"][t].sum()))
                seqs.append(np.ascontiguousarray(t))
                info.append({"room": t})
        spec_tmp = {"wall": d["wall"]}
        t = spec_tmp["wall"]
        for s in seqs:
            door = masks["door"][s] | masks["locked"][s]
            bands = {"n": (slice(0, t), slice(None)), "s": (slice(rh - t, rh), slice(None)),
                     "w": (slice(None), slice(0, t)), "e": (slice(None), slice(rw - t, rw))}
            for side, sl in bands.items():
                m = np.zeros_like(door)
                m[sl] = True
                cells = np.argwhere(door & m)
                if len(cells):
                    key = tuple((int(y), int(x), int(s[y, x])) for y, x in cells)
                    door_cells[side][key] = door_cells[side].get(key, 0) + 1
        d["doors"] = {s: [list(c) for c in max(door_cells[s], key=lambda k: (door_cells[s][k], k))]
                      if door_cells[s] else [] for s in SIDES}
        vals = {"enemies": [float(x) for x in enemy_counts], "keys": [float(x) for x in keys_counts],
                "rooms": [float(x) for x in room_counts]}
        d["buckets"] = Buckets.fit(vals).to_dict()
        d["attrs"] = ["enemies", "keys", "door_n", "door_e", "door_s", "door_w"]
        d["available"] = ["rooms"] + [a for a in ("enemies", "keys")
                                      if masks[{"enemies": "enemy", "keys": "key"}[a]][:V].any()]
    return d, seqs, info


def patterns_of(seqs: list[np.ndarray], K: int) -> tuple[np.ndarray, np.ndarray]:
    p = Patterns.from_strips(seqs, K)
    return p.codes, p.codes2


__all__ = ["Spec", "build", "patterns_of", "rooms_of", "role_masks", "door_sides", "SIDES"]
