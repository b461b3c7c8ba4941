"""Tiled maps: JSON (``.tmj``) and XML (``.tmx``) exporters and importers for levels.

Export (see ``docs/formats.md``): an orthogonal map with one tile layer per level layer (``gid = tile id + 1``,
so tile id 0 is a real tile and gid 0 never appears), an object layer ``entities`` (one tile-sized rectangle
per entity: ``name`` = entity id, ``type`` = kind, typed custom properties), an object layer ``regions``
(rectangles: ``name`` = region id, ``type`` = kind, the region's display name in ``conjure:name``), and an
embedded tileset whose image ``<map stem>.tileset.png`` is written beside the map (one patterned tile per
tile id) with tile properties ``name``, ``char``, ``color`` and the tile's own properties. Map properties hold
the level metadata (generator, generator_version, seed, params…; values that are not Tiled scalars are JSON
strings listed in ``conjure:json``) and ``conjure:schema``. Same level and options -> the same bytes.

Import reads both our maps (exactly back to the same ``Level``) and a user's own maps (see ``_Importer``).
Every problem is an :class:`InputError` naming the map, the layer or tileset and the field.

The package: :mod:`plugins.tiled.names` (constants, property names, escaping), :mod:`plugins.tiled.write`
(the map model and its bytes), :mod:`plugins.tiled.read` (the importer); this module holds the exporter class
and the hook. Every name ``from plugins.tiled import ...`` gave before still imports from here.
"""
from __future__ import annotations

from pathlib import Path

from engine import hookimpl
from engine.content import Level
from engine.errors import InputError
from engine.generator import int_option
from engine.images import png_bytes
from engine.images import tileset_sheet as tileset_image  # noqa: F401  (its name here before engine/images.py)
from engine.serialize import atomic_write

# every name the single module had, so ``from plugins.tiled import X`` keeps working
from .names import (DEFAULT_CHARS, ENTITY_LAYER, FIRSTGID, FLIP_BITS, INT32, JSON_KEYS_PROP,  # noqa: F401
                    MAX_IMAGE_BYTES, MAX_MAP_BYTES, MAX_SIDE, PYTMX_RESERVED, REGION_LAYER, REGION_NAME_PROP,
                    RESERVED_TILE_PROPS, SCHEMA, SCHEMA_PROP, TILED_EDITOR_VERSION, TILED_VERSION, _hex_color,
                    _parse_color, _prop, _props, escape_name, unescape_name)
from .read import _Importer, _Src, load_map  # noqa: F401
from .write import _map_model, _tmj_bytes, _tmx_bytes, image_name  # noqa: F401


class TiledFormat:
    """One Tiled exporter/importer (``tmj`` or ``tmx``); writes no stdout form (the map needs its PNG)."""

    kinds = ("level",)

    def __init__(self, fmt: str):
        self.id = fmt
        self.extensions = (f".{fmt}",)
        self.options = ("tile_size", "theme")
        what = "JSON" if fmt == "tmj" else "XML"
        self.description = (f"Tiled {what} map + tileset PNG beside it (options: tile_size, default 16; "
                            "theme=NAME draws the tileset from a tile theme); reads Tiled maps back")

    def export(self, content: Level, path: Path, options: dict) -> list[Path]:
        if not isinstance(content, Level):
            raise InputError(f"{self.id} export takes levels, not {type(content).__name__}")
        ts = int_option(options, "tile_size", 16, 1, 256, self.id)
        path = Path(path)
        model, rgba = _map_model(content, "", ts, self.id, options.get("theme"))
        png = png_bytes(rgba)
        name = image_name(path, png)
        model["tilesets"][0]["image"] = name
        data = _tmj_bytes(model) if self.id == "tmj" else _tmx_bytes(model)
        # the image first: a map never points at a missing image; each file is replaced atomically
        return [atomic_write(path.with_name(name), png), atomic_write(path, data)]

    def load(self, path: Path) -> Level:
        return load_map(path, self.id)


@hookimpl
def register_exporters(register):
    register(TiledFormat("tmj"))
    register(TiledFormat("tmx"))
