"""``dungeon-vae``: a conditional VAE that draws top-down levels like *your* corpus, in its tileset, checked by
rules fitted on it.

Train it on any top-down corpus ``conjure train`` reads (VGLC game folders such as Zelda's with your legend,
Tiled maps, packs; ``docs/learned-levels.md``). The weights then carry the corpus tileset (glyphs, names,
tags), its room size and the reachability rules fitted on it (:mod:`plugins.learned_levels.rules`). The
shipped weights are this very path trained on ``plugins/data/levels/dungeon``.

**What it draws.** When the corpus's maps are grids of equal rooms (VGLC Zelda: 16×11), the model learns
rooms, and a level is ``rooms_y × rooms_x`` decoded rooms side by side (default one room); otherwise it
learns ``size×size`` windows of the maps (default 32) and a level is one window. Windows are padded to
multiples of 8 (with the corpus's void or wall tile) for the network and cropped back.

The network (``plugins.learned_levels.nets.DungeonVAENet``, imported with torch on first use) decodes a latent
``z`` and two designer conditions — **openness** (share of walkable tiles) and **enemy density** (enemy tiles
per walkable tile), both measured through the tags — into a distribution over the corpus's tile ids per
cell, entity tiles (enemies, treasure) included. Tiles are **sampled** from those distributions row by row,
under the corpus's 3×3 patterns (:mod:`plugins.learned_levels.decode`: every 3×3 window of a room, its
edges included, occurs in the corpus's rooms, or in its training windows for maps without rooms), with the
probabilities scaled per tile kind so that rare kinds keep their corpus share
(:meth:`~plugins.learned_levels.model.LevelModel.tile_weights`); a one-room level that fails the corpus's
rules is decoded again (within the sampler's budget). When the corpus marks a start and a goal with entity tiles (Conjure's
legends: ``@`` spawn, ``!`` exit, ``k`` key; Tiled objects), those are *placed*
(:mod:`plugins.learned_levels.dungeon_post`): behind a locked door the network drew, if the corpus has
locked doors and keys, else at the two far ends of the largest walkable area. When the level does not pass
the corpus's rules it is *repaired* (stray areas joined by corridors, and a 5×5 vault when the corpus has
locked doors); ``metadata`` says which (``raw_valid``, ``repaired``, ``repair_edits``, ``raw_problem``).

Latent blending: ``-p blend_seed=S -p blend=0.5`` decodes the spherical interpolation between this seed's
latent and seed ``S``'s; :meth:`DungeonVAEGenerator.interpolate` returns the whole sequence, and
:meth:`DungeonVAEGenerator.interpolate_levels` blends two existing levels through the encoder.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine import Generator, Param, Region, Request, hookimpl
from engine.errors import InputError

from . import learned_common as lc
from .learned_levels import dungeon_post as post
from .learned_levels.model import CorpusWeights, LevelModel, card_extras, common_ids, extra_tensors, prepare

GEN_ID = "dungeon-vae"
DEFAULT_CONFIG = {"size": 32, "zdim": 32, "ch": 32, "batch": 64, "lr": 3e-3, "beta": 0.5, "stride": 4,
                  "augment": "auto", "holdout": 0.15}
CONFIG_BOUNDS = {"classes": (1, 255), "size": (4, 128), "rh": (3, 128), "rw": (3, 128), "hp": (8, 128),
                 "wp": (8, 128), "zdim": (1, 512), "ch": (1, 256), "batch": (1, 4096), "lr": (0.0, 1.0),
                 "beta": (0.0, 100.0), "stride": (1, 128), "holdout": (0.0, 0.9), "pad": (0, 254),
                 "floor": (0, 254), "wall": (0, 254), "void": (0, 254), "door": (-1, 254), "locked": (-1, 254),
                 "start": (-1, 254), "goal": (-1, 254), "key": (-1, 254), "rooms": (0, 1)}


class _Model(LevelModel):
    """A loaded network with its tileset, rules, ids and condition statistics."""

    def __init__(self, tensors: dict, card: dict, path, device: str = "cpu"):
        import torch

        from .learned_levels.nets import DungeonVAENet as Net

        source = f"{GEN_ID} weights {path}"
        super().__init__(tensors, card, path, source)
        cfg = lc.checked_config(tensors, card, CONFIG_BOUNDS, source)
        for k in ("classes", "rh", "rw", "hp", "wp", "pad", "floor", "wall", "void"):
            if k not in cfg:
                raise InputError(f"{source}: config.{k}: missing")
        ids = [cfg[k] for k in ("pad", "floor", "wall", "void", "door", "locked", "start", "goal", "key") if k in cfg]
        if cfg["classes"] != self.classes or self.view != "top" or cfg["hp"] % 8 or cfg["wp"] % 8 \
                or cfg["rh"] > cfg["hp"] or cfg["rw"] > cfg["wp"] or max(ids) >= self.classes:
            raise InputError(f"{source}: config does not fit its tileset (classes {cfg['classes']}, view {self.view})")
        self.cfg = cfg
        net = Net(cfg["classes"], cfg["zdim"], 2, cfg["ch"], cfg["hp"], cfg["wp"])
        try:
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        except RuntimeError as e:
            raise InputError(f"{source}: tensors do not fit the config: {str(e).splitlines()[0]}") from None
        net.eval()
        self.device = device
        self.net = net.to(device)
        for k in ("cond_mean", "cond_std", "cond_table"):
            if k not in tensors or tensors[k].shape[-1] != 2:
                raise InputError(f"{source}: tensor {k} missing or not of 2 conditions")
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

    def pattern_strips(self, grids):
        return pattern_strips(grids, self.cfg, self.mask("void"))

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


class DungeonVAEGenerator(CorpusWeights, Generator):
    id = GEN_ID
    kind = "level"
    version = "3"
    description = "Conditional VAE top-down levels in your corpus's tileset and room size; blend seeds in latent space"
    params = (
        Param("openness", "float", -1.0, min=-1.0, max=1.0,
              help="target share of walkable tiles; -1 draws one from the training data"),
        Param("enemy_density", "float", -1.0, min=-1.0, max=0.5,
              help="target enemy tiles per walkable tile; -1 draws one from the training data"),
        Param("temperature", "float", 1.0, min=0.0, max=3.0, help="scale of the latent sample (0 = the mean)"),
        Param("rooms_x", "int", 1, min=1, max=16, help="rooms across (corpora made of rooms)"),
        Param("rooms_y", "int", 1, min=1, max=16, help="rooms down (corpora made of rooms)"),
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

    # ------------------------------------------------------------------ latents
    def _latents(self, request: Request, m: _Model, n: int):
        """This request's ``n`` latents (and blend) and its condition vector (raw, not standardised)."""
        import torch

        p = request.params
        z = torch.randn(n, m.zdim, generator=request.torch_generator("z"))
        if p["blend_seed"] and p["blend"] > 0:
            other = Request(request.kind, request.generator, _seed_param(p["blend_seed"]), p, request.context,
                            request.attempt)
            zb = torch.randn(n, m.zdim, generator=other.torch_generator("z"))
            z = torch.cat([_slerp(z[i:i + 1], zb[i:i + 1], p["blend"]) for i in range(n)])
        z = z * p["temperature"]
        rng = request.rng("cond")
        row = m.cond_table[int(rng.integers(len(m.cond_table)))]
        o = p["openness"] if p["openness"] >= 0 else float(row[0])
        e = p["enemy_density"] if p["enemy_density"] >= 0 else float(row[1])
        return z, (o, e)

    @staticmethod
    def _probs(m: _Model, z, conds) -> np.ndarray:
        """Per-cell tile distributions ``(n, rh, rw, C)`` (float64) of latents ``z`` and raw conditions."""
        import torch

        c = ((torch.tensor(conds, dtype=torch.float32) - m.cond_mean) / m.cond_std).to(m.device)
        with torch.inference_mode():
            p = torch.softmax(m.net.decode(z.to(m.device), c).float(), 1).cpu().numpy().astype(np.float64)
        return p[:, :, :m.cfg["rh"], :m.cfg["rw"]].transpose(0, 2, 3, 1)

    def _decode(self, m: _Model, z, conds, rngs: list, checks: list | None = None) -> tuple[list, list]:
        """Windows sampled under the corpus pattern constraint (:mod:`plugins.learned_levels.decode`; strips
        are rows), each from its own generator in ``rngs``, decoded again while its ``checks[i](grid)`` fails
        (within the sampler's budget). A window with a near-tied draw in the batch is decoded again from its
        distributions computed alone, so batches equal single requests. Returns (grids, stats)."""
        from .learned_levels import decode

        pats = m.patterns()
        tw = m.tile_weights()
        P = self._probs(m, z, conds) * tw
        grids, stats = [], []
        for i in range(len(z)):
            state = rngs[i].bit_generator.state
            chk = checks[i] if checks else None

            unary = np.ones((P.shape[2], m.classes + 1), dtype=bool)
            unary[:, m.classes] = False
            if conds[i][1] <= 0:  # no enemies asked (or drawn): none sampled
                unary[:, :m.classes] &= ~m.enemy_mask[:m.classes]

            def run(p, state=state, chk=chk, unary=unary):
                r = np.random.default_rng()
                r.bit_generator.state = state
                p = p * unary[:, :m.classes]
                if pats is None:
                    return decode.sample_free(p, r)
                return decode.sample(p, pats, r, check=chk, unary=unary)

            res = run(P[i])
            if res.flagged and len(z) > 1:
                res = run(self._probs(m, z[i:i + 1], [conds[i]])[0] * tw)
            grids.append(res.strips)
            stats.append({"backtracks": res.backtracks, "fallbacks": res.fallbacks, "constrained": pats is not None})
        return grids, stats

    # ------------------------------------------------------------------ generation
    def generate(self, request: Request):
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[Request]) -> list:
        import torch

        out: list[Any] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.params["weights"], r.params["device"]), []).append(i)
        for (weights, device), idx in groups.items():
            m = self.model(weights, device)
            counts = [self._rooms(m, requests[i].params) for i in idx]
            lat = [self._latents(requests[i], m, ry * rx) for i, (ry, rx) in zip(idx, counts)]
            z = torch.cat([a for a, _ in lat])
            conds = [c for (a, c) in lat for _ in range(a.shape[0])]
            rngs, checks = [], []
            for j, i in enumerate(idx):
                base = int(requests[i].rng("sample").integers(2 ** 62))
                n = counts[j][0] * counts[j][1]
                rngs += [np.random.default_rng([base, k]) for k in range(n)]
                checks += [self._check(m, requests[i])] * n
            wins, stats = self._decode(m, z, conds, rngs, checks)
            k = 0
            for j, i in enumerate(idx):
                ry, rx = counts[j]
                rh, rw = m.cfg["rh"], m.cfg["rw"]
                grid = np.zeros((ry * rh, rx * rw), dtype=np.int64)
                st = {"backtracks": 0, "fallbacks": 0, "constrained": True}
                for a in range(ry):
                    for b in range(rx):
                        grid[a * rh:(a + 1) * rh, b * rw:(b + 1) * rw] = wins[k]
                        st["backtracks"] += stats[k]["backtracks"]
                        st["fallbacks"] += stats[k]["fallbacks"]
                        st["constrained"] &= stats[k]["constrained"]
                        k += 1
                out[i] = self._finish(m, grid, requests[i], lat[j][1], counts[j], st)
        return out

    def _check(self, m: _Model, request: Request):
        """The test a decoded room must pass (else it is decoded again, within the sampler's budget): a
        one-room level passes the corpus's rules once start, key and goal are placed; a room of a larger
        level has its doors and required cells in one walkable area. Windows of maps without rooms: none."""
        one = not m.cfg.get("rooms") or (request.params["rooms_x"] == 1 and request.params["rooms_y"] == 1)

        def whole(g):
            g2, placed = self._place(m, g, request.rng("place"))
            return placed and not m.rules.problems(g2)

        def room(g):
            from engine.quality import _label

            walk = m.walk[g]
            need = (m.mask("door") | m.mask("stairs") | m.mask("goal") | m.mask("key"))[g] & walk
            if not need.any():
                return bool(walk.any())
            lab = _label(walk)
            return len(np.unique(lab[need])) == 1

        if not m.cfg.get("rooms"):
            return None  # a window of a map: the vault is rarely drawn; decoding again only spends the budget
        return whole if one else room

    @staticmethod
    def _rooms(m: _Model, p: dict) -> tuple[int, int]:
        return (p["rooms_y"], p["rooms_x"]) if m.cfg.get("rooms") else (1, 1)

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
            if spots is None:
                return g, False
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

    def _finish(self, m: _Model, grid: np.ndarray, request: Request, cond, rooms, stats: dict) -> Any:
        rng = request.rng("place")
        raw_open, raw_enemy = conditions(grid, m.walk, m.enemy_mask)
        g, placed = self._place(m, grid, rng)
        probs = m.rules.problems(g) if placed else ["no locked vault to put the goal behind"]
        raw_valid = not probs
        edits = 0
        if not raw_valid and request.params["repair"]:
            fixed = g.astype(np.uint8)
            for e in (m.cfg.get("start", -1), m.cfg.get("goal", -1), m.cfg.get("key", -1)):
                if e >= 0:
                    fixed[fixed == e] = m.cfg["floor"]
            edits = post.repair(fixed, rng, m.palette, vault=m.palette.locked is not None and m.cfg.get("key", -1) >= 0)
            if edits >= 0:
                g2, ok = self._place(m, fixed.astype(np.int64), rng)
                if ok:
                    g = g2
        ry, rx = rooms
        rh, rw = m.cfg["rh"], m.cfg["rw"]
        meta = {"view": "top", "rules": m.rules.describe(), "raw_valid": raw_valid,
                "repaired": bool(not raw_valid and edits > 0), "repair_edits": max(edits, 0),
                "raw_problem": probs[0] if probs else "",
                "decoding": "sampled, corpus 3x3 patterns" if stats["constrained"] else "sampled",
                "pattern_backtracks": stats["backtracks"], "pattern_fallbacks": stats["fallbacks"],
                "conditions": {"openness": round(cond[0], 4), "enemy_density": round(cond[1], 4)},
                "measured": {"openness": round(raw_open, 4), "enemy_density": round(raw_enemy, 4)}}
        if m.cfg.get("rooms"):
            regions = [Region(f"room-{a}-{b}", "room", f"room {a + 1},{b + 1}", b * rw, a * rh, rw, rh, {})
                       for a in range(ry) for b in range(rx)]
        else:
            regions = [Region("dungeon", "area", "the drawn halls", 0, 0, g.shape[1], g.shape[0], {})]
        return m.to_level(g.astype(np.uint8), meta, regions)

    def validate(self, level, request: Request) -> list[str]:
        m = self.model(request.params["weights"], request.params["device"])
        try:
            g = m.grid_of(level)
        except InputError as e:
            return [str(e)]
        return m.rules.problems(g)

    # ------------------------------------------------------------------ latent space
    def interpolate(self, seed_a, seed_b, steps: int = 5, params: dict | None = None) -> list:
        """Levels decoded along the latent path from ``seed_a``'s latent to ``seed_b``'s (``steps`` ≥ 2) in
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
        top-left windows, encoded to their latent means); conditions are interpolated too."""
        import torch

        from .learned_levels.nets import one_hot

        m = self.model(weights)
        rh, rw, hp, wp = m.cfg["rh"], m.cfg["rw"], m.cfg["hp"], m.cfg["wp"]
        grids = []
        for lv in (a, b):
            g = m.grid_of(lv).astype(np.int64)
            if g.shape[0] < rh or g.shape[1] < rw:
                raise InputError(f"interpolate_levels: levels must be at least {rw}x{rh}")
            pad = np.full((hp, wp), m.cfg["pad"], dtype=np.int64)
            pad[:rh, :rw] = g[:rh, :rw]
            grids.append(pad)
        conds = torch.tensor([conditions(g[:rh, :rw], m.walk, m.enemy_mask) for g in grids], dtype=torch.float32)
        c = (conds - m.cond_mean) / m.cond_std
        with torch.inference_mode():
            mu, _ = m.net.encode(one_hot(np.stack(grids), m.classes).to(m.device), c.to(m.device))
        out = []
        for i in range(steps):
            t = i / max(1, steps - 1)
            z = mu[:1] * (1 - t) + mu[1:] * t
            cc = conds[:1] * (1 - t) + conds[1:] * t
            g, _ = self._decode(m, z, cc.tolist(), [np.random.default_rng([len(out), steps])])
            out.append(g[0])
        return out

    # ------------------------------------------------------------------ training
    train_options = ("tiny", *DEFAULT_CONFIG)

    def train(self, job) -> dict:
        return train_dungeon_vae(job)


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
        cfg.update(ch=8, zdim=8)
    cfg.update({k: v for k, v in job.options.items() if k in DEFAULT_CONFIG})
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
    conds = np.array([conditions(g[:rh, :rw], walk, enemy) for g in data], dtype=np.float32)
    hconds = np.array([conditions(g[:rh, :rw], walk, enemy) for g in held], dtype=np.float32)
    cmean, cstd = conds.mean(0), conds.std(0) + 1e-3
    torch.manual_seed(job.seed)
    gen = torch.Generator().manual_seed(job.seed)
    net = Net(cfg["classes"], cfg["zdim"], 2, cfg["ch"], cfg["hp"], cfg["wp"]).to(device)
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
                   cond_table=torch.as_tensor(table), __config__=lc.json_tensor(cfg))
    tensors.update(extra_tensors(corpus, rules, pattern_strips([corpus.grids[i] for i in train_idx], cfg,
                                                               void_mask[:corpus.classes])))
    save_safetensors(tensors, job.out / "model.safetensors", {"generator": GEN_ID, "format": "conjure/2"})
    metrics = {"train_windows": n, "held_out_windows": len(held), "levels": len(corpus.grids),
               "train_levels": len(train_idx), "held_out_levels": len(held_idx), "steps": epochs * steps,
               "best_epoch": hist["best_epoch"], "held_out_loss_best": hist["best_held_out"],
               "held_out_recon_accuracy": round(acc, 4), "corpus_pass": rules.report["corpus_pass"],
               "train_seconds": round(time.time() - t0, 1)}
    return {"weights": ["model.safetensors"], "config": cfg, "metrics": metrics, "epochs": epochs,
            "data": corpus.files, "device": device,
            "card": card_extras(corpus, rules, train_idx, held_idx, job, hist)}


@hookimpl
def register_level_generators(register):
    register(DungeonVAEGenerator())
