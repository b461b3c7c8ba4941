"""``character-ml``: characters made of learned parts.

- **names** from a character-level GRU language model conditioned on a culture style (temperature as a
  param); names pass the content filter and are never exact copies of the training list unless
  ``allow_copies`` (both resampled, counted in ``metadata["name_resamples"]``);
- **stats** from a role-conditioned mixture over attribute proportions, allocated exactly to integers in
  ``ATTR_MIN..ATTR_MAX`` summing to the ``budget`` param (and checked again by ``validate``);
- **sprites** from a conditional convolutional VAE over the two idle frames (facing down and facing side) of
  16x16 palette-slot sprites, sampled from a Gaussian mixture per role fitted to the training codes, decoded at the
  most likely slot, cleaned, redrawn while too close to a training sprite, then finished by construction:
  a two-frame walk per facing that keeps the idle frame's colors in place, and an outline; one palette of
  8 slots per character (skin, hair, role colors).

``style`` and ``role`` are checked against the trained weights: asking for one they do not have is an
InputError naming the ones they do.

With a level as context it returns a :class:`~engine.Cast`: the hero plus one character per enemy, NPC and
town, ids ``char-<entity id>`` and ``metadata["entity"]``/``["hostile"]`` as ``classic-character`` does.

Torch is imported only when a character is first generated or a model trained (the models live in
:mod:`plugins.learned_characters.models`). ``conjure train character-ml --data DIR_OR_FILE ...`` sorts the
files by type: ``.csv`` -> stats, 16x16 text art -> sprites, other ``.txt`` -> names (style = file stem).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import Cast, Character, Generator, Param, Sprite, hookimpl
from engine.errors import InputError
from engine.eval_characters import pixel_art_problems_many
from engine.textfilter import ContentFilter, default_filter

from .learned_characters.data import (ANIMATIONS, FRAMES, MIN_NAME, attributes_ok, display_name, finish_many,
                                      read_corpora)
from .rules import (ATTR_MAX, ATTR_MIN, ATTRS, ENEMY_ROLE, GOALS, HAIR, ORIGINS, PERSON_ROLES, ROLES, SKIN,
                    STYLES, TRAITS)
from .words import pick

PARTS = ("names", "stats", "sprites")
SHIPPED = Path(__file__).resolve().parent / "data" / "models" / "character-ml"
METAL = ((165, 170, 180), (200, 170, 60), (150, 100, 60))


@dataclass
class _Spec:
    """One character to make: decided by the request's numpy stream before any model runs."""

    req: int  # index of the request in the batch
    index: int  # index of the character in its request (names its torch streams)
    cid: str
    role: str
    style: str
    budget: int
    traits: list[str]
    origin: str
    goal: str
    palette: list[tuple[int, int, int, int]]
    metadata: dict = field(default_factory=dict)


class CharacterML(Generator):
    id = "character-ml"
    kind = "character"
    version = "2"
    description = ("Learned characters: GRU names by culture, role-conditioned stats, VAE pixel sprites facing "
                   "down and side")
    params = (
        Param("style", "str", "any", help=f"naming culture: any or one the name weights have (shipped: "
                                          f"{', '.join(STYLES)})"),
        Param("role", "str", "any", help="role (stats, sprite, colors): any or one the weights have (shipped: "
                                         f"{', '.join(ROLES)})"),
        Param("budget", "int", 60, min=len(ATTRS) * ATTR_MIN, max=len(ATTRS) * ATTR_MAX,
              help=f"attribute points in total (each attribute {ATTR_MIN}..{ATTR_MAX})"),
        Param("temperature", "float", 0.8, min=0.1, max=2.0, help="name sampling temperature"),
        Param("allow_copies", "bool", False, help="allow names that are in the training list"),
        Param("stats_spread", "float", 1.0, min=0.0, max=3.0, help="scale of the stats model's noise"),
        Param("variety", "float", 1.0, min=0.0, max=3.0,
              help="sprite spread around the role's learned look (scales the fitted prior; 0 = its mean)"),
        Param("symmetric", "bool", False, help="mirror the down-facing sprite left to right"),
        Param("max_cast", "int", 24, min=1, max=256, help="most characters in a cast made for a level"),
        Param("weights", "str", "", help="folder of trained weights (default: the shipped ones; missing "
                                         "parts fall back to them)"),
    )

    def __init__(self, content_filter: ContentFilter | None = None):
        self.content_filter = content_filter
        self._models: dict[tuple[str, str], Any] = {}
        self._available: dict[str, tuple[list[str], list[str]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ models
    def _filter(self) -> ContentFilter:
        return self.content_filter or default_filter()

    def _part_path(self, part: str, weights: str) -> Path:
        if weights:
            p = Path(weights) / f"{part}.safetensors"
            if p.is_file():
                return p
            if not Path(weights).is_dir():
                raise InputError(f"character-ml: weights folder {weights!r} does not exist")
        return SHIPPED / f"{part}.safetensors"

    def model(self, part: str, weights: str = ""):
        """(module, extra) for a part, loaded once per weights file (thread-safe)."""
        path = self._part_path(part, weights)
        key = (part, str(path.resolve()))
        with self._lock:
            got = self._models.get(key)
            if got is None:
                from .learned_characters import models  # noqa: PLC0415 - torch on first use only

                got = self._models[key] = models.read_part(path, part)
        return got

    def reference_names(self, weights: str = "") -> dict[str, list[str]]:
        """The names the name model was trained on (``{"all": [...]}``), for novelty metrics."""
        _, extra = self.model("names", weights)
        return {"all": sorted(extra["training_names"])}

    def character_reference(self, params: dict) -> dict:
        """What ``conjure evaluate`` compares this generator's characters with (see
        :mod:`engine.eval_characters`): the name corpora by style and the training names, the game rules,
        and the sprite corpus as slot grids (outlined idle frames, facing down and side) split into the
        sprites the model was trained on and those held out of its training."""
        from .learned_characters.data import outline  # noqa: PLC0415

        weights = params.get("weights", "")
        _, names = self.model("names", weights)
        _, sprites = self.model("sprites", weights)
        roles = sprites["roles"]

        def outlined(grids, role_ids):
            g = np.array([[outline(f) for f in pair] for pair in grids], dtype=np.uint8).reshape(-1, 2, 16, 16)
            return {"grids": g, "roles": [roles[int(r)] for r in role_ids]}

        return {
            "name_corpora": names["names_by_style"],
            "training_names": sorted(names["training_names"]),
            "rules": {"attributes": list(ATTRS), "min": ATTR_MIN, "max": ATTR_MAX},
            "sprite_frames": {"down": "idle", "side": "side_idle"},
            "training_sprites": outlined(sprites["train_grids"], sprites["train_roles"]),
            "heldout_sprites": outlined(sprites["heldout_grids"], sprites["heldout_roles"]),
            "max_colors": 16,
        }

    def available(self, weights: str = "") -> tuple[list[str], list[str]]:
        """(styles, roles) the weights offer: the name model's styles; roles both stats and sprites have."""
        got = self._available.get(weights)
        if got is None:
            _, names = self.model("names", weights)
            _, stats = self.model("stats", weights)
            _, sprites = self.model("sprites", weights)
            got = list(names["styles"]), [r for r in stats["roles"] if r in sprites["roles"]]
            if not got[1]:
                raise InputError(f"generator 'character-ml': the weights ({weights or 'shipped'}) have stats "
                                 f"roles {', '.join(stats['roles'])} and sprite roles "
                                 f"{', '.join(sprites['roles'])}: they share none (train both parts together)")
            with self._lock:
                self._available[weights] = got
        return got

    def _check_choice(self, what: str, value: str, have: list[str], weights: str) -> None:
        if value != "any" and value not in have:
            part = "names" if what == "style" else "stats and sprites"
            raise InputError(f"generator 'character-ml': parameter '{what}': {value!r} is not in the {part} "
                             f"weights ({weights or 'shipped'}); they have: {', '.join(have)}")

    # ------------------------------------------------------------------ planning (numpy only)
    def _plan(self, r: int, request) -> tuple[list[_Spec], dict | None]:
        p = request.params
        styles, roles = self.available(p["weights"])
        self._check_choice("style", p["style"], styles, p["weights"])
        self._check_choice("role", p["role"], roles, p["weights"])
        rng = request.rng()
        level = request.context.get("level")
        people = tuple(x for x in PERSON_ROLES if x in roles) or tuple(roles)

        def have(role: str, fallback: str) -> str:
            if role in roles:
                return role
            return fallback if fallback in roles else people[0]

        def spec(index: int, cid: str, role: str, **meta: Any) -> _Spec:
            u = iter(rng.random(21).tolist())  # a fixed amount per character, drawn at once

            def choose(seq):
                return seq[min(int(next(u) * len(seq)), len(seq) - 1)]

            unknown = [int(40 + 180 * next(u)) for _ in range(6)]  # colors of a role of the user's own data
            primary, secondary = ROLES[role].hues if role in ROLES else (tuple(unknown[:3]), tuple(unknown[3:]))
            jitter = [int(next(u) * 51) - 25 for _ in range(6)]
            shade = lambda c, j: tuple(min(255, max(0, v + d)) for v, d in zip(c, j))  # noqa: E731
            skin = choose(SKIN[4:] if role == "undead" else SKIN[:4])
            palette = [(0, 0, 0, 0), (20, 16, 24, 255), (*skin, 255), (*shade(primary, jitter[:3]), 255),
                       (*shade(secondary, jitter[3:]), 255), (*choose(HAIR), 255), (245, 245, 235, 255),
                       (*choose(METAL), 255)]
            traits = sorted({choose(TRAITS) for _ in range(3)})
            style = p["style"] if p["style"] != "any" else choose(tuple(styles))
            if p["style"] != "any":
                next(u)
            return _Spec(r, index, cid, role, style, p["budget"], traits, choose(ORIGINS), choose(GOALS),
                         palette, dict(meta))

        if level is None:
            role = p["role"] if p["role"] != "any" else pick(rng, people)
            return [spec(0, f"char-{request.derive('id') % 10**8:08d}", role)], None
        specs = [spec(0, "char-hero", p["role"] if p["role"] != "any" else have("warrior", "warrior"),
                      entity="spawn")]
        for e in level.entities:
            if len(specs) >= p["max_cast"]:
                break
            if e.kind == "enemy":
                role = have(ENEMY_ROLE.get(str(e.properties.get("type", "")), "beast"), "beast")
            elif e.kind == "npc":
                role = have(str(e.properties.get("role", "villager")), "villager")
            elif e.kind == "town":
                role = have(pick(rng, ("merchant", "villager", "cleric")), "villager")
            else:
                continue
            specs.append(spec(len(specs), f"char-{e.id}", role, entity=e.id, hostile=e.kind == "enemy"))
        return specs, {"level_entities": len(level.entities)}

    # ------------------------------------------------------------------ generation
    def generate(self, request):
        return self.generate_batch([request])[0]

    def generate_batch(self, requests):
        """One forward pass per part for every character of every request (rows are independent: the
        result for a request is the same as generating it alone)."""
        plans = [self._plan(r, req) for r, req in enumerate(requests)]
        specs = [s for sp, _ in plans for s in sp]
        groups: dict[tuple, list[_Spec]] = {}
        for s in specs:  # requests with different model-affecting params run as separate passes
            p = requests[s.req].params
            key = (p["weights"], p["temperature"], p["allow_copies"], p["stats_spread"], p["variety"],
                   p["symmetric"])
            groups.setdefault(key, []).append(s)
        made: dict[tuple[int, int], Character] = {}
        from .learned_levels.common import single_thread  # noqa: PLC0415

        with single_thread():  # one torch thread on every path (a second one only adds tail latency)
            for key, group in groups.items():
                for s, ch in zip(group, self._make(group, requests, *key)):
                    made[(s.req, s.index)] = ch
        out = []
        for r, (sp, cast_meta) in enumerate(plans):
            chars = [made[(r, s.index)] for s in sp]
            out.append(chars[0] if cast_meta is None else Cast(chars, cast_meta))
        return out

    def _make(self, specs: list[_Spec], requests, weights: str, temperature: float, allow_copies: bool,
              spread: float, variety: float, symmetric: bool) -> list[Character]:
        from .learned_characters import models  # noqa: PLC0415 - torch on first use only

        def gens(part: str):
            return [requests[s.req].torch_generator(part, s.index) for s in specs]

        # names: filtered, novel, unique within a cast
        lm, lm_extra = self.model("names", weights)
        styles = lm_extra["styles"]
        seen = lm_extra["training_names"]
        filt = self._filter()
        taken: dict[int, set[str]] = {}

        def accept(i: int, token: str) -> bool:
            s = specs[i]
            if len(token) < MIN_NAME or token[0] in "'-" or token[-1] in "'-":
                return False
            if not allow_copies and token in seen:
                return False
            name = display_name(token)
            used = taken.setdefault(s.req, set())
            if name in used or not filt.name_ok(name):
                return False
            used.add(name)
            return True

        style_ids = [styles.index(s.style) for s in specs]
        tokens, resamples = models.sample_names(lm, style_ids, gens("name"), temperature, accept)
        # stats: proportions from the mixture, then the exact allocation
        sm, sm_extra = self.model("stats", weights)
        from .learned_characters.data import allocate_many  # noqa: PLC0415

        props = models.sample_proportions(sm, [sm_extra["roles"].index(s.role) for s in specs], gens("stats"), spread)
        allocated = allocate_many(props, [s.budget for s in specs])
        # sprites: both idle frames from the VAE, then walk frames and outlines by construction
        vae, vae_extra = self.model("sprites", weights)
        pairs, redraws = models.sample_sprites(vae, vae_extra["train_onehot"],
                                               [vae_extra["roles"].index(s.role) for s in specs], gens("sprite"),
                                               variety, symmetric)
        frames = finish_many(np.stack([d for d, _ in pairs]), np.stack([sd for _, sd in pairs]))
        out = []
        for s, tok, n_re, alloc, stack, n_draw in zip(specs, tokens, resamples, allocated, frames, redraws):
            name = display_name(tok) if tok else "Nameless"
            attrs = {a: int(v) for a, v in zip(ATTRS, alloc)}
            sprite = Sprite(list(s.palette), dict(zip(FRAMES, stack)), {k: list(v) for k, v in ANIMATIONS.items()})
            article = "an" if s.role[0] in "aeiou" else "a"
            backstory = (f"{name} grew up in {s.origin} and became {article} {s.role} {s.goal}. "
                         f"Known to be {' and '.join(s.traits[:2])}.")
            meta = dict(s.metadata)
            meta["name_resamples"] = int(n_re)
            meta["sprite_redraws"] = int(n_draw)
            out.append(Character(id=s.cid, name=name, role=s.role, attributes=attrs, traits=s.traits,
                                 sprite=sprite, backstory=backstory, style=s.style, metadata=meta))
        return out

    def validate(self, content, request):
        return self.validate_batch([content], [request])[0]

    def validate_batch(self, contents, requests):
        """``validate`` for many items: the pixel-art rules checked for all their sprites at once
        (:func:`~engine.eval_characters.pixel_art_problems_many`); the same problems, item by item."""
        filt = self._filter()
        chars = [content.characters if isinstance(content, Cast) else [content] for content in contents]
        drawn = [c.sprite for cs in chars for c in cs
                 if c.sprite is not None and set(c.sprite.frames) == set(FRAMES)]
        art = iter(pixel_art_problems_many(drawn))
        found = []
        for cs, request in zip(chars, requests):
            out = []
            budget = request.params["budget"]
            for c in cs:
                why = attributes_ok(c.attributes, budget)
                if why:
                    out.append(f"{c.id}: {why}")
                if not filt.name_ok(c.name):
                    out.append(f"{c.id}: name {c.name!r} is rejected by the content filter")
                if c.sprite is None or set(c.sprite.frames) != set(FRAMES):
                    out.append(f"{c.id}: sprite needs the frames {', '.join(FRAMES)}")
                else:
                    out += [f"{c.id}: {why}" for why in next(art)]
            found.append(out)
        return found

    # ------------------------------------------------------------------ training
    train_options = ("tiny", "threads")

    def train(self, job):
        """Train the parts the data has (``.csv`` stats, text-art sprites, names ``.txt``). Styles are the
        name files' styles and roles the stats CSV's and sprite files' roles: whatever the data brings."""
        corpora = read_corpora(job.data)
        if not (corpora.names or corpora.stats or corpora.sprites):
            raise InputError("character-ml: no names (.txt), stats (.csv) or sprite (16x16 text art) files "
                             "in --data")
        stat_roles = set(corpora.stats[0]) if corpora.stats else None
        sprite_roles = {a.role for a in corpora.sprites} if corpora.sprites else None
        if (stat_roles is None) != (sprite_roles is None):  # one part trained, the other stays shipped
            _, shipped = self.model("sprites" if sprite_roles is None else "stats")
            stat_roles = stat_roles if stat_roles is not None else set(shipped["roles"])
            sprite_roles = sprite_roles if sprite_roles is not None else set(shipped["roles"])
        if stat_roles is not None and not stat_roles & sprite_roles:
            raise InputError(f"character-ml: the stats roles ({', '.join(sorted(stat_roles))}) and the sprite "
                             f"roles ({', '.join(sorted(sprite_roles))}) share none: give stats and sprites for "
                             "the same roles")
        from .learned_characters import models  # noqa: PLC0415

        result = models.train_all(corpora, job.out, job.epochs, job.seed, job.options, job.progress)
        result["config"]["data"] = {k: len(v) for k, v in corpora.files.items()}
        with self._lock:
            self._models.clear()
            self._available.clear()
        return result


@hookimpl
def register_character_generators(register):
    register(CharacterML())
