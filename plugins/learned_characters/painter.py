"""The script that paints the shipped sprite corpus of ``character-ml`` (authored by this project).

Every corpus character is drawn from a seeded set of body-plan parameters: a person (head size and height,
hair or headwear, torso and robe shapes, legs, held gear) or a beast (slime, bat, rat, spider, wolf, beetle,
snake), each role with its own headwear, clothes and gear vocabularies. One set of parameters is painted
twice, facing **down** (front view) and facing **side** (profile, facing right; the left facing is the
mirror), as palette *slots* (:data:`plugins.learned_characters.data.SLOT_CHARS`). The walk frames and the
outline are then made by the same functions that finish generated sprites
(:func:`~plugins.learned_characters.data.finish`), so corpus and generated characters obey the same
pixel-art rules by construction.

numpy only; deterministic for a seed. ``python -m plugins.learned_characters.corpus`` writes the files.
"""
from __future__ import annotations

import numpy as np

from .data import EYE, HAIR, METAL, PRIMARY, SECONDARY, SKIN, SPRITE_SIZE

S = SPRITE_SIZE
FEET = S - 2  # the lowest row a figure may use (the last row stays free for the outline)


def _rect(g: np.ndarray, y0: int, y1: int, x0: int, x1: int, v: int) -> None:
    """Fill rows y0..y1 and columns x0..x1 (inclusive, clipped to the 1-pixel border)."""
    y0, y1, x0, x1 = max(y0, 1), min(y1, S - 2), max(x0, 1), min(x1, S - 2)
    if y0 <= y1 and x0 <= x1:
        g[y0:y1 + 1, x0:x1 + 1] = v


def _px(g: np.ndarray, y: int, x: int, v: int) -> None:
    if 1 <= y <= S - 2 and 1 <= x <= S - 2:
        g[y, x] = v


# --------------------------------------------------------------------------------------------- people
# each role has its own vocabulary of headwear, clothes and gear (no part is shared between roles), so a
# role can be told from its look
HEADWEAR = {
    "warrior": ("helm", "horned", "plume"),
    "mage": ("pointed", "wide_pointed"),
    "rogue": ("hood", "mask", "bandana"),
    "cleric": ("mitre", "halo", "circlet"),
    "ranger": ("feather_cap",),
    "merchant": ("wide_hat", "turban", "cap"),
    "villager": ("bare", "straw_hat", "bun", "long_hair"),
    "undead": ("skull", "crown_skull", "zombie"),
}
BODY = {
    "warrior": ("armor",),
    "mage": ("robe",),
    "rogue": ("cloak",),
    "cleric": ("tabard", "vestment"),
    "ranger": ("jerkin",),
    "merchant": ("coat",),
    "villager": ("tunic", "apron", "dress"),
    "undead": ("ribs", "rags"),
}
GEAR = {
    "warrior": ("sword", "sword_shield", "axe"),
    "mage": ("staff", "orb"),
    "rogue": ("daggers", "dagger"),
    "cleric": ("mace", "book"),
    "ranger": ("bow", "spear"),
    "merchant": ("bag", "purse"),
    "villager": ("pitchfork", "basket", "bucket", "none"),
    "undead": ("none", "club"),
}


def person_params(rng: np.random.Generator, role: str) -> dict:
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    return {
        "top": int(rng.integers(3, 6)),  # head top row
        "head_w": int(pick((6, 6, 8))),
        "head_h": int(pick((4, 5, 5))),
        "torso_w": int(pick((6, 6, 8, 8))),
        "legs": int(pick((2, 3, 3))),
        "leg_gap": int(pick((0, 1, 2))),
        "headwear": pick(HEADWEAR[role]),
        "body": pick(BODY[role]),
        "gear": pick(GEAR[role]),
        "belt": bool(rng.random() < 0.5),
        "eyes_low": bool(rng.random() < 0.4),
    }


def _person_frame(p: dict, side: bool) -> np.ndarray:
    g = np.zeros((S, S), dtype=np.uint8)
    t, hh = p["top"], p["head_h"]
    hw = p["head_w"] - (1 if side else 0)
    cx = 8  # the figure's centre column (between columns 7 and 8 when facing down)
    hx0 = cx - p["head_w"] // 2 if not side else cx - 3
    hx1 = hx0 + hw - 1
    b = t + hh  # first body row
    leg0 = FEET - p["legs"] + 1  # first leg row
    tw = p["torso_w"] if not side else max(4, p["torso_w"] - 2)
    tx0 = cx - tw // 2 if not side else cx - 3
    tx1 = tx0 + tw - 1
    body, hw_kind, gear = p["body"], p["headwear"], p["gear"]
    skull = hw_kind in ("skull", "crown_skull")
    face = EYE if skull else SKIN
    # --- legs
    if body in ("robe", "dress", "vestment"):
        hem = FEET - 1
        _rect(g, b, hem, tx0, tx1, PRIMARY)
        flare = 2 if body == "dress" else 1
        _rect(g, hem - 1, hem, tx0 - flare + (flare if side else 0), tx1 + flare, PRIMARY)
        if side:
            _rect(g, FEET, FEET, tx0 + 1, tx0 + 3, SECONDARY)
        else:
            _rect(g, FEET, FEET, cx - 3, cx - 2, SECONDARY)
            _rect(g, FEET, FEET, cx + 1, cx + 2, SECONDARY)
    else:
        if side:
            _rect(g, leg0, FEET, tx0 + 1, tx0 + 3, SECONDARY if body != "ribs" else EYE)
            _px(g, FEET, tx0 + 4, SECONDARY if body != "ribs" else EYE)
        else:
            gap = p["leg_gap"]
            lw = 2 if body != "ribs" else 1
            left1 = cx - 1 - gap // 2 - (gap % 2)
            _rect(g, leg0, FEET, left1 - lw + 1, left1, SECONDARY if body != "ribs" else EYE)
            right0 = cx + gap // 2
            _rect(g, leg0, FEET, right0, right0 + lw - 1, SECONDARY if body != "ribs" else EYE)
        # --- torso
        torso_end = leg0 - 1
        if body == "ribs":
            for y in range(b, torso_end + 1):
                if (y - b) % 2 == 0:
                    _rect(g, y, y, tx0 + 1, tx1 - 1, EYE)
                else:
                    _px(g, y, (tx0 + tx1) // 2 + (0 if side else 0), EYE)
                    if not side:
                        _px(g, y, (tx0 + tx1) // 2 + 1, EYE)
        else:
            _rect(g, b, torso_end, tx0, tx1, PRIMARY)
            if body == "armor":
                _rect(g, b, torso_end - 1, tx0 + 1, tx1 - 1, METAL)
                _rect(g, b + 1, torso_end - 1, cx - 1 if not side else tx0 + 1, cx if not side else tx0 + 2, PRIMARY)
            elif body == "apron":
                _rect(g, b + 1, torso_end, tx0 + 1, tx1 - 1, EYE)
            elif body == "cloak":
                _rect(g, b, torso_end + 1, tx0 - (0 if side else 1), tx0, SECONDARY)
                if not side:
                    _rect(g, b, torso_end + 1, tx1, tx1 + 1, SECONDARY)
            elif body == "coat":
                _rect(g, b + 1, torso_end, tx0 - 1 + (1 if side else 0), tx1 + 1, PRIMARY)
                if not side:
                    _rect(g, b, torso_end, cx - 1, cx, SECONDARY)
            elif body == "tabard":
                _rect(g, b, torso_end + 1, cx - 1 if not side else tx0 + 1, cx if not side else tx0 + 2, EYE)
            elif body == "rags":
                for x in range(tx0, tx1 + 1, 2):
                    _px(g, torso_end + 1, x, PRIMARY)
            if p["belt"] and body not in ("rags",):
                _rect(g, torso_end, torso_end, tx0, tx1, SECONDARY)
    if body in ("robe", "dress", "vestment") and p["belt"]:
        _rect(g, b + 2, b + 2, tx0, tx1, SECONDARY)
    if body == "vestment":
        _rect(g, b, FEET - 1, cx - 1 if not side else tx0 + 2, cx if not side else tx0 + 2, EYE)
    elif body == "jerkin":
        for k in range(min(4, torso_end - b + 1)):
            _px(g, b + k, (tx0 + k) if not side else tx0 + 1, HAIR)
    # --- arms
    arm_len = 3
    if side:
        ax = tx1
        _rect(g, b + 1, b + arm_len - 1, ax, ax, PRIMARY if body != "ribs" else EYE)
        _px(g, b + arm_len, ax + 1 if gear != "none" else ax, face)
        hand = (b + arm_len, ax + 1 if gear != "none" else ax)
        hands = [hand]
    else:
        lx, rx = tx0 - 1, tx1 + 1
        arm = PRIMARY if body != "ribs" else EYE
        _rect(g, b, b + arm_len - 1, lx, lx, arm)
        _rect(g, b, b + arm_len - 1, rx, rx, arm)
        _px(g, b + arm_len, lx, face)
        _px(g, b + arm_len, rx, face)
        hands = [(b + arm_len, lx), (b + arm_len, rx)]
    # --- head
    _rect(g, t, t + hh - 1, hx0, hx1, face)
    ey = t + (2 if p["eyes_low"] or hh == 4 else 1) + (1 if hh == 5 else 0)
    ey = min(ey, t + hh - 2)
    if side:
        _px(g, ey, hx1 - 1, HAIR if skull else EYE)
        _px(g, ey + 1, hx1 + 1, face)  # nose
        _rect(g, t, t + hh - 2, hx0, hx0 + 1, HAIR if not skull else EYE)
    else:
        eye = HAIR if skull else EYE
        _px(g, ey, cx - 2, eye)
        _px(g, ey, cx + 1, eye)
    if skull:
        _rect(g, t + hh - 1, t + hh - 1, hx0 + 1, hx1 - 1, EYE)
        if not side:
            _px(g, t + hh - 1, cx - 1, HAIR)
    # hair / headwear
    hxm = (hx0 + hx1) // 2
    if hw_kind in ("bare", "zombie"):
        _rect(g, t, t, hx0, hx1, HAIR)
        if not side:
            _px(g, t + 1, hx0, HAIR)
            _px(g, t + 1, hx1, HAIR)
        if hw_kind == "zombie":
            _px(g, t, hx0 + 1, SKIN)
    elif hw_kind == "long_hair":
        _rect(g, t - 1, t, hx0, hx1, HAIR)
        _rect(g, t, t + hh + 1, hx0 - 1, hx0, HAIR)
        if not side:
            _rect(g, t, t + hh + 1, hx1, hx1 + 1, HAIR)
    elif hw_kind == "bun":
        _rect(g, t, t, hx0, hx1, HAIR)
        _rect(g, t - 2, t - 1, hxm - (0 if side else 1) - (2 if side else 0), hxm + 1 - (2 if side else 0), HAIR)
    elif hw_kind in ("helm", "horned", "plume"):
        _rect(g, t - 1, t + 1, hx0 - 1, hx1 + 1 - (1 if side else 0), METAL)
        _rect(g, t + 2, t + hh - 2, hx0 - 1, hx0, METAL)
        if not side:
            _rect(g, t + 2, t + hh - 2, hx1, hx1 + 1, METAL)
        if hw_kind == "horned":
            _rect(g, t - 3, t - 2, hx0 - 1, hx0 - 1, EYE)
            if not side:
                _rect(g, t - 3, t - 2, hx1 + 1, hx1 + 1, EYE)
        elif hw_kind == "plume":
            _rect(g, t - 3, t - 2, hxm - (2 if side else 0), hxm + 1 - (2 if side else 0), PRIMARY)
    elif hw_kind in ("pointed", "wide_pointed"):
        brim = 2 if hw_kind == "wide_pointed" else 1
        _rect(g, t, t, hx0 - brim, hx1 + brim, PRIMARY)
        for k, y in enumerate(range(t - 1, t - 5, -1)):
            half = max(0, (hw // 2) - 1 - k)
            lean = k // 2 if side else 0
            _rect(g, y, y, hxm - half - lean, hxm + 1 + half - lean - (1 if half == 0 else 0), PRIMARY)
        _rect(g, t, t, hx0, hx1, SECONDARY)
    elif hw_kind == "hood":
        _rect(g, t - 1, t, hx0 - 1, hx1 + 1 - (1 if side else 0), PRIMARY)
        _rect(g, t + 1, t + hh, hx0 - 1, hx0, PRIMARY)
        if not side:
            _rect(g, t + 1, t + hh, hx1, hx1 + 1, PRIMARY)
        else:
            _rect(g, t + 1, t + hh, hx0 - 1, hx0 + 1, PRIMARY)
    elif hw_kind == "mask":
        _rect(g, t, t, hx0, hx1, HAIR)
        _rect(g, ey, ey, hx0, hx1, SECONDARY)
        _px(g, ey, hx1 - 1 if side else cx - 2, EYE)
        if not side:
            _px(g, ey, cx + 1, EYE)
    elif hw_kind == "bandana":
        _rect(g, t - 1, t, hx0, hx1, SECONDARY)
        _px(g, t, hx0 - 1, SECONDARY)
        _px(g, t + 1, hx0 - 1 - (1 if side else 0), SECONDARY)
    elif hw_kind == "mitre":
        _rect(g, t - 4, t, hxm - 1 - (1 if side else 0), hxm + 2 - (1 if side else 0), EYE)
        _rect(g, t - 3, t - 1, hxm - (1 if side else 0), hxm - (1 if side else 0), METAL)
        _rect(g, t - 2, t - 2, hxm - 1 - (1 if side else 0), hxm + 1 - (1 if side else 0), METAL)
    elif hw_kind == "halo":
        _rect(g, t, t, hx0, hx1, HAIR)
        _rect(g, t - 2, t - 2, hx0, hx1, METAL)
        _px(g, t - 2, hx0, 0)
        _px(g, t - 2, hx1, 0)
    elif hw_kind == "circlet":
        _rect(g, t - 1, t, hx0, hx1, HAIR)
        _rect(g, t + 1, t + 1, hx0, hx1, METAL)
        _px(g, t + 1, hxm if side else cx - 1, EYE)
    elif hw_kind == "feather_cap":
        _rect(g, t - 1, t, hx0 - (0 if side else 1), hx1 + 1, PRIMARY)
        _rect(g, t - 3, t - 2, hx0 - 1, hx0 - 1, EYE)
        _px(g, t - 2, hx0, EYE)
    elif hw_kind == "wide_hat":
        _rect(g, t, t, hx0 - 2, hx1 + 2, PRIMARY)
        _rect(g, t - 2, t - 1, hx0, hx1, PRIMARY)
        _rect(g, t - 1, t - 1, hx0, hx1, SECONDARY)
    elif hw_kind == "straw_hat":
        _rect(g, t, t, hx0 - 2, hx1 + 2, METAL)
        _rect(g, t - 2, t - 1, hx0 + 1, hx1 - 1, METAL)
    elif hw_kind == "turban":
        _rect(g, t - 2, t, hx0 - 1, hx1 + 1 - (1 if side else 0), EYE)
        _rect(g, t - 1, t - 1, hx0, hx1 - (1 if side else 0), SECONDARY)
        _px(g, t - 2, hxm, METAL)
    elif hw_kind == "cap":
        _rect(g, t - 1, t, hx0, hx1, SECONDARY)
        _rect(g, t, t, hx1 + 1, hx1 + (2 if side else 1), SECONDARY)
    elif hw_kind == "crown_skull":
        _rect(g, t - 1, t - 1, hx0, hx1, METAL)
        for x in range(hx0, hx1 + 1, 2):
            _px(g, t - 2, x, METAL)
    # --- gear (held in the right hand facing down, in front facing right)
    hy, hx = hands[-1]
    front = 1 if side else 1
    if gear in ("sword", "sword_shield"):
        _rect(g, hy - 5, hy - 1, hx + front, hx + front, METAL)
        _px(g, hy, hx + front, SECONDARY)
        _rect(g, hy - 1, hy - 1, hx, hx + front + 1, SECONDARY)
        if gear == "sword_shield":
            if side:
                _rect(g, b + 1, b + 4, tx0 - 1, tx0, METAL)
                _px(g, b + 2, tx0 - 1, PRIMARY)
            else:
                ly, lx = hands[0]
                _rect(g, ly - 3, ly, lx - 2, lx, METAL)
                _rect(g, ly - 2, ly - 1, lx - 1, lx - 1, PRIMARY)
    elif gear == "axe":
        _rect(g, hy - 5, hy, hx + front, hx + front, SECONDARY)
        _rect(g, hy - 5, hy - 3, hx + front + 1, hx + front + 2, METAL)
    elif gear == "spear":
        _rect(g, max(1, hy - 9), FEET - 1, hx + front, hx + front, SECONDARY)
        _rect(g, max(1, hy - 10), max(1, hy - 9), hx + front, hx + front, METAL)
    elif gear == "staff":
        top = max(1, t - 3)
        _rect(g, top + 1, FEET, hx + front, hx + front, SECONDARY)
        _rect(g, top, top + 1, hx + front - 1, hx + front + 1, EYE)
    elif gear == "orb":
        _rect(g, hy - 2, hy - 1, hx, hx + 1, EYE)
        _px(g, hy - 2, hx + 1, METAL)
    elif gear in ("dagger", "daggers"):
        _rect(g, hy - 2, hy, hx + (1 if side else 0), hx + (1 if side else 0), METAL)
        if gear == "daggers" and not side:
            ly, lx = hands[0]
            _rect(g, ly - 2, ly, lx, lx, METAL)
    elif gear == "club":
        _rect(g, hy - 3, hy, hx + front, hx + front, EYE)
        _rect(g, hy - 4, hy - 3, hx + front, hx + front + 1, EYE)
    elif gear == "mace":
        _rect(g, hy - 2, hy, hx + front, hx + front, SECONDARY)
        _rect(g, hy - 4, hy - 3, hx + front - 1 + (1 if side else 0), hx + front + 1, METAL)
    elif gear == "book":
        _rect(g, hy - 1, hy + 1, hx, hx + 2 - (1 if not side else 0), SECONDARY)
        _px(g, hy, hx + 1 - (1 if not side else 0), EYE)
    elif gear == "bow":
        x = hx + front
        _rect(g, hy - 4, hy + 2, x, x, SECONDARY)
        _px(g, hy - 5, x - 1, SECONDARY)
        _px(g, hy + 3, x - 1, SECONDARY)
        if not side:
            _rect(g, b - 1, b + 2, tx0 + 1, tx0 + 1, HAIR)  # quiver behind the shoulder
    elif gear in ("bag", "purse"):
        big = gear == "bag"
        _rect(g, hy, hy + (2 if big else 1), hx - (1 if big else 0), hx + 1, SECONDARY)
        _px(g, hy, hx + (1 if big else 0), METAL)
    elif gear == "pitchfork":
        x = hx + front
        _rect(g, hy - 5, FEET, x, x, SECONDARY)
        _rect(g, hy - 6, hy - 6, x - 1, x + 1, METAL)
        _px(g, hy - 7, x - 1, METAL)
        _px(g, hy - 7, x + 1, METAL)
    elif gear == "basket":
        _rect(g, hy, hy + 1, hx - 1, hx + 1, METAL)
        _px(g, hy - 1, hx, METAL)
    elif gear == "bucket":
        _rect(g, hy + 1, hy + 2, hx, hx + 2, METAL)
        _rect(g, hy, hy, hx, hx + 2, SECONDARY)
    return g


# --------------------------------------------------------------------------------------------- beasts
SPECIES = ("slime", "bat", "rat", "spider", "wolf", "beetle", "snake")


def beast_params(rng: np.random.Generator) -> dict:
    return {"species": SPECIES[int(rng.integers(len(SPECIES)))], "w": int(rng.integers(0, 3)),
            "h": int(rng.integers(0, 3)), "eyes": int(rng.integers(0, 2)), "spots": bool(rng.random() < 0.4)}


def _beast_frame(p: dict, side: bool) -> np.ndarray:
    g = np.zeros((S, S), dtype=np.uint8)
    sp, w, h = p["species"], p["w"], p["h"]
    if sp == "slime":
        top = FEET - 4 - h
        half = 3 + w
        for k, y in enumerate(range(top, FEET + 1)):
            hw = min(half, 1 + k * 2)
            if side:
                _rect(g, y, y, 8 - hw, 7 + hw - (1 if k < 2 else 0), PRIMARY)
            else:
                _rect(g, y, y, 8 - hw, 7 + hw, PRIMARY)
        _rect(g, FEET, FEET, 8 - half, 7 + half, SECONDARY)
        ey = top + 2 + (h // 2)
        if side:
            _rect(g, ey, ey + p["eyes"], 7 + half - 2, 7 + half - 2, EYE)
        else:
            _rect(g, ey, ey + p["eyes"], 6, 6, EYE)
            _rect(g, ey, ey + p["eyes"], 9, 9, EYE)
        if p["spots"]:
            _px(g, FEET - 1, 8 - half + 1, EYE)
    elif sp == "bat":
        cy = 6 + h
        if side:
            _rect(g, cy, cy + 3, 6, 9, PRIMARY)
            _rect(g, cy - 3 - w, cy, 4, 6, SECONDARY)
            _rect(g, cy - 4 - w, cy - 3 - w, 3, 4, SECONDARY)
            _px(g, cy - 1, 9, PRIMARY)
            _px(g, cy + 1, 8, EYE)
            _rect(g, cy + 4, cy + 4, 7, 7, PRIMARY)
        else:
            _rect(g, cy, cy + 3, 6, 9, PRIMARY)
            _px(g, cy - 1, 6, PRIMARY)
            _px(g, cy - 1, 9, PRIMARY)
            span = 5 + w
            for k in range(span):
                y = cy - 1 + (k % 2) + k // 3
                _rect(g, y, cy + 1, 5 - k, 5 - k, SECONDARY)
                _rect(g, y, cy + 1, 10 + k, 10 + k, SECONDARY)
            _px(g, cy + 1, 7, EYE)
            _px(g, cy + 1, 8, EYE)
    elif sp == "rat":
        if side:
            _rect(g, FEET - 3 - h, FEET - 1, 4, 10 + w, PRIMARY)
            _rect(g, FEET - 4 - h, FEET - 2, 10 + w, 12 + w, PRIMARY)
            _px(g, FEET - 5 - h, 10 + w, SECONDARY)
            _px(g, FEET - 3 - h, 12 + w, EYE)
            _rect(g, FEET - 1, FEET - 1, 1, 3, SECONDARY)
            _rect(g, FEET, FEET, 5, 5, SECONDARY)
            _rect(g, FEET, FEET, 9, 9, SECONDARY)
        else:
            _rect(g, FEET - 5 - h, FEET - 1, 5 - w // 2, 10 + w // 2, PRIMARY)
            _rect(g, FEET - 7 - h, FEET - 6 - h, 5 - w // 2, 6 - w // 2, SECONDARY)
            _rect(g, FEET - 7 - h, FEET - 6 - h, 9 + w // 2, 10 + w // 2, SECONDARY)
            _px(g, FEET - 4 - h, 6, EYE)
            _px(g, FEET - 4 - h, 9, EYE)
            _rect(g, FEET, FEET, 5, 6, SECONDARY)
            _rect(g, FEET, FEET, 9, 10, SECONDARY)
    elif sp == "spider":
        cy = 8 + h
        _rect(g, cy - 2, cy + 1, 6 - (w if not side else 0), 9 + w, PRIMARY)
        if side:
            _rect(g, cy - 1, cy, 10 + w, 11 + w, PRIMARY)
            _px(g, cy - 1, 11 + w, EYE)
            for x in (5, 7, 9, 11):
                _rect(g, cy + 2, FEET, x, x, SECONDARY)
        else:
            _px(g, cy - 1, 7, EYE)
            _px(g, cy - 1, 8, EYE)
            for k in range(4):
                _rect(g, cy - 2 + k, cy - 2 + k, 2 - (w > 1), 5 - w, SECONDARY)
                _rect(g, cy - 2 + k, cy - 2 + k, 10 + w, 13 + (w > 1), SECONDARY)
                _px(g, cy - 1 + k, 2 - (w > 1), SECONDARY)
                _px(g, cy - 1 + k, 13 + (w > 1), SECONDARY)
    elif sp == "wolf":
        if side:
            body_top = FEET - 5 - h
            _rect(g, body_top, FEET - 3, 3, 10 + w, PRIMARY)
            _rect(g, body_top - 3, body_top + 1, 10 + w, 13, PRIMARY)
            _px(g, body_top - 4, 10 + w, PRIMARY)
            _px(g, body_top - 2, 12, EYE)
            _rect(g, body_top - 1, body_top - 2, 1, 2, SECONDARY)
            _rect(g, FEET - 2, FEET, 4, 4, SECONDARY)
            _rect(g, FEET - 2, FEET, 6, 6, SECONDARY)
            _rect(g, FEET - 2, FEET, 8 + w, 8 + w, SECONDARY)
            _rect(g, FEET - 2, FEET, 10 + w, 10 + w, SECONDARY)
        else:
            top = 4 - h + (0 if w else 1)
            _rect(g, top, top + 4, 5, 10, PRIMARY)
            _rect(g, top - 2, top - 1, 5, 5, PRIMARY)
            _rect(g, top - 2, top - 1, 10, 10, PRIMARY)
            _px(g, top + 1, 6, EYE)
            _px(g, top + 1, 9, EYE)
            _rect(g, top + 3, top + 4, 7, 8, SECONDARY)
            _rect(g, top + 5, FEET - 2, 4 - w // 2, 11 + w // 2, PRIMARY)
            for x in (4 - w // 2, 6, 9, 11 + w // 2):
                _rect(g, FEET - 1, FEET, x, x, SECONDARY)
    elif sp == "beetle":
        top = FEET - 6 - h
        if side:
            _rect(g, top, FEET - 2, 3, 10 + w, METAL)
            _rect(g, top + 1, FEET - 2, 11 + w, 12 + w, PRIMARY)
            _px(g, top + 2, 12 + w, EYE)
            _px(g, top - 1, 13, PRIMARY)
            for x in (4, 7, 10):
                _rect(g, FEET - 1, FEET, x, x, SECONDARY)
        else:
            _rect(g, top, FEET - 1, 5 - w // 2, 10 + w // 2, METAL)
            _rect(g, top, FEET - 1, 7, 8, PRIMARY)
            _rect(g, top - 2, top - 1, 6, 9, PRIMARY)
            _px(g, top - 2, 6, EYE)
            _px(g, top - 2, 9, EYE)
            _px(g, top - 3, 5, PRIMARY)
            _px(g, top - 3, 10, PRIMARY)
            for y in (top + 1, top + 3, top + 5):
                _px(g, y, 4 - w // 2, SECONDARY)
                _px(g, y, 11 + w // 2, SECONDARY)
        if p["spots"]:
            _px(g, top + 2, 6 if not side else 5, EYE)
    elif sp == "snake":
        if side:
            _rect(g, FEET - 1, FEET, 2, 11 + w, PRIMARY)
            _rect(g, FEET - 6 - h, FEET - 2, 10 + w, 11 + w, PRIMARY)
            _rect(g, FEET - 7 - h, FEET - 5 - h, 11 + w, 13, PRIMARY)
            _px(g, FEET - 6 - h, 12, EYE)
            _px(g, FEET - 4 - h, 13, SECONDARY)
        else:
            _rect(g, FEET - 1, FEET, 3 - w, 12 + w, PRIMARY)
            _rect(g, FEET - 3, FEET - 2, 5, 10, PRIMARY)
            _rect(g, FEET - 8 - h, FEET - 4, 7, 8, PRIMARY)
            _rect(g, FEET - 10 - h, FEET - 8 - h, 6, 9, PRIMARY)
            _px(g, FEET - 9 - h, 6, EYE)
            _px(g, FEET - 9 - h, 9, EYE)
            _px(g, FEET - 7 - h, 7, SECONDARY)
        if p["spots"]:
            _px(g, FEET, 5, SECONDARY)
    return g


# --------------------------------------------------------------------------------------------- corpus
def paint(role: str, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """(down, side) idle slot grids without outline for one set of body-plan parameters."""
    if "species" in params:
        return _beast_frame(params, False), _beast_frame(params, True)
    return _person_frame(params, False), _person_frame(params, True)


def author(roles, per_role: int, seed: int = 20242) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """``per_role`` distinct characters per role: (role, name, down idle, side idle) slot grids."""
    out = []
    for k, role in enumerate(roles):
        rng = np.random.default_rng([seed, k])
        seen: set[bytes] = set()
        n = 0
        for _ in range(per_role * 50):
            if n >= per_role:
                break
            params = beast_params(rng) if role == "beast" else person_params(rng, role)
            down, side = paint(role, params)
            key = down.tobytes() + side.tobytes()
            if key in seen:
                continue
            seen.add(key)
            tag = params.get("species") or f"{params['headwear']}-{params['body']}-{params['gear']}"
            out.append((role, f"{role}-{n:03d} {tag}", down, side))
            n += 1
    return out
