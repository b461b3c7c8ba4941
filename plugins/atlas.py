"""Sprite sheets with TexturePacker JSON-hash atlases for characters and casts (PixiJS, Phaser).

``-o hero.atlas.json`` or ``-o hero.sheet.png`` writes the pair ``hero.atlas.json`` + ``hero.sheet.png``.
The sheet has one row per character (``padding`` transparent pixels around every frame, pixels enlarged
``scale`` times, nearest neighbour). The atlas is the JSON *hash* variant::

    {"frames": {"idle": {"frame": {"x", "y", "w", "h"}, "rotated": false, "trimmed": false,
                         "spriteSourceSize": {"x": 0, "y": 0, "w", "h"}, "sourceSize": {"w", "h"},
                         "anchor": {"x": 0.5, "y": 1.0}}, ...},
     "animations": {"idle": ["idle"], "walk": ["walk1", "walk2"]},
     "meta": {"app", "version", "image": "hero.sheet.png", "format": "RGBA8888", "size": {"w", "h"},
              "scale": "1"}}

``character-ml`` sprites face two ways: ``idle``/``walk`` (down) and ``idle_side``/``walk_side`` (frames
``side_idle``, ``side_walk1``, ``side_walk2``, facing right; flip them for the left). A single character's
frames keep their names (``idle``, ``walk1``); a cast's are ``<character id>/<frame>``
and its animations ``<character id>/<animation>``. The anchor sits at the feet (bottom centre).
:func:`write_beside` writes the pair next to a PNG preview (``hero.png`` -> ``hero.atlas.json`` +
``hero.sheet.png``) for exporters that want to offer both.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine import Exporter, hookimpl
from engine.generator import int_option
from engine.content import Cast, Character, Content
from engine.errors import InputError
from engine.images import png_bytes
from engine.serialize import atomic_write

APP = "conjure"
ATLAS_VERSION = "1.0"
JSON_EXT, SHEET_EXT = ".atlas.json", ".sheet.png"


def build(content: Content, image_name: str, scale: int = 1, padding: int = 1) -> tuple[bytes, dict]:
    """The sheet (PNG bytes) and the atlas (a dict) for a Character or a Cast."""
    if isinstance(content, Cast):
        chars, prefixed = content.characters, True
    elif isinstance(content, Character):
        chars, prefixed = [content], False
    else:
        raise InputError(f"atlas: expected a character or a cast, got {type(content).__name__}")
    rows = [c for c in chars if c.sprite is not None and c.sprite.frames]
    cell_w = max((c.sprite.size[1] for c in rows), default=1) * scale
    cell_h = max((c.sprite.size[0] for c in rows), default=1) * scale
    cols = max((len(c.sprite.frames) for c in rows), default=1)
    width = padding + cols * (cell_w + padding)
    height = padding + max(len(rows), 1) * (cell_h + padding)
    sheet = np.zeros((height, width, 4), dtype=np.uint8)
    frames: dict[str, dict] = {}
    animations: dict[str, list[str]] = {}
    for r, ch in enumerate(rows):
        prefix = f"{ch.id}/" if prefixed else ""
        h, w = ch.sprite.size
        for c, name in enumerate(ch.sprite.frames):
            x, y = padding + c * (cell_w + padding), padding + r * (cell_h + padding)
            px = ch.sprite.rgba(name)
            if scale > 1:
                px = np.repeat(np.repeat(px, scale, axis=0), scale, axis=1)
            sheet[y:y + h * scale, x:x + w * scale] = px
            fw, fh = w * scale, h * scale
            frames[prefix + name] = {
                "frame": {"x": x, "y": y, "w": fw, "h": fh},
                "rotated": False,
                "trimmed": False,
                "spriteSourceSize": {"x": 0, "y": 0, "w": fw, "h": fh},
                "sourceSize": {"w": fw, "h": fh},
                "anchor": {"x": 0.5, "y": 1.0},
            }
        for anim, names in ch.sprite.animations.items():
            animations[prefix + anim] = [prefix + n for n in names if n in ch.sprite.frames]
    atlas = {
        "frames": frames,
        "animations": animations,
        "meta": {"app": APP, "version": ATLAS_VERSION, "image": image_name, "format": "RGBA8888",
                 "size": {"w": width, "h": height}, "scale": "1"},
    }
    return png_bytes(sheet), atlas


def pair_paths(path: Path) -> tuple[Path, Path]:
    """(atlas json, sheet png) for an output path."""
    name = path.name
    low = name.lower()
    if low.endswith(JSON_EXT):
        base = name[:-len(JSON_EXT)]
    elif low.endswith(SHEET_EXT):
        base = name[:-len(SHEET_EXT)]
    elif low.endswith(".png"):
        return path.with_suffix(".json"), path
    else:
        return path, path.with_suffix(".png")
    return path.with_name(base + JSON_EXT), path.with_name(base + SHEET_EXT)


def write(content: Content, json_path: Path, png_path: Path, options: dict | None = None) -> list[Path]:
    options = options or {}
    scale = int_option(options, "scale", 1, 1, 16, "atlas")
    padding = int_option(options, "padding", 1, 0, 16, "atlas")
    png, atlas = build(content, png_path.name, scale, padding)
    text = json.dumps(atlas, indent=1, ensure_ascii=False) + "\n"
    return [atomic_write(png_path, png), atomic_write(json_path, text.encode("utf-8"))]


def write_beside(content: Content, preview_path: str | Path, options: dict | None = None) -> list[Path]:
    """``hero.png`` -> ``hero.atlas.json`` + ``hero.sheet.png`` (for the PNG preview exporter)."""
    p = Path(preview_path)
    base = p.name[:-4] if p.name.lower().endswith(".png") else p.name
    opts = {k: v for k, v in (options or {}).items() if k in ("padding",)}
    if "sheet_scale" in (options or {}):
        opts["scale"] = options["sheet_scale"]
    return write(content, p.with_name(base + JSON_EXT), p.with_name(base + SHEET_EXT), opts)


class AtlasExporter(Exporter):
    id = "atlas"
    kinds = ("character",)
    extensions = (JSON_EXT, SHEET_EXT)
    options = ("scale", "padding")
    description = ("PNG sprite sheet + TexturePacker JSON-hash atlas (writes NAME.atlas.json and NAME.sheet.png;"
                   " options: scale, padding)")

    def export(self, content: Content, path: Path, options: dict) -> list[Path]:
        json_path, png_path = pair_paths(Path(path))
        return write(content, json_path, png_path, options)


@hookimpl
def register_exporters(register):
    register(AtlasExporter())
