"""PNG previews of levels, characters, casts and stories (Pillow, imported on first use); the level and sprite
pictures come from :mod:`engine.images`."""
from __future__ import annotations

import textwrap

from engine.content import Cast, Character, Content, Level, Story
# the pictures themselves live in engine.images; these names stay importable from here
from engine.images import (ENTITY_COLORS, ENTITY_DEFAULT, level_rgb, level_sheet, png_bytes,  # noqa: F401
                           sprite_strip)


def level_image(level: Level, tile_size: int = 8, entities: bool = True):
    from PIL import Image

    return Image.fromarray(level_rgb(level, tile_size, entities))


#: PNG bytes of a PIL image (the same picture gives the same bytes); the name the previews have always used.
image_png = png_bytes


def sprite_image(ch: Character, scale: int = 4):
    """All frames of a character's sprite side by side, scaled, on a transparent background."""
    from PIL import Image

    return Image.fromarray(sprite_strip(ch, scale))


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
