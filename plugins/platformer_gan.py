"""``platformer-gan``: a DCGAN over side-view windows of *your* corpus, stitched into levels of any width,
with a latent search for designer targets, generating in your tileset and checked by rules fitted on it.

Train it on any side-view corpus ``conjure train`` reads (VGLC game folders, Tiled maps, packs; see
``docs/learned-levels.md``): the weights then carry the corpus tileset (glyphs, names, tags), its height and
the playability rules fitted on it (:mod:`plugins.learned_levels.rules`: jump height/width such that the
corpus passes). The shipped weights are this very path trained on ``plugins/data/levels/platformer``.

The generator network (``plugins.learned_levels.nets.PlatformerG``, imported with torch on first use) maps
a latent to per-cell tile distributions over one window (``H×32``; the corpus height padded at the top with
air to a multiple of 4, cropped), as MarioGAN did for Super Mario Bros. A level of ``width`` columns is
``ceil(width/32)`` windows side by side, and its tiles are **sampled** from those distributions column by
column, top to bottom, under the corpus's 3×3 patterns and the fitted jump model
(:mod:`plugins.learned_levels.decode`): every 3×3 window of the level, its edges included, occurs in the
training corpus, the level starts and ends like a corpus level, and the sampler backs up when the goal can no
longer be reached. The network's probabilities are first scaled per tile kind so that rare kinds (pipes,
?-blocks, coins, enemies) are drawn about as often as the corpus has them
(:meth:`~plugins.learned_levels.model.LevelModel.tile_weights`).

**Latent search**: the request's own latents are tried first; if the level is not playable under the
corpus's rules or misses the ``enemies``/``gaps`` targets, a (μ,λ) evolution strategy (numpy, with
elitism) searches the latents for up to ``search`` generations, all candidates of all requests of a batch
decoded in one forward pass per generation (each candidate sampled from its own random stream). A level
still unplayable after the search is repaired (columns levelled where the jump model gets stuck), and
``metadata`` records ``raw_valid`` (first latents, no search, no repair), ``search_valid``, ``repaired``,
``decoding`` and the sampler's ``pattern_backtracks`` and ``pattern_fallbacks``. Entity tiles of the corpus (Conjure legends' ``E``/``o``,
Tiled objects) come back as entities; VGLC's enemies and coins stay tiles, as in the corpus.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine import Generator, Param, Region, Request, hookimpl
from engine.errors import InputError

from . import learned_common as lc
from .learned_levels.corpus import mirror_ids
from .learned_levels.model import CorpusWeights, LevelModel, card_extras, common_ids, extra_tensors, prepare
from .learned_levels.rules import fast_reach

GEN_ID = "platformer-gan"
WIN = 32
DEFAULT_CONFIG = {"w": WIN, "nz": 32, "ngf": 32, "ndf": 32, "batch": 64, "lr": 2e-4, "stride": 2,
                  "augment": "none", "noise": 0.1, "holdout": 0.15}
CONFIG_BOUNDS = {"classes": (1, 255), "h": (4, 128), "hp": (4, 128), "w": (8, 256), "nz": (1, 512),
                 "ngf": (4, 256), "ndf": (4, 256), "batch": (1, 4096), "lr": (0.0, 1.0), "stride": (1, 128),
                 "noise": (0.0, 1.0), "holdout": (0.0, 0.9), "air": (0, 254), "ground": (0, 254),
                 "enemy": (-1, 254)}


class _Model(LevelModel):
    def __init__(self, tensors: dict, card: dict, path, device: str = "cpu"):
        from .learned_levels.nets import PlatformerG

        source = f"{GEN_ID} weights {path}"
        super().__init__(tensors, card, path, source)
        cfg = lc.checked_config(tensors, card, CONFIG_BOUNDS, source)
        for k in ("classes", "h", "hp", "air", "ground"):
            if k not in cfg:
                raise InputError(f"{source}: config.{k}: missing")
        if cfg["classes"] != self.classes or self.view != "side" or cfg["hp"] % 4 or cfg["w"] % 4 \
                or cfg["hp"] < cfg["h"] or max(cfg["air"], cfg["ground"], cfg.get("enemy", -1)) >= self.classes:
            raise InputError(f"{source}: config does not fit its tileset (classes {cfg['classes']}, "
                             f"height {cfg['h']}/{cfg['hp']}, view {self.view})")
        self.cfg = cfg
        net = PlatformerG(cfg["classes"], cfg["nz"], cfg["ngf"], cfg["hp"], cfg["w"])
        try:
            net.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("g.")})
        except RuntimeError as e:
            raise InputError(f"{source}: tensors do not fit the config: {str(e).splitlines()[0]}") from None
        net.eval()
        self.device = device
        self.net = net.to(device)
        self.nz, self.h, self.hp, self.w = cfg["nz"], cfg["h"], cfg["hp"], cfg["w"]
        self.air, self.ground, self.enemy = cfg["air"], cfg["ground"], cfg.get("enemy", -1)
        self.solid = np.zeros(256, dtype=bool)
        self.solid[:self.classes] = self.mask("solid")

    def probs(self, z: np.ndarray) -> np.ndarray:
        """Per-cell tile distributions ``(n, h, w, C)`` (float64) of latents ``(n, nz)``."""
        import torch

        zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            p = torch.softmax(self.net(zt).float(), 1).cpu().numpy().astype(np.float64)
        return p[:, :, self.hp - self.h:, :].transpose(0, 2, 3, 1)

    def mean_probs(self) -> np.ndarray:
        import torch

        z = torch.randn(64, self.nz, generator=torch.Generator().manual_seed(0)).numpy()
        return self.probs(z).mean((0, 1, 2))

    def sampled_shares(self, w: np.ndarray) -> np.ndarray | None:
        import torch

        from .learned_levels import decode

        pats = self.patterns()
        if pats is None:
            return None
        z = torch.randn(8 * 4, self.nz, generator=torch.Generator().manual_seed(1)).numpy()
        P = self.probs(z) * w
        counts = np.zeros(self.classes)
        for i in range(8):
            strips = np.concatenate(list(P[4 * i:4 * i + 4]), axis=1).transpose(1, 0, 2)
            res = decode.sample(strips, pats, np.random.default_rng([7, i]))
            counts += np.bincount(res.strips.ravel(), minlength=self.classes)[:self.classes]
        return counts / counts.sum()

    def pattern_strips(self, grids):
        from .learned_levels.decode import strips_side

        return [strips_side(g) for g in grids]

    def sample(self, z: np.ndarray, width: int, rng: np.random.Generator, p: dict, probs=None):
        """One level ``(h, width)`` sampled from latents ``z`` (its windows, ``(k, nz)``) under the corpus
        pattern constraint and the jump model (:mod:`plugins.learned_levels.decode`); returns (grid, stats).
        ``probs``: the windows' distributions as computed in a batch; a level with a near-tied draw is decoded
        again from its windows computed one by one (the reference), so batches equal single requests."""
        from plugins.learned_level_lm.reach import SideReach

        from .learned_levels import decode

        pats = self.patterns()
        tw = self.tile_weights()

        def run(P):
            strips = np.concatenate(list(P), axis=1)[:, :width].transpose(1, 0, 2) * tw  # (width, h, C)
            if pats is None:
                return decode.sample_free(strips, rng_copy())
            jh, jd = _jumps(self, p)
            return decode.sample(strips, pats, rng_copy(), reach=SideReach(self.solid, self.h, jh, jd))

        state = rng.bit_generator.state

        def rng_copy():
            r = np.random.default_rng()
            r.bit_generator.state = state
            return r

        res = run(probs if probs is not None else self.probs(z))
        if res.flagged:
            res = run(np.concatenate([self.probs(z[i:i + 1]) for i in range(len(z))]))
        stats = {"backtracks": res.backtracks, "fallbacks": res.fallbacks, "constrained": pats is not None}
        return res.strips.T.copy(), stats


def count_gaps(m: _Model, g: np.ndarray) -> int:
    hole = ~m.solid[g[-1]]
    return int(np.sum(hole[1:] & ~hole[:-1]) + int(hole[0]))


def _jumps(m: _Model, p: dict) -> tuple[int, int]:
    jh, jd = m.rules.jump
    return (p["jump_height"] or jh), (p["jump_distance"] or jd)


def _miss(got: int, want: int) -> float:
    """Distance to a target count, with a tolerance of 15% of the target."""
    if want < 0:
        return 0.0
    return max(0.0, abs(got - want) - round(0.15 * want)) / max(1, want)


def score(m: _Model, g: np.ndarray, p: dict) -> tuple[float, bool, int, int]:
    """(fitness, playable, enemies, gaps): fitness 0 = playable and on target."""
    w = g.shape[1]
    start, goal = m.rules.endpoints(g)
    jh, jd = _jumps(m, p)
    if start is None or goal is None:
        playable, f = False, 2.0
    else:
        reach = fast_reach(m.solid[g], start, jh, jd)
        playable = goal in reach
        f = 0.0 if playable else 1.0 + (goal[0] - max(x for x, _ in reach)) / w
    enemies = int((g == m.enemy).sum()) if m.enemy >= 0 else 0
    gaps = count_gaps(m, g)
    f += _miss(enemies, p["enemies"]) + _miss(gaps, p["gaps"])
    return f, playable, enemies, gaps


def repair(m: _Model, g: np.ndarray, p: dict) -> int:
    """Level columns where the jump model gets stuck until the goal is reachable; return tiles changed."""
    w = g.shape[1]
    jh, jd = _jumps(m, p)
    edits = 0
    for _ in range(w):
        start, goal = m.rules.endpoints(g)
        if start is None or goal is None:
            return -1
        reach = fast_reach(m.solid[g], start, jh, jd)
        if goal in reach:
            return edits
        fx, fy = max(reach, key=lambda c: (c[0], -c[1]))
        col = fx + 1
        if col >= w:
            return -1
        before = g[:, col].copy()
        g[:fy + 1, col] = np.where(m.solid[g[:fy + 1, col]], m.air, g[:fy + 1, col])
        g[fy + 1:, col] = m.ground
        edits += int((before != g[:, col]).sum())
    return -1


class PlatformerGAN(CorpusWeights, Generator):
    id = GEN_ID
    kind = "level"
    version = "4"
    description = "DCGAN side-view levels in your corpus's tileset, any width, sampled under corpus 3x3 patterns, latent search for targets"
    params = (
        Param("width", "int", 96, min=32, max=2000, help="level length in tiles (the corpus's height)"),
        Param("jump_height", "int", 0, min=0, max=12,
              help="highest jump in tiles for the search and repair; 0 = the rules fitted on the corpus"),
        Param("jump_distance", "int", 0, min=0, max=16, help="widest jump in tiles; 0 = the fitted rules"),
        Param("enemies", "int", -1, min=-1, max=500, help="target number of enemy tiles; -1 = any"),
        Param("gaps", "int", -1, min=-1, max=200, help="target number of gaps in the ground; -1 = any"),
        Param("search", "int", 10, min=0, max=100, help="latent-search generations at most (0 = none)"),
        Param("population", "int", 10, min=4, max=64, help="latent-search offspring per generation"),
        Param("repair", "bool", True, help="level the ground where the search left the level unplayable"),
        Param("weights", "str", "", help="a model.safetensors (or its folder) from `conjure train`; "
                                         "empty = the shipped weights"),
        Param("device", "choice", "cpu", choices=("cpu", "cuda", "auto"),
              help="where the network runs (cuda without a GPU falls back to the CPU with a message); "
                   "byte-identical output is promised on the CPU"),
    )

    # ------------------------------------------------------------------ declared for conjure evaluate
    model_class = _Model  # model(), corpus(), corpus_split(), rules(), read_corpus(): CorpusWeights

    # ------------------------------------------------------------------ generation
    def cost(self, params: dict) -> float:
        """Work in multiples of the defaults (the engine's Costed protocol): decoding grows with the width and
        the latent search with generations x population (``width=2000 search=100 population=64`` is ~1,300x,
        refused up front)."""
        return params["width"] * (1 + params["search"] * params["population"]) / (96 * (1 + 10 * 10))

    def generate(self, request: Request):
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[Request]) -> list:
        out: list[Any] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.params["weights"], r.params["device"]), []).append(i)
        for (weights, device), idx in groups.items():
            m = self.model(weights, device)
            for i, lv in zip(idx, self._search(m, [requests[i] for i in idx])):
                out[i] = lv
        return out

    def _search(self, m: _Model, reqs: list[Request]) -> list:
        import torch

        n_w = [-(-r.params["width"] // m.w) for r in reqs]
        z0 = [torch.randn(k, m.nz, generator=r.torch_generator("z")).numpy().astype(np.float64)
              for k, r in zip(n_w, reqs)]
        rngs = [r.rng("search") for r in reqs]
        bases = [int(r.rng("sample").integers(2 ** 62)) for r in reqs]
        stats: list[dict] = [{} for _ in reqs]
        gen_no = [0]

        def evaluate(cands: list[list[np.ndarray]]):
            flat = [z for j, cs in enumerate(cands) for c in cs for z in c]
            if not flat:
                return [[] for _ in cands]
            P = m.probs(np.stack(flat))
            res, k = [], 0
            for j, cs in enumerate(cands):
                got = []
                for ci, c in enumerate(cs):
                    rng = np.random.default_rng([bases[j], gen_no[0], ci])
                    g, st = m.sample(c, reqs[j].params["width"], rng, reqs[j].params, P[k:k + n_w[j]])
                    k += n_w[j]
                    got.append((score(m, g, reqs[j].params), g, st))
                res.append(got)
            gen_no[0] += 1
            return res

        first = evaluate([[z] for z in z0])
        best = [(r[0][0], r[0][1], z) for r, z in zip(first, z0)]
        stats = [r[0][2] for r in first]
        raw = [r[0][0][1] and not m.rules.problems(r[0][1]) for r in first]
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
                    stats[j] = res[j][b][2]
                    sigma[j] = min(1.0, sigma[j] * 1.1)
                else:
                    sigma[j] = max(0.1, sigma[j] * 0.85)
        return [self._finish(m, best[j], raw[j], gens[j], reqs[j], stats[j]) for j in range(len(reqs))]

    def _finish(self, m: _Model, best, raw_valid: bool, gens: int, request: Request, stats: dict):
        (fit, playable, enemies, _), g, _ = best
        g = g.copy()
        p = request.params
        edits = 0
        if not playable and p["repair"]:
            edits = repair(m, g, p)
        jh, jd = _jumps(m, p)
        w = g.shape[1]
        meta = {"view": "side", "jump_height": jh, "jump_distance": jd, "rules": m.rules.describe(),
                "gaps": count_gaps(m, g), "enemies": enemies, "raw_valid": bool(raw_valid),
                "search_valid": bool(playable), "search_generations": gens, "search_fitness": round(float(fit), 4),
                "repaired": bool(not playable and edits > 0), "repair_edits": max(edits, 0),
                "decoding": "sampled, corpus 3x3 patterns" if stats.get("constrained") else "sampled",
                "pattern_backtracks": stats.get("backtracks", 0), "pattern_fallbacks": stats.get("fallbacks", 0)}
        regions = [Region(f"section-{i + 1}", "section", f"stretch {i + 1}", i * m.w, 0, min(m.w, w - i * m.w), m.h, {})
                   for i in range(-(-w // m.w))]
        return m.to_level(g, meta, regions)

    def validate(self, level, request: Request) -> list[str]:
        m = self.model(request.params["weights"], request.params["device"])
        try:
            g = m.grid_of(level)
        except InputError as e:
            return [str(e)]
        if request.params["jump_height"] or request.params["jump_distance"]:
            return m.rules._side_problems(g, *_jumps(m, request.params))
        return m.rules.problems(g)

    # ------------------------------------------------------------------ training
    train_options = ("tiny", *DEFAULT_CONFIG)

    def train(self, job) -> dict:
        return train_platformer_gan(job)


def _pad_top(grids: list[np.ndarray], hp: int, air: int) -> list[np.ndarray]:
    out = []
    for g in grids:
        pad = np.full((hp - g.shape[0], g.shape[1]), air, dtype=g.dtype)
        out.append(np.concatenate([pad, g], 0))
    return out


def _windows(grids, cfg, mirror: np.ndarray) -> np.ndarray:
    """Training windows; ``augment=hflip`` adds their mirror images with left/right tiles swapped
    (:func:`~plugins.learned_levels.corpus.mirror_ids`: a ``<>`` pipe top stays ``<>``)."""
    from .learned_levels.corpus import windows

    wins = [windows(g.astype(np.int64), cfg["hp"], cfg["w"], 1, cfg["stride"]) for g in grids]
    wins = [w for w in wins if len(w)]
    if not wins:
        raise InputError(f"{GEN_ID}: no level of the corpus is {cfg['w']}+ columns wide")
    data = np.concatenate(wins)
    if cfg["augment"] == "hflip":
        data = np.concatenate([data, mirror[data[:, :, ::-1]]])
    return data


def train_platformer_gan(job) -> dict:
    import time

    import torch
    from torch.nn import functional as F

    from engine.eval_levels import kl_divergence, pattern_counts
    from engine.weights import save_safetensors

    from .learned_levels.nets import PlatformerD, PlatformerG, one_hot

    cfg = dict(DEFAULT_CONFIG)
    if job.options.get("tiny"):
        cfg.update(ngf=16, ndf=16)
    cfg.update({k: v for k, v in job.options.items() if k in DEFAULT_CONFIG})
    if cfg["augment"] not in ("none", "hflip"):
        raise InputError(f"{GEN_ID}: -O augment: expected none or hflip, got {cfg['augment']!r}")
    epochs = job.epochs or 30
    lc.torch_threads()
    device = lc.resolve_device(job.device, GEN_ID)
    corpus, rules, train_idx, held_idx = prepare(job, GEN_ID, "side", float(cfg["holdout"]))
    ids = common_ids(corpus)
    if ids["ground"] is None or ids["air"] is None:
        raise InputError(f"{GEN_ID}: the corpus has no solid ground tile or no passable tile (tags decide: "
                         "see docs/learned-levels.md)")
    h = corpus.grids[0].shape[0]
    cfg.update(classes=corpus.classes, h=h, hp=-(-h // 4) * 4, air=ids["air"], ground=ids["ground"],
               enemy=ids["enemy"] if ids["enemy"] is not None else -1)
    tr = _pad_top([corpus.grids[i] for i in train_idx], cfg["hp"], cfg["air"])
    data = _windows(tr, cfg, mirror_ids(corpus.tileset))
    held = [corpus.grids[i] for i in held_idx] or [corpus.grids[i] for i in train_idx]
    held_counts = pattern_counts(held, 2, 256)
    torch.manual_seed(job.seed)
    gen = torch.Generator().manual_seed(job.seed)
    G = PlatformerG(cfg["classes"], cfg["nz"], cfg["ngf"], cfg["hp"], cfg["w"]).to(device)
    D = PlatformerD(cfg["classes"], cfg["ndf"], cfg["hp"], cfg["w"]).to(device)
    og = torch.optim.Adam(G.parameters(), lr=cfg["lr"], betas=(0.0, 0.9))
    od = torch.optim.Adam(D.parameters(), lr=cfg["lr"] * 2, betas=(0.0, 0.9))
    x_all = one_hot(data, cfg["classes"])
    n = len(data)
    bs = min(cfg["batch"], n)
    steps = max(1, n // bs)
    z_fixed = torch.randn(128, cfg["nz"], generator=gen)
    state: dict = {}

    def step(ep, s):
        if s == 0:
            state["perm"] = torch.randperm(n, generator=gen)
        real = x_all[state["perm"][s * bs:(s + 1) * bs]]
        b = len(real)
        z = torch.randn(b, cfg["nz"], generator=gen)
        n1 = torch.randn(real.shape, generator=gen)
        n2 = torch.randn(real.shape, generator=gen)
        real, z, n1, n2 = real.to(device), z.to(device), n1.to(device), n2.to(device)
        fake = torch.softmax(G(z), 1)
        sig = cfg["noise"]
        real_in = real + sig * n1
        fake_in = fake + sig * n2
        d_loss = F.relu(1.0 - D(real_in)).mean() + F.relu(1.0 + D(fake_in.detach())).mean()
        od.zero_grad()
        d_loss.backward()
        od.step()
        g_loss = -D(fake_in).mean()
        og.zero_grad()
        g_loss.backward()
        og.step()
        return {"loss": d_loss.item() + g_loss.item(), "d": d_loss.item(), "g": g_loss.item()}

    def held_out() -> float:
        """KL(held-out levels ‖ samples) of 2×2 tile patterns: lower is better."""
        G.eval()
        with torch.no_grad():
            s = torch.max(G(z_fixed.to(device)), 1).indices.cpu().numpy()[:, cfg["hp"] - h:, :]
        G.train()
        return kl_divergence(held_counts, pattern_counts(list(s), 2, 256))

    t0 = time.time()
    with job.progress(epochs * steps, f"training {GEN_ID}") as bar:
        hist = lc.train_loop(name=GEN_ID, epochs=epochs, steps_per_epoch=steps, optimizers=[og, od],
                             base_lrs=[cfg["lr"], cfg["lr"] * 2], step=step, held_out=held_out,
                             snapshot=lambda: lc.state_copy(G), restore=G.load_state_dict, progress=bar,
                             check_jump=False)
    G = G.cpu().eval()
    tensors = {f"g.{k}": v.contiguous() for k, v in G.state_dict().items()}
    tensors["__config__"] = lc.json_tensor(cfg)
    tensors.update(extra_tensors(corpus, rules, [corpus.grids[i].T for i in train_idx]))
    save_safetensors(tensors, job.out / "model.safetensors", {"generator": GEN_ID, "format": "conjure/2"})
    metrics = {"train_windows": n, "levels": len(corpus.grids), "train_levels": len(train_idx),
               "held_out_levels": len(held_idx), "steps": epochs * steps, "best_epoch": hist["best_epoch"],
               "held_out_kl_2x2_best": hist["best_held_out"], "corpus_pass": rules.report["corpus_pass"],
               "train_seconds": round(time.time() - t0, 1)}
    return {"weights": ["model.safetensors"], "config": cfg, "metrics": metrics, "epochs": epochs,
            "data": corpus.files, "device": device,
            "card": card_extras(corpus, rules, train_idx, held_idx, job, hist)}


@hookimpl
def register_level_generators(register):
    register(PlatformerGAN())
