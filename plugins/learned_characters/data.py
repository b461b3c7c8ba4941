"""Corpora, game rules and pixel cleanup for ``character-ml`` (numpy only: no torch here).

- **names**: one name per line in ``<style>.txt`` (``;`` starts a comment; ``; style: NAME`` overrides the
  file stem). Letters, apostrophes and hyphens; the models see them lowercased.
- **stats**: a CSV with a ``role`` column and one integer column per attribute (``ATTRS``).
- **sprites**: text art, one character per palette *slot* (``SLOT_CHARS``): ``; role: NAME`` names the
  role of the sprites after it, ``; sprite: NAME`` may start one; each sprite is 16 rows, each row 2 frames
  (down and side idle) or the 6 of :data:`FRAMES`, 16 pixels each, separated by one space. Outlines are not
  learned: :func:`outline` recomputes them, and :func:`finish_many` makes walk frames and outlines for the
  corpus and for generated sprites alike (the pixel-art rules by construction).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.serialize import read_bytes

from ..rules import ATTR_MAX, ATTR_MIN, ATTRS, ROLES

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
#: the game's roles (the shipped corpora cover them; user data may bring others)
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
        if not ROLE_RE.match(role):
            raise InputError(f"{path}:{i}: role {role!r} is not a name (lowercase letters, digits, _ -)")
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
    return allocate_many(np.asarray(props, dtype=np.float64)[None], [budget], lo, hi)[0]


def allocate_many(props: np.ndarray, budgets, lo: int = ATTR_MIN, hi: int = ATTR_MAX) -> np.ndarray:
    """:func:`allocate` for many rows at once (the bisection runs on all rows together; each row's result
    is the same as alone)."""
    p = np.asarray(props, dtype=np.float64)
    rows, n = p.shape
    budget = np.asarray(budgets, dtype=np.int64).reshape(rows)
    bad = (budget < n * lo) | (budget > n * hi)
    if bad.any():
        raise InputError(f"budget {int(budget[bad][0])} is impossible for {n} attributes in {lo}..{hi}")
    p = np.where(np.isfinite(p) & (p > 0), p, 0.0)
    total = p.sum(axis=1, keepdims=True)
    t = np.where(total > 0, p / np.where(total > 0, total, 1.0) * budget[:, None], budget[:, None] / n)
    a, b = lo - t.max(axis=1) - 1.0, hi - t.min(axis=1) + 1.0
    for _ in range(80):
        mid = (a + b) / 2
        low = np.clip(t + mid[:, None], lo, hi).sum(axis=1) < budget
        a, b = np.where(low, mid, a), np.where(low, b, mid)
    x = np.clip(t + b[:, None], lo, hi)
    base = np.clip(np.floor(x + 1e-9), lo, hi).astype(np.int64)
    frac = x - base
    for r in range(rows):
        row = base[r]
        rem = int(budget[r] - row.sum())
        order = sorted(range(n), key=lambda i: (-frac[r, i], i))
        while rem > 0:
            for i in order:
                if rem and row[i] < hi:
                    row[i] += 1
                    rem -= 1
        while rem < 0:
            for i in reversed(order):
                if rem and row[i] > lo:
                    row[i] -= 1
                    rem += 1
    if (base.sum(axis=1) != budget).any() or base.min() < lo or base.max() > hi:  # pragma: no cover - a bug
        raise AssertionError(f"allocation broke the rules for budgets {budget.tolist()}")
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
#: the frames of a finished sprite: facing down (front view) and facing side (profile, facing right)
FRAMES = ("idle", "walk1", "walk2", "side_idle", "side_walk1", "side_walk2")
ANIMATIONS = {"idle": ["idle"], "walk": ["walk1", "walk2"], "idle_side": ["side_idle"],
              "walk_side": ["side_walk1", "side_walk2"]}
ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass
class SpriteArt:
    role: str
    down: np.ndarray  # (16, 16) uint8 slots of the idle frame facing down, without outline
    side: np.ndarray  # the same facing side (right)
    source: str  # "file:line"


_SPRITE_ROW_RE = re.compile(rf"^[{re.escape(SLOT_CHARS)}]{{{SPRITE_SIZE}}}( [{re.escape(SLOT_CHARS)}]{{{SPRITE_SIZE}}})+$")


def is_sprite_text(text: str) -> bool:
    """Sprite art has ``; role:``/``; sprite:`` headers or rows of 16 pixel characters per frame (two frames
    or more, space-separated); names never do, even ``Jon St. Clair`` or a ``# comment`` line."""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(";"):
            body = s[1:].strip().lower()
            if body.startswith(("role:", "sprite:")):
                return True
        elif _SPRITE_ROW_RE.match(s):
            return True
    return False


def read_sprites(path: Path) -> list[SpriteArt]:
    """Sprites from text art: blocks of 16 rows; each row holds 2 frames (down and side idle) or the 6 of
    :data:`FRAMES`, 16 pixels each, separated by one space; ``; role: NAME`` sets the role of the sprites
    after it and ``; sprite: NAME`` may start each block. Errors name the file and line."""
    text = read_bytes(path, limit=8 << 20).decode("utf-8", errors="replace")
    role = ""
    lut = {c: k for k, c in enumerate(SLOT_CHARS)}
    out: list[SpriteArt] = []
    block: list[list[str]] = []
    start = 0

    def close(line_no: int) -> None:
        nonlocal block
        if not block:
            return
        if len(block) != SPRITE_SIZE:
            rows = f"{len(block)} row" + ("s" if len(block) != 1 else "")
            raise InputError(f"{path}:{start}: sprite has {rows}, sprites are {SPRITE_SIZE}x"
                             f"{SPRITE_SIZE} (block ends before line {line_no})")
        if not role:
            raise InputError(f"{path}:{start}: sprite without a role (add '; role: NAME' before it)")
        frames = np.array([[[lut[c] for c in row[k]] for row in block] for k in range(len(block[0]))],
                          dtype=np.uint8)
        frames[frames == OUTLINE] = TRANSPARENT  # outlines are computed, never learned
        side = frames[3] if len(frames) == len(FRAMES) else frames[1]
        out.append(SpriteArt(role, frames[0], side, f"{path.name}:{start}"))
        block = []

    lines = text.splitlines()
    for i, line in enumerate(lines, 1):
        s = line.rstrip()
        if not s.strip():
            continue
        if s.lstrip().startswith(";"):
            body = s.lstrip()[1:].strip()
            low = body.lower()
            if low.startswith("role:") or low.startswith("sprite:"):
                close(i)
            if low.startswith("role:"):
                role = body.split(":", 1)[1].strip().lower()
                if not ROLE_RE.match(role):
                    raise InputError(f"{path}:{i}: role {role!r} is not a name (lowercase letters, digits, _ -)")
            continue
        parts = s.split(" ")
        if len(parts) not in (2, len(FRAMES)):
            raise InputError(f"{path}:{i}: a sprite row holds 2 frames (down, side) or {len(FRAMES)} "
                             f"({', '.join(FRAMES)}) separated by single spaces, found {len(parts)}")
        for k, part in enumerate(parts):
            if len(part) != SPRITE_SIZE:
                raise InputError(f"{path}:{i}: frame {k + 1} is {len(part)} pixels wide, sprites are "
                                 f"{SPRITE_SIZE}x{SPRITE_SIZE}")
            bad = sorted(set(part) - set(SLOT_CHARS))
            if bad:
                raise InputError(f"{path}:{i}: {bad[0]!r} is not a sprite pixel (one of {SLOT_CHARS!r})")
        if block and len(parts) != len(block[0]):
            raise InputError(f"{path}:{i}: this row has {len(parts)} frames, the rows above {len(block[0])}")
        if not block:
            start = i
        block.append(parts)
        if len(block) == SPRITE_SIZE:
            close(i)
    close(len(lines) + 1)
    if not out:
        raise InputError(f"{path}: no sprites")
    return out


def sprite_text(frames: dict[str, np.ndarray] | list[np.ndarray]) -> list[str]:
    """Text-art rows of frames side by side (the corpus format)."""
    seq = [frames[f] for f in FRAMES] if isinstance(frames, dict) else list(frames)
    return [" ".join("".join(SLOT_CHARS[v] for v in f[y]) for f in seq) for y in range(SPRITE_SIZE)]


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of the 4 neighbours of each cell are set (works on (..., h, w) stacks)."""
    pad = np.zeros(mask.shape[:-2] + (mask.shape[-2] + 2, mask.shape[-1] + 2), dtype=np.int8)
    pad[..., 1:-1, 1:-1] = mask
    return pad[..., :-2, 1:-1] + pad[..., 2:, 1:-1] + pad[..., 1:-1, :-2] + pad[..., 1:-1, 2:]


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
    return cleanup_many(grid[None], symmetric)[0]


def cleanup_many(grids: np.ndarray, symmetric: bool) -> np.ndarray:
    """:func:`cleanup` on a stack of (n, h, w) grids at once (each grid's result is the same as alone):
    pinholes (a transparent cell with 4 colored neighbours) take the color of the cell above, or left;
    islands smaller than 8% of the grid's largest (and specks under 3 pixels) are dropped."""
    g = grids.astype(np.uint8).copy()
    g[g == OUTLINE] = TRANSPARENT
    n, h, w = g.shape
    if symmetric:
        g[:, :, w - w // 2:] = g[:, :, :w // 2][:, :, ::-1]
    g[:, 0, :] = g[:, -1, :] = g[:, :, 0] = g[:, :, -1] = TRANSPARENT
    solid = g >= SKIN
    holes = (~solid) & (_neighbours(solid) == 4)
    above = np.roll(g, 1, axis=1)
    left = np.roll(g, 1, axis=2)
    g = np.where(holes, np.where(above >= SKIN, above, left), g)
    solid = g >= SKIN
    from scipy import ndimage  # noqa: PLC0415 - only when sprites are made

    cross = np.zeros((3, 3, 3), dtype=bool)  # 4-connectivity within a grid, never across grids
    cross[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    labels, count = ndimage.label(solid, structure=cross)
    if count:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        sizes[0] = 0
        owner = np.zeros(count + 1, dtype=np.int64)
        owner[labels.ravel()] = np.repeat(np.arange(n), h * w)
        largest = np.zeros(n, dtype=np.int64)
        np.maximum.at(largest, owner[1:], sizes[1:])
        keep = sizes >= np.maximum(3, (largest[owner] * 0.08).astype(np.int64))
        islands = np.bincount(owner[1:], minlength=n)
        keep |= (islands[owner] <= 1)  # a grid with one region keeps it whatever its size
        keep[0] = True
        g[(labels > 0) & ~keep[labels]] = TRANSPARENT
    return g


#: the least share of an idle frame's colored pixels a walk frame keeps in place (frame consistency)
MIN_OVERLAP = 0.85


def overlap(idle: np.ndarray, walk: np.ndarray) -> float:
    """The share of ``idle``'s colored pixels that ``walk`` has in the same color."""
    return float(_overlap_many(idle[None], walk[None])[0])


def _overlap_many(idles: np.ndarray, walks: np.ndarray) -> np.ndarray:
    m = idles >= SKIN
    count = m.sum(axis=(1, 2))
    same = ((walks == idles) & m).sum(axis=(1, 2))
    return np.where(count > 0, same / np.maximum(count, 1), 1.0)


def _down_pair(idles: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Facing down: the leg rows (``region``) of the left half lifted by a row, then those of the right."""
    w = idles.shape[2]
    xs = np.arange(w)[None, None, :]
    out = []
    for half in (xs < w // 2, xs >= w // 2):
        m = region & half
        lifted = np.roll(np.where(m, idles, TRANSPARENT), -1, axis=1)
        out.append(np.where(lifted > 0, lifted, np.where(m, TRANSPARENT, idles)))
    return out[0], out[1]


def _side_pair(idles: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Facing right: a stride (legs behind the middle column one back, in front one forward, when there is
    room) and a step (the front legs lifted by a row)."""
    w = idles.shape[2]
    xs = np.arange(w)[None, None, :]
    cols = ((idles >= SKIN) & region).any(axis=1)  # (n, w)
    first = cols.argmax(axis=1)
    last = w - 1 - cols[:, ::-1].argmax(axis=1)
    mid = ((first + last + 1) // 2)[:, None, None]
    back_m, fwd_m = region & (xs < mid), region & (xs >= mid)
    back, fwd = np.where(back_m, idles, TRANSPARENT), np.where(fwd_m, idles, TRANSPARENT)
    back = np.where((first > 1)[:, None, None], np.roll(back, -1, axis=2), back)
    moved = np.where((last < w - 2)[:, None, None], np.roll(fwd, 1, axis=2), fwd)
    stride = np.where(region, TRANSPARENT, idles)
    stride = np.where(back > 0, back, stride)
    stride = np.where(moved > 0, moved, stride)
    lifted = np.roll(fwd, -1, axis=1)
    step = np.where(lifted > 0, lifted, np.where(fwd_m, TRANSPARENT, idles))
    return stride, step


def _walk_many(idles: np.ndarray, side: bool) -> tuple[np.ndarray, np.ndarray]:
    """Two walk frames for each of (n, h, w) idle slot grids (no outline). The legs are the figure's lowest
    quarter (at least 2 rows); when a step would keep less than :data:`MIN_OVERLAP` of the idle frame's
    colors in place, fewer leg rows move, down to one; a figure too small for any step walks in place."""
    n, h, w = idles.shape
    filled = (idles >= SKIN).any(axis=2)
    has = filled.any(axis=1)
    top = filled.argmax(axis=1)
    bottom = h - 1 - filled[:, ::-1].argmax(axis=1)
    rows = bottom - np.maximum(top + 1, bottom - np.maximum(2, (bottom - top) // 4) + 1) + 1
    out_a, out_b = idles.copy(), idles.copy()
    todo = has.copy()
    ys = np.arange(h)[None, :, None]
    for j in range(int(rows.max()) if n else 0):
        idx = np.nonzero(todo & (rows - j >= 1))[0]
        if idx.size == 0:
            break
        grids = idles[idx]
        leg_top = (bottom[idx] - (rows[idx] - j) + 1)[:, None, None]
        region = (ys >= leg_top) & (ys <= bottom[idx][:, None, None])
        a, b = (_side_pair if side else _down_pair)(grids, region)
        ok = (_overlap_many(grids, a) >= MIN_OVERLAP) & (_overlap_many(grids, b) >= MIN_OVERLAP)
        out_a[idx[ok]], out_b[idx[ok]] = a[ok], b[ok]
        todo[idx[ok]] = False
    return out_a, out_b


def walk_frames(idle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two walk frames facing down from an idle slot grid (no outline): the legs (the figure's lowest rows)
    of one half lift by a row in the first frame and those of the other half in the second, so the
    animation ``walk1, walk2`` steps left, right. The feet row keeps the other leg: the height is unchanged."""
    a, b = _walk_many(idle[None], side=False)
    return a[0], b[0]


def side_walk_frames(idle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two walk frames facing right from a side idle grid (no outline): a stride (the back half of the
    legs one column back, the front half one column forward) and a passing step (the front half lifted by
    a row)."""
    a, b = _walk_many(idle[None], side=True)
    return a[0], b[0]


def finish_many(downs: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """(n, 6, h, w): the frames of :data:`FRAMES`, outlined, for n pairs of idle slot grids (no outline);
    the whole batch at once, each character's frames the same as alone."""
    w1, w2 = _walk_many(downs, side=False)
    s1, s2 = _walk_many(sides, side=True)
    return outline(np.stack([downs, w1, w2, sides, s1, s2], axis=1))


def finish(down: np.ndarray, side: np.ndarray) -> dict[str, np.ndarray]:
    """The six frames of :data:`FRAMES`, outlined, from the two idle slot grids (no outline)."""
    return dict(zip(FRAMES, finish_many(down[None], side[None])[0]))


def augment(grids: np.ndarray, rng: np.random.Generator, recolor: float = 0.25) -> np.ndarray:
    """Palette recoloring (with probability ``recolor``, a random permutation of the recolorable slots) of
    (n, facings, 16, 16) slot grids. (No mirroring: the side facing looks right by convention.)"""
    out = grids.copy()
    for i in range(len(out)):
        if rng.random() < recolor:
            perm = np.arange(N_SLOTS)
            perm[list(RECOLOR_SLOTS)] = rng.permutation(RECOLOR_SLOTS)
            out[i] = perm[out[i]].astype(np.uint8)
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
