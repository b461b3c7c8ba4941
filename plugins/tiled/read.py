"""Reading Tiled maps: ours exactly back to the same ``Level``, and a user's own maps (see ``_Importer``).
Every problem is an :class:`InputError` naming the map, the layer or tileset and the field."""
from __future__ import annotations

import base64
import gzip
import io
import json
import math
import re
import warnings
import zlib
from pathlib import Path
from typing import Any, Callable
from xml.etree import ElementTree as ET

import numpy as np

from engine.content import Entity, Level, Region, TileDef, Tileset
from engine.errors import ContentError, InputError
from engine.serialize import decode, read_bytes

from .names import (DEFAULT_CHARS, FIRSTGID, FLIP_BITS, JSON_KEYS_PROP, MAX_IMAGE_BYTES, MAX_MAP_BYTES,
                    MAX_MAP_CELLS, MAX_MAP_PIXELS, MAX_SIDE, REGION_LAYER, REGION_NAME_PROP, SCHEMA, SCHEMA_PROP, _parse_color, unescape_name)


# ============================================================================================ import
class _Src:
    """Where a field lives, for error messages."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, msg: str) -> InputError:
        return InputError(f"{self.path}: {where}: {msg}" if where else f"{self.path}: {msg}")


def _xml_root(data: bytes, src: _Src) -> ET.Element:
    """Parse Tiled XML with DTDs, entities and external references refused by the parser itself (defusedxml),
    so no encoding (UTF-16, UTF-32, ...) can hide a declaration from a byte search."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise src.fail("", "DOCTYPE/ENTITY declarations are not allowed in Tiled XML") from None
    except ET.ParseError as e:
        line, col = e.position
        raise src.fail("", f"malformed XML ({str(e).split(':')[0]} at line {line} column {col + 1})") from None
    except (LookupError, ValueError) as e:  # e.g. an unknown encoding in the XML declaration
        raise src.fail("", f"malformed XML ({e})") from None


_CSV_BAD = re.compile(r"[^0-9\s,]|,\s*,")
_CSV_LONG = re.compile(r"[0-9]{11}")


def _num(v: Any, where: str, src: _Src, kind: type = int, lo: float | None = None) -> Any:
    """A number field (TMJ value or TMX attribute text)."""
    if isinstance(v, str):
        try:
            v = int(v) if kind is int else float(v)
        except ValueError:
            raise src.fail(where, f"expected {'an integer' if kind is int else 'a number'}, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
        if kind is int and isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            raise src.fail(where, f"expected {'an integer' if kind is int else 'a number'}, got {v!r}")
    if isinstance(v, float) and not math.isfinite(v):
        raise src.fail(where, f"expected a finite number, got {v!r}")
    if lo is not None and v < lo:
        raise src.fail(where, f"{v} is below {lo}")
    return v


def _prop_value(name: str, type_: str, value: Any, where: str, src: _Src) -> Any:
    w = f"{where}.properties.{name}"
    if type_ in ("", "string", "file", "color"):
        if isinstance(value, str):
            return value
        raise src.fail(w, f"expected a string, got {value!r}")
    if type_ in ("int", "object"):
        return _num(value, w, src, int)
    if type_ == "float":
        return float(_num(value, w, src, float))
    if type_ == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise src.fail(w, f"expected true or false, got {value!r}")
    raise src.fail(w, f"property type {type_!r} cannot become a Conjure property (use string, int, float "
                      "or bool)")


def _json_props(raw: Any, where: str, src: _Src) -> dict:
    if raw is None:
        return {}
    out: dict = {}
    if isinstance(raw, dict):  # Tiled < 1.2: {"name": value}, types guessed
        for k, v in raw.items():
            if isinstance(v, (dict, list)) or v is None:
                raise src.fail(f"{where}.properties.{k}", "expected a scalar")
            out[k] = v
        return out
    if not isinstance(raw, list):
        raise src.fail(f"{where}.properties", f"expected a list, got {type(raw).__name__}")
    for i, p in enumerate(raw):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"]:
            raise src.fail(f"{where}.properties[{i}]", "expected {\"name\", \"type\", \"value\"}")
        out[p["name"]] = _prop_value(p["name"], p.get("type", "string") or "string", p.get("value"), where, src)
    return out


def _xml_props_read(el: ET.Element, where: str, src: _Src) -> dict:
    out: dict = {}
    pe = el.find("properties")
    if pe is None:
        return out
    for i, p in enumerate(pe.findall("property")):
        name = p.get("name")
        if not name:
            raise src.fail(f"{where}.properties[{i}]", "a property needs a name")
        value = p.get("value", p.text if p.text is not None else "")
        out[name] = _prop_value(name, p.get("type", "string"), value, where, src)
    return out


def _decode_data(raw: Any, encoding: str | None, compression: str | None, n: int, where: str,
                 src: _Src) -> np.ndarray:
    """Tile layer data (list of ints, CSV text or base64 text) as a uint32 array of length n (checked): gids
    are 32-bit, and a wider dtype would only multiply the memory of a large map."""
    if isinstance(raw, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            raise src.fail(f"{where}.data", "expected a list of integer gids")
        if any(not 0 <= v < 2**32 for v in raw):  # gids are 32-bit (flip flags in the top bits)
            raise src.fail(f"{where}.data", "gids must lie in 0..4294967295")
        a = np.array(raw, dtype=np.uint32) if raw else np.zeros(0, dtype=np.uint32)
    elif not isinstance(raw, str):
        raise src.fail(f"{where}.data", f"expected a list of gids or encoded text, got {type(raw).__name__}")
    elif encoding == "csv":
        text = (raw or "").strip().strip(",")
        if _CSV_BAD.search(text):
            raise src.fail(f"{where}.data", "expected comma-separated integer gids")
        if _CSV_LONG.search(text):
            raise src.fail(f"{where}.data", "gids must lie in 0..4294967295")
        count = text.count(",") + 1 if text else 0  # checked before parsing: no list of n Python ints
        if count != n:
            raise src.fail(f"{where}.data", f"{count} gids, expected width x height = {n}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy warns (and stops) at text it cannot read
                a = np.fromstring(text, dtype=np.int64, sep=",") if n else np.zeros(0, dtype=np.int64)
        except (ValueError, DeprecationWarning):
            raise src.fail(f"{where}.data", "expected comma-separated integer gids") from None
        if a.size != n or (a.size and a.max() > 0xFFFFFFFF):
            raise src.fail(f"{where}.data", "expected comma-separated integer gids in 0..4294967295")
        a = a.astype(np.uint32)
    elif encoding == "base64":
        try:
            blob = base64.b64decode("".join((raw or "").split()), validate=True)
        except (ValueError, TypeError):
            raise src.fail(f"{where}.data", "malformed base64") from None
        limit = 4 * n
        try:
            if compression in (None, ""):
                pass
            elif compression in ("zlib", "gzip"):
                d = zlib.decompressobj(wbits=47 if compression == "gzip" else 15)
                blob = d.decompress(blob, limit + 1)
            elif compression == "zstd":
                import zstandard

                parts, got = [], 0
                with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)) as r:
                    while got <= limit:
                        chunk = r.read(limit + 1 - got)
                        if not chunk:
                            break
                        parts.append(chunk)
                        got += len(chunk)
                blob = b"".join(parts)
            else:
                raise src.fail(f"{where}.compression", f"unknown compression {compression!r}")
        except (zlib.error, gzip.BadGzipFile, OSError, ValueError) as e:
            if isinstance(e, InputError):
                raise
            raise src.fail(f"{where}.data", f"corrupt {compression} data ({e})") from None
        except Exception as e:  # zstandard.ZstdError
            raise src.fail(f"{where}.data", f"corrupt {compression} data ({e})") from None
        if len(blob) % 4:
            raise src.fail(f"{where}.data", f"{len(blob)} bytes is not a whole number of 4-byte gids")
        a = np.frombuffer(blob, dtype="<u4")
    else:
        raise src.fail(f"{where}.encoding", f"unknown encoding {encoding!r} (known: csv, base64)")
    if a.size != n:
        raise src.fail(f"{where}.data", f"{a.size} gids, expected width x height = {n}")
    return a


def _is_file(p: Path) -> bool:
    """``p.is_file()`` that is False, not an OSError, for names the OS refuses (too long, NUL...)."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


def _image_error(e: Exception) -> str:
    """PIL's reason without the object addresses it puts in (``<_io.BytesIO object at 0x7f...>``)."""
    from PIL import UnidentifiedImageError

    if isinstance(e, UnidentifiedImageError):
        return "not an image Pillow can read (PNG, GIF, BMP, JPEG...)"
    return re.sub(r"<[^<>]* (?:object )?at 0x[0-9a-fA-F]+>", "the image", str(e))


class _TS:
    """A normalised tileset (from TMJ, TMX, TSJ or TSX)."""

    def __init__(self):
        self.firstgid = 1
        self.name = ""
        self.tilecount = 0
        self.columns = 0
        self.tilewidth = self.tileheight = 0
        self.margin = self.spacing = 0
        self.image: Path | None = None
        self.imagewidth = self.imageheight = 0
        self.tiles: dict[int, dict] = {}  # local id -> {"type": str, "properties": dict, "image": Path|None}
        self.where = ""
        self._pixels: np.ndarray | None = None


class _Importer:
    """Reads a TMJ or TMX file into a normalised map, then into a Level.

    Conjure maps (map property ``conjure:schema``) come back exactly: tile id = gid - 1, the tiles with a
    ``name`` property form the tileset, entities/regions/metadata from their objects and properties. A
    user's map: tile id = gid, id 0 is an added ``empty`` tile (gid 0, no tile), every tile of every tileset
    up to gid 255 is in the tileset (name/char/color from properties when present, else from the tileset
    name, a default glyph and the tile's mean color), object layers named ``regions`` give regions and every
    other object is an entity (kind = its class/type, or ``object``), map properties become metadata.
    """

    def __init__(self, path: Path, fmt: str):
        self.path = Path(path)
        self.fmt = fmt
        self.src = _Src(self.path)
        self._images: dict[Path, np.ndarray] = {}  # decoded once per map, shared by every tileset using them
        self._pixels = 0  # decoded so far, against MAX_MAP_PIXELS

    # ------------------------------------------------------------------ reading
    def read(self) -> dict:
        data = read_bytes(self.path, MAX_MAP_BYTES)
        if self.fmt == "tmx":
            return self._tmx_map(_xml_root(data, self.src))
        doc = decode(data, "json", str(self.path))
        return self._tmj_map(doc)

    def _need(self, d: dict, key: str, where: str, kind: type = int, lo: float | None = None) -> Any:
        if key not in d or d[key] is None:
            raise self.src.fail(f"{where}.{key}" if where else key, "missing")
        return _num(d[key], f"{where}.{key}" if where else key, self.src, kind, lo)

    def _tmj_map(self, doc: Any) -> dict:
        src = self.src
        if not isinstance(doc, dict):
            raise src.fail("", f"expected a JSON object at the top level, got {type(doc).__name__}")
        if doc.get("type", "map") != "map":
            raise src.fail("type", f"expected 'map', got {doc.get('type')!r}")
        m = self._map_head(doc.get, "")
        raw_ts = doc.get("tilesets", [])
        if not isinstance(raw_ts, list):
            raise src.fail("tilesets", "expected a list")
        m["tilesets"] = [self._tmj_tileset(t, f"tilesets[{i}]", self.path.parent) for i, t in enumerate(raw_ts)]
        m["properties"] = _json_props(doc.get("properties"), "map", src)
        raw_layers = doc.get("layers")
        if not isinstance(raw_layers, list):
            raise src.fail("layers", "missing or not a list")
        m["layers"] = self._tmj_layers(raw_layers, m)
        return m

    def _map_head(self, get: Callable[[str], Any], where: str) -> dict:
        src = self.src
        orient = get("orientation")
        if orient != "orthogonal":
            raise src.fail("orientation", f"{orient!r} maps cannot become levels (only orthogonal)")
        inf = get("infinite")
        if inf not in (None, False, 0, "0", "false"):
            raise src.fail("infinite", "infinite (chunked) maps cannot become levels; save a fixed-size map")
        m = {}
        for key in ("width", "height"):
            v = get(key)
            if v is None:
                raise src.fail(key, "missing")
            v = _num(v, key, src, int, 1)
            if v > MAX_SIDE:
                raise src.fail(key, f"{v} is over the {MAX_SIDE}-tile limit")
            m[key] = v
        for key in ("tilewidth", "tileheight"):
            v = get(key)
            if v is None:
                raise src.fail(key, "missing")
            m[key] = _num(v, key, src, int, 1)
        return m

    def _tmj_tileset(self, t: Any, where: str, base: Path) -> _TS:
        src = self.src
        if not isinstance(t, dict):
            raise src.fail(where, "expected an object")
        firstgid = self._need(t, "firstgid", where, int, 1)
        if "source" in t:
            ts = self._external_tileset(t["source"], where, base)
        else:
            ts = self._tmj_tileset_body(t, where, base)
        ts.firstgid = firstgid
        return ts

    def _external_tileset(self, source: Any, where: str, base: Path) -> _TS:
        if not isinstance(source, str) or not source:
            raise self.src.fail(f"{where}.source", "expected a file name")
        p = base / source
        w = f"{where} (tileset file {source})"
        data = read_bytes(p, MAX_MAP_BYTES)
        if p.suffix.lower() == ".tsx":
            root = _xml_root(data, _Src(p))
            if root.tag != "tileset":
                raise self.src.fail(w, f"expected a <tileset> element, got <{root.tag}>")
            return self._tmx_tileset_body(root, w, p.parent)
        doc = decode(data, "json", str(p))
        if not isinstance(doc, dict):
            raise self.src.fail(w, "expected a JSON object")
        return self._tmj_tileset_body(doc, w, p.parent)

    def _tmj_tileset_body(self, t: dict, where: str, base: Path) -> _TS:
        src = self.src
        ts = _TS()
        ts.where = where
        ts.name = str(t.get("name", "")) or "tileset"
        ts.tilecount = self._need(t, "tilecount", where, int, 0)
        ts.columns = _num(t.get("columns", 0), f"{where}.columns", src, int, 0)
        ts.tilewidth = self._need(t, "tilewidth", where, int, 1)
        ts.tileheight = self._need(t, "tileheight", where, int, 1)
        ts.margin = _num(t.get("margin", 0), f"{where}.margin", src, int, 0)
        ts.spacing = _num(t.get("spacing", 0), f"{where}.spacing", src, int, 0)
        if t.get("image"):
            if not isinstance(t["image"], str):
                raise src.fail(f"{where}.image", "expected a file name")
            ts.image = base / t["image"]
            ts.imagewidth = _num(t.get("imagewidth", 0), f"{where}.imagewidth", src, int, 0)
            ts.imageheight = _num(t.get("imageheight", 0), f"{where}.imageheight", src, int, 0)
        tiles = t.get("tiles", [])
        if isinstance(tiles, dict):  # Tiled < 1.2 kept tile properties in a map keyed by id
            tiles = [dict(v, id=int(k)) if isinstance(v, dict) and str(k).isdigit() else None
                     for k, v in tiles.items()]
        if not isinstance(tiles, list):
            raise src.fail(f"{where}.tiles", "expected a list")
        for i, tile in enumerate(tiles):
            w = f"{where}.tiles[{i}]"
            if not isinstance(tile, dict):
                raise src.fail(w, "expected an object")
            tid = self._need(tile, "id", w, int, 0)
            img = tile.get("image")
            ts.tiles[tid] = {"type": str(tile.get("class") or tile.get("type") or ""),
                             "properties": _json_props(tile.get("properties"), w, src),
                             "image": base / img if isinstance(img, str) and img else None}
        return ts

    def _tmj_layers(self, raw_layers: list, m: dict, prefix: str = "layers") -> list[dict]:
        src = self.src
        out = []
        for i, layer in enumerate(raw_layers):
            if not isinstance(layer, dict):
                raise src.fail(f"{prefix}[{i}]", "expected an object")
            name = layer.get("name", "")
            if not isinstance(name, str):
                raise src.fail(f"{prefix}[{i}].name", "expected a string")
            where = f"layer {name!r}"
            kind = layer.get("type")
            if kind == "tilelayer":
                if "chunks" in layer:
                    raise src.fail(f"{where}.chunks", "chunked (infinite) layers cannot become levels")
                for key in ("width", "height"):
                    v = self._need(layer, key, where, int, 0)
                    if v != m[key]:
                        raise src.fail(f"{where}.{key}", f"{v} differs from the map's {m[key]}")
                if "data" not in layer:
                    raise src.fail(f"{where}.data", "missing")
                enc = layer.get("encoding", "csv")
                n = m["width"] * m["height"]
                out.append({"type": "tile", "name": name, "cells": n,  # decoded later, after cheap checks
                            "decode": lambda r=layer["data"], e=enc, c=layer.get("compression"), n=n, w=where:
                            _decode_data(r, e, c, n, w, src)})
            elif kind == "objectgroup":
                objs = layer.get("objects", [])
                if not isinstance(objs, list):
                    raise src.fail(f"{where}.objects", "expected a list")
                parsed = []
                for j, o in enumerate(objs):
                    w = f"{where}.objects[{j}]"
                    if not isinstance(o, dict):
                        raise src.fail(w, "expected an object")
                    parsed.append({
                        "id": _num(o.get("id", j + 1), f"{w}.id", src, int),
                        "name": str(o.get("name", "") or ""),
                        "type": str(o.get("class") or o.get("type") or ""),
                        "x": _num(o.get("x", 0), f"{w}.x", src, float),
                        "y": _num(o.get("y", 0), f"{w}.y", src, float),
                        "width": _num(o.get("width", 0), f"{w}.width", src, float),
                        "height": _num(o.get("height", 0), f"{w}.height", src, float),
                        "gid": "gid" in o,
                        "properties": _json_props(o.get("properties"), w, src)})
                out.append({"type": "object", "name": name, "objects": parsed,
                            "properties": _json_props(layer.get("properties"), where, src)})
            elif kind == "group":
                sub = layer.get("layers", [])
                if not isinstance(sub, list):
                    raise src.fail(f"{where}.layers", "expected a list")
                out += self._tmj_layers(sub, m, f"{where}.layers")
            elif kind == "imagelayer":
                continue
            else:
                raise src.fail(f"{where}.type", f"unknown layer type {kind!r}")
        return out

    # TMX ---------------------------------------------------------------
    def _tmx_map(self, root: ET.Element) -> dict:
        src = self.src
        if root.tag != "map":
            raise src.fail("", f"expected a <map> element, got <{root.tag}>")
        m = self._map_head(root.get, "")
        m["properties"] = _xml_props_read(root, "map", src)
        m["tilesets"] = []
        for i, t in enumerate(root.findall("tileset")):
            where = f"tileset[{i}]"
            firstgid = _num(t.get("firstgid"), f"{where}.firstgid", src, int, 1) if t.get("firstgid") else None
            if firstgid is None:
                raise src.fail(f"{where}.firstgid", "missing")
            if t.get("source"):
                ts = self._external_tileset(t.get("source"), where, self.path.parent)
            else:
                ts = self._tmx_tileset_body(t, where, self.path.parent)
            ts.firstgid = firstgid
            m["tilesets"].append(ts)
        m["layers"] = self._tmx_layers(root, m)
        return m

    def _tmx_tileset_body(self, t: ET.Element, where: str, base: Path) -> _TS:
        src = self.src
        ts = _TS()
        ts.where = where
        ts.name = t.get("name") or "tileset"
        ts.tilecount = self._need(t.attrib, "tilecount", where, int, 0)
        ts.columns = _num(t.get("columns", "0"), f"{where}.columns", src, int, 0)
        ts.tilewidth = self._need(t.attrib, "tilewidth", where, int, 1)
        ts.tileheight = self._need(t.attrib, "tileheight", where, int, 1)
        ts.margin = _num(t.get("margin", "0"), f"{where}.margin", src, int, 0)
        ts.spacing = _num(t.get("spacing", "0"), f"{where}.spacing", src, int, 0)
        img = t.find("image")
        if img is not None and img.get("source"):
            ts.image = base / img.get("source")
            ts.imagewidth = _num(img.get("width", "0"), f"{where}.image.width", src, int, 0)
            ts.imageheight = _num(img.get("height", "0"), f"{where}.image.height", src, int, 0)
        for i, tile in enumerate(t.findall("tile")):
            w = f"{where}.tile[{i}]"
            tid = self._need(tile.attrib, "id", w, int, 0)
            ti = tile.find("image")
            ts.tiles[tid] = {"type": tile.get("class") or tile.get("type") or "",
                             "properties": _xml_props_read(tile, w, src),
                             "image": base / ti.get("source") if ti is not None and ti.get("source") else None}
        return ts

    def _tmx_layers(self, parent: ET.Element, m: dict) -> list[dict]:
        src = self.src
        out = []
        for el in parent:
            name = el.get("name", "")
            where = f"layer {name!r}"
            if el.tag == "layer":
                for key in ("width", "height"):
                    v = self._need(el.attrib, key, where, int, 0)
                    if v != m[key]:
                        raise src.fail(f"{where}.{key}", f"{v} differs from the map's {m[key]}")
                d = el.find("data")
                if d is None:
                    raise src.fail(f"{where}.data", "missing")
                if d.find("chunk") is not None:
                    raise src.fail(f"{where}.data", "chunked (infinite) layers cannot become levels")
                n = m["width"] * m["height"]
                enc = d.get("encoding")
                if enc is None:  # <tile gid="..."/> elements
                    def decode(d=d, n=n, where=where):
                        gids = [_num(te.get("gid", "0"), f"{where}.data.tile[{k}].gid", src, int, 0)
                                for k, te in enumerate(d.findall("tile"))]
                        return _decode_data(gids, None, None, n, where, src)
                else:
                    def decode(d=d, n=n, where=where, enc=enc):
                        return _decode_data(d.text or "", enc, d.get("compression"), n, where, src)
                out.append({"type": "tile", "name": name, "cells": n, "decode": decode})
            elif el.tag == "objectgroup":
                objs = []
                for j, o in enumerate(el.findall("object")):
                    w = f"{where}.object[{j}]"
                    objs.append({
                        "id": _num(o.get("id", str(j + 1)), f"{w}.id", src, int),
                        "name": o.get("name", ""), "type": o.get("class") or o.get("type") or "",
                        "x": _num(o.get("x", "0"), f"{w}.x", src, float),
                        "y": _num(o.get("y", "0"), f"{w}.y", src, float),
                        "width": _num(o.get("width", "0"), f"{w}.width", src, float),
                        "height": _num(o.get("height", "0"), f"{w}.height", src, float),
                        "gid": o.get("gid") is not None,
                        "properties": _xml_props_read(o, w, src)})
                out.append({"type": "object", "name": name, "objects": objs,
                            "properties": _xml_props_read(el, where, src)})
            elif el.tag == "group":
                out += self._tmx_layers(el, m)
        return out

    # ------------------------------------------------------------------ building the level
    def level(self) -> Level:
        m = self.read()
        src = self.src
        props = {unescape_name(k): v for k, v in m["properties"].items()}
        schema = props.pop(SCHEMA_PROP, None)
        conjure = schema is not None
        if conjure and schema != SCHEMA:
            raise src.fail(f"map.properties.{SCHEMA_PROP}", f"{schema!r} is not {SCHEMA!r}")
        tile_layers = [lay for lay in m["layers"] if lay["type"] == "tile"]
        if not tile_layers:
            raise src.fail("layers", "the map has no tile layer")
        # cheap checks first: layer data is decoded only once the declared sizes fit the budget and the
        # tilesets are known to be usable (a 176 KB map could otherwise claim gigabytes of cells)
        cells = sum(lay["cells"] for lay in tile_layers)
        if cells > MAX_MAP_CELLS:
            raise src.fail("layers", f"{len(tile_layers)} tile layers of {m['width']}x{m['height']} are {cells} "
                                     f"cells, over the {MAX_MAP_CELLS}-cell limit per map")
        tilesets = sorted(m["tilesets"], key=lambda t: t.firstgid)
        if not tilesets:
            raise src.fail("tilesets", "the map has no tileset")
        for lay in tile_layers:  # uint32, within the budget
            lay["data"] = lay.pop("decode")()
        for ts in tilesets:
            self._check_tileset(ts)
        # gid -> tileset
        bounds = [(ts.firstgid, ts.firstgid + ts.tilecount, ts) for ts in tilesets]
        for (a0, a1, ta), (b0, _, tb) in zip(bounds, bounds[1:]):
            if b0 < a1:
                raise src.fail(f"{tb.where}.firstgid", f"{b0} overlaps tileset {ta.name!r} (gids {a0}..{a1 - 1})")
        tiles: list[TileDef] = []
        used_ids: set[int] = set()
        if conjure:
            for ts in tilesets:
                for local, info in ts.tiles.items():
                    if local >= ts.tilecount:
                        raise src.fail(f"{ts.where}.tiles", f"tile id {local} is not below tilecount "
                                                             f"{ts.tilecount}")
                    if "name" not in info["properties"]:
                        continue
                    tid = ts.firstgid + local - FIRSTGID
                    if tid > 255:
                        raise src.fail(f"{ts.where}.tiles", f"gid {tid + FIRSTGID} is above 256: a level holds at "
                                                             "most 256 tile ids")
                    tiles.append(self._tiledef(ts, local, tid, info, conjure=True))
                    used_ids.add(tid)
        else:
            tiles.append(TileDef(0, "empty", "-", (0, 0, 0), {"empty": True}))
            for ts in tilesets:
                for local in range(ts.tilecount):
                    gid = ts.firstgid + local
                    if gid > 255:
                        break
                    info = ts.tiles.get(local, {"type": "", "properties": {}, "image": None})
                    tiles.append(self._tiledef(ts, local, gid, info, conjure=False))
            names: set[str] = set()
            for t in tiles:  # unique names
                if t.name in names:
                    t.name = f"{t.name}_{t.id}"
                names.add(t.name)
        if len(tiles) > 256:
            raise src.fail("tilesets", f"{len(tiles)} tile ids; a level holds at most 256")
        known = np.zeros(256, dtype=bool)
        known[[t.id for t in tiles]] = True
        layers: dict[str, np.ndarray] = {}
        for lay in tile_layers:
            where = f"layer {lay['name']!r}"
            if lay["name"] in layers:
                raise src.fail(f"{where}.name", "two tile layers share this name")
            a = lay["data"]
            bad = a > ~np.uint32(FLIP_BITS)  # any of the top 4 (flip) bits set; a bool mask, not a uint32 copy
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise src.fail(f"{where}.data", f"flipped or rotated tile at x={k % m['width']}, "
                                                f"y={k // m['width']}: levels cannot hold flipped tiles")
            ids = a - np.uint32(FIRSTGID) if conjure else a  # gid 0 wraps to 2**32 - 1: outside
            small = ids.astype(np.uint8)  # the tile ids, if all are below 256 (checked next)
            outside = ids > 255
            outside |= ~known[small]
            if outside.any():
                k = int(np.flatnonzero(outside)[0])
                gid = int(a[k])
                why = self._gid_problem(gid, bounds, conjure)
                raise src.fail(f"{where}.data", f"gid {gid} at x={k % m['width']}, y={k // m['width']} {why}")
            layers[lay["name"]] = small.reshape(m["height"], m["width"])
            lay["data"] = ids = a = None  # free the uint32 gids before the next layer is checked
        entities, regions = self._objects(m, conjure)
        if conjure:
            metadata = self._conjure_metadata(props)
            tsname = tilesets[0].name
        else:
            metadata = props
            tsname = "+".join(ts.name for ts in tilesets)
        level = Level(layers, Tileset(tsname, tiles), entities, regions, metadata)
        try:
            level.validate()
        except ContentError as e:
            raise InputError(f"{self.path}: {e}") from None
        return level

    def _gid_problem(self, gid: int, bounds, conjure: bool) -> str:
        if gid == 0:
            return "is an empty cell; Conjure maps have a tile in every cell"
        for a0, a1, ts in bounds:
            if a0 <= gid < a1:
                if conjure:
                    return f"is tile {gid - a0} of tileset {ts.name!r}, which has no 'name' property"
                return "is above 255: a level holds at most 256 tile ids"
        return "is not in any tileset"

    def _check_tileset(self, ts: _TS) -> None:
        src = self.src
        if ts.tilecount < 1:
            raise src.fail(f"{ts.where}.tilecount", "a tileset needs at least one tile")
        if ts.image is not None:
            if not _is_file(ts.image):
                raise src.fail(f"{ts.where}.image", f"tileset image {ts.image} is missing")
            if ts.imagewidth and ts.imageheight:  # a swapped or overwritten image would misdraw every tile
                size = self._image_size(ts.image, f"{ts.where}.image")
                if size != (ts.imagewidth, ts.imageheight):
                    raise src.fail(f"{ts.where}.image", f"tileset image {ts.image} is {size[0]}x{size[1]}, "
                                   f"the map declares {ts.imagewidth}x{ts.imageheight}")
        else:
            for k in range(min(ts.tilecount, len(ts.tiles) + 1)):
                if (ts.tiles.get(k) or {}).get("image") is None:
                    raise src.fail(f"{ts.where}.image", f"no tileset image, and tile {k} has no image")
            for k, info in ts.tiles.items():
                if not _is_file(info["image"]):
                    raise src.fail(f"{ts.where}.tiles[{k}].image", f"tile image {info['image']} is missing")

    def _image_size(self, p: Path, where: str) -> tuple[int, int]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(read_bytes(p, MAX_IMAGE_BYTES))) as im:  # reads the header only
                return im.size
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise self.src.fail(where, f"cannot read image {p} ({_image_error(e)})") from None

    def _image(self, p: Path, where: str) -> np.ndarray:
        """The RGBA pixels of ``p``, decoded once per map; the size is read from the header and counted
        against the map's pixel budget before anything is decoded."""
        from PIL import Image, UnidentifiedImageError

        key = p.resolve()
        if key in self._images:
            return self._images[key]
        data = read_bytes(p, MAX_IMAGE_BYTES)
        try:
            with Image.open(io.BytesIO(data)) as im:
                if self._pixels + im.width * im.height > MAX_MAP_PIXELS:
                    raise self.src.fail(where, f"image {p} is {im.width}x{im.height}: the map's images would "
                                               f"decode to over {MAX_MAP_PIXELS} pixels")
                self._pixels += im.width * im.height
                px = np.asarray(im.convert("RGBA"))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise self.src.fail(where, f"cannot read image {p} ({_image_error(e)})") from None
        self._images[key] = px
        return px

    def _mean_color(self, ts: _TS, local: int) -> tuple[int, int, int]:
        if ts.image is None:
            px = self._image(ts.tiles[local]["image"], f"{ts.where}.tiles[{local}].image")
        else:
            if ts._pixels is None:
                ts._pixels = self._image(ts.image, f"{ts.where}.image")  # shared with other tilesets
            cols = ts.columns or max(1, (ts._pixels.shape[1] - 2 * ts.margin + ts.spacing)
                                     // (ts.tilewidth + ts.spacing))
            r, c = divmod(local, cols)
            x0 = ts.margin + c * (ts.tilewidth + ts.spacing)
            y0 = ts.margin + r * (ts.tileheight + ts.spacing)
            px = ts._pixels[y0:y0 + ts.tileheight, x0:x0 + ts.tilewidth]
        if px.size == 0:
            return (128, 128, 128)
        px = px.reshape(-1, 4)
        opaque = px[:, 3] > 0
        count = int(np.count_nonzero(opaque))
        if not count:
            return (0, 0, 0)
        # integer sums per channel (no float64 copy of the tile); round half to even like round(mean)
        return tuple(int(round(int(px[opaque, ch].sum(dtype=np.int64)) / count)) for ch in range(3))

    def _tiledef(self, ts: _TS, local: int, tid: int, info: dict, conjure: bool) -> TileDef:
        props = dict(info["properties"])
        where = f"{ts.where}.tiles[{local}].properties"
        name = props.pop("name", None) if isinstance(props.get("name"), str) and props.get("name") else None
        char = props.pop("char", None) if isinstance(props.get("char"), str) and len(props["char"]) == 1 else None
        color = _parse_color(props["color"]) if isinstance(props.get("color"), str) else None
        if color is not None:
            props.pop("color")
        if conjure:
            if char is None:
                raise self.src.fail(f"{where}.char", "missing or not one character")
            if color is None:
                raise self.src.fail(f"{where}.color", "missing or not a color")
        if name is None:
            name = info["type"] or f"{ts.name}_{local}"
        if char is None:
            char = DEFAULT_CHARS[(tid - 1) % len(DEFAULT_CHARS)] if tid - 1 < len(DEFAULT_CHARS) else "?"
        if color is None:
            color = self._mean_color(ts, local)
        return TileDef(tid, name, char, color, props)

    def _objects(self, m: dict, conjure: bool) -> tuple[list[Entity], list[Region]]:
        src = self.src
        tw, th, W, H = m["tilewidth"], m["tileheight"], m["width"], m["height"]
        entities: list[Entity] = []
        regions: list[Region] = []
        taken: set[str] = set()

        def ident(o: dict, kind: str) -> str:
            name = o["name"]
            if conjure:
                return name
            if not name or name in taken:
                name = f"{name or kind}-{o['id']}"
                while name in taken:
                    name += "'"
            taken.add(name)
            return name

        for lay in m["layers"]:
            if lay["type"] != "object":
                continue
            where = f"layer {lay['name']!r}"
            is_regions = lay["name"].lower() == REGION_LAYER
            for o in lay["objects"]:
                w = f"{where} object {o['id']} ({o['name'] or 'unnamed'})"
                x, y, ow, oh = o["x"], o["y"], o["width"], o["height"]
                if o["gid"]:  # tile objects are anchored at their bottom-left corner
                    y -= oh
                if is_regions:
                    rx, ry = math.floor(x / tw + 1e-9), math.floor(y / th + 1e-9)
                    rw = max(1, math.ceil((x + ow) / tw - 1e-9) - rx)
                    rh = max(1, math.ceil((y + oh) / th - 1e-9) - ry)
                    if rx < 0 or ry < 0 or rx + rw > W or ry + rh > H:
                        raise src.fail(w, f"rectangle {rx},{ry} {rw}x{rh} (tiles) lies outside the {W}x{H} map")
                    props = {unescape_name(k): v for k, v in o["properties"].items()}
                    kind = o["type"] or "region"
                    rid = ident(o, kind)
                    name = props.pop(REGION_NAME_PROP, None)
                    if not isinstance(name, str):
                        name = o["name"] or rid
                    regions.append(Region(rid, kind, name, rx, ry, rw, rh, props))
                else:
                    ex = math.floor((x + ow / 2) / tw)
                    ey = math.floor((y + oh / 2) / th)
                    if not (0 <= ex < W and 0 <= ey < H):
                        raise src.fail(w, f"position x={x:g}, y={y:g} lies outside the {W}x{H}-tile map")
                    kind = o["type"] or "object"
                    entities.append(Entity(ident(o, kind), kind, ex, ey,
                                           {unescape_name(k): v for k, v in o["properties"].items()}))
        return entities, regions

    def _conjure_metadata(self, props: dict) -> dict:
        raw = props.pop(JSON_KEYS_PROP, "[]")
        try:
            keys = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            keys = None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise self.src.fail(f"map.properties.{JSON_KEYS_PROP}", "expected a JSON list of property names")
        meta = {}
        for k, v in props.items():
            if k in keys:
                try:
                    v = json.loads(v) if isinstance(v, str) else None
                except ValueError:
                    raise self.src.fail(f"map.properties.{k}", "malformed JSON") from None
            meta[k] = v
        return meta


def load_map(path: str | Path, fmt: str | None = None) -> Level:
    """Read a Tiled map (``.tmj``/``.json`` or ``.tmx``; ``fmt`` overrides the extension) as a Level."""
    p = Path(path)
    if fmt is None:
        fmt = "tmx" if p.suffix.lower() == ".tmx" else "tmj"
    return _Importer(p, fmt).level()
