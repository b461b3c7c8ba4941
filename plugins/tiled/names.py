"""Tiled names shared by the writer and the reader: format constants, the property names Conjure uses, the
pytmx-reserved names and their escaping, typed properties and ``#aarrggbb`` colors."""
from __future__ import annotations

import re
from typing import Any

from engine.content import Level

SCHEMA = Level.SCHEMA
TILED_VERSION = "1.10"
TILED_EDITOR_VERSION = "1.10.2"
FIRSTGID = 1
MAX_MAP_BYTES = 64 * 1024 * 1024
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_SIDE = 16384
#: Decoded tile cells per map, all tile layers together (checked from the declared sizes before decoding).
MAX_MAP_CELLS = 1 << 24
#: Decoded image pixels per map, all tileset and tile images together (checked from the PNG header first).
MAX_MAP_PIXELS = 1 << 24
FLIP_BITS = 0xF0000000
INT32 = 2 ** 31
RESERVED_TILE_PROPS = ("name", "char", "color")
REGION_NAME_PROP = "conjure:name"
JSON_KEYS_PROP = "conjure:json"
SCHEMA_PROP = "conjure:schema"
ENTITY_LAYER = "entities"
REGION_LAYER = "regions"
#: Characters given to tiles of a user's map that carry no ``char`` property (``-`` is the empty cell).
DEFAULT_CHARS = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                 "#%&*+=<>[]{}()/\\|!?$@^~;:'\"`,._")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: Attribute and method names of pytmx's map and object classes: pytmx refuses a custom property of a map or an
#: object with one of these names (``type``, ``name``, ``x``…), so such names are written with a trailing
#: underscore (``type`` -> ``type_``, ``type_`` -> ``type__``) and read back without it.
PYTMX_RESERVED = frozenset("""
add_layer add_tileset allow_duplicate_names append apply_transformations as_points background_color class
clear closed color columns copy count custom_property_filename custom_types data draworder extend filename
firstgid from_xml_string get_layer_by_name get_object_by_id get_object_by_name get_tile_colliders get_tile_gid
get_tile_image get_tile_image_by_gid get_tile_locations_by_gid get_tile_properties get_tile_properties_by_gid
get_tile_properties_by_layer get_tileset_from_gid gid gidmap height hexsidelength id image image_loader
imagemap images index infinite insert invert_y iter_data layernames layers load_all_tiles map_gid map_gid2
margin maxgid name nextlayerid nextobjectid objectgroups objects objects_by_id objects_by_name offset offsetx
offsety opacity optional_gids orientation parent parse_json parse_xml points pop properties register_gid
register_gid_check_flags reload_images remove renderorder reverse rotation set_tile_properties sort source
spacing staggeraxis staggerindex template tile_properties tilecount tiledgidmap tiledversion tileheight tiles
tilesets tilewidth trans type version visible visible_layers visible_object_groups visible_tile_layers width
x y""".split())


def escape_name(name: str) -> str:
    """A map or object property name as written (``type`` -> ``type_``), see :data:`PYTMX_RESERVED`."""
    return name + "_" if name.rstrip("_") in PYTMX_RESERVED else name


def unescape_name(name: str) -> str:
    return name[:-1] if name.endswith("_") and name.rstrip("_") in PYTMX_RESERVED else name


def _prop(name: str, value: Any) -> dict:
    """A typed Tiled property from a Conjure scalar."""
    if isinstance(value, bool):
        return {"name": name, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"name": name, "type": "int", "value": value}
    if isinstance(value, float):
        return {"name": name, "type": "float", "value": value}
    return {"name": name, "type": "string", "value": str(value)}


def _props(d: dict, escape: bool = False) -> list[dict]:
    return [_prop(escape_name(k) if escape else k, v) for k, v in d.items()]


def _hex_color(rgb) -> str:
    return "#ff{:02x}{:02x}{:02x}".format(*rgb)


def _parse_color(text: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8})", text.strip())
    if not m:
        return None
    h = m.group(1)[-6:]
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
