"""``dungeon-vae``: a conditional VAE that draws top-down levels like *your* corpus, in its tileset, checked by
rules fitted on it (``docs/dungeon-vae.md``).

Train it on any top-down corpus ``conjure train`` reads (VGLC game folders such as Zelda's with your legend,
Tiled maps, packs; ``docs/learned-levels.md``). The weights then carry the corpus tileset (glyphs, names,
tags), its room size, the reachability rules fitted on it (:mod:`plugins.learned_levels.rules`), the corpus's
3×3 pattern table, its usual door cells and the control buckets. The shipped weights are trained on
``plugins/data/corpora/zelda-like`` (VGLC Zelda's layout: 16×11 rooms).

**Rooms composed into dungeons.** When the corpus's maps are grids of equal rooms, the network is a *room
model*: it decodes a latent ``z`` and a condition vector (openness, enemy density, and which of the four
sides have a door) into a distribution over the corpus's tile ids for every cell of one room. A level is a
layout graph of rooms (``level-lm``'s :mod:`plugins.learned_level_lm.layout`, used read-only: a spanning tree
grown from a room plus loop doors; or a full ``rooms_y × rooms_x`` grid), re-rooted at a room on the map's edge
(the corpus's entrance side first) whose outer wall gets the entrance door, the goal in the room farthest from
it, every room decoded by the VAE for its door sides, its door cells fixed to the
corpus's usual door cells and door tiles banned from its walls elsewhere, rooms meeting wall to wall. Tiles
are **sampled** row by row under the corpus's 3×3 patterns (``level-lm``'s sampler, through
:mod:`plugins.learned_levels.decode`), with per-kind weights that keep rare kinds at their corpus share; a
room whose doors and required cells (stairs, keys…) are not in one walkable area is drawn again
(:func:`plugins.learned_level_lm.reach.room_ok`). All rooms of all levels of a batch are decoded together.
So a level is playable under the corpus's rules by construction, without repair.

**Controls** ``rooms`` (rooms per dungeon), ``enemies`` (enemy tiles per room), ``keys`` (keys per dungeon, on
corpora whose tiles carry ``key``/``locked`` tags): ``none``/``few``/``some``/``many`` buckets fitted on the
corpus at training (``none`` exactly zero, the others the tertiles of the non-zero values), stored with the
weights; ``none`` bans the tiles, a bucket draws a count inside it and steers the sampler to it.

**Maps without rooms** (free-form corpora such as ``plugins/data/levels/dungeon``): the network learns
``size×size`` windows (default 32) and a level is one window, decoded under the patterns of the training
windows and decoded again (new draws, then new latents) while it fails the corpus's rules. When the corpus
marks a start and a goal with entity tiles (Conjure's legends: ``@`` spawn, ``!`` exit, ``k`` key; Tiled
objects) those are *placed* (:mod:`plugins.learned_levels.dungeon_post`): behind a locked door the network
drew, if the corpus has locked doors and keys, else at the two far ends of the largest walkable area. A level
that still fails is *repaired* (``repair``, default on) or refused (the engine resamples); ``metadata`` says
which (``raw_valid``, ``repaired``, ``repair_edits``, ``raw_problem``, ``latent_tries``).

Latent blending: ``-p blend_seed=S -p blend=0.5`` decodes the spherical interpolation between this seed's
latents and seed ``S``'s; :meth:`DungeonVAEGenerator.interpolate` returns the whole sequence, and
:meth:`DungeonVAEGenerator.interpolate_levels` blends two existing levels through the encoder.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine import Generator, Param, Region, Request, hookimpl
from engine.errors import InputError
from engine.quality import _label

from . import learned_common as lc
from .learned_level_lm.controls import CHOICES, Buckets
from .learned_levels import dungeon_post as post
from .learned_levels.model import CorpusWeights, LevelModel, card_extras, common_ids, extra_tensors, prepare

GEN_ID = "dungeon-vae"
DEFAULT_CONFIG = {"size": 32, "zdim": 32, "ch": 32, "batch": 64, "lr": 3e-3, "beta": 0.5, "stride": 4,
                  "augment": "auto", "holdout": 0.15, "calibrate": 1}
CONFIG_BOUNDS = {"classes": (1, 255), "size": (4, 128), "rh": (3, 128), "rw": (3, 128), "hp": (8, 128),
                 "wp": (8, 128), "zdim": (1, 512), "ch": (1, 256), "batch": (1, 4096), "lr": (0.0, 1.0),
                 "beta": (0.0, 100.0), "stride": (1, 128), "holdout": (0.0, 0.9), "pad": (0, 254),
                 "floor": (0, 254), "wall": (0, 254), "void": (0, 254), "door": (-1, 254), "locked": (-1, 254),
                 "start": (-1, 254), "goal": (-1, 254), "key": (-1, 254), "rooms": (0, 1), "cdim": (2, 6),
                 "calibrate": (0, 1)}
SIDES = ("n", "e", "s", "w")
ROOM_BUDGET = 12  # re-decoded rows per room (× room height) before a room is taken as it is
LATENT_TRIES = 3  # maps without rooms: rounds of new latents (each with its own draws) before repair
WINDOW_BUDGET = 3  # maps without rooms: re-decoded rows (× window height) per latent
ROOM_LATENTS = 8  # new latents for a room that ran out of its budget
EXTRA_REFINE = 4  # tile-weight corrections on sampled rooms beyond LevelModel's
LOOPS = 0.35  # grown layouts: loop doors between about this share of the other neighbouring rooms (zelda-like, 60 dungeons: 0.5 gave 7.0 door tiles per room, 0.35 6.7; the corpus 6.0)
LAYOUT_CANDIDATES = 4  # layouts drawn per dungeon; the one whose room share of its box is nearest the corpus's
CONTROL_ATTRS = ("rooms", "enemies", "keys")


class _RoomSpec:
    """The parts of a corpus that ``level-lm``'s layout functions (``room_unary``, ``assemble``,
    ``door_sides_available``) read: room size, tile count, role masks, wall thickness, usual door cells."""

    def __init__(self, room, classes: int, roles: list, wall: int, doors: dict):
        from .learned_level_lm.spec import role_masks

        self.room = (int(room[0]), int(room[1]))
        self.V, self.K, self.B = classes, classes + 1, classes
        self.d = {"wall": int(wall)}
        self.masks = role_masks(roles)
        self.doors = doors


def _slot_blocks(maps: list) -> dict[str, list[int]]:
    """Which neighbourhoods of room slots (True = a room, False = void) occur in maps (lists of rows): side by
    side pairs ``h``, pairs one above the other ``v``, 2×2 blocks ``q``, as small codes (bits)."""
    h, v, q = set(), set(), set()
    for occ in maps:
        R, C = len(occ), len(occ[0]) if occ else 0
        for r in range(R):
            for c in range(C):
                if c + 1 < C:
                    h.add(int(occ[r][c]) * 2 + int(occ[r][c + 1]))
                if r + 1 < R:
                    v.add(int(occ[r][c]) * 2 + int(occ[r + 1][c]))
                if r + 1 < R and c + 1 < C:
                    q.add(int(occ[r][c]) * 8 + int(occ[r][c + 1]) * 4 + int(occ[r + 1][c]) * 2 + int(occ[r + 1][c + 1]))
    return {"h": sorted(h), "v": sorted(v), "q": sorted(q)}


def layout_doc(grids: list[np.ndarray], cfg: dict, masks: dict, classes: int) -> dict:
    """What the weights store for composing and controlling levels, measured on the training levels: wall
    thickness and the most common door cells per side of a room (room corpora), and the control buckets
    (rooms per map, enemy tiles per room, keys per map; maps without rooms: enemy tiles per window)."""
    from .learned_level_lm.spec import rooms_of

    rh, rw = cfg["rh"], cfg["rw"]
    has = {a: bool(masks[r][:classes].any()) for a, r in (("enemies", "enemy"), ("keys", "key"))}
    doc: dict[str, Any] = {}
    if cfg.get("rooms"):
        wall = 2 if min(rh, rw) >= 7 else 1
        counts: dict[str, list[float]] = {"rooms": [], "enemies": [], "keys": []}
        cells: dict[str, dict] = {s: {} for s in SIDES}
        bands = {"n": (slice(0, wall), slice(None)), "s": (slice(rh - wall, rh), slice(None)),
                 "w": (slice(None), slice(0, wall)), "e": (slice(None), slice(rw - wall, rw))}
        for g in grids:
            rooms = rooms_of(g, (rh, rw), masks["void"])
            counts["rooms"].append(float(len(rooms)))
            counts["keys"].append(float(masks["key"][g].sum()))
            for _, _, t in rooms:
                counts["enemies"].append(float(masks["enemy"][t].sum()))
                door = masks["door"][t] | masks["locked"][t]
                for side, sl in bands.items():
                    band = np.zeros_like(door)
                    band[sl] = True
                    at = np.argwhere(door & band)
                    if len(at):
                        key = tuple((int(y), int(x), int(t[y, x])) for y, x in at)
                        cells[side][key] = cells[side].get(key, 0) + 1
        doc["wall"] = wall
        doc["doors"] = {s: [list(c) for c in max(cells[s], key=lambda k: (cells[s][k], k))] if cells[s] else []
                        for s in SIDES}
        # the corpus's usual locked-door cells per side (the cells of a door that hold locked tiles)
        lockc: dict[str, dict] = {s: {} for s in SIDES}
        for g in grids:
            for _, _, t in rooms_of(g, (rh, rw), masks["void"]):
                for side, sl in bands.items():
                    band = np.zeros(t.shape, dtype=bool)
                    band[sl] = True
                    at = np.argwhere(masks["locked"][t] & band)
                    if len(at):
                        key = tuple((int(y), int(x), int(t[y, x])) for y, x in at)
                        lockc[side][key] = lockc[side].get(key, 0) + 1
        doc["locks"] = {s: [list(c) for c in max(lockc[s], key=lambda k: (lockc[s][k], k))]
                        for s in SIDES if lockc[s]}
        doc["available"] = ["rooms"] + [a for a in ("enemies", "keys") if has[a]]
        # goal kinds (stairs, goal) that every map holds in one room only: the layout's goal room gets them
        goal_kinds = {}
        for kind in ("stairs", "goal"):
            if not masks[kind][:classes].any():
                continue
            per_map = []
            for g in grids:
                rooms = [int(masks[kind][t].sum()) for _, _, t in rooms_of(g, (rh, rw), masks["void"])]
                hold = [c for c in rooms if c]
                per_map.append(hold[0] if len(hold) == 1 else -1)
            if per_map and min(per_map) >= 1:
                goal_kinds[kind] = int(np.median(per_map))
        doc["goal_kinds"] = goal_kinds
        doc["slots"] = _slot_blocks([[[not masks["void"][g[y:y + rh, x:x + rw]].all()
                                       for x in range(0, g.shape[1] - rw + 1, rw)]
                                      for y in range(0, g.shape[0] - rh + 1, rh)] for g in grids])
        doc["fills"] = [round(len(rooms_of(g, (rh, rw), masks["void"])) / max(1, (g.shape[0] // rh) * (g.shape[1] // rw)), 4)
                        for g in grids]
        # per cell of a room, the tiles the corpus's rooms (and their mirror images) hold there: keeps walls
        # as thick as the corpus's and rooms as tall, which the row-by-row sampler cannot see coming
        seen = np.zeros((rh, rw, classes), dtype=bool)
        for g in grids:
            for _, _, t in rooms_of(g, (rh, rw), masks["void"]):
                for f in (t, t[:, ::-1], t[::-1], t[::-1, ::-1]):
                    seen[np.arange(rh)[:, None], np.arange(rw)[None, :], f] = True
        doc["cells"] = [[int(sum(1 << k for k in np.nonzero(seen[y, x])[0])) for x in range(rw)] for y in range(rh)]
        # the entrance: the side of the start room's outer wall that holds a door to outside the map
        ent: dict[str, int] = {}
        for g in grids:
            H, W = g.shape
            for s, band in (("n", g[0]), ("s", g[H - 1]), ("w", g[:, 0]), ("e", g[:, W - 1])):
                if (masks["door"][band] | masks["locked"][band]).any():
                    ent[s] = ent.get(s, 0) + 1
        doc["entrance"] = max(SIDES, key=lambda s: (ent.get(s, 0), -SIDES.index(s))) if ent else ""
    else:
        from .learned_levels.corpus import windows

        counts = {"enemies": []}
        for g in grids:
            for w in windows(g.astype(np.int64), rh, rw, cfg["stride"], cfg["stride"]):
                counts["enemies"].append(float(masks["enemy"][w].sum()))
        doc["available"] = ["enemies"] if has["enemies"] else []
    doc["buckets"] = Buckets.fit(counts).to_dict()
    return doc


class _Model(LevelModel):
    """A loaded network with its tileset, rules, ids, condition statistics and layout/control data."""

    def __init__(self, tensors: dict, card: dict, path, device: str = "cpu"):
        import torch

        from .learned_level_lm.spec import role_masks
        from .learned_levels.nets import DungeonVAENet as Net

        source = f"{GEN_ID} weights {path}"
        super().__init__(tensors, card, path, source)
        cfg = lc.checked_config(tensors, card, CONFIG_BOUNDS, source)
        for k in ("classes", "rh", "rw", "hp", "wp", "pad", "floor", "wall", "void"):
            if k not in cfg:
                raise InputError(f"{source}: config.{k}: missing (not dungeon-vae weights?)")
        ids = [cfg[k] for k in ("pad", "floor", "wall", "void", "door", "locked", "start", "goal", "key") if k in cfg]
        if cfg["classes"] != self.classes or self.view != "top" or cfg["hp"] % 8 or cfg["wp"] % 8 \
                or cfg["rh"] > cfg["hp"] or cfg["rw"] > cfg["wp"] or max(ids) >= self.classes:
            raise InputError(f"{source}: config does not fit its tileset (classes {cfg['classes']}, view {self.view})")
        self.cfg = cfg
        self.cdim = int(cfg.get("cdim", 2))
        if self.cdim not in (2, 6) or (self.cdim == 6 and not cfg.get("rooms")):
            raise InputError(f"{source}: config.cdim: {self.cdim} (2, or 6 for a room model)")
        net = Net(cfg["classes"], cfg["zdim"], self.cdim, cfg["ch"], cfg["hp"], cfg["wp"])
        try:
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        except RuntimeError as e:
            raise InputError(f"{source}: tensors do not fit the config: {str(e).splitlines()[0]}") from None
        net.eval()
        self.device = device
        self.net = net.to(device)
        for k in ("cond_mean", "cond_std", "cond_table"):
            if k not in tensors or tensors[k].shape[-1] != self.cdim:
                raise InputError(f"{source}: tensor {k} missing or not of {self.cdim} conditions")
        self.cond_mean = tensors["cond_mean"].to(torch.float32)
        self.cond_std = tensors["cond_std"].to(torch.float32)
        self.cond_table = tensors["cond_table"].numpy().astype(np.float64)
        self.zdim = cfg["zdim"]
        self.walk = _walkable(self)
        self.palette = post.Palette(cfg["floor"], cfg["wall"], cfg["void"], cfg["door"] if cfg.get("door", -1) >= 0
                                    else cfg["floor"], cfg["locked"] if cfg.get("locked", -1) >= 0 else None,
                                    _stand(self))
        self.enemy_mask = np.zeros(256, dtype=bool)
        self.enemy_mask[:self.classes] = self.mask("enemy")
        nz = self.cond_table[:, 1][self.cond_table[:, 1] > 0]
        self.enemy_density_nz = float(np.median(nz)) if len(nz) else 0.05  # a typical density of rooms with enemies
        self.masks = role_masks(self.rules.to_dict()["roles"])
        self.required = [k for k in self.rules.params.get("required", []) if k != "door"]
        doc = lc.tensor_json(tensors, "__layout__", source, None)
        if doc is None:  # weights from before version 4: measured once from the card's corpus, if at hand
            doc = self._layout_from_corpus()
        self._check_layout(doc, source)
        self.buckets = Buckets.from_dict(doc["buckets"], f"{source}: __layout__.buckets") if doc.get("buckets") \
            else None
        self.available = list(doc.get("available", [])) if self.buckets else []
        tw = tensors.get("__tile_weights__")
        if tw is not None:
            if tw.numel() != self.classes or not bool(((tw >= 0.25) & (tw <= 16.0)).all()):
                raise InputError(f"{source}: __tile_weights__: expected {self.classes} factors in 0.25..16")
            self._tile_w = tw.numpy().astype(np.float64)
        self.goal_kinds = dict(doc.get("goal_kinds", {}))
        self.fills = [float(f) for f in doc.get("fills", [])]
        self.slots = {k: set(v) for k, v in doc.get("slots", {}).items()}
        self.locks = {s: [tuple(c) for c in v if 0 <= c[0] < cfg["rh"] and 0 <= c[1] < cfg["rw"]
                          and 0 <= c[2] < self.classes and self.masks["locked"][c[2]]]
                      for s, v in doc.get("locks", {}).items()}
        self.cells = None
        if doc.get("cells"):
            bits = np.array(doc["cells"], dtype=object)
            self.cells = np.array([[[(int(v) >> k) & 1 for k in range(self.classes)] for v in row]
                                   for row in bits], dtype=bool)
        self.entrance = doc.get("entrance", "")
        self.rspec = _RoomSpec((cfg["rh"], cfg["rw"]), self.classes, self.rules.to_dict()["roles"],
                               doc.get("wall", 2), doc.get("doors", {})) if cfg.get("rooms") else None

    def _layout_from_corpus(self) -> dict:
        try:
            corpus = self.corpus()
        except InputError:
            return {}
        train, _ = self.split(corpus)
        return layout_doc([corpus.grids[i].astype(np.int64) for i in train], self.cfg, self.masks, self.classes)

    def _check_layout(self, doc: Any, source: str) -> None:
        where = f"{source}: __layout__"
        if not isinstance(doc, dict):
            raise InputError(f"{where}: expected a map")
        w = doc.get("wall", 2)
        if type(w) is not int or not 1 <= w <= 16:
            raise InputError(f"{where}.wall: expected an int in 1..16")
        doors = doc.get("doors", {})
        if not isinstance(doors, dict) or any(
                s not in SIDES or not isinstance(v, list) or
                not all(isinstance(c, list) and len(c) == 3 and all(type(x) is int for x in c) for c in v)
                for s, v in doors.items()):
            raise InputError(f"{where}.doors: expected per side a list of [row, column, tile]")
        locks = doc.get("locks", {})
        if not isinstance(locks, dict) or any(
                s not in SIDES or not isinstance(v, list) or
                not all(isinstance(c, list) and len(c) == 3 and all(type(x) is int for x in c) for c in v)
                for s, v in locks.items()):
            raise InputError(f"{where}.locks: expected per side a list of [row, column, tile]")
        gk = doc.get("goal_kinds", {})
        if not isinstance(gk, dict) or any(k not in ("stairs", "goal") or type(v) is not int or not 1 <= v <= 64
                                           for k, v in gk.items()):
            raise InputError(f"{where}.goal_kinds: expected stairs/goal counts in 1..64")
        if doc.get("entrance", "") not in ("",) + SIDES:
            raise InputError(f"{where}.entrance: expected one of n, e, s, w or empty")
        slots = doc.get("slots", {})
        if not isinstance(slots, dict) or any(k not in ("h", "v", "q") or not isinstance(v, list) or
                                              not all(type(x) is int and 0 <= x < 16 for x in v)
                                              for k, v in slots.items()):
            raise InputError(f"{where}.slots: expected h, v, q lists of small codes")
        fills = doc.get("fills", [])
        if not isinstance(fills, list) or len(fills) > 100000 or any(
                isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1 for f in fills):
            raise InputError(f"{where}.fills: expected shares in (0, 1]")
        cells = doc.get("cells")
        if cells is not None and not (isinstance(cells, list) and len(cells) == self.cfg["rh"] and all(
                isinstance(r, list) and len(r) == self.cfg["rw"] and
                all(type(v) is int and 0 <= v < (1 << self.classes) for v in r) for r in cells)):
            raise InputError(f"{where}.cells: expected {self.cfg['rh']} rows of {self.cfg['rw']} tile bitmasks")
        av = doc.get("available", [])
        if not isinstance(av, list) or any(a not in CONTROL_ATTRS for a in av):
            raise InputError(f"{where}.available: expected names among {', '.join(CONTROL_ATTRS)}")

    def pattern_strips(self, grids):
        return pattern_strips(grids, self.cfg, self.mask("void"))

    def tile_weights(self) -> np.ndarray:
        """The weights stored at training (``__tile_weights__``), else :meth:`LevelModel.tile_weights`, then
        (room models) ``EXTRA_REFINE`` more corrections on rooms sampled under the constraint, as it does
        (×0.5–2 a step, within [1/4, 16], 2 digits): the 3×3 and per-cell constraints of a room corpus reject
        much of the mass given to structured kinds (rings of element floor), so two steps leave them short of
        their share."""
        if getattr(self, "_tile_w", None) is None:
            w = super().tile_weights()
            share = self._shares
            if share is not None and self.cfg.get("rooms") and not self.no_refine:
                for _ in range(EXTRA_REFINE):
                    got = self.sampled_shares(w)
                    f = np.clip(share / np.maximum(got, 1e-9), 0.5, 2.0)
                    w = np.clip(w * np.where(share > 0, f, 1.0), 0.25, 16.0)
                    w = np.array([float(f"{x:.2g}") for x in w])
                self._tile_w = w
        return self._tile_w

    no_refine = False  # training with -O calibrate=0 (tests): the first estimate only

    def sampled_shares(self, w: np.ndarray) -> np.ndarray | None:
        """Room models: tile-kind shares of the rooms of 6 dungeons (fixed seeds, default params) sampled under
        the constraint with tile weights ``w`` (for :meth:`LevelModel.tile_weights`'s correction: the
        constraint rejects part of the mass the network gives some kinds, such as rings of element floor)."""
        if not self.cfg.get("rooms") or self.no_refine:
            return None
        import torch

        from engine.params import resolve

        gen = DungeonVAEGenerator()
        params = resolve(gen.params, {}, GEN_ID)
        reqs = [Request("level", GEN_ID, 7919 + i, params) for i in range(6)]
        plans = [gen._plan(self, r) for r in reqs]
        for r, pl in zip(reqs, plans):
            pl["request"], pl["base"] = r, int(r.rng("sample", 0).integers(2 ** 62))
        z = torch.cat([gen._latents(r, self, pl["n"]) for r, pl in zip(reqs, plans)])
        rngs = [np.random.default_rng([pl["base"], k]) for pl in plans for k in range(pl["n"])]
        jobs = gen._decode(self, z, plans, rngs, tw=w)
        counts = np.zeros(self.classes)
        for j in jobs:
            counts += np.bincount(np.asarray(j.S).ravel(), minlength=self.classes)[:self.classes]
        return counts / max(1.0, counts.sum())

    def mean_probs(self) -> np.ndarray:
        import torch

        z = torch.randn(64, self.zdim, generator=torch.Generator().manual_seed(0))
        conds = [tuple(self.cond_table[i % len(self.cond_table)]) for i in range(64)]
        return DungeonVAEGenerator._probs(self, z, conds).mean((0, 1, 2))


def pattern_strips(grids: list[np.ndarray], cfg: dict, void: np.ndarray) -> list[np.ndarray]:
    """Strip arrays (rows) for the pattern table: the corpus's rooms (all-void rooms left out) when the model
    draws rooms, else the windows it was trained on (so a drawn window's edges look like a window's cut
    edges; a map smaller than a window counts whole)."""
    rh, rw = cfg["rh"], cfg["rw"]
    if not cfg.get("rooms"):
        from .learned_levels.corpus import windows

        out = []
        for g in grids:
            w = windows(g.astype(np.int64), rh, rw, cfg["stride"], cfg["stride"])
            out += list(w) if len(w) else [g.astype(np.int64)]
        return out
    out = []
    for g in grids:
        for y in range(0, g.shape[0] - rh + 1, rh):
            for x in range(0, g.shape[1] - rw + 1, rw):
                r = g[y:y + rh, x:x + rw]
                if not void[r].all():
                    out.append(r.astype(np.int64))
    return out


def _walkable(m) -> np.ndarray:
    """Cells one can be on: not solid, not void (entity tiles included)."""
    w = np.zeros(256, dtype=bool)
    w[:m.classes] = ~m.mask("solid") & ~m.mask("void")
    return w


def _stand(m) -> np.ndarray:
    """Cells the placer may use: walkable, not a locked door."""
    w = _walkable(m)
    w[:m.classes] &= ~m.mask("locked")
    return w


def conditions(grid: np.ndarray, walk: np.ndarray, enemy: np.ndarray) -> tuple[float, float]:
    """(openness, enemy density) of a grid: walkable share; enemy tiles per walkable tile."""
    n_walk = walk[grid].sum()
    return float(n_walk) / grid.size, float(enemy[grid].sum()) / max(1.0, float(n_walk))


def door_conditions(room: np.ndarray, masks: dict, wall: int) -> tuple[float, ...]:
    """1.0 per side (n, e, s, w) whose wall band holds a door tile, else 0.0."""
    from .learned_level_lm.spec import door_sides

    d = door_sides(room, masks, wall)
    return tuple(1.0 if d[s] else 0.0 for s in SIDES)


class _Probs:
    """The VAE's per-room distributions as the "network" of ``level-lm``'s sampler loop
    (:func:`plugins.learned_level_lm.sampler.run`): step ``t`` of job ``i`` is row ``t`` of room ``i``."""

    def __init__(self, logp: np.ndarray):
        self.L = logp
        V = logp.shape[-1]
        self.vbig = np.zeros((V + 1, V), dtype=np.float64)  # no vertical bigram: expB is all ones
        self.cfg = {"n_attr": 1}

    def new_cache(self, n: int):
        return None

    def step(self, strips, attrs, cache, act, pos):
        return self.L[act, pos]


def grid_layout(ry: int, rx: int, rng: np.random.Generator, sides=SIDES, loops: float = 0.5) -> dict:
    """A full ``ry × rx`` grid of rooms in ``level-lm``'s layout format: a random spanning tree over the grid
    (randomised depth-first from the top-left start room) plus loop doors between about ``loops`` of the
    other neighbours; the goal is the room farthest from the start."""
    from .learned_level_lm.layout import with_goal

    step = {"n": (-1, 0), "s": (1, 0), "w": (0, -1), "e": (0, 1)}
    opp = {"n": "s", "s": "n", "w": "e", "e": "w"}
    ok = [s for s in SIDES if s in sides and opp[s] in sides]
    n = ry * rx
    idx = {(r, c): r * rx + c for r in range(ry) for c in range(rx)}
    rooms = [{"pos": (r, c), "doors": {s: False for s in SIDES}} for r in range(ry) for c in range(rx)]
    edges = []
    seen = {0}
    stack = [0]
    while stack:
        i = stack[-1]
        r, c = rooms[i]["pos"]
        free = [(s, idx[(r + step[s][0], c + step[s][1])]) for s in ok
                if (r + step[s][0], c + step[s][1]) in idx and idx[(r + step[s][0], c + step[s][1])] not in seen]
        if not free:
            stack.pop()
            continue
        s, j = free[int(rng.integers(len(free)))]
        edges.append((i, j, s))
        seen.add(j)
        stack.append(j)
    linked = {(a, b) for a, b, _ in edges} | {(b, a) for a, b, _ in edges}
    for i in range(n):
        r, c = rooms[i]["pos"]
        for s in ("e", "s"):
            j = idx.get((r + step[s][0], c + step[s][1]))
            if s in ok and j is not None and (i, j) not in linked and rng.random() < loops:
                edges.append((i, j, s))
                linked |= {(i, j), (j, i)}
    for a, b, s in edges:
        rooms[a]["doors"][s] = True
        rooms[b]["doors"][opp[s]] = True
    return with_goal({"rooms": rooms, "edges": [(a, b) for a, b, _ in edges], "start": 0})


class DungeonVAEGenerator(CorpusWeights, Generator):
    id = GEN_ID
    kind = "level"
    version = "11"  # 11: fewer loop doors in grown layouts (0.35 of the other neighbours, was 0.5: doors per room nearer the corpus's); 10: the start room (and its entrance) on the map's outer edge, the corpus's entrance side first; the goal farthest from it; 9: layouts avoid room/void neighbourhoods the corpus never shows; 8: maps without rooms: a third round of latents; 7: key/lock progression on corpora with locked doors; 6: maps without rooms: start/goal/key placed where their 3x3 windows occur in the corpus; 5: enemies/keys controls decoded again to their per-room counts; 4: rooms composed into dungeons (layout graph), controls, decode-again on maps without rooms
    description = ("Conditional VAE top-down levels in your corpus's tileset: rooms decoded under the corpus's "
                   "patterns and composed into dungeons by a layout graph; controls; blend seeds in latent space")
    params = (
        Param("openness", "float", -1.0, min=-1.0, max=1.0,
              help="target share of walkable tiles; -1 draws one from the training data"),
        Param("enemy_density", "float", -1.0, min=-1.0, max=0.5,
              help="target enemy tiles per walkable tile; -1 draws one from the training data"),
        Param("temperature", "float", 1.0, min=0.0, max=3.0, help="scale of the latent sample (0 = the mean)"),
        Param("room_count", "int", 0, min=0, max=64,
              help="rooms in the dungeon (room corpora; 0 = from the rooms control, else the corpus's usual)"),
        Param("rooms_x", "int", 0, min=0, max=16,
              help="rooms across of a full grid of rooms (with rooms_y; 0 = a layout of room_count rooms)"),
        Param("rooms_y", "int", 0, min=0, max=16, help="rooms down of a full grid of rooms (see rooms_x)"),
        *(Param(a, "choice", "any", choices=CHOICES, help=f"control: {a} ({h}), bucket fitted on the corpus")
          for a, h in (("rooms", "rooms per dungeon; none is an error, a dungeon has at least one room; "
                                 "room_count or rooms_x/rooms_y override it"), ("enemies", "enemy tiles per room"),
                       ("keys", "keys per dungeon"))),
        Param("blend_seed", "str", "", help="another seed whose latent to blend with (see blend)"),
        Param("blend", "float", 0.0, min=0.0, max=1.0, help="0 = this seed's latent, 1 = blend_seed's"),
        Param("repair", "bool", True, help="repair levels that do not pass the corpus's rules"),
        Param("weights", "str", "", help="a model.safetensors (or its folder) from `conjure train`; "
                                         "empty = the shipped weights"),
        Param("device", "choice", "cpu", choices=("cpu", "cuda", "auto"),
              help="where the network runs (cuda without a GPU falls back to the CPU with a message); "
                   "byte-identical output is promised on the CPU"),
    )

    # ------------------------------------------------------------------ declared for conjure evaluate
    model_class = _Model  # model(), corpus(), corpus_split(), rules(), read_corpus(): CorpusWeights

    # ------------------------------------------------------------------ controls
    def asked(self, m: _Model, request: Request) -> dict[str, str]:
        """The control buckets asked (``any`` left out; ``rooms`` too when ``room_count`` or ``rooms_x``/``rooms_y``
        give the rooms); one the model cannot honour is an error naming it."""
        out = {}
        p = request.params
        for a in CONTROL_ATTRS:
            b = p[a]
            if b == "any":
                continue
            if a == "rooms" and not m.cfg.get("rooms"):
                raise InputError(f"{GEN_ID}: rooms={b}: these weights draw maps without rooms (one window)")
            if a == "rooms" and b == "none":
                raise InputError(f"{GEN_ID}: rooms=none: a dungeon has at least one room")
            if a == "rooms" and (p["room_count"] or p["rooms_x"] or p["rooms_y"]):
                continue  # room_count / rooms_x, rooms_y override the rooms control: not asked, not checked
            if a not in m.available and b != "none":
                why = "its tiles carry no such tag" if m.buckets else "weights from before version 4: retrain them"
                raise InputError(f"{GEN_ID}: {a}={b}: this model has no {a} control ({why})")
            out[a] = b
        return out

    def measure(self, m: _Model, grid: np.ndarray, rooms: int) -> dict[str, str]:
        """The bucket each control attribute of a level lands in (rooms; enemy tiles per room; keys)."""
        if m.buckets is None:
            return {}
        out = {}
        n = max(1, rooms)
        if "rooms" in m.available:
            out["rooms"] = m.buckets.bucket("rooms", float(n))
        if "enemies" in m.available:
            out["enemies"] = m.buckets.bucket("enemies", float(m.masks["enemy"][grid].sum()) / n)
        if "keys" in m.available:
            out["keys"] = m.buckets.bucket("keys", float(m.masks["key"][grid].sum()))
        return out

    # LevelControls protocol (conjure evaluate --controls N)
    def level_controls(self, params: dict) -> dict[str, tuple[str, ...]]:
        from .learned_level_lm.controls import BUCKETS

        m = self.model(params.get("weights", ""))
        return {a: tuple(b for b in BUCKETS if not (a == "rooms" and b == "none")) for a in m.available}

    def measure_controls(self, level, params: dict) -> dict[str, str]:
        m = self.model(params.get("weights", ""))
        return self.measure(m, m.grid_of(level), int(level.metadata.get("rooms") or 1))

    # ------------------------------------------------------------------ latents
    def _latents(self, request: Request, m: _Model, n: int, stream: str = "z"):
        """This request's ``n`` latents (blended towards ``blend_seed``'s, scaled by temperature)."""
        import torch

        p = request.params
        z = torch.randn(n, m.zdim, generator=request.torch_generator(stream))
        if p["blend_seed"] and p["blend"] > 0:
            other = Request(request.kind, request.generator, _seed_param(p["blend_seed"]), p, request.context,
                            request.attempt)
            zb = torch.randn(n, m.zdim, generator=other.torch_generator(stream))
            z = torch.cat([_slerp(z[i:i + 1], zb[i:i + 1], p["blend"]) for i in range(n)])
        return z * p["temperature"]

    @staticmethod
    def _probs(m: _Model, z, conds) -> np.ndarray:
        """Per-cell tile distributions ``(n, rh, rw, C)`` (float64) of latents ``z`` and raw conditions."""
        import torch

        c = ((torch.tensor(conds, dtype=torch.float32) - m.cond_mean) / m.cond_std).to(m.device)
        with torch.inference_mode():
            p = torch.softmax(m.net.decode(z.to(m.device), c).float(), 1).cpu().numpy().astype(np.float64)
        return p[:, :, :m.cfg["rh"], :m.cfg["rw"]].transpose(0, 2, 3, 1)

    # ------------------------------------------------------------------ planning one level
    def _plan(self, m: _Model, r: Request, tries: int = 0) -> dict:
        """Layout, per-room conditions, allowed tiles, steered counts and checks of one level (``tries``: the
        latent search's candidate number, maps without rooms)."""
        from .learned_level_lm.sampler import Steer

        p = r.params
        asked = self.asked(m, r)
        rh, rw = m.cfg["rh"], m.cfg["rw"]
        rng = r.rng("layout")
        if m.cfg.get("rooms"):
            from .learned_level_lm.layout import door_sides_available, dungeon_layout

            sides = door_sides_available(m.rspec)
            if p["rooms_x"] or p["rooms_y"]:
                lay = grid_layout(max(1, p["rooms_y"]), max(1, p["rooms_x"]), rng, sides)
            else:
                n = p["room_count"]
                if not n:
                    n = self._room_count(m, asked.get("rooms", "any"), rng)
                lay = self._compact_layout(m, n, rng, sides)
            self._entrance(m, lay, sides)
        else:
            lay = None
        n = len(lay["rooms"]) if lay else 1
        crng = r.rng("cond", tries)
        rows = m.cond_table[crng.integers(len(m.cond_table), size=n)]
        eb = asked.get("enemies", "any")
        per_room = None
        if eb not in ("any", "none"):
            lo, hi, _ = m.buckets.count_range("enemies", eb, 100 * n)
            total = int(crng.integers(lo, hi + 1)) if hi > lo else lo
            per_room = crng.multinomial(total, [1.0 / n] * n)
        kb = asked.get("keys", "any")
        keys_per_room = None
        lock = self._lock(m, lay) if kb != "none" else {}
        need_keys = sum(len(v) for v in lock.values())
        if kb not in ("any", "none") or need_keys:  # a total in the bucket (at least one key per locked cell),
            total = need_keys                           # spread over the rooms but the goal room
            if kb not in ("any", "none"):
                lo, hi, _ = m.buckets.count_range("keys", kb, 100)
                total = max(need_keys, int(crng.integers(lo, hi + 1)) if hi > lo else lo)
            rooms_ok = lay.get("before_lock") if lay is not None and lock else \
                [i for i in range(n) if lay is None or n == 1 or i != lay["goal"]]
            spread = crng.multinomial(total, [1.0 / len(rooms_ok)] * len(rooms_ok))
            keys_per_room = np.zeros(n, dtype=np.int64)
            keys_per_room[rooms_ok] = spread
        V = m.classes
        enemy = m.masks["enemy"][:V + 1].copy()
        enemy[V] = False
        key = m.masks["key"][:V + 1].copy()
        key[V] = False
        conds, unaries, steers, checks = [], [], [], []
        for i in range(n):
            o = p["openness"] if p["openness"] >= 0 else float(rows[i][0])
            e = p["enemy_density"] if p["enemy_density"] >= 0 else float(rows[i][1])
            if eb == "none" or (per_room is not None and per_room[i] == 0):
                e = 0.0
            elif per_room is not None and e <= 0:  # enemies asked of this room: condition on a density that has some
                e = m.enemy_density_nz
            if lay is not None:
                from .learned_level_lm.layout import room_unary

                doors = lay["rooms"][i]["doors"]
                u = room_unary(m.rspec, doors)
                if m.cells is not None:
                    u[:, :, :V] &= m.cells
                if i == lay["goal"]:  # the locked doors of the goal room
                    for cells in lock.values():
                        for y, x, t in cells:
                            u[y, x] = False
                            u[y, x, t] = True
                c = (o, e) + ((tuple(1.0 if doors[s] else 0.0 for s in SIDES)) if m.cdim == 6 else ())
            else:
                u = np.ones((rh, rw, V + 1), dtype=bool)
                u[:, :, V] = False
                c = (o, e)
            st = []
            need = {}
            if e <= 0 and (eb == "none" or p["enemy_density"] == 0 or per_room is not None):
                u[:, :, enemy] = False
            elif per_room is not None:
                k = int(per_room[i])
                st.append(Steer("enemies", "tiles", enemy, None, k, k, k))
                need["enemy"] = (enemy, k)
            if kb == "none" or (keys_per_room is not None and keys_per_room[i] == 0):
                u[:, :, key] = False
            elif keys_per_room is not None:
                k = int(keys_per_room[i])
                st.append(Steer("keys", "tiles", key, None, k, k, k))
                need["key"] = (key, k)
            if lay is not None:  # the goal kinds (stairs) only in the goal room, as many as the corpus's maps hold
                for kind, cnt in m.goal_kinds.items():
                    gm = m.masks[kind][:V + 1].copy()
                    gm[V] = False
                    if i == lay["goal"]:
                        st.append(Steer(kind, "tiles", gm, None, cnt, cnt, cnt))
                        need[kind] = (gm, cnt)
                    else:
                        u[:, :, gm] = False
            conds.append(c)
            unaries.append(u)
            steers.append(st)
            checks.append(self._room_check(m, need) if lay is not None else self._window_check(m, r))
        return {"asked": asked, "layout": lay, "n": n, "conds": conds, "unaries": unaries, "steers": steers,
                "checks": checks, "tries": tries}

    @staticmethod
    def _room_count(m: _Model, bucket: str, rng: np.random.Generator) -> int:
        if m.buckets is None or "rooms" not in m.buckets.t:
            return 1
        if bucket == "any":
            t1, _, top = m.buckets.t["rooms"]
            return int(rng.integers(max(1, int(round(t1))), max(2, int(round(top))) + 1))
        lo, hi, _ = m.buckets.count_range("rooms", bucket, 100)
        return int(rng.integers(lo, hi + 1)) if hi > lo else lo

    @staticmethod
    def _lock(m: _Model, lay: dict | None) -> dict:
        """Key/lock progression (corpora whose rooms have locked doors and keys): every door of the goal room
        becomes the corpus's usual locked-door cells of its side, so the goal is reached only after keys
        found in the rooms before it (one key per locked cell: the rules open one locked cell per key).
        ``{side: [(row, col, tile)]}``; {} where the corpus has no such doors or keys, for a single room, or
        when a door side of the goal room has no locked-door cells in the corpus. Sets ``lay["before_lock"]``:
        the rooms reachable from the start without the goal room (where keys may go)."""
        if lay is None or len(lay["rooms"]) < 2 or "keys" not in m.available or not m.locks:
            return {}
        g = lay["goal"]
        goal = lay["rooms"][g]
        n = len(lay["rooms"])

        def reach(edges, avoid=None):
            nbr: dict[int, list[int]] = {i: [] for i in range(n)}
            for a, b in edges:
                nbr[a].append(b)
                nbr[b].append(a)
            seen, todo = {lay["start"]}, [lay["start"]]
            while todo:
                i = todo.pop()
                for j in nbr[i]:
                    if j != avoid and j not in seen:
                        seen.add(j)
                        todo.append(j)
            return seen

        step = {"n": (-1, 0), "s": (1, 0), "w": (0, -1), "e": (0, 1)}
        opp = {"n": "s", "s": "n", "w": "e", "e": "w"}
        at = {r["pos"]: i for i, r in enumerate(lay["rooms"])}
        edges = list(lay["edges"])
        drop = []
        for s in SIDES:  # a goal door on a side the corpus never locks: closed if the dungeon stays connected
            if goal["doors"][s] and not m.locks.get(s):
                j = at[(goal["pos"][0] + step[s][0], goal["pos"][1] + step[s][1])]
                rest = [e for e in edges if set(e) != {g, j}]
                if len(reach(rest)) < n:
                    return {}
                edges = rest
                drop.append((s, j))
        sides = [s for s in SIDES if goal["doors"][s] and m.locks.get(s)]
        if not sides:
            return {}
        for s, j in drop:
            goal["doors"][s] = False
            lay["rooms"][j]["doors"][opp[s]] = False
        lay["edges"] = edges
        lay["before_lock"] = sorted(reach(edges, avoid=g))
        lay["lock"] = "".join(sides)
        return {s: list(m.locks[s]) for s in sides}

    @staticmethod
    def _compact_layout(m: _Model, n: int, rng: np.random.Generator, sides) -> dict:
        """``level-lm``'s ``dungeon_layout`` of ``n`` rooms; with the corpus's fill (rooms over the slots of
        their bounding grid) known, the nearest to a fill drawn from the corpus's maps of
        ``LAYOUT_CANDIDATES`` layouts (the corpus's maps are more compact than a grown tree)."""
        from .learned_level_lm.layout import dungeon_layout

        fills = m.fills
        if not fills or n <= 2:
            return dungeon_layout(n, rng, sides, LOOPS)
        target = float(fills[int(rng.integers(len(fills)))])
        best = None
        for _ in range(LAYOUT_CANDIDATES):
            lay = dungeon_layout(n, rng, sides, LOOPS)
            R = 1 + max(r["pos"][0] for r in lay["rooms"])
            C = 1 + max(r["pos"][1] for r in lay["rooms"])
            d = abs(len(lay["rooms"]) / (R * C) - target)
            if m.slots:  # first: fewest neighbourhoods of rooms and void slots the corpus's maps never show
                occ = [[False] * C for _ in range(R)]
                for r in lay["rooms"]:
                    occ[r["pos"][0]][r["pos"][1]] = True
                got = _slot_blocks([occ])
                d = (sum(len(set(got[k]) - m.slots.get(k, set())) for k in got), d)
            else:
                d = (0, d)
            if best is None or d < best[0]:
                best = (d, lay)
        return best[1]

    @staticmethod
    def _entrance(m: _Model, lay: dict, sides) -> None:
        """An entrance as the corpus's dungeons have: a door in the start room's outer wall, on the map's edge
        (the edge of the layout's bounding grid of rooms). The layout is re-rooted at a room on the corpus's
        entrance side when it has one there whose door side the corpus uses (the start room itself if it lies
        there, else the one whose farthest room is farthest, ties by the lowest index), else on another edge
        (order s, w, e, n); the goal is then the room farthest from the new start (ties: the lowest index)."""
        if not m.entrance:
            return
        from .learned_level_lm.layout import edge_rooms, room_distances

        rooms = lay["rooms"]
        n = len(rooms)
        order = [m.entrance] + [s for s in ("s", "w", "e", "n") if s != m.entrance]
        for s in order:
            if s not in sides:
                continue
            cand = [i for i in edge_rooms(lay, s) if not rooms[i]["doors"][s]]
            if not cand:
                continue
            if lay["start"] in cand:
                start = lay["start"]
            else:
                start = max(cand, key=lambda i: (max(room_distances(lay, i)), -i))
            d = room_distances(lay, start)
            lay["start"] = int(start)
            lay["goal"] = int(max(range(n), key=lambda i: (d[i], -i)))
            rooms[start]["doors"][s] = True
            lay["entrance"] = s
            return

    @staticmethod
    def _room_check(m: _Model, need: dict | None = None):
        """A room passes when its doors and required cells are in one walkable area
        (:func:`~plugins.learned_level_lm.reach.room_ok`) and it holds the goal kinds asked of it."""
        from .learned_level_lm.reach import room_ok

        need = need or {}
        masks, required = m.masks, list(m.required) + [k for k in need if k not in m.required]

        def ok(S):
            return room_ok(S, masks, required) and all(int(gm[S].sum()) == c for gm, c in need.values())

        return ok

    @staticmethod
    def _window_check(m: _Model, r: Request):
        """Maps without rooms: the window's doors and required cells (doors, treasure, stairs: the kinds the
        rules require, but the start/key/goal entities, which are placed afterwards) lie in one walkable area
        (a fast stand-in for the rules, which are checked on the placed level)."""
        from .learned_level_lm.reach import room_ok

        masks = m.masks
        required = [k for k in m.required if k not in ("start", "goal", "key")]
        return lambda S: room_ok(S, masks, required)

    # ------------------------------------------------------------------ decoding
    def _decode(self, m: _Model, z, plans: list[dict], rngs: list, tw: np.ndarray | None = None) -> list:
        """Decode every room (or window) of ``plans`` together (``level-lm``'s sampler loop over the VAE's
        distributions, :func:`plugins.learned_level_lm.sampler.run`): returns the finished jobs, one per room,
        in order. A room that ran out of its budget of re-decoded rows (so it would hold a strip outside the
        corpus's patterns, or fail its check) is decoded again from a new latent of its own, up to
        ``ROOM_LATENTS`` times; plans with a ``request`` name the latents' streams."""
        from .learned_level_lm.sampler import run
        from .learned_levels import decode

        pats = m.patterns()
        tw = m.tile_weights() if tw is None else tw
        conds = [c for pl in plans for c in pl["conds"]]
        P = self._probs(m, z, conds) * tw
        where = [(pl, i) for pl in plans for i in range(pl["n"])]
        Job = decode._job_class()
        rh, rw = m.cfg["rh"], m.cfg["rw"]

        def job(k, probs, rng):
            pl, i = where[k]
            u = pl["unaries"][i]
            if pats is None:
                return _FreeJob(decode.sample_free(probs * u[:, :, :m.classes], rng))
            j = Job(width=rh, h=rw, V=m.classes, attrs=np.zeros(1, dtype=np.int64), rng=rng,
                    steers=[_copy_steer(st) for st in pl["steers"][i]], unary=(lambda t, u=u: u[t]),
                    room_check=pl["checks"][i], budget=(ROOM_BUDGET if pl["layout"] is not None else WINDOW_BUDGET) * rh)
            j.patterns = pats
            return j

        jobs = [job(k, P[k], rngs[k]) for k in range(len(where))]
        if pats is None:
            return jobs
        run(_Probs(np.log(np.maximum(P, 1e-300))), pats, jobs)
        for rnd in range(1, ROOM_LATENTS + 1):
            bad = [k for k, j in enumerate(jobs) if (j.giveup or j.pattern_fallbacks) and where[k][0].get("request")]
            if not bad:
                break
            zs = [self._latents(where[k][0]["request"], m, 1, f"z-room-{where[k][1]}-{rnd}") for k in bad]
            import torch

            Pb = self._probs(m, torch.cat(zs), [where[k][0]["conds"][where[k][1]] for k in bad]) * tw
            redo = []
            for q, k in enumerate(bad):
                pl, i = where[k]
                redo.append(job(k, Pb[q], np.random.default_rng([pl["base"], i, rnd])))
            run(_Probs(np.log(np.maximum(Pb, 1e-300))), pats, redo)
            for k, j in zip(bad, redo):
                j.backtracks += jobs[k].backtracks
                j.flagged = j.flagged or jobs[k].flagged
                j.latents = getattr(jobs[k], "latents", 1) + 1
                jobs[k] = j
        return jobs

    # ------------------------------------------------------------------ generation
    def generate(self, request: Request):
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[Request]) -> list:
        out: list[Any] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.params["weights"], r.params["device"]), []).append(i)
        for (weights, device), idx in groups.items():
            m = self.model(weights, device)
            reqs = [requests[i] for i in idx]
            made = self._make(m, reqs)
            if len(reqs) > 1:  # near-ties in batched float math: those levels alone (the reference)
                for k, (lv, flagged) in enumerate(made):
                    if flagged:
                        made[k] = self._make(m, [reqs[k]])[0]
            for i, (lv, _) in zip(idx, made):
                out[i] = lv
        return out

    def _make(self, m: _Model, reqs: list[Request]) -> list[tuple[Any, bool]]:
        import torch

        todo = list(range(len(reqs)))
        result: list[Any] = [None] * len(reqs)
        tries = 0
        while todo:
            plans = [self._plan(m, reqs[i], tries) for i in todo]
            z = torch.cat([self._latents(reqs[i], m, pl["n"], "z" if tries == 0 else f"z{tries}")
                           for i, pl in zip(todo, plans)])
            rngs = []
            for i, pl in zip(todo, plans):
                base = int(reqs[i].rng("sample", tries).integers(2 ** 62))
                pl["request"], pl["base"] = reqs[i], base
                rngs += [np.random.default_rng([base, k]) for k in range(pl["n"])]
            jobs = self._decode(m, z, plans, rngs)
            k = 0
            again = []
            for i, pl in zip(todo, plans):
                mine = jobs[k:k + pl["n"]]
                k += pl["n"]
                flagged = any(j.flagged for j in mine)
                prev = result[i]
                res = self._finish(m, reqs[i], pl, mine, final=(pl["layout"] is not None or tries + 1 >= LATENT_TRIES))
                result[i] = (res, flagged or bool(prev and prev[1]))
                if res is None:
                    again.append(i)
            todo = again
            tries += 1
        return result

    def _finish(self, m: _Model, request: Request, plan: dict, jobs: list, final: bool):
        """The level of decoded rooms (or window); None when a window failed the rules and another latent is
        to be tried."""
        lay = plan["layout"]
        if lay is not None:
            from .learned_level_lm.layout import assemble

            grid, regions = assemble(m.rspec, lay, [j.S for j in jobs])
            grid = grid.astype(np.int64)
        else:
            grid = np.asarray(jobs[0].S, dtype=np.int64)
            regions = [Region("dungeon", "area", "the drawn halls", 0, 0, grid.shape[1], grid.shape[0], {})]
        fallbacks = int(sum(j.pattern_fallbacks for j in jobs))
        rng = request.rng("place")
        raw_open, raw_enemy = conditions(grid, m.walk, m.enemy_mask)
        g, placed = self._place(m, grid, rng)
        rule_probs = m.rules.problems(g) if placed else ["no locked vault to put the goal behind"]
        probs = rule_probs + ([f"{fallbacks} strips sampled outside the corpus's 3x3 patterns"] if fallbacks else [])
        if probs and not final:
            return None
        raw_valid = not probs and request.attempt == 0
        edits = 0
        if rule_probs and request.params["repair"]:
            fixed = g.astype(np.uint8)
            for e in (m.cfg.get("start", -1), m.cfg.get("goal", -1), m.cfg.get("key", -1)):
                if e >= 0:
                    fixed[fixed == e] = m.cfg["floor"]
            edits = post.repair(fixed, rng, m.palette, vault=m.palette.locked is not None and m.cfg.get("key", -1) >= 0)
            if edits >= 0:
                g2, ok = self._place(m, fixed.astype(np.int64), rng)
                if ok:
                    g = g2
        n_rooms = plan["n"]
        meta = {"view": "top", "rules": m.rules.describe(), "raw_valid": raw_valid,
                "playable": not m.rules.problems(g),
                "repaired": bool(rule_probs and edits > 0), "repair_edits": max(edits, 0),
                "raw_problem": probs[0] if probs else "",
                "decoding": "sampled, corpus 3x3 patterns" if m.patterns() is not None else "sampled",
                "pattern_backtracks": int(sum(j.backtracks for j in jobs)), "pattern_fallbacks": fallbacks,
                "latent_tries": plan["tries"] + 1,
                "room_latents": int(sum(getattr(j, "latents", 1) for j in jobs)),
                "asked": dict(sorted(plan["asked"].items())), "measured": {}}
        meta["measured"] = {"openness": round(raw_open, 4), "enemy_density": round(raw_enemy, 4),
                            **self.measure(m, g, n_rooms)}
        if lay is not None:
            meta.update({"rooms": n_rooms, "start_room": lay["start"], "goal_room": lay["goal"],
                         "entrance": lay.get("entrance", ""), "locked_sides": lay.get("lock", "")})
        elif m.palette.locked is not None and m.cfg.get("key", -1) >= 0 and m.cfg.get("goal", -1) >= 0:
            meta["goal_behind_lock"] = bool(placed and _behind_lock(g, m))
        return m.to_level(g.astype(np.uint8), meta, regions)

    def _place(self, m: _Model, grid: np.ndarray, rng) -> tuple[np.ndarray, bool]:
        """Strip drawn start/key/goal entity tiles and place one of each (see the module docstring);
        (grid, placed). Corpora without such tiles: the grid as is."""
        c = m.cfg
        ents = [c.get(k, -1) for k in ("start", "goal", "key")]
        if c.get("start", -1) < 0 or c.get("goal", -1) < 0:
            return grid, True
        g = grid.copy()
        for e in ents:
            if e >= 0:
                g[g == e] = c["floor"]
        P = m.palette
        tiles = g.astype(np.uint8)
        if P.locked is not None and c.get("key", -1) >= 0:
            spots = post.place(tiles, rng, P)
            if spots is None:  # no vault drawn: start and goal far apart, the key between (no lock to open)
                return _place_open(m, g, rng)
            (sy, sx), (ky, kx), (ey, ex) = spots
            g[ky, kx] = c["key"]
        else:
            spots = post.place_simple(tiles, P)
            if spots is None:
                return g, False
            (sy, sx), (ey, ex) = spots
        g[sy, sx] = c["start"]
        g[ey, ex] = c["goal"]
        return g, True

    def validate(self, level, request: Request) -> list[str]:
        m = self.model(request.params["weights"], request.params["device"])
        try:
            g = m.grid_of(level)
        except InputError as e:
            return [str(e)]
        out = m.rules.problems(g)
        if level.metadata.get("pattern_fallbacks"):
            out.append(f"{level.metadata['pattern_fallbacks']} strips sampled outside the corpus's 3x3 patterns")
        asked = self.asked(m, request)
        got = self.measure(m, g, int(level.metadata.get("rooms") or 1))
        for a, b in sorted(asked.items()):
            if a in got and got[a] != b:
                out.append(f"control {a}={b} missed: measured {got[a]}")
        return out

    # ------------------------------------------------------------------ latent space
    def interpolate(self, seed_a, seed_b, steps: int = 5, params: dict | None = None) -> list:
        """Levels decoded along the latent path from ``seed_a``'s latents to ``seed_b``'s (``steps`` ≥ 2) in
        one batch, each exactly what ``engine.generate("level", "dungeon-vae", seed_a, {"blend_seed": seed_b,
        "blend": i/(steps-1)})`` returns on its first attempt (check them with :meth:`validate`)."""
        if steps < 2:
            raise InputError("interpolate: steps must be at least 2")
        from engine.params import resolve

        base = dict(params or {})
        base["blend_seed"] = str(seed_b)
        reqs = []
        for i in range(steps):
            p = resolve(self.params, dict(base, blend=i / (steps - 1)), self.id)
            reqs.append(Request("level", self.id, seed_a, p))
        return self.generate_batch(reqs)

    def interpolate_levels(self, a, b, steps: int = 5, weights: str = "") -> list[np.ndarray]:
        """Grids (corpus ids) along the latent path between two existing levels of the model's tileset (their
        top-left room or window, encoded to their latent means); conditions are interpolated too."""
        import torch

        from .learned_levels.nets import one_hot

        m = self.model(weights)
        rh, rw, hp, wp = m.cfg["rh"], m.cfg["rw"], m.cfg["hp"], m.cfg["wp"]
        grids, conds = [], []
        for lv in (a, b):
            g = m.grid_of(lv).astype(np.int64)
            if g.shape[0] < rh or g.shape[1] < rw:
                raise InputError(f"interpolate_levels: levels must be at least {rw}x{rh}")
            pad = np.full((hp, wp), m.cfg["pad"], dtype=np.int64)
            pad[:rh, :rw] = g[:rh, :rw]
            grids.append(pad)
            c = conditions(g[:rh, :rw], m.walk, m.enemy_mask)
            if m.cdim == 6:
                c = c + door_conditions(g[:rh, :rw], m.masks, m.rspec.d["wall"])
            conds.append(c)
        ct = torch.tensor(conds, dtype=torch.float32)
        with torch.inference_mode():
            mu, _ = m.net.encode(one_hot(np.stack(grids), m.classes).to(m.device),
                                 ((ct - m.cond_mean) / m.cond_std).to(m.device))
        out = []
        V = m.classes
        for i in range(steps):
            t = i / max(1, steps - 1)
            z = (mu[:1] * (1 - t) + mu[1:] * t).cpu()
            cc = (ct[:1] * (1 - t) + ct[1:] * t).tolist()
            u = np.ones((rh, rw, V + 1), dtype=bool)
            u[:, :, V] = False
            plan = {"n": 1, "conds": [tuple(cc[0])], "unaries": [u], "steers": [[]], "checks": [None], "layout": None}
            jobs = self._decode(m, z, [plan], [np.random.default_rng([len(out), steps])])
            out.append(np.asarray(jobs[0].S, dtype=np.int64).copy())
        return out

    # ------------------------------------------------------------------ training
    train_options = ("tiny", *DEFAULT_CONFIG)

    def train(self, job) -> dict:
        return train_dungeon_vae(job)


def _fits(pats, padded: np.ndarray, y: int, x: int, tile: int) -> bool:
    """Tile ``tile`` at (y, x) of a grid (``padded``: the grid with the pattern table's border round it)
    leaves every 3×3 window round it in the corpus's pattern table ``pats``."""
    from .learned_level_lm.patterns import window_codes

    Hp, Wp = padded.shape
    ys, ye, xs, xe = max(0, y - 1), min(Hp, y + 4), max(0, x - 1), min(Wp, x + 4)
    region = padded[ys:ye, xs:xe].copy()
    region[y + 1 - ys, x + 1 - xs] = tile
    codes = window_codes(region, pats.K, 3)
    i = np.searchsorted(pats.codes, codes).clip(max=len(pats.codes) - 1)
    return bool((pats.codes[i] == codes).all())


def _place_open(m: _Model, g: np.ndarray, rng) -> tuple[np.ndarray, bool]:
    """Start, goal and key on the largest walkable area when the network drew no locked vault: the start and
    the goal as far apart as a double sweep finds, the key at random, each only on a cell where it leaves
    the 3×3 windows round it in the corpus's patterns (else anywhere on the area)."""
    c, P = m.cfg, m.palette
    lab = _label(P.walkable[g.astype(np.uint8)])
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    if sizes.max(initial=0) < 3:
        return g, False
    area = [tuple(int(v) for v in q) for q in np.argwhere(lab == int(np.argmax(sizes)))]

    pats = m.patterns()

    def ok(cells, tile):
        if pats is None or not len(pats.codes):
            return cells
        from .learned_level_lm.patterns import pad

        padded = pad(g.astype(np.int64), pats.B)
        fit = [q for q in cells if _fits(pats, padded, q[0], q[1], tile)]
        return fit or cells

    def far(cells, a):
        return max(cells, key=lambda q: (abs(q[0] - a[0]) + abs(q[1] - a[1]), -q[0], -q[1]))

    starts = ok(area, c["start"])
    s0 = far(starts, far(starts, area[0]))
    g[s0] = c["start"]
    goals = ok([q for q in area if q != s0], c["goal"])
    e0 = far(goals, s0)
    g[e0] = c["goal"]
    keys = ok([q for q in area if q not in (s0, e0)], c["key"])
    if not keys:
        return g, False
    g[keys[int(rng.integers(len(keys)))]] = c["key"]
    return g, True


def _behind_lock(g: np.ndarray, m: _Model) -> bool:
    """The placed goal is not reachable from the start without opening a locked door."""
    walk = m.palette.walkable[g.astype(np.uint8)] | (g == m.cfg["start"]) | (g == m.cfg["goal"]) | \
        (g == m.cfg["key"])
    lab = _label(walk)
    s = np.argwhere(g == m.cfg["start"])
    e = np.argwhere(g == m.cfg["goal"])
    return bool(len(s) and len(e) and lab[tuple(s[0])] != lab[tuple(e[0])])


def _copy_steer(st):
    from .learned_level_lm.sampler import Steer

    return Steer(st.attr, st.kind, st.tiles, st.rows, st.target, st.lo, st.hi)


class _FreeJob:
    """A window sampled without a pattern table (:func:`plugins.learned_levels.decode.sample_free`), shaped
    like a finished sampler job."""

    def __init__(self, res):
        self.S = res.strips
        self.flagged = res.flagged
        self.backtracks = 0
        self.pattern_fallbacks = 0


def _seed_param(text: str):
    t = text.strip()
    return int(t) if t.lstrip("+-").isdigit() else text


def _slerp(a, b, t: float):
    import torch

    an, bn = a / a.norm(), b / b.norm()
    omega = torch.acos((an * bn).sum().clamp(-1.0, 1.0))
    if float(omega) < 1e-4:
        return a * (1 - t) + b * t
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


# --------------------------------------------------------------------------------------------- training
def _augment(wins: np.ndarray, mode: str) -> np.ndarray:
    if mode == "d4" and wins.shape[1] == wins.shape[2]:
        out = []
        for k in range(4):
            r = np.rot90(wins, k, axes=(1, 2))
            out += [r, r[:, :, ::-1]]
        return np.concatenate(out)
    if mode in ("flip4", "d4"):
        return np.concatenate([wins, wins[:, :, ::-1], wins[:, ::-1, :], wins[:, ::-1, ::-1]])
    if mode == "hflip":
        return np.concatenate([wins, wins[:, :, ::-1]])
    return wins


def _cut(grids: list[np.ndarray], cfg: dict, void_mask: np.ndarray, mode: str = "none") -> np.ndarray:
    """Training windows ``(n, hp, wp)``: the rooms (all-void rooms left out) or ``size`` windows, augmented
    by ``mode``, then padded."""
    from .learned_levels.corpus import windows

    rh, rw, hp, wp = cfg["rh"], cfg["rw"], cfg["hp"], cfg["wp"]
    out = []
    for g in grids:
        if cfg["rooms"]:
            for y in range(0, g.shape[0] - rh + 1, rh):
                for x in range(0, g.shape[1] - rw + 1, rw):
                    r = g[y:y + rh, x:x + rw]
                    if not void_mask[r].all():
                        out.append(r)
        else:
            out += list(windows(g, rh, rw, cfg["stride"], cfg["stride"]))
    if not out:
        return np.zeros((0, hp, wp), dtype=np.int64)
    rooms = _augment(np.stack(out), mode)  # before padding: a flip must not move the padding
    wins = np.full((len(rooms), hp, wp), cfg["pad"], dtype=np.int64)
    wins[:, :rh, :rw] = rooms
    return wins


def train_dungeon_vae(job) -> dict:
    import time

    import torch

    from engine.weights import save_safetensors

    from .learned_levels.nets import DungeonVAENet as Net, one_hot, vae_loss

    cfg = dict(DEFAULT_CONFIG)
    if job.options.get("tiny"):
        cfg.update(ch=8, zdim=8, calibrate=0)
    cfg.update({k: v for k, v in job.options.items() if k in DEFAULT_CONFIG})
    if cfg["calibrate"] not in (0, 1):
        raise InputError(f"{GEN_ID}: -O calibrate: expected 0 or 1, got {cfg['calibrate']!r}")
    if cfg["augment"] not in ("auto", "none", "hflip", "flip4", "d4"):
        raise InputError(f"{GEN_ID}: -O augment: expected auto, none, hflip, flip4 or d4, got {cfg['augment']!r}")
    epochs = job.epochs or 20
    lc.torch_threads()
    device = lc.resolve_device(job.device, GEN_ID)
    corpus, rules, train_idx, held_idx = prepare(job, GEN_ID, "top", float(cfg["holdout"]))
    ids = common_ids(corpus)
    if ids["floor"] is None or ids["wall"] is None:
        raise InputError(f"{GEN_ID}: the corpus needs a walkable tile and a solid tile (tags decide: see "
                         "docs/learned-levels.md)")
    kinds = {v: k for k, v in corpus.entity_kind.items()}
    role_ent = {}
    for role, names in (("start", ("spawn", "start", "player")), ("goal", ("exit", "goal")), ("key", ("key",))):
        role_ent[role] = next((kinds[n] for n in names if n in kinds), -1)
    void = ids["void"] if ids["void"] is not None else ids["wall"]
    if corpus.room:
        rh, rw = corpus.room
        rooms = 1
    else:
        rh = rw = int(cfg["size"])
        rooms = 0
    cfg.update(classes=corpus.classes, rh=rh, rw=rw, hp=-(-rh // 8) * 8, wp=-(-rw // 8) * 8, rooms=rooms,
               pad=void, floor=ids["floor"], wall=ids["wall"], void=void,
               door=ids["door"] if ids["door"] is not None else -1,
               locked=ids["locked"] if ids["locked"] is not None else -1, **role_ent)
    if cfg["augment"] == "auto":
        cfg["augment"] = "d4" if rh == rw else "flip4"
    void_mask = np.zeros(256, dtype=bool)
    void_mask[:corpus.classes] = corpus.role_mask("void")
    data = _cut([corpus.grids[i].astype(np.int64) for i in train_idx], cfg, void_mask, cfg["augment"])
    if not len(data):
        raise InputError(f"{GEN_ID}: no training window: the corpus's levels are smaller than {rw}x{rh} "
                         "(try -O size=16)")
    held = _cut([corpus.grids[i].astype(np.int64) for i in held_idx], cfg, void_mask)
    if not len(held):
        held = data[:max(1, len(data) // 8)]
    walk = np.zeros(256, dtype=bool)
    walk[:corpus.classes] = ~corpus.role_mask("solid") & ~corpus.role_mask("void")
    enemy = np.zeros(256, dtype=bool)
    enemy[:corpus.classes] = corpus.role_mask("enemy")
    from .learned_level_lm.spec import role_masks

    masks = role_masks(rules.to_dict()["roles"])
    doc = layout_doc([corpus.grids[i].astype(np.int64) for i in train_idx], cfg, masks, corpus.classes)
    cfg["cdim"] = 6 if rooms else 2

    def cond(g):
        c = conditions(g[:rh, :rw], walk, enemy)
        return c + door_conditions(g[:rh, :rw], masks, doc["wall"]) if rooms else c

    conds = np.array([cond(g) for g in data], dtype=np.float32)
    hconds = np.array([cond(g) for g in held], dtype=np.float32)
    cmean, cstd = conds.mean(0), conds.std(0) + 1e-3
    torch.manual_seed(job.seed)
    gen = torch.Generator().manual_seed(job.seed)
    net = Net(cfg["classes"], cfg["zdim"], cfg["cdim"], cfg["ch"], cfg["hp"], cfg["wp"]).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    x_all = torch.as_tensor(data, dtype=torch.long)
    c_all = (torch.as_tensor(conds) - torch.as_tensor(cmean)) / torch.as_tensor(cstd)
    x_held = torch.as_tensor(held, dtype=torch.long)
    c_held = (torch.as_tensor(hconds) - torch.as_tensor(cmean)) / torch.as_tensor(cstd)
    noise_held = torch.randn(len(held), cfg["zdim"], generator=torch.Generator().manual_seed(job.seed + 1))
    freq = np.bincount(data.ravel(), minlength=cfg["classes"]).astype(np.float64) + 1.0
    weight = torch.tensor((freq.sum() / freq) ** 0.25, dtype=torch.float32)
    weight = (weight / weight.mean()).to(device)
    n = len(data)
    bs = min(cfg["batch"], n)
    steps = max(1, n // bs)
    state: dict = {}

    def beta(ep):
        return cfg["beta"] * min(1.0, (ep + 1) / max(1, epochs // 4))

    def step(ep, s):
        if s == 0:
            state["perm"] = torch.randperm(n, generator=gen)
            state["ep"] = ep
        idx = state["perm"][s * bs:(s + 1) * bs]
        x = x_all[idx]
        noise = torch.randn(len(idx), cfg["zdim"], generator=gen)
        x, c, noise = x.to(device), c_all[idx].to(device), noise.to(device)
        logits, mu, logvar = net(one_hot(x, cfg["classes"]).to(device), c, noise)
        loss, rec, kl = vae_loss(logits, x, mu, logvar, beta(ep), weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "rec": rec.item(), "kl": kl.item()}

    def held_out() -> float:
        net.eval()
        with torch.no_grad():
            tot = 0.0
            for a in range(0, len(held), 256):
                x = x_held[a:a + 256].to(device)
                logits, mu, logvar = net(one_hot(x, cfg["classes"]).to(device), c_held[a:a + 256].to(device),
                                         noise_held[a:a + 256].to(device))
                loss, _, _ = vae_loss(logits, x, mu, logvar, cfg["beta"], weight)
                tot += float(loss) * len(x)
        net.train()
        return tot / len(held)

    t0 = time.time()
    with job.progress(epochs * steps, f"training {GEN_ID}") as bar:
        hist = lc.train_loop(name=GEN_ID, epochs=epochs, steps_per_epoch=steps, optimizers=[opt],
                             base_lrs=[cfg["lr"]], step=step, held_out=held_out,
                             snapshot=lambda: lc.state_copy(net), restore=net.load_state_dict, progress=bar)
    net = net.cpu().eval()
    with torch.inference_mode():
        k = min(512, len(held))
        mu, _ = net.encode(one_hot(x_held[:k], cfg["classes"]), c_held[:k])
        acc = float((net.decode(mu, c_held[:k]).argmax(1) == x_held[:k]).float().mean())
    rng = np.random.default_rng(job.seed)
    table = conds[rng.choice(n, size=min(256, n), replace=False)]
    tensors = {f"net.{k}": v.contiguous() for k, v in net.state_dict().items()}
    tensors.update(cond_mean=torch.as_tensor(cmean), cond_std=torch.as_tensor(cstd),
                   cond_table=torch.as_tensor(table), __config__=lc.json_tensor(cfg), __layout__=lc.json_tensor(doc))
    tensors.update(extra_tensors(corpus, rules, pattern_strips([corpus.grids[i] for i in train_idx], cfg,
                                                               void_mask[:corpus.classes])))
    # the tile weights of constrained sampling, calibrated once here (stored: no calibration at load time)
    cal = _Model(tensors, {}, job.out / "model.safetensors")
    cal.no_refine = not int(cfg["calibrate"])
    tile_w = cal.tile_weights()
    tensors["__tile_weights__"] = torch.as_tensor(tile_w, dtype=torch.float64)
    save_safetensors(tensors, job.out / "model.safetensors", {"generator": GEN_ID, "format": "conjure/2"})
    metrics = {"train_windows": n, "held_out_windows": len(held), "levels": len(corpus.grids),
               "train_levels": len(train_idx), "held_out_levels": len(held_idx), "steps": epochs * steps,
               "best_epoch": hist["best_epoch"], "held_out_loss_best": hist["best_held_out"],
               "held_out_recon_accuracy": round(acc, 4), "corpus_pass": rules.report["corpus_pass"],
               "tile_weights": {corpus.tileset.tiles[i].char: float(tile_w[i]) for i in range(corpus.classes)},
               "train_seconds": round(time.time() - t0, 1)}
    return {"weights": ["model.safetensors"], "config": cfg, "metrics": metrics, "epochs": epochs,
            "data": corpus.files, "device": device,
            "card": card_extras(corpus, rules, train_idx, held_idx, job, hist)}


@hookimpl
def register_level_generators(register):
    register(DungeonVAEGenerator())
