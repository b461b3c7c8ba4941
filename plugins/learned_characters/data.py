"""Corpora, game rules and pixel cleanup for ``character-ml`` (numpy only: no torch here).

- **names**: one name per line in ``<style>.txt`` (``;`` starts a comment; ``; style: NAME`` overrides the
  file stem). Letters, apostrophes and hyphens; the models see them lowercased.
- **stats**: a CSV with a ``role`` column and one integer column per attribute (``ATTRS``).
- **sprites**: text art, 16 rows of 16 characters, one character per palette *slot* (``SLOT_CHARS``);
  ``; role: NAME`` names the role the sprite is for. Outlines are not drawn by hand: :func:`outline` adds
  them, to the corpus and to decoded sprites alike.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.serialize import read_bytes

from ..classic_character import ATTR_MAX, ATTR_MIN, ATTRS, ROLES

#: Palette slots: transparent, outline, skin, primary (clothes), secondary (trim, legs), hair, eyes/white,
#: metal. A sprite's pixels hold slot indices; a character's palette gives each slot a color.
SLOT_CHARS = ".#spqhem"
TRANSPARENT, OUTLINE, SKIN, PRIMARY, SECONDARY, HAIR, EYE, METAL = range(8)
N_SLOTS = len(SLOT_CHARS)
SPRITE_SIZE = 16
#: Slots that recoloring augmentation may exchange (clothes, trim, hair, metal); skin and eyes stay.
RECOLOR_SLOTS = (PRIMARY, SECONDARY, HAIR, METAL)

NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz'-"
MIN_NAME, MAX_NAME = 3, 14
ROLE_NAMES = tuple(ROLES)


# --------------------------------------------------------------------------------------------- names
def clean_name(raw: str) -> str:
    s = raw.strip().lower()
    return s if s and all(c in NAME_ALPHABET for c in s) else ""


def display_name(token: str) -> str:
    """``gro'mak`` -> ``Gro'mak``; ``ka-sira`` -> ``Ka-Sira``."""
    parts = token.split("-")
    return "-".join(p[:1].upper() + p[1:] for p in parts)


def read_names(path: Path) -> tuple[str, list[str]]:
    """(style, names) from a names file; errors name the file and line."""
    text = read_bytes(path, limit=8 << 20).decode("utf-8", errors="replace")
    style = path.name.split(".")[0].lower()
    names: list[str] = []
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith(";"):
            body = s[1:].strip()
            if body.lower().startswith("style:"):
                style = body.split(":", 1)[1].strip().lower()
            continue
        name = clean_name(s)
        if not name:
            raise InputError(f"{path}:{i}: {s!r} is not a name (letters, ' and - only)")
        if not MIN_NAME <= len(name) <= MAX_NAME:
            raise InputError(f"{path}:{i}: {s!r} is not {MIN_NAME}..{MAX_NAME} characters long")
        names.append(name)
    if not names:
        raise InputError(f"{path}: no names")
    return style, names


# --------------------------------------------------------------------------------------------- stats
def read_stats(path: Path) -> tuple[list[str], np.ndarray]:
    """(roles, attribute rows) from a stats CSV with columns ``role`` and ``ATTRS``."""
    text = read_bytes(path, limit=8 << 20).decode("utf-8", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    need = ("role", *ATTRS)
    missing = [c for c in need if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)}")
    roles, rows = [], []
    for i, r in enumerate(reader, 2):
        role = (r["role"] or "").strip()
        if role not in ROLES:
            raise InputError(f"{path}:{i}: unknown role {role!r} (known: {', '.join(ROLES)})")
        try:
            vals = [int(r[a]) for a in ATTRS]
        except (TypeError, ValueError):
            raise InputError(f"{path}:{i}: attributes must be integers") from None
        if any(not ATTR_MIN <= v <= ATTR_MAX for v in vals):
            raise InputError(f"{path}:{i}: attributes must lie in {ATTR_MIN}..{ATTR_MAX}")
        roles.append(role)
        rows.append(vals)
    if not rows:
        raise InputError(f"{path}: no rows")
    return roles, np.array(rows, dtype=np.int64)


def allocate(props: np.ndarray, budget: int, lo: int = ATTR_MIN, hi: int = ATTR_MAX) -> np.ndarray:
    """Integers in ``lo..hi`` summing exactly to ``budget``, as close as possible to ``props * budget``.

    Continuous projection onto the box (a shift found by bisection), then largest-remainder rounding that
    never leaves the box. Deterministic (float64, ties broken by index); the result is checked.
    """
    p = np.asarray(props, dtype=np.float64)
    n = p.size
    if not n * lo <= budget <= n * hi:
        raise InputError(f"budget {budget} is impossible for {n} attributes in {lo}..{hi}")
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    t = p / p.sum() * budget if p.sum() > 0 else np.full(n, budget / n)
    a, b = lo - t.max() - 1.0, hi - t.min() + 1.0
    for _ in range(80):
        mid = (a + b) / 2
        if np.clip(t + mid, lo, hi).sum() < budget:
            a = mid
        else:
            b = mid
    x = np.clip(t + b, lo, hi)
    base = np.clip(np.floor(x + 1e-9), lo, hi).astype(np.int64)
    frac = x - base
    rem = int(budget - base.sum())
    order = sorted(range(n), key=lambda i: (-frac[i], i))
    while rem > 0:
        for i in order:
            if rem and base[i] < hi:
                base[i] += 1
                rem -= 1
    while rem < 0:
        for i in reversed(order):
            if rem and base[i] > lo:
                base[i] -= 1
                rem += 1
    if base.sum() != budget or base.min() < lo or base.max() > hi:  # pragma: no cover - a bug, not bad luck
        raise AssertionError(f"allocation broke the rules: {base} for budget {budget}")
    return base


def attributes_ok(attrs: dict, budget: int) -> str | None:
    """None when ``attrs`` obey the rules, else the reason."""
    vals = [attrs.get(a) for a in ATTRS]
    if any(not isinstance(v, int) or isinstance(v, bool) for v in vals):
        return f"attributes must be the ints {', '.join(ATTRS)}"
    if set(attrs) != set(ATTRS):
        return f"unexpected attributes {sorted(set(attrs) - set(ATTRS))}"
    if any(not ATTR_MIN <= v <= ATTR_MAX for v in vals):
        return f"attributes outside {ATTR_MIN}..{ATTR_MAX}: {attrs}"
    if sum(vals) != budget:
        return f"attributes sum to {sum(vals)}, budget is {budget}"
    return None


# --------------------------------------------------------------------------------------------- sprites
@dataclass
class SpriteArt:
    role: str
    grid: np.ndarray  # (16, 16) uint8 slots, without outline
    source: str


def is_sprite_text(text: str) -> bool:
    rows = [ln.rstrip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(";")]
    return (len(rows) >= SPRITE_SIZE and len(rows) % SPRITE_SIZE == 0
            and all(len(r) == SPRITE_SIZE and set(r) <= set(SLOT_CHARS) for r in rows))


def read_sprites(path: Path) -> list[SpriteArt]:
    text = read_bytes(path, limit=1 << 20).decode("utf-8", errors="replace")
    role = "villager"
    rows: list[tuple[int, str]] = []
    for i, line in enumerate(text.splitlines(), 1):
        s = line.rstrip()
        if not s.strip():
            continue
        if s.lstrip().startswith(";"):
            body = s.lstrip()[1:].strip()
            if body.lower().startswith("role:"):
                role = body.split(":", 1)[1].strip().lower()
                if role not in ROLES:
                    raise InputError(f"{path}:{i}: unknown role {role!r} (known: {', '.join(ROLES)})")
            continue
        if len(s) != SPRITE_SIZE or not set(s) <= set(SLOT_CHARS):
            raise InputError(f"{path}:{i}: sprite rows are {SPRITE_SIZE} characters from {SLOT_CHARS!r}")
        rows.append((i, s))
    if not rows or len(rows) % SPRITE_SIZE:
        raise InputError(f"{path}: sprites are blocks of {SPRITE_SIZE} rows, found {len(rows)} rows")
    lut = {c: k for k, c in enumerate(SLOT_CHARS)}
    out = []
    for b in range(0, len(rows), SPRITE_SIZE):
        g = np.array([[lut[c] for c in r] for _, r in rows[b:b + SPRITE_SIZE]], dtype=np.uint8)
        g[g == OUTLINE] = TRANSPARENT  # outlines are computed, never learned
        out.append(SpriteArt(role, g, f"{path.name}#{b // SPRITE_SIZE}"))
    return out


def sprite_text(grid: np.ndarray) -> str:
    return "\n".join("".join(SLOT_CHARS[v] for v in row) for row in grid)


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of the 4 neighbours of each cell are set."""
    pad = np.pad(mask.astype(np.int8), 1)
    return pad[:-2, 1:-1] + pad[2:, 1:-1] + pad[1:-1, :-2] + pad[1:-1, 2:]


def outline(grid: np.ndarray) -> np.ndarray:
    """Drop old outline pixels, then outline every colored region (transparent cells touching color)."""
    g = grid.copy()
    g[g == OUTLINE] = TRANSPARENT
    solid = g >= SKIN
    g[(~solid) & (_neighbours(solid) > 0)] = OUTLINE
    return g


def cleanup(grid: np.ndarray, symmetric: bool) -> np.ndarray:
    """Turn a decoded slot grid into clean pixel art (no outline yet): mirror the left half when
    ``symmetric``, keep a one-pixel transparent border, fill pinholes, drop specks and small islands."""
    g = grid.astype(np.uint8).copy()
    g[g == OUTLINE] = TRANSPARENT
    h, w = g.shape
    if symmetric:
        g[:, w - w // 2:] = g[:, :w // 2][:, ::-1]
    g[0, :] = g[-1, :] = g[:, 0] = g[:, -1] = TRANSPARENT
    solid = g >= SKIN
    # pinholes: a transparent cell with 4 colored neighbours takes the color of the cell above or left
    holes = (~solid) & (_neighbours(solid) == 4)
    for y, x in zip(*np.nonzero(holes)):
        g[y, x] = g[y - 1, x] if g[y - 1, x] >= SKIN else g[y, x - 1]
    solid = g >= SKIN
    from scipy import ndimage  # noqa: PLC0415 - only when sprites are made

    labels, n = ndimage.label(solid)
    if n:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep = sizes >= max(4, int(sizes.max() * 0.08))
        g[~keep[labels]] = TRANSPARENT
    return g


def walk_frames(idle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two walk frames from an idle slot grid (no outline): the legs (the figure's lowest rows) of one
    half lift by a row in the first frame and those of the other half in the second, so the animation
    ``idle-walk1-idle-walk2`` steps left, right."""
    h, w = idle.shape
    rows = np.nonzero((idle >= SKIN).any(axis=1))[0]
    if rows.size == 0:
        return idle.copy(), idle.copy()
    bottom = int(rows[-1])
    top = int(rows[0])
    leg_top = max(top + 1, bottom - max(2, (bottom - top) // 4))
    frames = []
    for side in (slice(0, w // 2), slice(w // 2, w)):
        f = idle.copy()
        part = idle[leg_top:bottom + 1, side].copy()
        f[leg_top:bottom + 1, side] = TRANSPARENT
        f[leg_top - 1:bottom, side] = np.where(part > 0, part, f[leg_top - 1:bottom, side])
        frames.append(f)
    return frames[0], frames[1]


def augment(grids: np.ndarray, rng: np.random.Generator, recolor: float = 0.25) -> np.ndarray:
    """Palette recoloring (with probability ``recolor``, a random permutation of the recolorable slots) and
    mirroring. (Recoloring every sample, or shifting by a pixel, left the small VAE blurry.)"""
    out = grids.copy()
    for i in range(len(out)):
        g = out[i]
        if rng.random() < recolor:
            perm = np.arange(N_SLOTS)
            perm[list(RECOLOR_SLOTS)] = rng.permutation(RECOLOR_SLOTS)
            g = perm[g].astype(np.uint8)
        if rng.random() < 0.5:
            g = g[:, ::-1]
        out[i] = g
    return out


# --------------------------------------------------------------------------------------------- data files
@dataclass
class Corpora:
    names: dict[str, list[str]]
    stats: tuple[list[str], np.ndarray] | None
    sprites: list[SpriteArt]
    files: dict[str, list[Path]]


def read_corpora(files: list[Path]) -> Corpora:
    """Sort training files into parts by type: ``.csv`` -> stats; text art -> sprites; other text -> names."""
    names: dict[str, list[str]] = {}
    roles: list[str] = []
    rows: list[np.ndarray] = []
    sprites: list[SpriteArt] = []
    seen: dict[str, list[Path]] = {"names": [], "stats": [], "sprites": []}
    for f in files:
        suffix = f.suffix.lower()
        if suffix == ".csv":
            r, a = read_stats(f)
            roles += r
            rows.append(a)
            seen["stats"].append(f)
        elif suffix in (".txt", ".text", ""):
            head = read_bytes(f, limit=8 << 20).decode("utf-8", errors="replace")
            if is_sprite_text(head):
                sprites += read_sprites(f)
                seen["sprites"].append(f)
            else:
                style, ns = read_names(f)
                names.setdefault(style, []).extend(ns)
                seen["names"].append(f)
        # anything else (READMEs, images) is not training data for this generator
    stats = (roles, np.concatenate(rows)) if rows else None
    return Corpora(names, stats, sprites, seen)


def shipped_root() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "characters"


def shipped_names() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in sorted((shipped_root() / "names").glob("*.txt")):
        style, ns = read_names(f)
        out.setdefault(style, []).extend(ns)
    return out
