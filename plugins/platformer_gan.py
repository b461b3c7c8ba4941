"""``platformer-gan``: a DCGAN over side-view windows of *your* corpus, stitched into levels of any width,
with a latent search for designer targets, generating in your tileset and checked by rules fitted on it.

Train it on any side-view corpus ``conjure train`` reads (VGLC game folders, Tiled maps, packs; see
``docs/learned-levels.md``): the weights then carry the corpus tileset (glyphs, names, tags), its height and
the playability rules fitted on it (:mod:`plugins.learned_levels.rules`: jump height/width such that the
corpus passes). The shipped weights are this very path trained on ``plugins/data/corpora/mario-like`` (VGLC's
Super Mario Bros layout); ``platformer-gan/platformer/`` is the same trained on ``plugins/data/levels/platformer``.

The generator network (``plugins.learned_levels.nets.PlatformerG``, imported with torch on first use) maps
a latent to per-cell tile distributions over one window (``H×32``; the corpus height padded at the top with
air to a multiple of 4, cropped), as MarioGAN did for Super Mario Bros. A level of ``width`` columns is
``ceil(width/32)`` windows side by side, and its tiles are **sampled** from those distributions column by
column, top to bottom, under the corpus's 3×3 patterns and the fitted jump model
(:mod:`plugins.learned_levels.decode`): every 3×3 window of the level, its edges included, occurs in the
training corpus, the level starts and ends like a corpus level, and the sampler backs up when the goal can no
longer be reached. The network's probabilities are multiplied by the corpus's vertical bigram (the tile above:
coins over blocks, enemies on the ground; :meth:`_Model.vbig`), above the ground by its horizontal bigram when
training chose one (:func:`choose_hbig`: rows of blocks), and by per-kind factors calibrated after training so
that rare kinds (pipes, ?-blocks, coins, enemies) are drawn about as often as the corpus has them
(:meth:`_Model.calibrate`); all three are stored with the weights. Reachability while sampling is
``level-lm``'s ``BitReach`` where the corpus rules are exactly its jump model, else the rules' own search
(:class:`~plugins.learned_levels.decode.RulesReach`: ladders, ropes, platforms, void, one start, required gold);
the latent search and the repair judge by the rules' model too (:func:`score`, :func:`repair`).

**Controls** (``pipes``, ``enemies``, ``gaps``, ``elevation``: ``any``/``none``/``few``/``some``/``many``) use
``level-lm``'s definitions (:mod:`plugins.learned_level_lm.controls`: what is counted, per 100 columns, buckets
at the tertiles of the corpus's non-zero 100-column windows), fitted at training and stored with the weights
(``__controls__``). ``none`` bans the attribute's tiles while sampling (exact); another bucket draws a target
count inside it and steers the sampler towards it (``sampler.Steer``); ``any`` draws the target from the
corpus's own 100-column windows, so pipes, enemies, gaps and elevation come at the corpus's rates.

**Latent search**: the request's own latents are tried first; if the level is not playable under the
corpus's rules or misses an asked bucket, a (μ,λ) evolution strategy (numpy, with elitism) searches the
latents for up to ``search`` generations, all candidates of all requests of a batch decoded in one forward
pass per generation and sampled together (each candidate from its own random stream). A level still
unplayable after the search is repaired (columns levelled where the jump model gets stuck), and
``metadata`` records ``raw_valid`` (first latents, no search, no repair), ``search_valid``, ``repaired``,
``asked``/``measured`` buckets, ``decoding`` and the sampler's ``pattern_backtracks`` and
``pattern_fallbacks``; ``validate`` checks playability and the asked buckets (the engine resamples a miss).
Entity tiles of the corpus (Conjure legends' ``E``/``o``, Tiled objects) come back as entities; VGLC's
enemies and coins stay tiles, as in the corpus.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine import Generator, Param, Region, Request, hookimpl
from engine.errors import InputError

from . import learned_common as lc
from .learned_levels.corpus import mirror_ids
from .learned_levels.model import CorpusWeights, LevelModel, card_extras, common_ids, extra_tensors, prepare
from .learned_level_lm.controls import ATTRS, CHOICES, Buckets, density, ground_heights, side_counts
from .learned_level_lm.spec import role_masks

GEN_ID = "platformer-gan"
WIN = 32
CONTROL_WINDOW = 100  # control densities are fitted on windows of this many columns (stride 25), as level-lm's
SIDE = ATTRS["side"]
ATTR_ROLE = {"pipes": "pipe", "enemies": "enemy"}
DEFAULT_CONFIG = {"w": WIN, "nz": 32, "ngf": 32, "ndf": 32, "batch": 64, "lr": 2e-4, "stride": 2,
                  "augment": "none", "noise": 0.1, "holdout": 0.15}
CONFIG_BOUNDS = {"classes": (1, 255), "h": (4, 128), "hp": (4, 128), "w": (8, 256), "nz": (1, 512),
                 "ngf": (4, 256), "ndf": (4, 256), "batch": (1, 4096), "lr": (0.0, 1.0), "stride": (1, 128),
                 "noise": (0.0, 1.0), "holdout": (0.0, 0.9), "air": (0, 254), "ground": (0, 254),
                 "enemy": (-1, 254), "level_width": (0, 1_000_000)}


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
        self.masks = role_masks(self.rules.to_dict()["roles"])
        from .learned_levels.decode import exact_jump_model

        # the sampler tracks reachability with level-lm's BitReach only where the rules are exactly its jump
        # model; elsewhere (climbing, void, platforms, one start, required gold...) with the rules' own search
        self.exact_jumps = exact_jump_model(self.rules)
        self.level_width = int(cfg.get("level_width", 0))
        self._controls_doc = lc.tensor_json(tensors, "__controls__", source, None)
        self._controls = None
        self._problems: dict[bytes, tuple] = {}
        self._counts: dict[bytes, dict] = {}
        hb = tensors.get("__hbigram__")
        self._hbig = self._hbig_rows = None
        if hb is not None:
            hb = hb.numpy().astype(np.float64)
            if hb.shape != (self.classes + 1, self.classes) or not np.all(np.isfinite(hb)) or hb.min() < 0:
                raise InputError(f"{source}: __hbigram__: expected ({self.classes + 1}, {self.classes}) factors")
            self._hbig = hb
        vb = tensors.get("__vbigram__")
        self._vbig = None
        if vb is not None:
            vb = vb.numpy().astype(np.float64)
            if vb.shape != (self.classes + 1, self.classes) or not np.all(np.isfinite(vb)) or vb.min() < 0:
                raise InputError(f"{source}: __vbigram__: expected ({self.classes + 1}, {self.classes}) factors")
            self._vbig = vb
        tw = tensors.get("__tile_weights__")
        if tw is not None:
            tw = tw.numpy().astype(np.float64)
            if tw.shape != (self.classes,) or not np.all(np.isfinite(tw)) or tw.min() <= 0 or tw.max() > 1e3:
                raise InputError(f"{source}: __tile_weights__: expected {self.classes} positive factors")
            self._tile_w = tw

    def calibrate(self, refine: int, levels: int) -> np.ndarray:
        """Tile-kind factors for sampling (see :meth:`LevelModel.tile_weights`): the training strips' share of
        each kind over the network's mean probability, then ``refine`` corrections (×0.5–2 each, within
        [1/4, 16], 2 significant digits) on the shares of
        ``levels`` levels sampled as generation samples (:meth:`calib_grids`: pattern constraint, the rules'
        reachability, ``any`` controls). Run at training and stored with the weights
        (``__tile_weights__``, 6 corrections on 16 levels); weights without them get the 2 corrections on 8
        levels of :meth:`LevelModel.tile_weights` once per process."""
        share = self._shares
        if share is None:
            corpus = self.corpus()
            train, _ = self.split(corpus)
            from .learned_levels.model import strip_shares

            share = strip_shares(self.pattern_strips([corpus.grids[i] for i in train]), self.classes)
        w = np.clip(share / np.maximum(self.mean_probs(), 1e-9), 0.25, 8.0)
        w = np.array([float(f"{x:.2g}") for x in np.where(share > 0, w, 1.0)])
        for _ in range(refine):
            got = self.sampled_shares(w, levels)
            if got is None:
                break
            f = np.clip(share / np.maximum(got, 1e-9), 0.5, 2.0)
            w = np.clip(w * np.where(share > 0, f, 1.0), 0.25, 16.0)
            w = np.array([float(f"{x:.2g}") for x in w])
        return w

    # ------------------------------------------------------------------ controls
    def controls(self) -> dict | None:
        """``{"base", "buckets" (:class:`Buckets`), "available", "densities"}``: stored with the weights
        (``__controls__``), else fitted once on the training split of the card's corpus; None when neither."""
        if self._controls is None:
            doc = self._controls_doc
            if doc is None:
                try:
                    corpus = self.corpus()
                except InputError:
                    self._controls = False
                    return None
                train, _ = self.split(corpus)
                doc = fit_controls([corpus.grids[i] for i in train], self.masks, self.classes)
            self._controls = check_controls(doc, f"{GEN_ID} weights {self.path}: __controls__")
        return self._controls or None

    def level_problems(self, g: np.ndarray, p: dict) -> list[str]:
        """The corpus rules' problems of grid ``g`` (with the request's jump overrides), remembered per grid:
        the latent search, ``raw_valid`` and ``validate`` all ask, and the rules' reachability search is a
        level's largest cost after sampling."""
        key = b"%d,%d,%d,%d|" % (*g.shape, p["jump_height"], p["jump_distance"]) + g.astype(np.uint8).tobytes()
        got = self._problems.get(key)
        if got is None:
            if len(self._problems) >= 1024:
                self._problems.clear()
            if p["jump_height"] or p["jump_distance"]:
                got = tuple(self.rules._side_problems(g, *_jumps(self, p)))
            else:
                got = tuple(self.rules.problems(g))
            self._problems[key] = got
        return list(got)

    def counts(self, g: np.ndarray) -> dict[str, int]:
        """``level-lm``'s side-view counts (pipes, enemies, gaps, elevation) of grid ``g``, remembered per grid."""
        key = b"%d,%d|" % g.shape + g.astype(np.uint8).tobytes()
        got = self._counts.get(key)
        if got is None:
            if len(self._counts) >= 1024:
                self._counts.clear()
            c = self.controls()
            got = self._counts[key] = side_counts(g, self.masks, c["base"] if c else 0)
        return dict(got)

    def buckets_of(self, g: np.ndarray) -> dict[str, str]:
        c = self.controls()
        if not c:
            return {}
        n = self.counts(g)
        return {a: c["buckets"].bucket(a, density(n[a], g.shape[1])) for a in c["available"]}

    def steers(self, asked: dict, width: int, rng: np.random.Generator) -> list:
        """``sampler.Steer`` per attribute: ``none`` bans its tiles, a bucket steers towards a count drawn in
        it, ``any`` towards the count of a 100-column window of the training corpus drawn at random (scaled to
        ``width``), with no ban."""
        from plugins.learned_level_lm.sampler import Steer

        c = self.controls()
        if not c:
            return []
        V = self.classes
        m = self.masks
        out = []
        for a in SIDE:
            if a not in c["available"]:
                continue
            b = asked.get(a, "any")
            if b == "any":
                d = c["densities"].get(a) or [0.0]
                target = int(round(float(d[int(rng.integers(len(d)))]) * width / 100))
                lo, hi = 0, 1 << 30
            else:
                lo, hi, _ = c["buckets"].count_range(a, b, width)
                target = int(rng.integers(lo, hi + 1)) if hi > lo else lo
            if a == "enemies":
                out.append(Steer(a, "tiles", m["enemy"][:V + 1], None, target, lo, hi))
            elif a == "pipes":
                out.append(Steer(a, "start", m["pipe"][:V + 1], None, target, lo, hi))
            elif a == "gaps":
                t = ~m["solid"][:V + 1]
                t[V] = False
                # counted on the bottom row; steered on the usual ground's rows (sampled top down, a gap
                # needs air above the bottom row first); "none" bans only the bottom row (level-lm's)
                rows = [self.h - 1] if b == "none" else [self.h - 1 - i for i in range(max(1, c["base"]))]
                out.append(Steer(a, "gap", t, np.array(rows), target, lo, hi))
            else:
                r = self.h - 1 - c["base"]
                if r < 0:
                    continue
                t = m["solid"][:V + 1] & ~m["pipe"][:V + 1]
                t[V] = False
                out.append(Steer(a, "elev", t, np.array([r]), target, lo, hi))
        return out

    def count_steers(self, width: int) -> list:
        """Where every corpus level has exactly one start (goal) tile, so must a level (the rules'
        ``one_start``/``one_goal``): a ``sampler.Steer`` towards exactly one such tile (drawn more often as the
        level runs out of room without one, banned once there is one)."""
        from plugins.learned_level_lm.sampler import Steer

        out = []
        for role in ("start", "goal"):
            if self.rules.params.get(f"one_{role}"):
                t = np.zeros(self.classes + 1, dtype=bool)
                t[:self.classes] = self.rules._mask[role][:self.classes]
                if t.any():
                    out.append(Steer(role, "tiles", t, None, 1, 1, 1))
        return out

    def control_miss(self, g: np.ndarray, asked: dict) -> float:
        """0 when every asked bucket is met (or cannot be checked at this width), else the distance."""
        c = self.controls()
        if not c or not asked:
            return 0.0
        n = self.counts(g)
        w = g.shape[1]
        f = 0.0
        for a, b in asked.items():
            lo, hi, exact = c["buckets"].count_range(a, b, w)
            if not exact or c["buckets"].bucket(a, density(n[a], w)) == b:
                continue
            f += 0.5 + max(lo - n[a], n[a] - hi, 0) / max(1, hi)
        return f

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

    def calib_grids(self, w: np.ndarray, levels: int, width: int = 0) -> list[np.ndarray] | None:
        """``levels`` levels of ``width`` columns (0: the corpus's level width when its levels are all one
        width, else 128) sampled as generation samples them (pattern constraint, the rules' reachability,
        ``any`` controls) with tile weights ``w``, from fixed latents and streams (calibration)."""
        import torch

        if self.patterns() is None:
            return None
        width = width or (self.level_width if self.level_width >= 16 else 4 * WIN)
        k = -(-width // self.w)
        z = torch.randn(levels * k, self.nz, generator=torch.Generator().manual_seed(1)).numpy()
        P = self.probs(z)
        jobs = [(z[k * i:k * i + k], width, np.random.default_rng([7, i]), {"jump_height": 0, "jump_distance": 0},
                 P[k * i:k * i + k], self.steers({}, width, np.random.default_rng([8, i]))) for i in range(levels)]
        return [g for g, _ in self.sample_levels(jobs, tw=w)]

    def sampled_shares(self, w: np.ndarray, levels: int = 8) -> np.ndarray | None:
        grids = self.calib_grids(w, levels)
        if grids is None:
            return None
        counts = np.zeros(self.classes)
        for g in grids:
            counts += np.bincount(g.ravel(), minlength=self.classes)[:self.classes]
        return counts / counts.sum()

    def pattern_strips(self, grids):
        from .learned_levels.decode import strips_side

        return [strips_side(g) for g in grids]

    def vbig(self) -> np.ndarray | None:
        """The corpus's vertical bigram as sampling factors ``(V + 1, V)``: for the tile above (or the top
        border, id V), each tile's probability below it in the training strips over its overall share
        (``P(tile | above) / P(tile)``, counts + 0.5). It multiplies the network's probabilities as the sampler
        goes down a column (``level-lm``'s vertical-bigram slot), so the local vertical structure of the corpus
        (coins over blocks, enemies on the ground) holds where the network's per-cell distributions are blurred.
        Stored with the weights (``__vbigram__``), else counted once from the card's corpus; None without either."""
        if self._vbig is None:
            try:
                corpus = self.corpus()
            except InputError:
                self._vbig = False
                return None
            train, _ = self.split(corpus)
            self._vbig = vertical_bigram([corpus.grids[i] for i in train], self.classes)
        return self._vbig if self._vbig is not False else None

    def hbig(self) -> np.ndarray | None:
        """The corpus's horizontal bigram as sampling factors ``(V + 1, V)`` raised to the exponent chosen at
        training (``P(tile | tile left of it in its row) / P(tile)``; row V: beside the left border), applied per
        strip with the previous column known (rows of bricks and ?-blocks; see :meth:`hbig_rows`). Stored with the
        weights (``__hbigram__``) when training chose an exponent above 0 (see :func:`choose_hbig`)."""
        return self._hbig

    def hbig_rows(self) -> np.ndarray | None:
        """:meth:`hbig` per row ``(h, V + 1, V)``: not on the usual ground's rows (the bottom ``base`` rows),
        where runs of ground and gaps are the network's and the ``gaps`` control's."""
        if self._hbig is None:
            return None
        if self._hbig_rows is None:
            c = self.controls()
            base = c["base"] if c else 0
            t = np.repeat(self._hbig[None], self.h, 0)
            if base:
                t[self.h - base:] = 1.0
            self._hbig_rows = t
        return self._hbig_rows

    def sample_levels(self, jobs: list, tw: np.ndarray | None = None) -> list:
        """Levels ``(h, width)`` sampled under the corpus pattern constraint, the jump model and the controls
        (:mod:`plugins.learned_levels.decode`), all together; returns [(grid, stats)]. ``jobs``: tuples
        ``(z, width, rng, params, probs, steers)`` — the level's window latents ``(k, nz)``, its width, its
        generator, its request params, its windows' distributions as computed in a batch (None: computed here)
        and its ``Steer`` list. A level with a near-tied draw is decoded again from its windows computed one
        by one (the reference), so batches equal single requests."""
        from plugins.learned_level_lm.reach import BitReach

        from .learned_levels import decode
        from .learned_levels.decode import RulesReach

        pats = self.patterns()
        vb = self.vbig()
        hb = self.hbig_rows()
        tw = self.tile_weights() if tw is None else tw
        states = [rng.bit_generator.state for _, _, rng, _, _, _ in jobs]

        def rng_of(k):
            r = np.random.default_rng()
            r.bit_generator.state = states[k]
            return r

        def item(k, P):
            z, width, _, p, _, steers = jobs[k]
            strips = np.concatenate(list(P), axis=1)[:, :width].transpose(1, 0, 2) * tw  # (width, h, C)
            jh, jd = _jumps(self, p)
            if self.exact_jumps:
                return {"probs": strips, "rng": rng_of(k), "steers": _fresh(steers),
                        "reach": BitReach(self.solid, self.h, jh, jd), "vbig": vb, "hbig": hb}
            reach = RulesReach(self.rules, self.h, jh, jd, lambda g, p=p: self.level_problems(g, p))
            base = np.ones((self.h, self.classes + 1), dtype=bool)
            base[:, self.classes] = False
            # a larger budget of re-decoded strips: small corpora leave few ways to end on a corpus right edge
            return {"probs": strips, "rng": rng_of(k), "steers": _fresh(steers) + self.count_steers(width),
                    "reach": reach, "vbig": vb, "hbig": hb, "unary": reach.unary(base),
                    "budget": max(6 * width + 60, 700)}

        def run(items):
            if pats is None:
                return [decode.sample_free(it["probs"], it["rng"]) for it in items]
            return decode.sample_batch(items, pats)

        res = run([item(k, P if P is not None else self.probs(z)) for k, (z, _, _, _, P, _) in enumerate(jobs)])
        for k, r in enumerate(res):
            if r.flagged:
                z = jobs[k][0]
                res[k] = run([item(k, np.concatenate([self.probs(z[i:i + 1]) for i in range(len(z))]))])[0]
        return [(r.strips.T.copy(), {"backtracks": r.backtracks, "fallbacks": r.fallbacks,
                                     "constrained": pats is not None}) for r in res]


def vertical_bigram(grids: list[np.ndarray], classes: int) -> np.ndarray:
    """``(V + 1, V)``: ``P(tile | tile above) / P(tile)`` over side-view grids (row V: below the top border)."""
    V = classes
    C = np.zeros((V + 1, V))
    for g in grids:
        s = np.concatenate([np.full((1, g.shape[1]), V), np.asarray(g, dtype=np.int64)])
        np.add.at(C, (s[:-1].ravel(), s[1:].ravel()), 1)
    share = C.sum(0) + 0.5
    share /= share.sum()
    C = C + 0.5
    C /= C.sum(-1, keepdims=True)
    return C / share[None, :]


def _fresh(steers: list) -> list:
    """Copies of ``Steer`` objects (a job keeps no state in them, but each job gets its own)."""
    from plugins.learned_level_lm.sampler import Steer

    return [Steer(s.attr, s.kind, s.tiles, s.rows, s.target, s.lo, s.hi) for s in steers]


def fit_controls(grids: list[np.ndarray], masks: dict, classes: int) -> dict:
    """The control buckets of a side-view corpus as ``level-lm`` fits them (:func:`plugins.learned_level_lm.spec.build`):
    the usual ground height ``base`` (most common non-zero height of solid non-pipe stacks), the attributes the
    tileset has, per attribute the densities (per 100 columns) of every 100-column window (stride 25) of the
    training levels and their buckets (``Buckets.fit``: tertiles of the non-zero values)."""
    grids = [np.asarray(g, dtype=np.int64) for g in grids]
    gh = np.concatenate([ground_heights((masks["solid"] & ~masks["pipe"])[g]) for g in grids])
    nz = gh[gh > 0]
    base = int(np.bincount(nz).argmax()) if len(nz) else 0
    available = [a for a in SIDE if a not in ATTR_ROLE or masks[ATTR_ROLE[a]][:classes].any()]
    vals: dict[str, list[float]] = {a: [] for a in available}
    for g in grids:
        W = g.shape[1]
        win = min(CONTROL_WINDOW, W)
        for x in sorted(set(range(0, W - win + 1, 25)) | {W - win}):
            c = side_counts(g[:, x:x + win], masks, base)
            for a in available:
                vals[a].append(density(c[a], win))
    return {"base": base, "buckets": Buckets.fit(vals).to_dict(), "available": available,
            "densities": {a: sorted(round(v, 4) for v in vs) for a, vs in vals.items()}}


def check_controls(doc, where: str) -> dict:
    """The controls document (from an untrusted weights file) checked and parsed."""
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a map")
    base = doc.get("base")
    if type(base) is not int or not 0 <= base <= 128:
        raise InputError(f"{where}.base: expected an int in 0..128")
    av = doc.get("available")
    if not isinstance(av, list) or any(a not in SIDE for a in av):
        raise InputError(f"{where}.available: expected names among {', '.join(SIDE)}")
    dens = doc.get("densities")
    if not isinstance(dens, dict) or any(not isinstance(v, list) or len(v) > 100_000 or
                                         not all(isinstance(x, (int, float)) and 0 <= x <= 1e4 for x in v)
                                         for v in dens.values()):
        raise InputError(f"{where}.densities: expected lists of densities")
    dens = {a: [float(x) for x in dens.get(a, [])] for a in av}
    av = [a for a in av if any(x > 0 for x in dens[a])]  # tiles with the tag but none in the corpus: not offered
    return {"base": base, "buckets": Buckets.from_dict(doc.get("buckets"), f"{where}.buckets"), "available": av,
            "densities": {a: dens[a] for a in av}}


DEFAULT_WIDTH = 96


def level_width(m: _Model, p: dict) -> int:
    """The ``width`` param, or for 0 the corpus's level width when its levels are all one width (stored at
    training: ``config.level_width``), else :data:`DEFAULT_WIDTH`."""
    w = int(p["width"])
    if w == 0:
        return m.level_width if m.level_width >= 16 else DEFAULT_WIDTH
    if w < 16:
        raise InputError(f"{GEN_ID}: width {w}: expected 16..2000 columns (one screen at least), or 0 for the "
                         "corpus's level width")
    return w


def _jumps(m: _Model, p: dict) -> tuple[int, int]:
    jh, jd = m.rules.jump
    return (p["jump_height"] or jh), (p["jump_distance"] or jd)


def score(m: _Model, g: np.ndarray, p: dict, asked: dict) -> tuple[float, bool]:
    """(fitness, playable): fitness 0 = playable under the corpus rules (``validate``'s check) and every
    asked bucket met. An unplayable level, judged by the rules' own model (``Rules.reach``: jumps, climbing,
    ropes, one-way platforms, void, bounded falls): 2 + 0.25 per start/goal tile too many or missing where the
    corpus has exactly one; 2 without a start or a goal; else 1 + the share of the level between the farthest
    reachable cell and the goal + half the share of required cells (Lode Runner's gold) out of reach."""
    w = g.shape[1]
    playable = not m.level_problems(g, p)
    if playable:
        f = 0.0
    else:
        r = m.rules
        extra = sum(abs(int(r._mask[role][g].sum()) - 1) for role in ("start", "goal")
                    if r.params.get(f"one_{role}"))
        start, goal = r.endpoints(g)
        if extra:
            f = 2.0 + 0.25 * extra
        elif start is None or goal is None:
            f = 2.0
        else:
            reach = r.reach(g, start, *_jumps(m, p))
            f = 1.0 + max(0, goal[0] - max(x for x, _ in reach)) / w
            req = r._required(g)
            if req.any():
                cells = np.argwhere(req)
                f += 0.5 * sum((int(x), int(y)) not in reach for y, x in cells) / len(cells)
    return f + m.control_miss(g, asked), playable


def repair(m: _Model, g: np.ndarray, p: dict) -> int:
    """Level columns where the rules' model (``Rules.reach``) gets stuck until the goal is reachable; return
    tiles changed (-1: not mended; what else the rules ask, such as required gold, is left to ``validate``)."""
    w = g.shape[1]
    jh, jd = _jumps(m, p)
    edits = 0
    for _ in range(w):
        start, goal = m.rules.endpoints(g)
        if start is None or goal is None:
            return -1
        reach = m.rules.reach(g, start, jh, jd)
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
    version = "6"  # 6: the rules' own reachability where they are more than jumps (climbing, one start, gold);
    # width 0 (the default) = the corpus's one level width, else 96
    # 5: controls (buckets), any width from 16, steered rates, batched sampling
    description = ("DCGAN side-view levels in your corpus's tileset, any width, sampled under corpus 3x3 patterns, "
                   "pipes/enemies/gaps/elevation controls, latent search")
    params = (
        Param("width", "int", 0, min=0, max=2000,
              help="level length in tiles, 16-2000 (the height is the corpus's); 0 = the corpus's level width when "
                   "its levels are all one width (Lode Runner: 32), else 96"),
        Param("jump_height", "int", 0, min=0, max=12,
              help="highest jump in tiles for the search and repair; 0 = the rules fitted on the corpus"),
        Param("jump_distance", "int", 0, min=0, max=16, help="widest jump in tiles; 0 = the fitted rules"),
        *(Param(a, "choice", "any", choices=CHOICES,
                help=f"control: {a} bucket (none/few/some/many per 100 columns, fitted on the corpus; level-lm's "
                     "definitions)") for a in SIDE),
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
        return (params["width"] or DEFAULT_WIDTH) * (1 + params["search"] * params["population"]) / (96 * (1 + 10 * 10))

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

    def asked(self, m: _Model, request: Request) -> dict[str, str]:
        """The asked bucket per control attribute (``any`` left out); an attribute the corpus lacks is an error."""
        asked = {a: request.params[a] for a in SIDE if request.params[a] != "any"}
        if not asked:
            return asked
        c = m.controls()
        if c is None:
            raise InputError(f"{GEN_ID}: controls need weights trained with control buckets or the corpus their "
                             "model card lists (retrain them)")
        for a, b in asked.items():
            if a not in c["available"] and b != "none":
                raise InputError(f"{GEN_ID}: {a}={b}: this model's training levels have no {a} (no tile with its "
                                 "tag, or none in the levels), so only none or any can be asked")
        return {a: b for a, b in asked.items() if a in c["available"]}

    def _search(self, m: _Model, reqs: list[Request]) -> list:
        import dataclasses

        import torch

        reqs = [dataclasses.replace(r, params={**r.params, "width": level_width(m, r.params)}) for r in reqs]

        n_w = [-(-r.params["width"] // m.w) for r in reqs]
        asked = [self.asked(m, r) for r in reqs]
        z0 = [torch.randn(k, m.nz, generator=r.torch_generator("z")).numpy().astype(np.float64)
              for k, r in zip(n_w, reqs)]
        steers = [m.steers(a, r.params["width"], r.rng("controls")) for a, r in zip(asked, reqs)]
        rngs = [r.rng("search") for r in reqs]
        bases = [int(r.rng("sample").integers(2 ** 62)) for r in reqs]
        gen_no = [0]

        def evaluate(cands: list[list[np.ndarray]]):
            flat = [z for j, cs in enumerate(cands) for c in cs for z in c]
            if not flat:
                return [[] for _ in cands]
            P = m.probs(np.stack(flat))
            jobs, owner, k = [], [], 0
            for j, cs in enumerate(cands):
                for ci, c in enumerate(cs):
                    rng = np.random.default_rng([bases[j], gen_no[0], ci])
                    jobs.append((c, reqs[j].params["width"], rng, reqs[j].params, P[k:k + n_w[j]], steers[j]))
                    owner.append(j)
                    k += n_w[j]
            got = m.sample_levels(jobs)
            res: list[list] = [[] for _ in cands]
            for j, (g, st) in zip(owner, got):
                res[j].append((score(m, g, reqs[j].params, asked[j]), g, st))
            gen_no[0] += 1
            return res

        first = evaluate([[z] for z in z0])
        best = [(r[0][0], r[0][1], z) for r, z in zip(first, z0)]
        stats = [r[0][2] for r in first]
        raw = [r[0][0][1] and not m.control_miss(r[0][1], a) and not r[0][2].get("fallbacks")
               for r, a in zip(first, asked)]
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
        return [self._finish(m, best[j], raw[j], gens[j], reqs[j], stats[j], asked[j]) for j in range(len(reqs))]

    def _finish(self, m: _Model, best, raw_valid: bool, gens: int, request: Request, stats: dict, asked: dict):
        (fit, playable), g, _ = best
        g = g.copy()
        p = request.params
        edits = 0
        if not playable and p["repair"]:
            edits = repair(m, g, p)
        jh, jd = _jumps(m, p)
        w = g.shape[1]
        n = m.counts(g)
        meta = {"view": "side", "jump_height": jh, "jump_distance": jd, "rules": m.rules.describe(),
                "gaps": n["gaps"], "enemies": n["enemies"], "pipes": n["pipes"], "elevation": n["elevation"],
                "asked": dict(sorted(asked.items())), "measured": m.buckets_of(g), "raw_valid": bool(raw_valid),
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
        out = m.level_problems(g, request.params)
        width = level_width(m, request.params)
        if g.shape != (m.h, width):
            out.append(f"size {g.shape[1]}x{g.shape[0]}, asked {width}x{m.h}")
        if level.metadata.get("pattern_fallbacks"):  # the sampler ran out of backtracking: resample
            out.append(f"{level.metadata['pattern_fallbacks']} strips placed outside the corpus's 3x3 patterns")
        asked = self.asked(m, request)
        if asked:
            got = m.buckets_of(g)
            c = m.controls()
            for a, b in sorted(asked.items()):
                if got.get(a) != b and c["buckets"].count_range(a, b, g.shape[1])[2]:
                    out.append(f"control {a}={b} missed: measured {got.get(a)}")
        return out

    # ------------------------------------------------------------------ LevelControls (conjure evaluate --controls)
    def level_controls(self, params: dict) -> dict[str, tuple[str, ...]]:
        """The control attributes the weights in use can be asked (those in their training levels)."""
        c = self.model(params.get("weights", ""), params.get("device", "cpu")).controls()
        return {a: tuple(b for b in CHOICES if b != "any") for a in SIDE if c and a in c["available"]}

    def measure_controls(self, level, params: dict) -> dict[str, str]:
        """The bucket each control lands in, leaving out those ``validate`` does not check at this level's
        width (a bucket it is too short to hold)."""
        m = self.model(params.get("weights", ""), params.get("device", "cpu"))
        c = m.controls()
        if c is None:
            return {}
        g = m.grid_of(level)
        out = {}
        for a, b in m.buckets_of(g).items():
            asked = params.get(a, "any")
            if asked in (None, "any") or c["buckets"].count_range(a, asked, g.shape[1])[2]:
                out[a] = b
        return out

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


HBIG_EXPONENTS = (0.0, 0.5)


def choose_hbig(tensors: dict, path, train_grids: list[np.ndarray], classes: int, tiny: bool):
    """Sampling calibration after training, on the training levels only: for each exponent of the corpus's
    horizontal bigram (:data:`HBIG_EXPONENTS`; 0 = none) the tile weights are calibrated
    (:meth:`_Model.calibrate`: 6 corrections on 16 levels), 24 levels of 128 columns are sampled, and the
    exponent with the lowest KL(training levels ‖ samples) of 2×2 patterns is kept among those whose diversity
    is at least 0.85× the training levels' (the lowest-KL one when none is). Returns (factors or None, tile
    weights, the figures per exponent for the model card)."""
    from engine.eval_levels import grid_diversity, kl_divergence, pattern_counts

    ref = pattern_counts(train_grids, 2, 256)
    own_div = grid_diversity([np.asarray(g) for g in train_grids], np.random.default_rng(0))
    hb = vertical_bigram([np.asarray(g).T for g in train_grids], classes)  # left neighbour: the grids transposed
    tried = []
    for e in (HBIG_EXPONENTS[:1] if tiny else HBIG_EXPONENTS):
        m = _Model(tensors, {}, path)  # the trained model as generation loads it
        m._hbig, m._hbig_rows = (hb ** e if e else None), None
        tw = m.calibrate(*((1, 2) if tiny else (6, 16)))
        grids = m.calib_grids(tw, 4 if tiny else 24)
        kl = kl_divergence(ref, pattern_counts(grids, 2, 256))
        div = grid_diversity(grids, np.random.default_rng(0))
        tried.append({"hbig_exponent": e, "kl_2x2_train": round(kl, 4), "diversity": round(div, 4),
                      "diversity_ratio": round(div / own_div, 3), "tile_weights": tw})
    ok = [t for t in tried if t["diversity_ratio"] >= 0.85] or tried
    best = min(ok, key=lambda t: t["kl_2x2_train"])
    figs = [{k: v for k, v in t.items() if k != "tile_weights"} for t in tried]
    e = best["hbig_exponent"]
    return (hb ** e if e else None), best["tile_weights"], {"chosen_hbig_exponent": e, "tried": figs}


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
    widths = {g.shape[1] for g in corpus.grids}
    cfg.update(classes=corpus.classes, h=h, hp=-(-h // 4) * 4, air=ids["air"], ground=ids["ground"],
               enemy=ids["enemy"] if ids["enemy"] is not None else -1,
               level_width=widths.pop() if len(widths) == 1 else 0)
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
        """KL(held-out levels ‖ samples) of 2×2 tile patterns, tiles *sampled* per cell from the network's
        distributions with a fixed generator (as generation samples, not the argmax): lower is better."""
        G.eval()
        with torch.no_grad():
            p = torch.softmax(G(z_fixed.to(device)).float(), 1).cpu()[:, :, cfg["hp"] - h:, :]
        G.train()
        flat = p.permute(0, 2, 3, 1).reshape(-1, cfg["classes"])
        s = torch.multinomial(flat, 1, generator=torch.Generator().manual_seed(job.seed)).view(len(p), h, -1)
        return kl_divergence(held_counts, pattern_counts(list(s.numpy()), 2, 256))

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
    tensors["__controls__"] = lc.json_tensor(fit_controls([corpus.grids[i] for i in train_idx],
                                                          role_masks(rules.to_dict()["roles"]), corpus.classes))
    tensors["__vbigram__"] = torch.from_numpy(vertical_bigram([corpus.grids[i] for i in train_idx], corpus.classes))
    train_grids = [corpus.grids[i] for i in train_idx]
    hb, tw, calib_fig = choose_hbig(tensors, job.out / "model.safetensors", train_grids, corpus.classes,
                                    bool(job.options.get("tiny")))
    if hb is not None:
        tensors["__hbigram__"] = torch.from_numpy(hb)
    tensors["__tile_weights__"] = torch.from_numpy(tw)
    save_safetensors(tensors, job.out / "model.safetensors", {"generator": GEN_ID, "format": "conjure/2"})
    metrics = {"train_windows": n, "levels": len(corpus.grids), "train_levels": len(train_idx),
               "held_out_levels": len(held_idx), "steps": epochs * steps, "best_epoch": hist["best_epoch"],
               "held_out_kl_2x2_best": hist["best_held_out"], "corpus_pass": rules.report["corpus_pass"],
               "train_seconds": round(time.time() - t0, 1), "sampling_calibration": calib_fig}
    return {"weights": ["model.safetensors"], "config": cfg, "metrics": metrics, "epochs": epochs,
            "data": corpus.files, "device": device,
            "card": card_extras(corpus, rules, train_idx, held_idx, job, hist)}


@hookimpl
def register_level_generators(register):
    register(PlatformerGAN())
