"""``dungeon-vae``: a conditional VAE that draws 32×32 dungeons like the shipped corpus.

The network (``plugins.learned_levels.nets.DungeonVAE``, imported with torch on first use) decodes a
latent ``z`` and two designer conditions — **openness** (share of walkable tiles) and **enemy density**
(enemies per walkable tile) — into one-hot tile classes: the ``dungeon`` tileset's tiles plus enemy and
treasure markers. Entities are then placed (:mod:`plugins.learned_levels.dungeon_post`): the spawn and key
outside a vault the network drew behind a locked door, the exit inside. When the decoded tiles hold no such
vault the level is *repaired* (stray areas joined by corridors, a 5×5 vault built); ``metadata`` says which
(``raw_valid``, ``repaired``, ``repair_edits``) so playability before repair is measured honestly.

Latent blending: ``-p blend_seed=S -p blend=0.5`` decodes the spherical interpolation between this seed's
latent and seed ``S``'s; :meth:`DungeonVAE.interpolate` returns the whole sequence, and
:meth:`DungeonVAE.interpolate_levels` blends two existing levels through the encoder.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine import Entity, Generator, Level, Param, Region, Request, hookimpl
from engine.errors import InputError
from engine.quality import dungeon_problems

from .dungeon import tileset
from .learned_levels import common
from .learned_levels.corpus import augment, load_levels, to_classes, windows
from .learned_levels import dungeon_post as post

GEN_ID = "dungeon-vae"
SIZE = 32
CLASSES = 7
ENTITY_CLASSES = {"enemy": post.ENEMY, "treasure": post.TREASURE}
DEFAULT_CONFIG = {"size": SIZE, "classes": CLASSES, "zdim": 32, "ch": 32, "batch": 64, "lr": 3e-3,
                  "beta": 0.5, "stride": 4, "augment": "d4"}


def conditions(grid: np.ndarray) -> tuple[float, float]:
    """(openness, enemy density) of a class grid: walkable share; enemies per walkable tile."""
    walk = np.isin(grid, (post.FLOOR, post.DOOR, post.ENEMY, post.TREASURE)).sum()
    enemies = (grid == post.ENEMY).sum()
    return float(walk) / grid.size, float(enemies) / max(1.0, float(walk))


class _Model:
    """A loaded network with its condition statistics."""

    def __init__(self, tensors: dict, card: dict):
        import torch

        from .learned_levels.nets import DungeonVAE

        cfg = dict(DEFAULT_CONFIG)
        cfg.update(common.config_of(tensors, card, f"{GEN_ID} weights"))
        self.cfg = cfg
        net = DungeonVAE(cfg["classes"], cfg["zdim"], 2, cfg["ch"], cfg["size"])
        state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        net.load_state_dict(state)
        net.eval()
        self.net = net
        self.cond_mean = tensors["cond_mean"].to(torch.float32)
        self.cond_std = tensors["cond_std"].to(torch.float32)
        self.cond_table = tensors["cond_table"].numpy().astype(np.float64)
        self.zdim = cfg["zdim"]


class DungeonVAE(Generator):
    id = GEN_ID
    kind = "level"
    version = "1"
    description = "Conditional VAE dungeons (32x32) learned from the shipped corpus; blend seeds in latent space"
    params = (
        Param("openness", "float", -1.0, min=-1.0, max=1.0,
              help="target share of walkable tiles (about 0.15-0.6); -1 draws one from the training data"),
        Param("enemy_density", "float", -1.0, min=-1.0, max=0.5,
              help="target enemies per walkable tile (about 0-0.12); -1 draws one from the training data"),
        Param("temperature", "float", 1.0, min=0.0, max=3.0, help="scale of the latent sample (0 = the mean)"),
        Param("blend_seed", "str", "", help="another seed whose latent to blend with (see blend)"),
        Param("blend", "float", 0.0, min=0.0, max=1.0, help="0 = this seed's latent, 1 = blend_seed's"),
        Param("repair", "bool", True, help="repair levels whose decoded tiles hold no usable vault"),
        Param("weights", "str", "", help="a model.safetensors (or its folder) from `conjure train`; "
                                         "empty = the shipped weights"),
    )
    window = (SIZE, SIZE)
    genre = "dungeon"
    augment = "d4"

    def corpus_levels(self) -> list[Level]:
        """The shipped training corpus (for novelty and KL in ``conjure evaluate``)."""
        return common.corpus(self.genre)

    # ------------------------------------------------------------------ model
    def model(self, weights: str = "") -> _Model:
        return common.load_model(GEN_ID, weights, _Model)

    def _latent(self, request: Request, m: _Model):
        """This request's latent (and blend) and its condition vector (raw, not standardised)."""
        import torch

        p = request.params
        z = torch.randn(1, m.zdim, generator=request.torch_generator("z"))
        if p["blend_seed"] and p["blend"] > 0:
            other = Request(request.kind, request.generator, common.seed_param(p["blend_seed"]), p,
                            request.context, request.attempt)
            zb = torch.randn(1, m.zdim, generator=other.torch_generator("z"))
            z = _slerp(z, zb, p["blend"])
        z = z * p["temperature"]
        rng = request.rng("cond")
        row = m.cond_table[int(rng.integers(len(m.cond_table)))]
        o = p["openness"] if p["openness"] >= 0 else float(row[0])
        e = p["enemy_density"] if p["enemy_density"] >= 0 else float(row[1])
        return z, (o, e)

    def _decode(self, m: _Model, z, conds):
        import torch

        from .learned_levels.nets import decode_tiles

        c = (torch.tensor(conds, dtype=torch.float32) - m.cond_mean) / m.cond_std
        with torch.inference_mode():
            logits = m.net.decode(z, c)
            return decode_tiles(logits, lambda i: m.net.decode(z[i:i + 1], c[i:i + 1]))

    # ------------------------------------------------------------------ generation
    def generate(self, request: Request) -> Level:
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[Request]) -> list[Level]:
        with common.single_thread():  # two threads are slower on a busy 2-core box, and tails explode
            return self._generate_batch(requests)

    def _generate_batch(self, requests: list[Request]) -> list[Level]:
        import torch

        out: list[Any] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.params["weights"], []).append(i)
        for weights, idx in groups.items():
            m = self.model(weights)
            lat = [self._latent(requests[i], m) for i in idx]
            z = torch.cat([a for a, _ in lat])
            grids = self._decode(m, z, [c for _, c in lat])
            for k, i in enumerate(idx):
                out[i] = self._finish(grids[k], requests[i], lat[k][1])
        return out

    def _finish(self, grid: np.ndarray, request: Request, cond: tuple[float, float]) -> Level:
        rng = request.rng("place")
        tiles, enemies, treasure = post.split(grid)
        raw_open, raw_enemy = conditions(grid)
        spots = post.place(tiles, rng)
        raw_valid = False
        raw_problem = "no vault behind a locked door"
        if spots is not None:
            raw = _level(tiles, spots, enemies, treasure, {})
            probs = dungeon_problems(raw)
            raw_valid = not probs
            raw_problem = probs[0] if probs else ""
        edits = 0
        if not raw_valid and request.params["repair"]:
            fixed = tiles.copy()
            edits = post.repair(fixed, rng)
            if edits >= 0:
                spots2 = post.place(fixed, rng)
                if spots2 is not None:
                    tiles, spots = fixed, spots2
        meta = {"genre": "dungeon", "raw_valid": raw_valid, "repaired": bool(not raw_valid and edits > 0),
                "repair_edits": max(edits, 0), "raw_problem": raw_problem,
                "conditions": {"openness": round(cond[0], 4), "enemy_density": round(cond[1], 4)},
                "measured": {"openness": round(raw_open, 4), "enemy_density": round(raw_enemy, 4)}}
        if spots is None:  # unplayable; the engine's validator rejects it and resamples
            return Level({"tiles": tiles}, tileset(), [], [], meta)
        return _level(tiles, spots, enemies, treasure, meta)

    def validate(self, level: Level, request: Request) -> list[str]:
        return dungeon_problems(level)

    # ------------------------------------------------------------------ latent space
    def interpolate(self, seed_a, seed_b, steps: int = 5, params: dict | None = None) -> list[Level]:
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

    def interpolate_levels(self, a: Level, b: Level, steps: int = 5, weights: str = "") -> list[np.ndarray]:
        """Tile grids along the latent path between two existing dungeon levels (their 32×32 top-left
        windows, encoded to their latent means); conditions are interpolated too."""
        import torch

        m = self.model(weights)
        grids = [to_classes(lv, ENTITY_CLASSES)[:SIZE, :SIZE] for lv in (a, b)]
        if any(g.shape != (SIZE, SIZE) for g in grids):
            raise InputError(f"interpolate_levels: levels must be at least {SIZE}x{SIZE}")
        from .learned_levels.nets import one_hot

        conds = torch.tensor([conditions(g) for g in grids], dtype=torch.float32)
        c = (conds - m.cond_mean) / m.cond_std
        with torch.inference_mode():
            mu, _ = m.net.encode(one_hot(np.stack(grids), m.cfg["classes"]), c)
        out = []
        for i in range(steps):
            t = i / max(1, steps - 1)
            z = mu[:1] * (1 - t) + mu[1:] * t
            cc = conds[:1] * (1 - t) + conds[1:] * t
            out.append(self._decode(m, z, cc.tolist())[0])
        return out

    # ------------------------------------------------------------------ training
    train_options = ("tiny", *DEFAULT_CONFIG)

    def train(self, job) -> dict:
        return train_dungeon_vae(job)


def _slerp(a, b, t: float):
    import torch

    an, bn = a / a.norm(), b / b.norm()
    omega = torch.acos((an * bn).sum().clamp(-1.0, 1.0))
    if float(omega) < 1e-4:
        return a * (1 - t) + b * t
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def _level(tiles, spots, enemies, treasure, meta) -> Level:
    spawn, key, exit_ = spots
    ents = [Entity("spawn", "spawn", spawn[1], spawn[0], {}), Entity("exit", "exit", exit_[1], exit_[0], {}),
            Entity("key", "key", key[1], key[0], {"opens": "locked_door"})]
    taken = {spawn, key, exit_}
    n = 0
    for y, x in enemies:
        c = (int(y), int(x))
        if c not in taken and tiles[c] == post.FLOOR:
            n += 1
            taken.add(c)
            ents.append(Entity(f"enemy-{n}", "enemy", c[1], c[0], {"hp": 3}))
    n = 0
    for y, x in treasure:
        c = (int(y), int(x))
        if c not in taken and tiles[c] == post.FLOOR:
            n += 1
            taken.add(c)
            ents.append(Entity(f"treasure-{n}", "treasure", c[1], c[0], {"value": 10}))
    h, w = tiles.shape
    regions = [Region("dungeon", "area", "the drawn halls", 0, 0, w, h, {})]
    return Level({"tiles": tiles}, tileset(), ents, regions, meta)


# --------------------------------------------------------------------------------------------- training
def training_windows(levels: list[Level], cfg: dict) -> np.ndarray:
    wins = [windows(to_classes(lv, ENTITY_CLASSES), cfg["size"], cfg["size"], cfg["stride"], cfg["stride"])
            for lv in levels]
    wins = [w for w in wins if len(w)]
    if not wins:
        raise InputError(f"{GEN_ID}: no dungeon level of at least {cfg['size']}x{cfg['size']} in the data")
    return augment(np.concatenate(wins), cfg["augment"])


def train_dungeon_vae(job) -> dict:
    import torch

    from engine.weights import save_safetensors

    from .learned_levels.nets import DungeonVAE as Net, one_hot, vae_loss

    cfg = dict(DEFAULT_CONFIG)
    if job.options.get("tiny"):
        cfg.update(ch=8, zdim=8)
    cfg.update({k: v for k, v in job.options.items() if k in DEFAULT_CONFIG})
    epochs = job.epochs or 20
    torch.set_num_threads(1)
    levels = load_levels(job.data, job.engine, "dungeon")
    if not levels:
        raise InputError(f"{GEN_ID}: no dungeon levels in the data (VGLC text with a dungeon legend, Tiled maps "
                         "or packs of dungeon levels)")
    data = training_windows(levels, cfg)
    conds = np.array([conditions(g) for g in data], dtype=np.float32)
    cmean, cstd = conds.mean(0), conds.std(0) + 1e-3
    torch.manual_seed(job.seed)
    gen = torch.Generator().manual_seed(job.seed)
    net = Net(cfg["classes"], cfg["zdim"], 2, cfg["ch"], cfg["size"])
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
    x_all = torch.as_tensor(data, dtype=torch.long)
    c_all = (torch.as_tensor(conds) - torch.as_tensor(cmean)) / torch.as_tensor(cstd)
    freq = np.bincount(data.ravel(), minlength=cfg["classes"]).astype(np.float64) + 1.0
    weight = torch.tensor((freq.sum() / freq) ** 0.25, dtype=torch.float32)
    weight = weight / weight.mean()
    n = len(data)
    steps = max(1, n // cfg["batch"])
    losses, recs, kls = [], [], []
    t0 = time.time()
    with job.progress(epochs * steps, f"training {GEN_ID}") as bar:
        for ep in range(epochs):
            perm = torch.randperm(n, generator=gen)
            beta = cfg["beta"] * min(1.0, (ep + 1) / max(1, epochs // 4))
            for s in range(steps):
                idx = perm[s * cfg["batch"]:(s + 1) * cfg["batch"]]
                x = x_all[idx]
                noise = torch.randn(len(idx), cfg["zdim"], generator=gen)
                logits, mu, logvar = net(one_hot(x, cfg["classes"]), c_all[idx], noise)
                loss, rec, kl = vae_loss(logits, x, mu, logvar, beta, weight)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                recs.append(rec.item())
                kls.append(kl.item())
                bar.advance(1, epoch=ep + 1, loss=losses[-1])
    net.eval()
    with torch.inference_mode():
        mu, _ = net.encode(one_hot(x_all[:512], cfg["classes"]), c_all[:512])
        acc = float((net.decode(mu, c_all[:512]).argmax(1) == x_all[:512]).float().mean())
    rng = np.random.default_rng(job.seed)
    table = conds[rng.choice(n, size=min(256, n), replace=False)]
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    tensors.update(cond_mean=torch.as_tensor(cmean), cond_std=torch.as_tensor(cstd),
                   cond_table=torch.as_tensor(table), __config__=common.config_tensor(cfg))
    save_safetensors(tensors, job.out / "model.safetensors", {"generator": GEN_ID, "format": "conjure/1"})
    k = max(1, min(steps, 20))
    metrics = {"loss_first": round(float(np.mean(losses[:k])), 4), "loss_last": round(float(np.mean(losses[-k:])), 4),
               "recon_last": round(float(np.mean(recs[-k:])), 4), "kl_last": round(float(np.mean(kls[-k:])), 4),
               "recon_accuracy": round(acc, 4), "train_windows": n, "levels": len(levels), "steps": len(losses),
               "train_seconds": round(time.time() - t0, 1)}
    return {"weights": ["model.safetensors"], "config": cfg, "metrics": metrics, "epochs": epochs}


@hookimpl
def register_level_generators(register):
    register(DungeonVAE())
