"""``classic-character``: syllable names by culture style, a role with attributes from role templates plus
seeded variation under a points budget, traits, a backstory and a mirror-symmetric palette sprite with an
idle frame and a two-frame walk cycle.

Given a level as context (``context={"level": level}``) it returns a :class:`~engine.Cast` with the
player's hero and one character per enemy, NPC and town on the level; each character's id links to its
entity (``char-<entity id>``, with ``metadata["entity"]``). The game rules (attributes, roles, enemy roles)
live in :mod:`plugins.rules`.
"""
from __future__ import annotations

import numpy as np

from engine import Cast, Character, Generator, Param, Sprite, hookimpl
from engine.textfilter import default_filter

from .rules import ATTR_MAX, ATTR_MIN, ATTRS, ENEMY_ROLE, GOALS, HAIR, ORIGINS, ROLES, SKIN, TRAITS
from .words import pick

#: syllables (starts, middles, ends) per naming style of :data:`plugins.rules.STYLES`
STYLES = {
    "elven": (("ae", "el", "ith", "lor", "syl", "gal", "fin", "el", "ara", "cal"),
              ("a", "e", "i", "ia", "ie", "o", "ra", "le", "ri", "na"),
              ("iel", "wen", "dor", "las", "riel", "thir", "ion", "eth", "ath", "ar")),
    "dwarven": (("thr", "gim", "bal", "dur", "kaz", "bor", "dwa", "grom", "thor", "nor"),
                ("a", "o", "u", "i", "ur", "a", "o"),
                ("in", "li", "grim", "rak", "dun", "ok", "din", "mir", "bur", "ek")),
    "orcish": (("gr", "ug", "mok", "zug", "kar", "shak", "ur", "gor", "bol", "drak"),
               ("a", "u", "o", "ak", "uu", "ag"),
               ("ash", "uk", "gul", "nak", "rog", "zug", "mash", "th", "gor", "ub")),
    "nordic": (("sig", "har", "bjor", "ey", "thor", "ulf", "ing", "ast", "ragn", "frey"),
               ("a", "e", "i", "o", "ri", "va"),
               ("rid", "ald", "stein", "dis", "mund", "vald", "ar", "hild", "son", "borg")),
    "desert": (("za", "ka", "ras", "jam", "sa", "far", "nad", "qa", "ha", "ami"),
               ("a", "i", "e", "ri", "mi", "la"),
               ("ir", "im", "ra", "ah", "an", "ila", "uf", "ad", "een", "ar")),
}


def make_name(rng: np.random.Generator, style: str) -> str:
    starts, mids, ends = STYLES[style]
    filt = default_filter()
    for _ in range(100):
        parts = [pick(rng, starts)]
        if rng.random() < 0.6:
            parts.append(pick(rng, mids))
        parts.append(pick(rng, ends))
        name = "".join(parts)
        name = name[0].upper() + name[1:]
        if 3 <= len(name) <= 14 and filt.name_ok(name):
            return name
    return "Nameless"


def roll_attributes(rng: np.random.Generator, role: str, budget: int) -> dict[str, int]:
    """Attributes in ATTR_MIN..ATTR_MAX summing exactly to ``budget``, weighted by the role template."""
    weights = np.array(ROLES[role][0], dtype=float) * rng.uniform(0.7, 1.3, len(ATTRS))
    vals = np.full(len(ATTRS), ATTR_MIN)
    left = budget - vals.sum()
    while left > 0:
        room = vals < ATTR_MAX
        p = weights * room
        k = int(rng.choice(len(ATTRS), p=p / p.sum()))
        vals[k] += 1
        left -= 1
    return {a: int(v) for a, v in zip(ATTRS, vals)}


def make_sprite(rng: np.random.Generator, role: str, size: int = 16) -> Sprite:
    """Mirror-symmetric palette sprite; frames idle, walk1, walk2."""
    primary, secondary = ROLES[role][1]
    body = ROLES[role][2]
    skin, hair = pick(rng, SKIN), pick(rng, HAIR)
    jitter = lambda c: tuple(int(np.clip(v + rng.integers(-25, 26), 0, 255)) for v in c)  # noqa: E731
    palette = [(0, 0, 0, 0), (20, 16, 24, 255), (*skin, 255), (*jitter(primary), 255),
               (*jitter(secondary), 255), (*hair, 255), (250, 250, 250, 255)]
    h, w = size, size
    half = w // 2
    grid = np.zeros((h, half), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:half]
    cx = half - 0.5  # distance from the mirror axis
    dx = cx - xx
    if body == "person":
        head = (yy >= h * 0.12) & (yy < h * 0.42) & (dx < w * 0.22)
        torso = (yy >= h * 0.42) & (yy < h * 0.72) & (dx < w * 0.3)
        legs = (yy >= h * 0.72) & (yy < h - 1) & (dx >= w * 0.05) & (dx < w * 0.2)
        p_fill = np.where(head | torso | legs, 0.92, np.where(dx < w * 0.36, 0.12, 0.0))
    else:
        torso = (yy >= h * 0.35) & (yy < h * 0.75) & (dx < w * 0.42)
        head = (yy >= h * 0.2) & (yy < h * 0.5) & (dx < w * 0.18)
        legs = (yy >= h * 0.75) & (yy < h - 1) & (((dx >= w * 0.05) & (dx < w * 0.14)) | (dx >= w * 0.3))
        legs &= dx < w * 0.4
        p_fill = np.where(head | torso | legs, 0.9, np.where(dx < w * 0.45, 0.1, 0.0))
    p_fill[:1] = 0
    filled = rng.random((h, half)) < p_fill
    filled[:, 0] = False  # keep a transparent border column
    grid[filled] = 3
    grid[filled & head] = 2
    grid[filled & torso & (rng.random((h, half)) < 0.3)] = 4
    grid[filled & legs] = 4
    hair_rows = (yy >= h * 0.12) & (yy < h * 0.2)
    grid[filled & head & hair_rows] = 5
    eye_y, eye_x = int(h * 0.28), half - 1 - max(1, int(w * 0.1))
    if grid[eye_y, eye_x]:
        grid[eye_y, eye_x] = 6
    full = np.concatenate([grid, grid[:, ::-1]], axis=1)
    # outline: transparent cells touching a filled cell
    solid = full > 0
    pad = np.pad(solid, 1)
    touch = pad[:-2, 1:-1] | pad[2:, 1:-1] | pad[1:-1, :-2] | pad[1:-1, 2:]
    full[(~solid) & touch] = 1
    idle = full
    leg_top = int(h * 0.72)
    walk1, walk2 = idle.copy(), idle.copy()
    for frame, side in ((walk1, slice(0, half)), (walk2, slice(half, w))):
        legs_part = idle[leg_top:, side]
        frame[leg_top:, side] = 0
        frame[leg_top:h - 1, side] = legs_part[1:]  # one leg lifted
    frames = {"idle": idle, "walk1": walk1, "walk2": walk2}
    return Sprite(palette, frames, {"idle": ["idle"], "walk": ["walk1", "walk2"]})


def make_character(rng: np.random.Generator, cid: str, role: str, style: str, budget: int,
                   size: int) -> Character:
    name = make_name(rng, style)
    traits = sorted({pick(rng, TRAITS) for _ in range(3)})
    article = "an" if role[0] in "aeiou" else "a"
    backstory = (f"{name} grew up in {pick(rng, ORIGINS)} and became {article} {role} {pick(rng, GOALS)}. "
                 f"Known to be {' and '.join(traits[:2])}.")
    return Character(id=cid, name=name, role=role, attributes=roll_attributes(rng, role, budget),
                     traits=traits, sprite=make_sprite(rng, role, size), backstory=backstory, style=style)


class ClassicCharacter(Generator):
    id = "classic-character"
    kind = "character"
    version = "1"
    description = "Syllable names by style, role-templated stats under a budget, symmetric pixel sprites"
    params = (
        Param("style", "choice", "any", choices=("any", *STYLES), help="naming culture"),
        Param("role", "choice", "any", choices=("any", *ROLES), help="role (sets stats and colors)"),
        Param("budget", "int", 60, min=len(ATTRS) * ATTR_MIN, max=len(ATTRS) * ATTR_MAX,
              help="attribute points in total (each attribute 3..18)"),
        Param("sprite_size", "int", 16, min=8, max=32, help="sprite width and height in pixels (even)"),
        Param("max_cast", "int", 24, min=1, max=256, help="most characters in a cast made for a level"),
    )

    def generate(self, request):
        p = request.params
        rng = request.rng()
        size = p["sprite_size"] - p["sprite_size"] % 2

        def style():
            return p["style"] if p["style"] != "any" else pick(rng, tuple(STYLES))

        level = request.context.get("level")
        if level is None:
            role = p["role"] if p["role"] != "any" else pick(rng, tuple(r for r in ROLES if r != "beast"))
            ch = make_character(rng, f"char-{request.derive('id') % 10**8:08d}", role, style(), p["budget"], size)
            return ch
        chars = [make_character(rng, "char-hero", p["role"] if p["role"] != "any" else "warrior", style(),
                                p["budget"], size)]
        chars[0].metadata["entity"] = "spawn"
        for e in level.entities:
            if len(chars) >= p["max_cast"]:
                break
            if e.kind == "enemy":
                role = ENEMY_ROLE.get(str(e.properties.get("type", "")), "beast")
            elif e.kind in ("npc", "town"):
                role = pick(rng, ("merchant", "villager", "cleric")) if e.kind == "town" else "villager"
            else:
                continue
            ch = make_character(rng, f"char-{e.id}", role, style(), p["budget"], size)
            ch.metadata["entity"] = e.id
            ch.metadata["hostile"] = e.kind == "enemy"
            chars.append(ch)
        return Cast(chars, {"level_entities": len(level.entities)})

    def character_reference(self, params: dict) -> dict:
        """For ``conjure evaluate``: the shipped name corpora (style classifier, novelty) and the game rules."""
        from .learned_characters.data import shipped_names  # noqa: PLC0415

        return {"name_corpora": shipped_names(),
                "rules": {"attributes": list(ATTRS), "min": ATTR_MIN, "max": ATTR_MAX}}

    def validate(self, content, request):
        out = []
        budget = request.params["budget"]
        filt = default_filter()
        chars = content.characters if isinstance(content, Cast) else [content]
        for c in chars:
            vals = [c.attributes.get(a) for a in ATTRS]
            if None in vals or any(not ATTR_MIN <= v <= ATTR_MAX for v in vals):
                out.append(f"{c.id}: attributes outside {ATTR_MIN}..{ATTR_MAX}: {c.attributes}")
            elif sum(vals) != budget:
                out.append(f"{c.id}: attributes sum to {sum(vals)}, budget is {budget}")
            if not filt.name_ok(c.name):
                out.append(f"{c.id}: name {c.name!r} is rejected by the content filter")
        return out


@hookimpl
def register_character_generators(register):
    register(ClassicCharacter())
