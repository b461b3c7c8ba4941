"""Pictures of content, in one place: a level as RGB pixels, grids of pictures (sheets), a character's frames
as a sprite strip, a tileset as a tile sheet, and deterministic PNG bytes.

Used by the PNG previews (``plugins.preview``), the Tiled exporters (``plugins.tiled``), the atlas exporter,
the evaluation reports and the game demo, so a level looks the same everywhere. numpy only at import; Pillow
is imported on first use.
"""
from __future__ import annotations

import io
from typing import Any, Iterable, Sequence

import numpy as np

from .content import Character, Level, Tileset

#: Marker colors for entity kinds on level pictures (others get :data:`ENTITY_DEFAULT`).
ENTITY_COLORS = {
    "spawn": (40, 220, 60), "exit": (250, 250, 250), "goal": (250, 250, 250), "key": (255, 215, 0),
    "enemy": (220, 30, 30), "treasure": (255, 160, 0), "coin": (255, 220, 60), "npc": (60, 140, 255),
}
ENTITY_DEFAULT = (200, 0, 200)
#: Where the sheets of this module put nothing (dark, like the previews' cards).
SHEET_BACKGROUND = (24, 22, 30)


def level_rgb(level: Level, tile_size: int = 8, entities: bool = True) -> np.ndarray:
    """The level as an ``(h*ts, w*ts, 3)`` uint8 array: each layer's tile colors over the one below (tile 0
    of an upper layer is see-through), then entity markers (tiles of 3 pixels and up)."""
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


def grid(images: Sequence[np.ndarray], columns: int = 4, gap: int = 2,
         background: Sequence[int] = SHEET_BACKGROUND) -> np.ndarray:
    """Pictures (``(h, w, C)`` arrays of one channel count) in a row-major grid of ``columns``: every cell as
    large as the largest picture, each picture at its cell's top-left corner, ``gap`` pixels between cells
    and around the sheet, the rest ``background``."""
    if not images:
        return np.empty((0, 0, len(background)), dtype=np.uint8)
    channels = images[0].shape[2]
    ch = max(i.shape[0] for i in images)
    cw = max(i.shape[1] for i in images)
    cols = min(columns, len(images))
    rows = -(-len(images) // cols)
    sheet = np.empty((gap + rows * (ch + gap), gap + cols * (cw + gap), channels), dtype=np.uint8)
    sheet[:] = tuple(background)[:channels]
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        y0, x0 = gap + r * (ch + gap), gap + c * (cw + gap)
        sheet[y0:y0 + img.shape[0], x0:x0 + img.shape[1]] = img
    return sheet


def level_sheet(levels: Iterable[Level], tile_size: int = 4, columns: int = 4, gap: int = 2,
                background: tuple[int, int, int] = SHEET_BACKGROUND, entities: bool = True):
    """A grid of level pictures (row-major, ``columns`` per row) as one ``PIL.Image`` (RGB).

    Every cell is as large as the largest level; smaller levels sit at their cell's top-left corner on
    ``background``, with ``gap`` pixels between cells and around the sheet. Pass any list of :class:`Level`
    (e.g. a batch from one generator) and save it with :func:`png_bytes` for deterministic bytes.
    """
    from PIL import Image

    levels = list(levels)
    for name, v, lo in (("tile_size", tile_size, 1), ("columns", columns, 1), ("gap", gap, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"level_sheet {name}: expected an int >= {lo}, got {v!r}")
    if not levels:
        return Image.new("RGB", (2 * gap + 1, 2 * gap + 1), background)
    return Image.fromarray(grid([level_rgb(lv, tile_size, entities) for lv in levels], columns, gap, background))


def sprite_strip(character: Character, scale: int = 4) -> np.ndarray:
    """All frames of a character's sprite side by side, each pixel ``scale`` x ``scale``, as an RGBA array
    (a transparent 16x16 cell, scaled, when it has no sprite)."""
    if character.sprite is None or not character.sprite.frames:
        return np.zeros((16 * scale, 16 * scale, 4), dtype=np.uint8)
    strip = np.concatenate([character.sprite.rgba(n) for n in character.sprite.frames], axis=1)
    return np.ascontiguousarray(np.repeat(np.repeat(strip, scale, axis=0), scale, axis=1))


def tileset_sheet(tileset: Tileset, tile_size: int) -> tuple[np.ndarray, int, int]:
    """The tileset as one RGBA picture, with its column count and tile count (editors' tileset images).

    Tile ``id`` sits at slot ``id`` (row-major, up to 16 columns): filled with the tile's color, a darker
    1-pixel border and, from 8 pixels up, the id's 8 bits as dots, so equal colors stay distinguishable.
    Slots of ids the tileset does not define are transparent.
    """
    count = max(t.id for t in tileset.tiles) + 1
    cols = min(count, 16)
    rows = -(-count // cols)
    ts = tile_size
    img = np.zeros((rows * ts, cols * ts, 4), dtype=np.uint8)
    for t in tileset.tiles:
        c = np.array(t.color, dtype=np.float64)
        lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
        dark = np.round(c * 0.6).astype(np.uint8)
        mark = dark if lum > 110 else np.round(c + (255 - c) * 0.6).astype(np.uint8)
        tile = np.empty((ts, ts, 4), dtype=np.uint8)
        tile[..., :3] = np.asarray(t.color, dtype=np.uint8)
        tile[..., 3] = 255
        if ts >= 4:
            tile[0, :, :3] = tile[-1, :, :3] = tile[:, 0, :3] = tile[:, -1, :3] = dark
        if ts >= 8:
            pitch = (ts - 2) / 4
            size = max(1, round(pitch / 2))
            top = 1 + round((ts - 2) / 2 - pitch)
            for bit in range(8):
                if t.id >> bit & 1:
                    x0 = 1 + round((bit % 4) * pitch + pitch / 4)
                    y0 = top + round((bit // 4) * pitch + pitch / 4)
                    tile[y0:y0 + size, x0:x0 + size, :3] = mark
        y, x = divmod(t.id, cols)
        img[y * ts:(y + 1) * ts, x * ts:(x + 1) * ts] = tile
    return img, cols, count


def png_bytes(image: Any) -> bytes:
    """PNG bytes of a ``PIL.Image`` or a uint8 ``(h, w, 3|4)`` array, with no timestamps or text chunks and
    fixed settings: the same picture gives the same bytes."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image))
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
