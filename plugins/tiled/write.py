"""Writing Tiled maps: the tileset image, the map model, and its TMJ (JSON) and TMX (XML) bytes."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from engine.content import Level
from engine.errors import ContentError, InputError
from engine.images import tileset_sheet

from .names import (ENTITY_LAYER, FIRSTGID, INT32, JSON_KEYS_PROP, REGION_LAYER, REGION_NAME_PROP,
                    RESERVED_TILE_PROPS, SCHEMA, SCHEMA_PROP, TILED_EDITOR_VERSION, TILED_VERSION, _XML_BAD,
                    _hex_color, _prop, _props, escape_name)


def image_name(map_path: Path, png: bytes) -> str:
    """The tileset image written beside a map: ``dungeon.tmj`` -> ``dungeon.<digest>.tileset.png``.

    The digest of the image's bytes keeps two maps of one stem (``level.tmj`` of a dungeon, ``level.tmx`` of
    a platformer) from overwriting each other's tileset; the same tileset gives the same name."""
    digest = hashlib.blake2b(png, digest_size=4).hexdigest()
    return f"{map_path.stem}.{digest}.tileset.png"


# ============================================================================================ export model
def _map_model(level: Level, image: str, tile_size: int, fmt: str,
               theme: str | None = None) -> tuple[dict, np.ndarray]:
    """A Tiled map (TMJ-shaped dict; tile layers' ``data`` as gid arrays) and the tileset image (its tiles drawn
    from ``theme``'s art where it maps them: ``-O theme=NAME``, :func:`engine.themes.draw_tileset`)."""
    try:
        level.validate()
    except ContentError as e:
        raise InputError(f"{fmt} export: {e}") from None
    if len(level.layers) > 1000:
        raise InputError(f"{fmt} export: {len(level.layers)} layers is too many")
    rgba, cols, count = tileset_sheet(level.tileset, tile_size)
    if theme is not None:
        from engine.themes import draw_tileset

        rgba = draw_tileset(rgba, cols, level.tileset, tile_size, theme)
    tiles = []
    for i, t in enumerate(level.tileset.tiles):
        clash = [k for k in t.properties if k in RESERVED_TILE_PROPS]
        if clash:
            raise InputError(f"{fmt} export: level.tileset.tiles[{i}].properties.{clash[0]}: the name is "
                             f"reserved (the exporter writes {', '.join(RESERVED_TILE_PROPS)} itself)")
        props = [_prop("name", t.name), _prop("char", t.char),
                 {"name": "color", "type": "color", "value": _hex_color(t.color)}] + _props(t.properties)
        tiles.append({"id": t.id, "properties": props})
    meta_props, json_keys = [], []
    for k, v in level.metadata.items():
        if not k or k.startswith("conjure:"):
            raise InputError(f"{fmt} export: level.metadata key {k!r} cannot be a map property name")
        if isinstance(v, (str, bool, float)) or (isinstance(v, int) and -INT32 <= v < INT32):
            meta_props.append(_prop(escape_name(k), v))
        else:
            meta_props.append(_prop(escape_name(k), json.dumps(v, ensure_ascii=False, allow_nan=False,
                                                               separators=(",", ":"))))
            json_keys.append(k)
    properties = [_prop(SCHEMA_PROP, SCHEMA), _prop(JSON_KEYS_PROP, json.dumps(json_keys))] + meta_props
    ts = tile_size
    h, w = level.shape
    layers: list[dict] = []
    for name, a in level.layers.items():
        layers.append({"data": a.astype(np.int64) + FIRSTGID, "height": h, "id": len(layers) + 1,
                       "name": name, "opacity": 1, "type": "tilelayer", "visible": True, "width": w,
                       "x": 0, "y": 0})
    oid = 0
    ents = []
    for e in level.entities:
        oid += 1
        o = {"height": ts, "id": oid, "name": e.id, "rotation": 0, "type": e.kind, "visible": True,
             "width": ts, "x": e.x * ts, "y": e.y * ts}
        if e.properties:
            o["properties"] = _props(e.properties, escape=True)
        ents.append(o)
    regs = []
    for i, r in enumerate(level.regions):
        if REGION_NAME_PROP in r.properties:
            raise InputError(f"{fmt} export: level.regions[{i}].properties.{REGION_NAME_PROP}: the name is "
                             "reserved (the exporter writes the region name there)")
        oid += 1
        regs.append({"height": r.h * ts, "id": oid, "name": r.id,
                     "properties": [_prop(REGION_NAME_PROP, r.name)] + _props(r.properties, escape=True),
                     "rotation": 0, "type": r.kind, "visible": True, "width": r.w * ts,
                     "x": r.x * ts, "y": r.y * ts})
    for name, objs in ((ENTITY_LAYER, ents), (REGION_LAYER, regs)):
        layers.append({"draworder": "topdown", "id": len(layers) + 1, "name": name, "objects": objs,
                       "opacity": 1, "type": "objectgroup", "visible": True, "x": 0, "y": 0})
    tileset = {"columns": cols, "firstgid": FIRSTGID, "image": image, "imageheight": int(rgba.shape[0]),
               "imagewidth": int(rgba.shape[1]), "margin": 0, "name": level.tileset.name, "spacing": 0,
               "tilecount": count, "tileheight": ts, "tiles": tiles, "tilewidth": ts}
    model = {"compressionlevel": -1, "height": h, "infinite": False, "layers": layers,
             "nextlayerid": len(layers) + 1, "nextobjectid": oid + 1, "orientation": "orthogonal",
             "properties": properties, "renderorder": "right-down", "tiledversion": TILED_EDITOR_VERSION,
             "tileheight": ts, "tilesets": [tileset], "tilewidth": ts, "type": "map",
             "version": TILED_VERSION, "width": w}
    return model, rgba


def _tmj_bytes(model: dict) -> bytes:
    """Indented JSON like Tiled writes, with each tile layer's data one map row per line."""
    rows_text = []
    for i, layer in enumerate(model["layers"]):
        if layer["type"] == "tilelayer":
            data = layer["data"]
            rows_text.append(",\n".join("   " + ",".join(map(str, row.tolist())) for row in data))
            layer["data"] = f"\x00DATA{len(rows_text) - 1}\x00"
    text = json.dumps(model, indent=1, ensure_ascii=False, allow_nan=False)
    for k, rows in enumerate(rows_text):
        text = text.replace(json.dumps(f"\x00DATA{k}\x00"), "[\n" + rows + "]", 1)
    return text.encode("utf-8")


def _xml_text(v: Any, where: str) -> str:
    s = v if isinstance(v, str) else json.dumps(v) if isinstance(v, bool) else repr(v)
    if _XML_BAD.search(s):
        raise InputError(f"tmx export: {where}: holds a control character XML cannot carry")
    return s


def _xml_props(parent: ET.Element, props: list[dict], where: str) -> None:
    if not props:
        return
    el = ET.SubElement(parent, "properties")
    for p in props:
        attrs = {"name": _xml_text(p["name"], where)}
        if p["type"] != "string":
            attrs["type"] = p["type"]
        attrs["value"] = _xml_text(p["value"], f"{where}.{p['name']}")
        ET.SubElement(el, "property", attrs)


def _tmx_bytes(model: dict) -> bytes:
    m = ET.Element("map", {k: str(model[k]) for k in (
        "version", "tiledversion", "orientation", "renderorder", "width", "height", "tilewidth",
        "tileheight")})
    m.set("infinite", "0")
    m.set("nextlayerid", str(model["nextlayerid"]))
    m.set("nextobjectid", str(model["nextobjectid"]))
    _xml_props(m, model["properties"], "level.metadata")
    for ts in model["tilesets"]:
        t = ET.SubElement(m, "tileset", {k: _xml_text(ts[k], "level.tileset.name") for k in (
            "firstgid", "name", "tilewidth", "tileheight", "spacing", "margin", "tilecount", "columns")})
        ET.SubElement(t, "image", {"source": ts["image"], "width": str(ts["imagewidth"]),
                                   "height": str(ts["imageheight"])})
        for tile in ts["tiles"]:
            te = ET.SubElement(t, "tile", {"id": str(tile["id"])})
            _xml_props(te, tile["properties"], f"level.tileset tile {tile['id']}")
    for layer in model["layers"]:
        where = f"layer {layer['name']!r}"
        if layer["type"] == "tilelayer":
            le = ET.SubElement(m, "layer", {"id": str(layer["id"]), "name": _xml_text(layer["name"], where),
                                            "width": str(layer["width"]), "height": str(layer["height"])})
            d = ET.SubElement(le, "data", {"encoding": "csv"})
            d.text = "\n" + ",\n".join(",".join(map(str, row.tolist())) for row in layer["data"]) + "\n"
        else:
            og = ET.SubElement(m, "objectgroup", {"id": str(layer["id"]),
                                                  "name": layer["name"], "draworder": "topdown"})
            for o in layer["objects"]:
                oe = ET.SubElement(og, "object", {"id": str(o["id"]), "name": _xml_text(o["name"], where),
                                                  "type": _xml_text(o["type"], where), "x": str(o["x"]),
                                                  "y": str(o["y"]), "width": str(o["width"]),
                                                  "height": str(o["height"])})
                _xml_props(oe, o.get("properties", []), f"{where} object {o['name']!r}")
    ET.indent(m, space=" ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(m, encoding="utf-8") + b"\n"
