"""``caves-ascii``: any level as ASCII art, one glyph per tile (the tileset's ``char``), entities on top."""
from __future__ import annotations

from engine import Exporter
from engine.errors import InputError

ENTITY_GLYPHS = {"spawn": "@", "exit": ">", "treasure": "$", "enemy": "e", "key": "k", "goal": "G"}


class AsciiExporter(Exporter):
    id = "caves-ascii"
    kinds = ("level",)
    extensions = (".caves.txt",)
    description = "ASCII art of a level (option layer=NAME; entities drawn on top)"

    def dumps(self, level, options: dict) -> bytes:
        layer = options.get("layer")
        if layer is None:
            tiles = level.tiles
        elif layer in level.layers:
            tiles = level.layers[layer]
        else:
            raise InputError(f"caves-ascii option layer: no layer {layer!r} (layers: {', '.join(level.layers)})")
        glyph = {t.id: t.char for t in level.tileset.tiles}
        rows = [[glyph.get(int(v), "?") for v in row] for row in tiles]
        for e in level.entities:
            rows[e.y][e.x] = ENTITY_GLYPHS.get(e.kind, "*")
        return ("\n".join("".join(r) for r in rows) + "\n").encode("utf-8")
