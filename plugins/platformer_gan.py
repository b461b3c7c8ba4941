"""``platformer-gan``: a DCGAN over 16×32 platformer windows, stitched into levels of any width, with a
latent search for designer targets.

The generator network (``plugins.learned_levels.nets.PlatformerG``, imported with torch on first use) maps
a 32-d latent to one window of tile classes (the ``platformer`` tileset's tiles plus enemy and coin
markers), as MarioGAN did for Super Mario Bros. A level of ``width`` columns is ``ceil(width/32)`` windows
side by side; its first 3 and last 4 columns are a fixed flat landing pad for the spawn and the goal.
Enemies are rare in the data, so an air cell becomes an enemy where their probability exceeds 0.1 (the
argmax alone would almost never pick them).

**Latent search**: the request's own latents are tried first; if the level is not playable under the jump
model (:func:`engine.quality.platformer_problems`) or misses the ``enemies``/``gaps`` targets, a (μ,λ)
evolution strategy (numpy, with elitism) searches the latents for up to ``search`` generations, all
candidates of all requests of a batch decoded in one forward pass per generation. A level still unplayable
after the search is repaired (columns levelled where the jump model gets stuck), and ``metadata`` records
``raw_valid`` (first latents, no search, no repair), ``search_valid`` and ``repaired``.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine import Entity, Generator, Level, Param, Region, Request, hookimpl
from engine.errors import InputError
from engine.quality import platformer_problems

from .learned_levels import common
from .learned_levels.corpus import augment, load_levels, to_classes, windows
from .platformer import tileset

GEN_ID = "platformer-gan"
H, WIN = 16, 32
AIR, GROUND = 0, 1
ENEMY, COIN = 8, 9
CLASSES = 10
ENTITY_CLASSES = {"enemy": ENEMY, "coin": COIN}
SOLID = np.zeros(CLASSES, dtype=bool)
SOLID[1:8] = True
PAD_START, PAD_END = 3, 4
ENEMY_P = 0.1  # an air cell becomes an enemy where the network gives enemies more than this probability
DEFAULT_CONFIG = {"h": H, "w": WIN, "classes": CLASSES, "nz": 32, "ngf": 32, "ndf": 32, "batch": 64,
                  "lr": 2e-4, "stride": 2, "augment": "hflip", "noise": 0.1}


class _Model:
    def __init__(self, tensors: dict, card: dict):
        from .learned_levels.nets import PlatformerG

        cfg = dict(DEFAULT_CONFIG)
        cfg.update(common.config_of(tensors, card, f"{GEN_ID} weights"))
        self.cfg = cfg
        net = PlatformerG(cfg["classes"], cfg["nz"], cfg["ngf"], cfg["h"], cfg["w"])
        net.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("g.")})
        net.eval()
        self.net = net
        self.nz = cfg["nz"]

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Class windows ``(n, 16, 32)`` for latents ``(n, nz)`` (float32), batch-invariant."""
        import torch

        from .learned_levels.nets import decode_tiles

        zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        with torch.inference_mode():
            return decode_tiles(self.net(zt), lambda i: self.net(zt[i:i + 1]), (ENEMY, ENEMY_P, AIR))


def stitch(wins: np.ndarray, width: int) -> np.ndarray:
    """Windows side by side, cropped to ``width``, with the flat landing pads at both ends."""
    g = np.concatenate(list(wins), axis=1)[:, :width].copy()
    for cols, ref in ((range(0, PAD_START), PAD_START), (range(width - PAD_END, width), width - PAD_END - 1)):
        solid = SOLID[g[:, ref]]
        rows = np.nonzero(solid)[0]
        top = int(rows[0]) if len(rows) and rows[0] >= H // 2 else H - 3
        top = min(top, H - 2)
        for c in cols:
            g[:top, c] = AIR
            g[top:, c] = GROUND
    return g


def surface_at(g: np.ndarray, x: int) -> int:
    rows = np.nonzero(SOLID[g[:, x]])[0]
    return int(rows[0]) if len(rows) else H


def count_gaps(g: np.ndarray) -> int:
    hole = ~SOLID[g[H - 1]]
    return int(np.sum(hole[1:] & ~hole[:-1]) + int(hole[0]))


def fast_reach(solid: np.ndarray, start: tuple[int, int], jump_height: int, jump_distance: int) -> set:
    """Exactly :func:`engine.quality.platformer_reach` (same moves, same result), about 10x faster: the
    landing row of every air cell is precomputed with numpy and the search runs on Python lists. The latent
    search calls it for every candidate; the engine's validator still checks the final level."""
    h, w = solid.shape
    rest = np.full((h, w), -1, dtype=np.int64)
    for y in range(h - 2, -1, -1):
        rest[y] = np.where(solid[y + 1], y, rest[y + 1])
    rest[solid] = -1
    S = solid.tolist()
    R = rest.tolist()
    seen = {start}
    todo = [start]
    while todo:
        x, y = todo.pop()
        for rise in range(jump_height + 1):
            yy = y - rise
            if yy < 0 or S[yy][x]:
                break
            row_s, row_r = S[yy], R[yy]
            for step in (-1, 1):
                nx = x
                for _ in range(jump_distance):
                    nx += step
                    if not 0 <= nx < w or row_s[nx]:
                        break
                    ly = row_r[nx]
                    if ly >= 0 and (nx, ly) not in seen:
                        seen.add((nx, ly))
                        todo.append((nx, ly))
    return seen


def _miss(got: int, want: int) -> float:
    """Distance to a target count, with a tolerance of 15% of the target."""
    if want < 0:
        return 0.0
    return max(0.0, abs(got - want) - round(0.15 * want)) / max(1, want)


def score(g: np.ndarray, p: dict) -> tuple[float, bool, int, int]:
    """(fitness, playable, enemies, gaps): fitness 0 = playable and on target."""
    solid = SOLID[g]
    w = g.shape[1]
    sy, gy = surface_at(g, 1) - 1, surface_at(g, w - 3) - 1
    reach = fast_reach(solid, (1, sy), p["jump_height"], p["jump_distance"])
    playable = (w - 3, gy) in reach
    f = 0.0 if playable else 1.0 + (w - 3 - max(x for x, _ in reach)) / w
    enemies = int((g[:, PAD_START:w - PAD_END] == ENEMY).sum())
    gaps = count_gaps(g)
    f += _miss(enemies, p["enemies"]) + _miss(gaps, p["gaps"])
    return f, playable, enemies, gaps


def repair(g: np.ndarray, p: dict) -> int:
    """Level columns where the jump model gets stuck until the goal is reachable; return tiles changed."""
    w = g.shape[1]
    edits = 0
    for _ in range(w):
        solid = SOLID[g]
        reach = fast_reach(solid, (1, surface_at(g, 1) - 1), p["jump_height"], p["jump_distance"])
        if (w - 3, surface_at(g, w - 3) - 1) in reach:
            return edits
        fx, fy = max(reach, key=lambda c: (c[0], -c[1]))
        col = fx + 1
        if col >= w:
            return -1
        before = g[:, col].copy()
        g[:fy + 1, col] = np.where(SOLID[g[:fy + 1, col]], AIR, g[:fy + 1, col])
        g[fy + 1:, col] = GROUND
        edits += int((before != g[:, col]).sum())
    return -1


class PlatformerGAN(Generator):
    id = GEN_ID
    kind = "level"
    version = "1"
    description = "DCGAN platformer windows stitched to any width, latent search for enemies/gaps targets"
    params = (
        Param("width", "int", 96, min=32, max=2000, help="level length in tiles (16 rows high)"),
        Param("jump_height", "int", 4, min=1, max=12, help="highest jump in tiles (the playability model)"),
        Param("jump_distance", "int", 4, min=1, max=12, help="widest jump in tiles"),
        Param("enemies", "int", -1, min=-1, max=500, help="target number of enemies; -1 = any"),
        Param("gaps", "int", -1, min=-1, max=200, help="target number of gaps in the ground; -1 = any"),
        Param("search", "int", 10, min=0, max=100, help="latent-search generations at most (0 = none)"),
        Param("population", "int", 10, min=4, max=64, help="latent-search offspring per generation"),
        Param("repair", "bool", True, help="level the ground where the search left the level unplayable"),
        Param("weights", "str", "", help="a model.safetensors (or its folder) from `conjure train`; "
                                         "empty = the shipped weights"),
    )
    window = (H, WIN)
    genre = "platformer"
    augment = "hflip"

    def corpus_levels(self) -> list[Level]:
        """The shipped training corpus (for novelty and KL in ``conjure evaluate``)."""
        return common.corpus(self.genre)

    def model(self, weights: str = "") -> _Model:
        return common.load_model(GEN_ID, weights, _Model)

    def generate(self, request: Request) -> Level:
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[Request]) -> list[Level]:
        with common.single_thread():  # two threads are slower on a busy 2-core box, and tails explode
            return self._generate_batch(requests)

    def _generate_batch(self, requests: list[Request]) -> list[Level]:
        out: list[Any] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.params["weights"], []).append(i)
        for weights, idx in groups.items():
            m = self.model(weights)
            for i, lv in zip(idx, self._search(m, [requests[i] for i in idx])):
                out[i] = lv
        return out

    def _search(self, m: _Model, reqs: list[Request]) -> list[Level]:
        import torch

        n_w = [-(-r.params["width"] // WIN) for r in reqs]
        z0 = [torch.randn(k, m.nz, generator=r.torch_generator("z")).numpy().astype(np.float64)
              for k, r in zip(n_w, reqs)]
        rngs = [r.rng("search") for r in reqs]

        def evaluate(cands: list[list[np.ndarray]]):
            """cands[j]: latents (n_w[j], nz) to try for request j → per request list of (score, grid)."""
            flat = [z for j, cs in enumerate(cands) for c in cs for z in c]
            if not flat:
                return [[] for _ in cands]
            wins = m.decode(np.stack(flat))
            res, k = [], 0
            for j, cs in enumerate(cands):
                got = []
                for _ in cs:
                    g = stitch(wins[k:k + n_w[j]], reqs[j].params["width"])
                    k += n_w[j]
                    got.append((score(g, reqs[j].params), g))
                res.append(got)
            return res

        first = evaluate([[z] for z in z0])
        best = [(r[0][0], r[0][1], z) for r, z in zip(first, z0)]
        raw = [r[0][0][1] for r in first]
        mean = [z.copy() for z in z0]
        sigma = [0.6] * len(reqs)
        gens = [0] * len(reqs)
        for gen in range(max(r.params["search"] for r in reqs)):
            active = [j for j, r in enumerate(reqs) if best[j][0][0] > 0 and gen < r.params["search"]]
            if not active:
                break
            cands: list[list[np.ndarray]] = [[] for _ in reqs]
            for j in active:
                lam = reqs[j].params["population"]
                noise = rngs[j].standard_normal((lam,) + mean[j].shape)
                cands[j] = [mean[j] + sigma[j] * e for e in noise]
            res = evaluate(cands)
            for j in active:
                gens[j] += 1
                scored = sorted(range(len(cands[j])), key=lambda i: res[j][i][0][0])
                mu = max(2, len(scored) // 4)
                top = scored[:mu]
                wts = np.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
                wts /= wts.sum()
                mean[j] = sum(w * cands[j][i] for w, i in zip(wts, top))
                b = top[0]
                if res[j][b][0][0] < best[j][0][0]:
                    best[j] = (res[j][b][0], res[j][b][1], cands[j][b])
                    sigma[j] = min(1.0, sigma[j] * 1.1)
                else:
                    sigma[j] = max(0.1, sigma[j] * 0.85)
        return [self._finish(best[j], raw[j], gens[j], reqs[j]) for j in range(len(reqs))]

    def _finish(self, best, raw_valid: bool, gens: int, request: Request) -> Level:
        (fit, playable, _, _), g, _ = best
        g = g.copy()
        p = request.params
        edits = 0
        if not playable and p["repair"]:
            edits = repair(g, p)
        tiles = g.astype(np.uint8)
        ents = []
        w = g.shape[1]
        ents.append(Entity("spawn", "spawn", 1, surface_at(g, 1) - 1, {}))
        ents.append(Entity("goal", "goal", w - 3, surface_at(g, w - 3) - 1, {"type": "flag"}))
        ne = nc = 0
        for y, x in np.argwhere((g == ENEMY) | (g == COIN)):
            tiles[y, x] = AIR
            if PAD_START <= x < w - PAD_END:
                if g[y, x] == ENEMY:
                    ne += 1
                    ents.append(Entity(f"enemy-{ne}", "enemy", int(x), int(y), {"type": "goomba"}))
                else:
                    nc += 1
                    ents.append(Entity(f"coin-{nc}", "coin", int(x), int(y), {"value": 1}))
        meta = {"genre": "platformer", "jump_height": p["jump_height"], "jump_distance": p["jump_distance"],
                "gaps": count_gaps(g), "enemies": ne, "raw_valid": bool(raw_valid),
                "search_valid": bool(playable), "search_generations": gens, "search_fitness": round(float(fit), 4),
                "repaired": bool(not playable and edits > 0), "repair_edits": max(edits, 0)}
        regions = [Region(f"section-{i + 1}", "section", f"stretch {i + 1}", i * WIN, 0, min(WIN, w - i * WIN), H, {})
                   for i in range(-(-w // WIN))]
        return Level({"tiles": tiles}, tileset(), ents, regions, meta)

    def validate(self, level: Level, request: Request) -> list[str]:
        p = request.params
        return platformer_problems(level, p["jump_height"], p["jump_distance"])

    train_options = ("tiny", *DEFAULT_CONFIG)

    def train(self, job) -> dict:
        return train_platformer_gan(job)


def training_windows(levels: list[Level], cfg: dict) -> np.ndarray:
    wins = [windows(to_classes(lv, ENTITY_CLASSES), cfg["h"], cfg["w"], 1, cfg["stride"])
            for lv in levels if lv.height == cfg["h"]]
    wins = [w for w in wins if len(w)]
    if not wins:
        raise InputError(f"{GEN_ID}: no platformer level {cfg['h']} rows high and {cfg['w']}+ wide in the data")
    return augment(np.concatenate(wins), cfg["augment"])


def train_platformer_gan(job) -> dict:
    import torch
    from torch.nn import functional as F

    from engine.weights import save_safetensors

    from .learned_levels.nets import PlatformerD, PlatformerG, one_hot

    cfg = dict(DEFAULT_CONFIG)
    if job.options.get("tiny"):
        cfg.update(ngf=16, ndf=16)
    cfg.update({k: v for k, v in job.options.items() if k in DEFAULT_CONFIG})
    epochs = job.epochs or 30
    torch.set_num_threads(1)
    levels = load_levels(job.data, job.engine, "platformer")
    if not levels:
        raise InputError(f"{GEN_ID}: no platformer levels in the data")
    data = training_windows(levels, cfg)
    torch.manual_seed(job.seed)
    gen = torch.Generator().manual_seed(job.seed)
    G = PlatformerG(cfg["classes"], cfg["nz"], cfg["ngf"], cfg["h"], cfg["w"])
    D = PlatformerD(cfg["classes"], cfg["ndf"], cfg["h"], cfg["w"])
    og = torch.optim.Adam(G.parameters(), lr=cfg["lr"], betas=(0.0, 0.9))
    od = torch.optim.Adam(D.parameters(), lr=cfg["lr"] * 2, betas=(0.0, 0.9))
    x_all = one_hot(data, cfg["classes"])
    n = len(data)
    bs = cfg["batch"]
    steps = max(1, n // bs)
    d_losses, g_losses = [], []
    t0 = time.time()
    with job.progress(epochs * steps, f"training {GEN_ID}") as bar:
        for ep in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(steps):
                real = x_all[perm[s * bs:(s + 1) * bs]]
                b = len(real)
                z = torch.randn(b, cfg["nz"], generator=gen)
                fake = torch.softmax(G(z), 1)
                sig = cfg["noise"]
                real_in = real + sig * torch.randn(real.shape, generator=gen)
                fake_in = fake + sig * torch.randn(fake.shape, generator=gen)
                d_loss = F.relu(1.0 - D(real_in)).mean() + F.relu(1.0 + D(fake_in.detach())).mean()
                od.zero_grad()
                d_loss.backward()
                od.step()
                g_loss = -D(fake_in).mean()
                og.zero_grad()
                g_loss.backward()
                og.step()
                d_losses.append(d_loss.item())
                g_losses.append(g_loss.item())
                bar.advance(1, epoch=ep + 1, d=d_losses[-1], g=g_losses[-1])
    G.eval()
    with torch.inference_mode():
        sample = torch.max(G(torch.randn(256, cfg["nz"], generator=gen)), 1).indices.numpy()
    real_dist = np.bincount(data.ravel(), minlength=cfg["classes"]) / data.size
    fake_dist = np.bincount(sample.ravel(), minlength=cfg["classes"]) / sample.size
    tensors = {f"g.{k}": v for k, v in G.state_dict().items()}
    tensors["__config__"] = common.config_tensor(cfg)
    save_safetensors(tensors, job.out / "model.safetensors", {"generator": GEN_ID, "format": "conjure/1"})
    k = max(1, min(steps, 20))
    metrics = {"d_loss_first": round(float(np.mean(d_losses[:k])), 4), "d_loss_last": round(float(np.mean(d_losses[-k:])), 4),
               "g_loss_first": round(float(np.mean(g_losses[:k])), 4), "g_loss_last": round(float(np.mean(g_losses[-k:])), 4),
               "tile_share_l1": round(float(np.abs(real_dist - fake_dist).sum()), 4),
               "train_windows": n, "levels": len(levels), "steps": len(d_losses),
               "train_seconds": round(time.time() - t0, 1)}
    return {"weights": ["model.safetensors"], "config": cfg, "metrics": metrics, "epochs": epochs}


@hookimpl
def register_level_generators(register):
    register(PlatformerGAN())
