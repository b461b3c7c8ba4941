"""``level-lm``: levels from a small tile transformer with a KV cache, control tokens and pattern-constrained,
playability-steered decoding (see ``docs/level-lm.md``).

A model is trained on one corpus (``conjure train level-lm --data ...``) and generates in that corpus's
tileset: side-view levels column by column, any width from 16 columns; top-down dungeons as a layout of
rooms (a spanning tree with extra loops over a grid of room slots, doors where rooms meet, a start room on
the corpus's entrance edge with a door in its outer wall, the farthest room as the goal, holding the
corpus's goal kind, e.g. one stairs tile, which no other room may), every room decoded row by row by the
network, all rooms of all
dungeons of a batch in one pass. The shipped weights: ``plugins/data/models/level-lm/`` (side view,
``model=side``) and ``plugins/data/models/level-lm-top/`` (top down, ``model=top``).

Controls: ``pipes``/``enemies``/``gaps``/``elevation`` (side view) and ``rooms``/``enemies``/``keys``
(top down), each ``any``/``none``/``few``/``some``/``many`` (buckets fitted on the corpus), also given as
a ``prompt`` ("many pipes, no enemies, high elevation"); a param overrides the prompt. Asking an attribute
the model's view or corpus does not have is an error naming it.

Numbers: generation is numpy only (no torch import); see :mod:`plugins.learned_level_lm.sampler` for why a
level is the same alone or in a batch, and byte-identical across processes.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine import Generator, Param, Request, hookimpl
from engine.errors import InputError

from .learned_level_lm.controls import ATTRS, CHOICES, parse_prompt

GEN_ID = "level-lm"
MODELS = Path(__file__).resolve().parent / "data" / "models"
SHIPPED = {"side": MODELS / "level-lm", "top": MODELS / "level-lm-top"}
MAX_WEIGHT_BYTES = 16 * 1024 * 1024
CONFIG_BOUNDS = {"h": (3, 128), "K": (3, 64), "n_attr": (0, 16), "d": (4, 512), "layers": (1, 8), "heads": (1, 16),
                 "ctx": (2, 256), "dropout": (0.0, 1.0)}
BUCKET_ID = {"any": 0, "none": 1, "few": 2, "some": 3, "many": 4}
RULES_BUDGET = 12  # side view under RulesReach: strips re-decoded per strip of the level (+120) before giving up
START_FRONT = 4  # side view, exactly one start tile: steered as if this many were spread over the level (early)
GOAL_BOOST = 50.0  # top down: factor on the goal kind's weight in the goal room (few cells of a room allow it)
ROOM_BUDGET = 12  # room restarts before a room is accepted as it is

_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


class Model:
    """A loaded level-lm: the numpy network and the corpus spec."""

    def __init__(self, path: Path):
        from engine.weights import check_config, load_safetensors_numpy

        from .learned_level_lm.infer import Net
        from .learned_level_lm.spec import Spec

        T = load_safetensors_numpy(path, max_bytes=MAX_WEIGHT_BYTES)
        src = f"{GEN_ID} weights {path}"
        for k in ("__config__", "__spec__", "patterns3", "patterns2"):
            if k not in T:
                raise InputError(f"{src}: tensor {k} missing (not level-lm weights?)")
        try:
            cfg = json.loads(bytes(T["__config__"].astype(np.uint8).tolist()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise InputError(f"{src}: __config__ is not JSON") from None
        cfg = check_config(cfg, CONFIG_BOUNDS, src)
        for k in ("h", "K", "n_attr", "d", "layers", "heads", "ctx"):
            if k not in cfg:
                raise InputError(f"{src}: config.{k} missing")
        if cfg["d"] % cfg["heads"]:
            raise InputError(f"{src}: config.d must be a multiple of config.heads")
        spec_text = bytes(T["__spec__"].astype(np.uint8).tolist()).decode("utf-8", "replace")
        self.spec = Spec.from_json(spec_text, T["patterns3"].astype(np.int64), T["patterns2"].astype(np.int64))
        if self.spec.K != cfg["K"] or self.spec.h != cfg["h"]:
            raise InputError(f"{src}: spec and network disagree on the tileset or strip length")
        self.net = Net(T, cfg)
        self.cfg = cfg
        self.path = path
        card = path.with_name("model.json")
        self.card: dict = {}
        if card.is_file():
            from engine.weights import load_model_card

            self.card = load_model_card(card)
        self._corpus = None
        self._problems: dict[bytes, tuple] = {}

    def problems(self, grid: np.ndarray) -> list[str]:
        """``spec.rules.problems(grid)``, remembered per grid (a level's metadata and ``validate`` both ask:
        the rules' reachability search is a level's largest single cost after decoding)."""
        g = np.asarray(grid)
        if g.ndim != 2 or not g.size or int(g.min()) < 0 or int(g.max()) > 255:
            return list(self.spec.rules.problems(g))
        key = b"%d,%d|" % g.shape + g.astype(np.uint8).tobytes()
        got = self._problems.get(key)
        if got is None:
            if len(self._problems) >= 1024:
                self._problems.clear()
            got = self._problems[key] = tuple(self.spec.rules.problems(g))
        return list(got)

    def proven_playable(self, grid: np.ndarray, reach) -> bool:
        """Side view: the sampler's own reachability (``reach``, a :class:`~.learned_level_lm.reach.BitReach`
        over exactly these columns) already found the rules' goal reachable from the rules' start under the
        rules' jump model; then ``spec.rules.problems(grid)`` is ``[]`` (the same start, goal, moves and
        result: tests/test_level_lm.py checks the two agree), so it is remembered without running the rules'
        search again. Only where the rules are exactly that model: their fitted parameters are the jump's
        alone (any other parameter set, e.g. a bounded fall, and the rules are run), no tile has a role that
        changes the moves or the endpoints (``start``, ``goal``, ``void``, ``climbable``, ``rope``,
        ``platform``), and the level is not vertical. Elsewhere the sampler's reach is a
        :class:`~.learned_level_lm.reach.RulesReach`, whose end check *is* ``spec.rules.problems(grid)``: a
        level it passed is remembered as playable (the rules' check ran once, on this very grid)."""
        from .learned_level_lm.reach import RulesReach

        sp = self.spec
        g = np.asarray(grid)
        rules = sp.rules
        if isinstance(reach, RulesReach):  # it ran the rules' own check on exactly this grid
            if reach.rules is not rules or g.ndim != 2 or not g.size or int(g.max()) > 255 or not reach.proven(g):
                return False
            key = b"%d,%d|" % g.shape + g.astype(np.uint8).tobytes()
            if len(self._problems) >= 1024:
                self._problems.clear()
            self._problems[key] = ()
            return True
        roles = {r for rs in rules.roles for r in rs}
        if (sp.view != "side" or rules.view != "side" or reach is None or g.ndim != 2 or not g.size
                or reach.w != g.shape[1] or g.shape[0] > 2 * g.shape[1] or int(g.max()) >= len(rules.roles)
                or int(g.max()) > 255 or (reach.jh, reach.jd) != rules.jump
                or any(v for k, v in rules.params.items() if k not in ("jump_height", "jump_distance"))
                or roles & {"start", "goal", "void", "climbable", "rope", "platform"}
                or not np.array_equal(rules.solid(g), sp.masks["solid"][g]) or not reach.goal_reached()):
            return False
        key = b"%d,%d|" % g.shape + g.astype(np.uint8).tobytes()
        if len(self._problems) >= 1024:
            self._problems.clear()
        self._problems[key] = ()
        return True

    def corpus(self):
        """The training corpus, re-read from the very files the model card lists (as written, else relative to
        the repository or to the weights' folder; checked against the card's SHA-256)."""
        if self._corpus is None:
            from .learned_levels.model import card_corpus

            self._corpus, self._card_path = card_corpus(self.card, self.path)
        return self._corpus

    def split(self, corpus):
        """The card's held-out split as indices into ``corpus`` (matched on path + SHA-256: see card_split)."""
        from .learned_levels.model import card_split

        return card_split(self.card, corpus, getattr(self, "_card_path", None))

    def dungeon_facts(self) -> dict:
        """Top down: what every dungeon of the training corpus has, measured once on the corpus the card lists.

        ``goal_kinds``: the rules' required kinds that mark the dungeon's goal (``goal``, ``stairs``; VGLC
        Zelda: stairs); ``goal_count``: their number in every corpus dungeon when it is the same in all of them
        (Zelda: 1), else None (then: at least one); ``entrance``: the map edge (``n``/``e``/``s``/``w``) on
        which at least half the corpus dungeons have a door tile in the outer wall, the most common such edge
        (Zelda: ``s``, all ten), else None. Without a readable corpus: the goal kinds only (at least one, only in
        the goal room) and no entrance."""
        if getattr(self, "_facts", None) is not None:
            return self._facts
        sp = self.spec
        V = sp.V
        kinds = [k for k in sp.rules.params.get("required", [])
                 if k in ("goal", "stairs") and k in sp.masks and sp.masks[k][:V].any()]
        facts: dict = {"goal_kinds": kinds, "goal_count": None, "entrance": None}
        try:
            grids = [np.asarray(g, dtype=np.int64) for g in self.corpus().grids] if sp.view == "top" else []
        except (InputError, OSError, ValueError):
            grids = []
        if grids and kinds:
            gk = np.zeros(len(sp.masks[kinds[0]]), dtype=bool)
            for k in kinds:
                gk |= sp.masks[k]
            counts = {int(gk[g].sum()) for g in grids}
            if len(counts) == 1:
                facts["goal_count"] = counts.pop()
        if grids:
            door = sp.masks["door"] | sp.masks["locked"]
            have = {s: sum(bool(door[e].any()) for e in ({"n": g[0], "s": g[-1], "w": g[:, 0], "e": g[:, -1]}[s]
                                                            for g in grids)) for s in ("s", "w", "e", "n")}
            side = max(have, key=lambda s: have[s])  # ties: s, w, e, n
            if have[side] * 2 >= len(grids) and have[side] and sp.doors.get(side):
                facts["entrance"] = side
        self._facts = facts
        return facts


def weights_file(weights: str, model: str) -> Path:
    if not weights:
        return SHIPPED[model] / "model.safetensors"
    p = Path(weights)
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.is_file():
        raise InputError(f"{GEN_ID}: weights {weights!r}: no such file")
    return p


def load(weights: str = "", model: str = "side") -> Model:
    path = weights_file(weights, model)
    key = str(path.resolve())
    with _LOCK:
        m = _MODELS.get(key)
        if m is None:
            if not path.is_file():
                raise InputError(f"{GEN_ID}: no weights at {path} (train some with `conjure train {GEN_ID}`)")
            m = Model(path)
            _MODELS[key] = m
        return m


class LevelLM(Generator):
    id = GEN_ID
    kind = "level"
    # 2: a level whose sampler fell back outside the corpus patterns is resampled;
    # 3: fused network step (float math), calibrated kind weights in the shipped models
    # 4: corpora whose rules are more than jumps decode under the rules' own search (RulesReach), vertical
    #    corpora, width 0 = the corpus's median (the shipped models' output is unchanged: same bytes)
    # 5: top down: the corpus's goal kind (stairs) only in the goal room, its usual count there; the start room
    #    on the corpus's entrance edge with a door in its outer wall (side view unchanged: same bytes)
    version = "5"
    description = ("tile transformer (KV cache, control tokens) with corpus-pattern-constrained, playability-"
                   "steered decoding; side view any width, top-down dungeons of rooms")
    params = (
        Param("model", "choice", "side", choices=("side", "top"),
              help="which shipped model: side view (columns) or top down (rooms); ignored with weights"),
        Param("weights", "str", "", help="a model.safetensors (or its folder) from `conjure train level-lm`; "
                                         "empty = the shipped one for `model`"),
        Param("width", "int", 0, min=0, max=2000,
              help="side view: level length in columns (16 or more); 0 = the model's usual: its corpus's median "
                   "width (models trained before version 4, the shipped one included: 150)"),
        Param("height", "int", 0, min=0, max=2000,
              help="vertical models (Kid Icarus): level height in rows, above twice the width; 0 = drawn between "
                   "the corpus's lowest and highest level"),
        Param("room_count", "int", 0, min=0, max=64,
              help="top down: number of rooms (0 = from the rooms control, else the corpus's usual); with a "
                   "rooms control it must fall in that bucket (else an input error)"),
        Param("prompt", "str", "", help='attributes in words, e.g. "many pipes, no enemies, high elevation"'),
        *(Param(a, "choice", "any", choices=CHOICES,
                help=f"control: {a} bucket (fitted on the corpus)" + (
                    "; top down only; none is an input error (a dungeon has at least one room)" if a == "rooms"
                    else ""))
          for a in ("pipes", "enemies", "gaps", "elevation", "rooms", "keys")),
        Param("temperature", "float", 0.0, min=0.0, max=2.0,
              help="sampling temperature; 0 = the model's own (calibrated at training on its corpus's tile shares)"),
    )
    window = (14, 32)
    genre = "learned"

    def model(self, request: Request) -> Model:
        return load(request.params["weights"], request.params["model"])

    # ------------------------------------------------------------------ controls
    def controls(self, request: Request, m: Model) -> dict[str, str]:
        """The asked bucket per attribute of the model's view (params override the prompt)."""
        p = request.params
        view = m.spec.view
        try:
            asked = parse_prompt(p["prompt"], view) if p["prompt"] else {}
        except InputError as e:
            raise InputError(f"{GEN_ID}: {e}") from None
        for a in ("pipes", "enemies", "gaps", "elevation", "rooms", "keys"):
            if p[a] != "any":
                if a not in ATTRS[view]:
                    raise InputError(f"{GEN_ID}: param {a}={p[a]}: {view}-view models have no {a!r} control "
                                     f"(theirs: {', '.join(ATTRS[view])})")
                asked[a] = p[a]
        if m.spec.vertical:
            for a in asked:
                if a not in m.spec.available:
                    raise InputError(f"{GEN_ID}: {a}={asked[a]}: this model's levels are vertical (climbed from the "
                                     f"bottom up); their controls: {', '.join(m.spec.available) or 'none'}")
        for a, b in asked.items():
            if a not in m.spec.available and b != "none":
                raise InputError(f"{GEN_ID}: {a}={b}: this model's corpus has no {a} (its tiles carry no such tag)")
        if asked.get("rooms") == "none":
            raise InputError(f"{GEN_ID}: rooms=none: a dungeon has at least one room")
        n = p.get("room_count") or 0
        if n and view == "top" and asked.get("rooms", "any") != "any" \
                and m.spec.buckets.bucket("rooms", float(n)) != asked["rooms"]:
            got = m.spec.buckets.bucket("rooms", float(n))
            raise InputError(f"{GEN_ID}: room_count={n} is {got} rooms, but rooms={asked['rooms']} was asked "
                             f"(give one of the two, or a room_count in the {asked['rooms']} bucket)")
        return asked

    # ------------------------------------------------------------------ generation
    def generate(self, request: Request):
        return self.generate_batch([request])[0]

    def generate_batch(self, requests: list[Request]):
        from .learned_level_lm.infer import blas_one_thread

        out: list[Any] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(str(weights_file(r.params["weights"], r.params["model"])), []).append(i)
        with blas_one_thread():
            for _, idx in groups.items():
                m = self.model(requests[idx[0]])
                reqs = [requests[i] for i in idx]
                made = self._make(m, reqs)
                if len(reqs) > 1:  # near-ties in batched float math: decode those alone (the reference)
                    for k, (lv, flagged) in enumerate(made):
                        if flagged:
                            made[k] = self._make(m, [reqs[k]])[0]
                for i, (lv, _) in zip(idx, made):
                    out[i] = lv
        return out

    def _make(self, m: Model, reqs: list[Request]):
        if m.spec.view == "side":
            return self._side(m, reqs)
        return self._top(m, reqs)

    # ------------------------------------------------------------------ side view
    def _steers(self, m: Model, asked: dict, width: int, rng: np.random.Generator, view: str):
        from .learned_level_lm.sampler import Steer

        sp = m.spec
        V = sp.V
        out = []
        for a in ATTRS[view]:
            b = asked.get(a, "any")
            if b == "any" or a == "rooms":
                continue
            lo, hi, _ = sp.buckets.count_range(a, b, width if view == "side" else 100)
            target = int(rng.integers(lo, hi + 1)) if hi > lo else lo
            masks = sp.masks
            if a == "enemies":
                out.append(Steer(a, "tiles", masks["enemy"][:V + 1], None, target, lo, hi))
            elif a == "keys":
                out.append(Steer(a, "tiles", masks["key"][:V + 1], None, target, lo, hi))
            elif a == "pipes":
                out.append(Steer(a, "start", masks["pipe"][:V + 1], None, target, lo, hi))
            elif a == "gaps":
                t = ~(masks["solid"] | masks["void"])[:V + 1]
                t[V] = False
                out.append(Steer(a, "gap", t, np.array([sp.h - 1]), target, lo, hi))
            elif a == "elevation":
                r = sp.h - 1 - sp.base
                if r < 0:
                    continue
                t = masks["solid"][:V + 1] & ~masks["pipe"][:V + 1]
                t[V] = False
                out.append(Steer(a, "elev", t, np.array([r]), target, lo, hi))
        return out

    def _side(self, m: Model, reqs: list[Request]):
        from .learned_level_lm.reach import BitReach, RulesReach, exact_jump_model
        from .learned_level_lm.sampler import Job, Steer

        sp = m.spec
        jobs, asked_all = [], []
        jh, jd = sp.rules.jump
        exact = exact_jump_model(sp.rules, sp.vertical)
        for r in reqs:
            asked = self.controls(r, m)
            asked_all.append(asked)
            rng = r.rng("level-lm")
            W = length(m, r)
            attrs = np.array([BUCKET_ID[asked.get(a, "any")] for a in sp.attrs], dtype=np.int64)
            unary = np.ones((sp.h, sp.K), dtype=bool)
            unary[:, sp.B] = False
            steers = self._steers(m, asked, W, rng, "side")
            # exactly one start/goal tile (fitted): steered to one, then banned; the start early (its target
            # spread as if START_FRONT were wanted), since the rules' search can only prune from it on
            for role, target in (("start", START_FRONT), ("goal", 1)):
                if sp.rules.params.get(f"one_{role}"):
                    steers.append(Steer(role, "tiles", sp.masks[role][:sp.V + 1], None, target, 1, 1))
            reach = BitReach(sp.masks["solid"], sp.h, jh, jd) if exact else \
                RulesReach(sp.rules, sp.h, sp.vertical, W)
            jobs.append(Job(width=W, h=sp.h, V=sp.V, attrs=attrs, rng=rng, steers=steers, unary=unary,
                            reach=reach, budget=None if exact else RULES_BUDGET * W + 120))
            jobs[-1].kind_w = sp.kind_weights
        self._run(m, jobs, reqs)
        out = []
        for r, job, asked in zip(reqs, jobs, asked_all):
            grid = sp.from_strips(job.S).astype(np.uint8)
            if not job.giveup:
                m.proven_playable(grid, job.reach)
            meta = self._meta(m, r, job_stats([job]), asked, grid)
            out.append((sp.level(grid, meta), job.flagged))
        return out

    def _run(self, m: Model, jobs, reqs):
        from .learned_level_lm.sampler import run

        def temp(r):
            return r.params["temperature"] or m.spec.temperature

        temps = {temp(r) for r in reqs}
        for t in sorted(temps):  # a temperature scales the head's logits: decode each group apart
            part = [j for j, r in zip(jobs, reqs) if temp(r) == t]
            run(m.net if t == 1.0 else _Tempered(m.net, t), m.spec.patterns, part)

    def _meta(self, m: Model, r: Request, stats: dict, asked: dict, grid: np.ndarray) -> dict:
        sp = m.spec
        problems = m.problems(grid)
        meta = {"genre": "platformer" if sp.view == "side" else "dungeon", "view": sp.view,
                "raw_valid": not problems and r.attempt == 0 and not stats.get("pattern_fallbacks"),
                "playable": not problems,
                "repaired": False, "asked": dict(sorted(asked.items())),
                "measured": measure(m, grid, stats.get("rooms")), "pattern_fidelity": round(fidelity(sp, grid), 4),
                "rules": sp.rules.describe()}
        if sp.view == "side":
            c = sp.side_counts(grid)
            meta.update({"gaps": c["gaps"], "enemies_count": c["enemies"], "pipes_count": c["pipes"]})
        meta.update({k: v for k, v in stats.items() if k != "rooms"})
        if r.params["weights"]:
            meta["weights"] = r.params["weights"]
        return meta

    # ------------------------------------------------------------------ top down
    def _top(self, m: Model, reqs: list[Request]):
        from .learned_level_lm.layout import add_entrance, door_sides_available, dungeon_layout, room_unary
        from .learned_level_lm.reach import room_ok
        from .learned_level_lm.sampler import Job, Steer

        sp = m.spec
        rh, rw = sp.room
        required = [k for k in sp.rules.params.get("required", []) if k != "door"]
        facts = m.dungeon_facts()
        goal_tiles = np.zeros(sp.V + 1, dtype=bool)
        for k in facts["goal_kinds"]:
            goal_tiles |= sp.masks[k][:sp.V + 1]
        goal_tiles[sp.V] = False
        n_goal = facts["goal_count"] if facts["goal_count"] is not None else 1
        all_jobs, plans = [], []
        for r in reqs:
            asked = self.controls(r, m)
            rng = r.rng("level-lm")
            n = r.params["room_count"]
            if not n:
                b = asked.get("rooms", "any")
                if b == "any":
                    t1, t2, top = sp.buckets.t["rooms"]
                    n = int(rng.integers(max(1, int(round(t1))), max(2, int(round(top))) + 1))
                else:
                    lo, hi, _ = sp.buckets.count_range("rooms", b, 100)
                    n = int(rng.integers(lo, hi + 1))
            lay = dungeon_layout(n, rng, door_sides_available(sp))
            if facts["entrance"]:  # the start room on the corpus's entrance edge, a door in its outer wall
                add_entrance(lay, facts["entrance"])
            n = len(lay["rooms"])
            per_room = self._room_enemies(m, asked.get("enemies", "any"), n, rng)
            jobs = []
            for i, room in enumerate(lay["rooms"]):
                rrng = r.rng("level-lm", "room", i)
                eb = asked.get("enemies", "any")
                steers = [st for st in self._steers(m, {k: v for k, v in asked.items() if k != "enemies"}, 100,
                                                    rrng, "top")]
                if per_room is not None:  # this room's share of the dungeon's enemy target
                    k = int(per_room[i])
                    eb = sp.buckets.bucket("enemies", float(k))
                    steers.append(Steer("enemies", "tiles", sp.masks["enemy"][:sp.V + 1], None, k, k, k))
                elif eb == "none":
                    steers.append(Steer("enemies", "tiles", sp.masks["enemy"][:sp.V + 1], None, 0, 0, 0))
                attrs = [BUCKET_ID[eb], BUCKET_ID[asked.get("keys", "any")]]
                attrs += [BUCKET_ID["many" if room["doors"][s] else "none"] for s in ("n", "e", "s", "w")]
                unary = room_unary(sp, room["doors"])
                check = (lambda S: room_ok(S, sp.masks, required))
                if goal_tiles.any():  # the goal kind (stairs): the corpus's count in the goal room, none elsewhere
                    if i == lay["goal"] and n_goal:
                        steers.append(Steer("goal", "tiles", goal_tiles, None, n_goal, n_goal, n_goal))
                        check = (lambda S: room_ok(S, sp.masks, required)
                                 and int(goal_tiles[S].sum()) == n_goal)
                    else:
                        unary[:, :, :sp.V] &= ~goal_tiles[:sp.V]
                jobs.append(Job(width=rh, h=rw, V=sp.V, attrs=np.array(attrs, dtype=np.int64), rng=rrng,
                                steers=steers, unary=(lambda t, u=unary: u[t]),
                                room_check=check,
                                budget=ROOM_BUDGET * rh))
                jobs[-1].kind_w = sp.kind_weights
                if goal_tiles.any() and i == lay["goal"] and n_goal:  # the goal kind's weight raised (the
                    w = np.ones(sp.V) if sp.kind_weights is None else np.array(sp.kind_weights, dtype=np.float64)
                    w[goal_tiles[:sp.V]] *= GOAL_BOOST  # corpus's patterns leave it few cells: don't miss them)
                    jobs[-1].kind_w = w
            plans.append((r, asked, lay, jobs))
            all_jobs += jobs
        self._run(m, all_jobs, [p[0] for p in plans for _ in p[3]])
        out = []
        from .learned_level_lm.layout import assemble

        for r, asked, lay, jobs in plans:
            grid, regions = assemble(sp, lay, [j.S for j in jobs])
            stats = job_stats(jobs)
            stats["rooms"] = len(jobs)
            meta = self._meta(m, r, stats, asked, grid)
            meta.update({"rooms": len(jobs), "start_room": lay["start"], "goal_room": lay["goal"]})
            if lay.get("entrance"):
                meta["entrance"] = lay["entrance"]
            out.append((sp.level(grid, meta, regions), any(j.flagged for j in jobs)))
        return out

    @staticmethod
    def _room_enemies(m: Model, bucket: str, n: int, rng: np.random.Generator):
        """Top down: enemies per room for a dungeon of ``n`` rooms whose mean per room lands in ``bucket``
        (a total drawn in the bucket's range, spread over the rooms at random), or None for any/none."""
        if bucket in ("any", "none") or "enemies" not in m.spec.available:
            return None
        lo, hi, _ = m.spec.buckets.count_range("enemies", bucket, 100 * n)
        total = int(rng.integers(lo, hi + 1)) if hi > lo else lo
        return rng.multinomial(total, [1.0 / n] * n)

    # ------------------------------------------------------------------ checks
    def validate(self, level, request: Request) -> list[str]:
        m = self.model(request)
        sp = m.spec
        grid = level_grid(level, sp)
        if grid is None:
            return ["level is not in the model's tileset"]
        out = m.problems(grid)
        if sp.view == "top":
            out += self._goal_problems(m, level, grid)
        if level.metadata.get("pattern_fallbacks"):  # the sampler ran out of backtracking: resample
            out.append(f"{level.metadata['pattern_fallbacks']} cells placed outside the corpus's 3x3 patterns")
        if sp.view == "side" and sp.vertical and grid.shape != (length(m, request), sp.h):
            out.append(f"size {grid.shape[1]}x{grid.shape[0]}, asked {sp.h}x{length(m, request)}")
        elif sp.view == "side" and not sp.vertical and grid.shape != (sp.h, length(m, request)):
            out.append(f"size {grid.shape[1]}x{grid.shape[0]}, asked {length(m, request)}x{sp.h}")
        asked = self.controls(request, m)
        got = measure(m, grid, level.metadata.get("rooms"))
        n_rooms = int(level.metadata.get("rooms") or 1)
        for a, b in sorted(asked.items()):
            width = sp.extent(grid) if sp.view == "side" else (100 * n_rooms if a == "enemies" else 100)
            if a in got and got[a] != b and (a == "rooms" or sp.buckets.count_range(a, b, width)[2]):
                out.append(f"control {a}={b} missed: measured {got[a]}")
        return out

    @staticmethod
    def _goal_problems(m: Model, level, grid: np.ndarray) -> list[str]:
        """Top down: the goal kind (stairs) as every corpus dungeon has it (its count when the same in all of
        them, else at least one), all in the goal room; and a door on the corpus's entrance edge."""
        sp = m.spec
        facts = m.dungeon_facts()
        out = []
        if facts["goal_kinds"]:
            gk = np.zeros(len(sp.masks[facts["goal_kinds"][0]]), dtype=bool)
            for k in facts["goal_kinds"]:
                gk |= sp.masks[k]
            cells = np.argwhere(gk[grid])
            name = "/".join(facts["goal_kinds"])
            want = facts["goal_count"]
            if want is not None and len(cells) != want:
                out.append(f"{len(cells)} {name} tiles, every corpus dungeon has {want}")
            elif want is None and not len(cells):
                out.append(f"no {name} tile")
            goal = level.metadata.get("goal_room")
            reg = next((g for g in level.regions if goal is not None and g.id == f"room-{int(goal) + 1}"), None)
            if reg is not None:
                away = [(int(x), int(y)) for y, x in cells
                        if not (reg.x <= x < reg.x + reg.w and reg.y <= y < reg.y + reg.h)]
                if away:
                    out.append(f"{name} outside the goal room (room {int(goal) + 1}) at x={away[0][0]}, y={away[0][1]}")
        side = facts["entrance"]
        if side:
            door = sp.masks["door"] | sp.masks["locked"]
            edge = {"n": grid[0], "s": grid[-1], "w": grid[:, 0], "e": grid[:, -1]}[side]
            if not door[edge].any():
                where = {"n": "top", "s": "bottom", "w": "left", "e": "right"}[side]
                out.append(f"no entrance: no door in the map's {where} edge (the corpus's entrance side)")
        return out

    # ------------------------------------------------------------------ for conjure evaluate
    def corpus(self, params: dict):
        """The corpus the weights in ``params`` were trained on (re-read from the files their card lists)."""
        return load(params.get("weights", ""), params.get("model", "side")).corpus()

    def corpus_split(self, params: dict, corpus):
        return load(params.get("weights", ""), params.get("model", "side")).split(corpus)

    def rules(self, params: dict):
        return load(params.get("weights", ""), params.get("model", "side")).spec.rules

    # ------------------------------------------------------------------ LevelControls (conjure evaluate --controls)
    def level_controls(self, params: dict) -> dict[str, tuple[str, ...]]:
        """The control attributes the weights in use can be asked, with their buckets."""
        sp = load(params.get("weights", ""), params.get("model", "side")).spec
        return {a: tuple(b for b in CHOICES if b != "any" and not (a == "rooms" and b == "none"))
                for a in ATTRS[sp.view] if a in sp.available}

    def measure_controls(self, level, params: dict) -> dict[str, str]:
        """The bucket each control lands in, leaving out those ``validate`` does not check for this level (a
        bucket the level is too short to hold)."""
        m = load(params.get("weights", ""), params.get("model", "side"))
        sp = m.spec
        grid = level_grid(level, sp)
        if grid is None:
            return {}
        got = measure(m, grid, level.metadata.get("rooms"))
        n_rooms = int(level.metadata.get("rooms") or 1)
        out = {}
        for a, b in got.items():
            asked = params.get(a, "any")
            width = sp.extent(grid) if sp.view == "side" else (100 * n_rooms if a == "enemies" else 100)
            if asked in (None, "any") or a == "rooms" or sp.buckets.count_range(a, asked, width)[2]:
                out[a] = b
        return out

    def read_corpus(self, paths, legend=None):
        from .learned_levels.corpus import load_corpus

        return load_corpus(list(paths), legend=legend)

    train_options = ("tiny", "d", "layers", "heads", "ctx", "lr", "batch", "steps", "holdout", "drop", "dropout",
                     "calibrate", "kinds")

    def train(self, job) -> dict:
        from .learned_level_lm.train import train

        return train(job, GEN_ID, self.version)


class _Tempered:
    """A network whose head logits are divided by a temperature (same cache and step otherwise)."""

    def __init__(self, net, t: float):
        self.net, self.t = net, t
        self.cfg, self.vbig = net.cfg, net.vbig / t

    def new_cache(self, n):
        return self.net.new_cache(n)

    def step(self, *a):
        return self.net.step(*a) / np.float32(self.t)


def length(m: Model, r: Request) -> int:
    """Side view: the level's length in strips: ``width`` columns, or for a vertical model ``height`` rows (0 =
    drawn between the corpus's lowest and highest level, from the request's own stream). The rules call a level vertical when it is more than twice as high as wide, so a
    vertical level must be (its start is then the lowest standing cell, its goal the highest)."""
    sp = m.spec
    if not sp.vertical:
        if r.params.get("height"):
            raise InputError(f"{GEN_ID}: height={r.params['height']}: this model's levels run left to right at "
                             f"{sp.h} rows (use width)")
        W = r.params["width"] or sp.width or 150
        if W < 16:
            raise InputError(f"{GEN_ID}: width={W}: side-view levels are 16 columns wide or more (0 = the model's "
                             f"usual, {sp.width or 150})")
        return W
    H = r.params.get("height")
    if not H and sp.heights:  # as the corpus: a height between its lowest and highest level's (own stream)
        lo = max(sp.heights[0], 2 * sp.h + 1)
        H = int(r.rng("level-lm", "height").integers(lo, max(lo, sp.heights[1]) + 1))
    H = H or max(sp.height, 2 * sp.h + 1)
    if H <= 2 * sp.h:
        raise InputError(f"{GEN_ID}: height={H}: this model's vertical levels are {sp.h} columns wide and must be "
                         f"more than {2 * sp.h} rows high (the rules' vertical levels)")
    return H


def job_stats(jobs) -> dict:
    return {"backtracks": int(sum(j.backtracks for j in jobs)), "strips_redone": int(sum(j.redone for j in jobs)),
            "pattern_fallbacks": int(sum(j.pattern_fallbacks for j in jobs)),
            "gave_up": bool(any(j.giveup for j in jobs))}


def level_grid(level, spec) -> np.ndarray | None:
    """The level's grid in corpus tile ids (entity tiles drawn back in), or None if it does not fit."""
    ts, under, kind = spec.tileset_parts
    g = level.tiles.astype(np.int64).copy()
    if g.size and int(g.max()) >= spec.V:
        return None
    by_kind: dict[str, int] = {}
    for tid, k in kind.items():
        by_kind.setdefault(k, tid)
    for e in level.entities:
        tid = by_kind.get(e.kind)
        if tid is not None and 0 <= e.y < g.shape[0] and 0 <= e.x < g.shape[1]:
            g[e.y, e.x] = tid
    return g


def measure(m: Model, grid: np.ndarray, rooms: int | None = None) -> dict[str, str]:
    """The bucket each control attribute of a level lands in."""
    sp = m.spec
    if sp.view == "side":
        return sp.side_buckets(grid)
    out = {}
    n = rooms or max(1, len(_rooms(sp, grid)))
    out["rooms"] = sp.buckets.bucket("rooms", float(n))
    if "enemies" in sp.available:
        out["enemies"] = sp.buckets.bucket("enemies", float(sp.masks["enemy"][grid].sum()) / n)
    if "keys" in sp.available:
        out["keys"] = sp.buckets.bucket("keys", float(sp.masks["key"][grid].sum()))
    return out


def fidelity(sp, grid: np.ndarray) -> float:
    """Share of the 3×3 windows (with the border round each level, or round each room for top down) that
    occur in the model's training corpus: 1.0 unless decoding ran past its budget."""
    if sp.view == "side":
        return sp.patterns.fidelity(sp.to_strips(grid))
    rooms = _rooms(sp, grid)
    return float(np.mean([sp.patterns.fidelity(t) for _, _, t in rooms])) if rooms else 1.0


def _rooms(sp, grid):
    from .learned_level_lm.spec import rooms_of

    return rooms_of(grid, sp.room, sp.masks["void"])


@hookimpl
def register_level_generators(register):
    register(LevelLM())
