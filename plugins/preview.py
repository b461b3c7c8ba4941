"""PNG previews of levels, characters, casts and stories (Pillow, imported on first use)."""
from __future__ import annotations

import io
import textwrap

import numpy as np

from engine.content import Cast, Character, Content, Level, Story

#: Marker colors for entity kinds on level previews (others get ENTITY_DEFAULT).
ENTITY_COLORS = {
    "spawn": (40, 220, 60), "exit": (250, 250, 250), "goal": (250, 250, 250), "key": (255, 215, 0),
    "enemy": (220, 30, 30), "treasure": (255, 160, 0), "coin": (255, 220, 60), "npc": (60, 140, 255),
}
ENTITY_DEFAULT = (200, 0, 200)


def level_rgb(level: Level, tile_size: int = 8, entities: bool = True) -> np.ndarray:
    """The level as an (h*ts, w*ts, 3) uint8 image: tile colors, then entity markers."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for t in level.tileset.tiles:
        lut[t.id] = t.color
    layers = list(level.layers.values())
    img = lut[layers[0]]
    for a in layers[1:]:
        img = np.where((a != 0)[..., None], lut[a], img)
    img = np.repeat(np.repeat(img, tile_size, axis=0), tile_size, axis=1)
    if entities and tile_size >= 3:
        m = max(1, tile_size // 4)
        for e in level.entities:
            c = ENTITY_COLORS.get(e.kind, ENTITY_DEFAULT)
            y0, x0 = e.y * tile_size, e.x * tile_size
            img[y0 + m:y0 + tile_size - m, x0 + m:x0 + tile_size - m] = c
    return np.ascontiguousarray(img)


def level_image(level: Level, tile_size: int = 8, entities: bool = True):
    from PIL import Image

    return Image.fromarray(level_rgb(level, tile_size, entities))


def level_sheet(levels, tile_size: int = 4, columns: int = 4, gap: int = 2,
                background: tuple[int, int, int] = (24, 22, 30), entities: bool = True):
    """A grid of level previews (row-major, ``columns`` per row) as one ``PIL.Image`` (RGB).

    Every cell is as large as the largest level; smaller levels sit at their cell's top-left corner on
    ``background``, with ``gap`` pixels between cells and around the sheet. No engine is needed: evaluation
    reports pass any list of :class:`Level` (e.g. a batch from one generator) and save the image, e.g. with
    :func:`image_png` for deterministic bytes.
    """
    from PIL import Image

    levels = list(levels)
    for name, v, lo in (("tile_size", tile_size, 1), ("columns", columns, 1), ("gap", gap, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"level_sheet {name}: expected an int >= {lo}, got {v!r}")
    if not levels:
        return Image.new("RGB", (2 * gap + 1, 2 * gap + 1), background)
    cw = max(lv.width for lv in levels) * tile_size
    ch = max(lv.height for lv in levels) * tile_size
    cols = min(columns, len(levels))
    rows = -(-len(levels) // cols)
    sheet = np.empty((gap + rows * (ch + gap), gap + cols * (cw + gap), 3), dtype=np.uint8)
    sheet[:] = background
    for i, lv in enumerate(levels):
        r, c = divmod(i, cols)
        y0, x0 = gap + r * (ch + gap), gap + c * (cw + gap)
        img = level_rgb(lv, tile_size, entities)
        sheet[y0:y0 + img.shape[0], x0:x0 + img.shape[1]] = img
    return Image.fromarray(sheet)


def image_png(img) -> bytes:
    """PNG bytes of a PIL image with no timestamps or text chunks: same image -> same bytes."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def sprite_image(ch: Character, scale: int = 4):
    """All frames of a character's sprite side by side, scaled, on a transparent background."""
    from PIL import Image

    if ch.sprite is None or not ch.sprite.frames:
        return Image.new("RGBA", (16 * scale, 16 * scale), (0, 0, 0, 0))
    frames = [ch.sprite.rgba(n) for n in ch.sprite.frames]
    strip = np.concatenate(frames, axis=1)
    strip = np.repeat(np.repeat(strip, scale, axis=0), scale, axis=1)
    return Image.fromarray(np.ascontiguousarray(strip))


def _card(title: str, lines: list[str], width: int = 520):
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    wrapped: list[str] = []
    for ln in lines:
        wrapped += textwrap.wrap(ln, 80) or [""]
    h = 40 + 14 * len(wrapped)
    img = Image.new("RGB", (width, h), (24, 22, 30))
    d = ImageDraw.Draw(img)
    d.text((10, 8), title, fill=(255, 220, 120), font=font)
    for i, ln in enumerate(wrapped):
        d.text((10, 30 + 14 * i), ln, fill=(225, 225, 225), font=font)
    return img


def character_image(content: Character | Cast, scale: int = 4):
    """A preview card: each character's frames with name, role and attributes."""
    from PIL import Image, ImageDraw, ImageFont

    chars = content.characters if isinstance(content, Cast) else [content]
    font = ImageFont.load_default()
    rows = []
    for ch in chars:
        spr = sprite_image(ch, scale)
        attrs = " ".join(f"{k[:3]} {v}" for k, v in ch.attributes.items())
        row = Image.new("RGBA", (max(spr.width + 260, 420), max(spr.height, 48) + 8), (24, 22, 30, 255))
        row.alpha_composite(spr, (4, 4))
        d = ImageDraw.Draw(row)
        d.text((spr.width + 12, 6), f"{ch.name} ({ch.role})", fill=(255, 220, 120, 255), font=font)
        d.text((spr.width + 12, 22), attrs, fill=(220, 220, 220, 255), font=font)
        d.text((spr.width + 12, 36), ", ".join(ch.traits)[:60], fill=(170, 170, 190, 255), font=font)
        rows.append(row)
    if not rows:
        return _card("empty cast", [])
    w = max(r.width for r in rows)
    out = Image.new("RGBA", (w, sum(r.height for r in rows)), (24, 22, 30, 255))
    y = 0
    for r in rows:
        out.alpha_composite(r, (0, y))
        y += r.height
    return out


def story_image(story: Story):
    lines = [story.quest.summary, ""]
    lines += [f"{i + 1}. {b.text}" for i, b in enumerate(story.quest.beats)]
    if story.quest.reward:
        lines += ["", f"Reward: {story.quest.reward}"]
    lines += ["", f"Dialogue: {len(story.nodes)} nodes, "
              f"{sum(len(n.choices) for n in story.nodes)} choices, "
              f"{sum(1 for n in story.nodes if not n.choices)} endings"]
    return _card(story.title, lines)


def png_bytes(content: Content, tile_size: int = 8, scale: int = 4) -> bytes:
    if isinstance(content, Level):
        img = level_image(content, tile_size)
    elif isinstance(content, (Character, Cast)):
        img = character_image(content, scale)
    elif isinstance(content, Story):
        img = story_image(content)
    else:  # pragma: no cover
        raise TypeError(type(content).__name__)
    # no timestamps or text chunks: same content -> same PNG bytes
    return image_png(img)
