"""``character-ml``: characters made of learned parts.

- **names** from a character-level GRU language model conditioned on a culture style (temperature as a
  param); names pass the content filter and are never exact copies of the training list unless
  ``allow_copies`` (both resampled, counted in ``metadata["name_resamples"]``);
- **stats** from a role-conditioned mixture over attribute proportions, allocated exactly to integers in
  ``ATTR_MIN..ATTR_MAX`` summing to the ``budget`` param (and checked again by ``validate``);
- **sprites** from a conditional convolutional VAE over 16x16 palette-slot sprites, decoded categorically,
  cleaned, outlined, mirrored when ``symmetric``, with an idle frame and a two-frame walk cycle; each
  character gets its own palette (skin, hair, role colors).

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
from engine.textfilter import ContentFilter, default_filter

from .classic_character import ATTR_MAX, ATTR_MIN, ATTRS, ENEMY_ROLE, GOALS, HAIR, ORIGINS, ROLES, SKIN, TRAITS
from .learned_characters.data import (MIN_NAME, attributes_ok, display_name, outline, read_corpora,
                                      walk_frames)
from .words import pick

STYLES = ("elven", "dwarven", "orcish", "nordic", "desert")
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
    version = "1"
    description = "Learned characters: GRU names by culture, role-conditioned stats, VAE pixel sprites"
    params = (
        Param("style", "choice", "any", choices=("any", *STYLES), help="naming culture"),
        Param("role", "choice", "any", choices=("any", *ROLES), help="role (stats, sprite, colors)"),
        Param("budget", "int", 60, min=len(ATTRS) * ATTR_MIN, max=len(ATTRS) * ATTR_MAX,
              help=f"attribute points in total (each attribute {ATTR_MIN}..{ATTR_MAX})"),
        Param("temperature", "float", 0.8, min=0.1, max=2.0, help="name sampling temperature"),
        Param("allow_copies", "bool", False, help="allow names that are in the training list"),
        Param("stats_spread", "float", 1.0, min=0.0, max=3.0, help="scale of the stats model's noise"),
        Param("variety", "float", 1.0, min=0.0, max=3.0, help="sprite novelty: latent mixing and noise (0 = corpus looks)"),
        Param("symmetric", "bool", True, help="mirror sprites left to right"),
        Param("max_cast", "int", 24, min=1, max=256, help="most characters in a cast made for a level"),
        Param("weights", "str", "", help="folder of trained weights (default: the shipped ones; missing "
                                         "parts fall back to them)"),
    )

    def __init__(self, content_filter: ContentFilter | None = None):
        self.content_filter = content_filter
        self._models: dict[tuple[str, str], Any] = {}
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

    # ------------------------------------------------------------------ planning (numpy only)
    def _plan(self, r: int, request) -> tuple[list[_Spec], dict | None]:
        p = request.params
        rng = request.rng()
        level = request.context.get("level")

        def style() -> str:
            return p["style"] if p["style"] != "any" else pick(rng, STYLES)

        def spec(index: int, cid: str, role: str, **meta: Any) -> _Spec:
            primary, secondary = ROLES[role][1]
            jitter = lambda c: tuple(int(np.clip(v + rng.integers(-25, 26), 0, 255)) for v in c)  # noqa: E731
            palette = [(0, 0, 0, 0), (20, 16, 24, 255), (*pick(rng, SKIN), 255), (*jitter(primary), 255),
                       (*jitter(secondary), 255), (*pick(rng, HAIR), 255), (245, 245, 235, 255),
                       (*pick(rng, METAL), 255)]
            traits = sorted({pick(rng, TRAITS) for _ in range(3)})
            return _Spec(r, index, cid, role, style(), p["budget"], traits, pick(rng, ORIGINS), pick(rng, GOALS),
                         palette, dict(meta))

        if level is None:
            role = p["role"] if p["role"] != "any" else pick(rng, tuple(x for x in ROLES if x != "beast"))
            return [spec(0, f"char-{request.derive('id') % 10**8:08d}", role)], None
        specs = [spec(0, "char-hero", p["role"] if p["role"] != "any" else "warrior", entity="spawn")]
        for e in level.entities:
            if len(specs) >= p["max_cast"]:
                break
            if e.kind == "enemy":
                role = ENEMY_ROLE.get(str(e.properties.get("type", "")), "beast")
            elif e.kind == "npc":
                role = str(e.properties.get("role", "villager"))
                role = role if role in ROLES else "villager"
            elif e.kind == "town":
                role = pick(rng, ("merchant", "villager", "cleric"))
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

        style_ids = [styles.index(s.style) if s.style in styles else 0 for s in specs]
        tokens, resamples = models.sample_names(lm, style_ids, gens("name"), temperature, accept)
        # stats: proportions from the mixture, then the exact allocation
        sm, _ = self.model("stats", weights)
        from .learned_characters.data import ROLE_NAMES, allocate  # noqa: PLC0415

        roles = [ROLE_NAMES.index(s.role) for s in specs]
        props = models.sample_proportions(sm, roles, gens("stats"), spread)
        # sprites
        vae, vae_extra = self.model("sprites", weights)
        grids = models.sample_sprites(vae, vae_extra["anchors"], vae_extra["anchor_roles"], roles, gens("sprite"),
                                      variety, symmetric)
        out = []
        for s, tok, n_re, pr, grid in zip(specs, tokens, resamples, props, grids):
            name = display_name(tok) if tok else "Nameless"
            attrs = {a: int(v) for a, v in zip(ATTRS, allocate(pr, s.budget))}
            w1, w2 = walk_frames(grid)
            sprite = Sprite(list(s.palette), {"idle": outline(grid), "walk1": outline(w1), "walk2": outline(w2)},
                            {"idle": ["idle"], "walk": ["walk1", "walk2"]})
            article = "an" if s.role[0] in "aeiou" else "a"
            backstory = (f"{name} grew up in {s.origin} and became {article} {s.role} {s.goal}. "
                         f"Known to be {' and '.join(s.traits[:2])}.")
            meta = dict(s.metadata)
            meta["name_resamples"] = int(n_re)
            out.append(Character(id=s.cid, name=name, role=s.role, attributes=attrs, traits=s.traits,
                                 sprite=sprite, backstory=backstory, style=s.style, metadata=meta))
        return out

    def validate(self, content, request):
        out = []
        budget = request.params["budget"]
        filt = self._filter()
        chars = content.characters if isinstance(content, Cast) else [content]
        for c in chars:
            why = attributes_ok(c.attributes, budget)
            if why:
                out.append(f"{c.id}: {why}")
            if not filt.name_ok(c.name):
                out.append(f"{c.id}: name {c.name!r} is rejected by the content filter")
            if c.sprite is None or not {"idle", "walk1", "walk2"} <= set(c.sprite.frames):
                out.append(f"{c.id}: sprite needs idle, walk1 and walk2 frames")
        return out

    # ------------------------------------------------------------------ training
    train_options = ("tiny", "any_style", "threads")

    def train(self, job):
        """Train the parts the data has (``.csv`` stats, text-art sprites, names ``.txt``)."""
        corpora = read_corpora(job.data)
        if not (corpora.names or corpora.stats or corpora.sprites):
            raise InputError("character-ml: no names (.txt), stats (.csv) or sprite (16x16 text art) files "
                             "in --data")
        unknown = sorted(set(corpora.names) - set(STYLES))
        if unknown and not job.options.get("any_style"):
            # new cultures are fine for the model, but the generator's style param only offers STYLES
            raise InputError(f"character-ml: unknown styles {', '.join(unknown)} (known: {', '.join(STYLES)}); "
                             f"name the files after a known style")
        from .learned_characters import models  # noqa: PLC0415

        result = models.train_all(corpora, job.out, job.epochs, job.seed, job.options, job.progress)
        result["config"]["data"] = {k: len(v) for k, v in corpora.files.items()}
        with self._lock:
            self._models.clear()
        return result


@hookimpl
def register_character_generators(register):
    register(CharacterML())
