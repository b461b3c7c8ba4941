"""VGLC text: the Video Game Level Corpus's one-character-per-tile format, with a JSON legend beside it.

Files: ``NAME.vglc.txt`` (or ``NAME.vglc``): one line per row, one character per tile (``TileDef.char``), rows
ending in ``\\n``. ``NAME.legend.json`` beside it::

    {"tiles": {"X": ["ground", "solid"], "-": ["air", "passable"], "E": ["entity", "enemy"]},
     "conjure": {"schema": "conjure.vglc/1", "layer": "tiles", "tileset": {...}, "entity_chars": {...},
                 "entities": [...], "regions": [...], "metadata": {...}}}

``tiles`` is a VGLC legend (character -> tags: the tile name, its true boolean properties, ``passable`` when not
solid) that research tools read as is; ``conjure`` holds what VGLC has no place for, so import gives back the
same Level.

**Entities** follow the VGLC convention (Super Mario Bros' ``E`` enemies): by default each entity's character is
drawn *over* its tile in the text (``@`` spawn, ``E`` enemy, ``o`` coin…, one character per kind, never a tile's
character), the legend tags it ``["entity", KIND]`` and records, in ``conjure.entities``, every entity's id, kind,
position, properties and the tile character under it. On import the recorded tile goes back under the entity;
an entity character the list does not explain (one a user typed into the text) becomes a new entity of that
kind on the kind's most common tile. Export option ``entities=none`` keeps the text to pure tiles (entities then
live only in the legend).

A user's own VGLC level with a plain VGLC legend (``{"tiles": {char: [tags]}}``, no ``conjure`` part) imports too:
tile ids follow the legend's order, the name is the first tag that is not a generic flag (``solid``,
``passable``, ``hazard``…; failing that, the first besides ``solid``/``passable``), every other tag becomes a
``True`` property, the whole tag list is kept in property ``tags`` (``|``-joined, so export writes the legend
back exactly), and no entities are made (VGLC's
enemies stay tiles, as in the corpus). Unknown characters are an error naming the file, line and column.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine import hookimpl
from engine.content import Entity, Level, TileDef, Tileset
from engine.errors import ContentError, InputError
from engine.serialize import atomic_write, decode, read_bytes

SCHEMA = "conjure.vglc/1"
MAX_TEXT_BYTES = 64 * 1024 * 1024
MAX_SIDE = 16384
#: Preferred characters for entity kinds; a kind without one, or whose character a tile uses, takes the first
#: free character of FALLBACK_CHARS.
ENTITY_CHARS = {"spawn": "@", "exit": "!", "goal": "!", "key": "k", "enemy": "E", "coin": "o", "treasure": "$",
                "npc": "N", "town": "H"}
FALLBACK_CHARS = "EMNOPQRUVYZabcdefghijmpqrstuvxyz0123456789&%+=;:"
#: VGLC tags that describe a tile rather than name it.
FLAG_TAGS = frozenset({"solid", "passable", "impassable", "hazard", "damaging", "moving", "collectable",
                       "breakable", "climbable", "walkable", "enemy", "empty"})
BASIC_TAGS = frozenset({"solid", "passable", "impassable"})
#: A tile read from a plain VGLC legend keeps its tag list, in order, in this property (``|``-joined: tile
#: properties are scalars), so VGLC export writes the legend back as it was.
TAGS_PROP = "tags"
TAG_SEP = "|"
_SUFFIXES = (".vglc.txt", ".vglc", ".txt")


def shown_path(path: str | Path) -> str:
    """``path`` as a message shows it: relative to the working directory when it lies under it, else as given."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.relative_to(Path.cwd()))
    except (ValueError, OSError):  # not under it, or no working directory left
        return str(p)


def legend_path(path: str | Path) -> Path:
    """``level.vglc.txt`` (or ``level.vglc``, ``level.txt``) -> ``level.legend.json`` beside it."""
    p = Path(path)
    name = p.name
    for suf in _SUFFIXES:
        if name.lower().endswith(suf) and len(name) > len(suf):
            return p.with_name(name[:-len(suf)] + ".legend.json")
    return p.with_name(name + ".legend.json")


def _entity_chars(level: Level) -> dict[str, str]:
    used = {t.char for t in level.tileset.tiles}
    out: dict[str, str] = {}
    for e in level.entities:
        if e.kind in out:
            continue
        c = ENTITY_CHARS.get(e.kind)
        if c is None or c in used:
            c = next((f for f in FALLBACK_CHARS if f not in used), None)
            if c is None:
                raise InputError(f"vglc export: no free character left for entity kind {e.kind!r}")
        out[e.kind] = c
        used.add(c)
    return out


def _tags(t: TileDef) -> list[str]:
    kept = t.properties.get(TAGS_PROP)
    if isinstance(kept, str) and kept:  # a tile read from a VGLC legend: its own tags, in its own order
        return kept.split(TAG_SEP)
    tags = [t.name] + [k for k, v in t.properties.items() if v is True and k != t.name]
    if not t.properties.get("solid") and "passable" not in tags:
        tags.append("passable")
    return tags


def vglc_files(level: Level, entities: str = "overlay") -> tuple[str, dict]:
    """The VGLC text and the legend document for a one-layer level."""
    try:
        level.validate()
    except ContentError as e:
        raise InputError(f"vglc export: {e}") from None
    if len(level.layers) != 1:
        raise InputError(f"vglc export: VGLC text holds one tile layer; this level has {len(level.layers)} "
                         f"({', '.join(level.layers)})")
    if entities not in ("overlay", "none"):
        raise InputError(f"vglc option entities: expected 'overlay' or 'none', got {entities!r}")
    chars: dict[str, TileDef] = {}
    for i, t in enumerate(level.tileset.tiles):
        if t.char in "\r\n":
            raise InputError(f"vglc export: level.tileset.tiles[{i}].char: a line break cannot be a tile")
        if t.char in chars:
            raise InputError(f"vglc export: level.tileset.tiles[{i}].char: {t.char!r} is also the char of tile "
                             f"{chars[t.char].name!r}; VGLC needs one character per tile")
        chars[t.char] = t
    layer_name, tiles = next(iter(level.layers.items()))
    lut = np.array(["?"] * 256, dtype="<U1")
    for t in level.tileset.tiles:
        lut[t.id] = t.char
    grid = lut[tiles]
    ent_chars = _entity_chars(level)
    under: dict[str, dict[str, int]] = {}
    ent_docs = []
    for e in level.entities:
        below = str(grid[e.y, e.x])
        under.setdefault(e.kind, {})
        under[e.kind][below] = under[e.kind].get(below, 0) + 1
        ent_docs.append({"id": e.id, "kind": e.kind, "x": e.x, "y": e.y, "tile": below,
                         "properties": dict(e.properties)})
    if entities == "overlay":
        for e in level.entities:
            grid[e.y, e.x] = ent_chars[e.kind]
    text = "".join("".join(row.tolist()) + "\n" for row in grid)
    legend_tiles: dict[str, list[str]] = {t.char: _tags(t) for t in level.tileset.tiles}
    ent_char_doc = {}
    for kind, c in ent_chars.items():
        legend_tiles[c] = ["entity", kind]
        counts = under[kind]
        ent_char_doc[c] = {"kind": kind, "tile": max(counts, key=lambda k: (counts[k], -ord(k[0])))}
    legend = {
        "tiles": legend_tiles,
        "conjure": {
            "schema": SCHEMA,
            "layer": layer_name,
            "entities_in_text": entities == "overlay",
            "tileset": level.tileset.to_dict(),
            "entity_chars": ent_char_doc,
            "entities": ent_docs,
            "regions": [r.to_dict() for r in level.regions],
            "metadata": level.to_dict(binary=False)["metadata"],
        },
    }
    return text, legend


def write_vglc(level: Level, path: str | Path, entities: str = "overlay") -> list[Path]:
    """Write ``path`` (the text) and its legend (see :func:`legend_path`) atomically; returns both paths."""
    text, legend = vglc_files(level, entities)
    legend_bytes = (json.dumps(legend, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    p = Path(path)
    return [atomic_write(p, text.encode("utf-8")), atomic_write(legend_path(p), legend_bytes)]


# ============================================================================================ import
#: Preview colors for a plain legend's tiles, by the first tag word found (in this order); others hash.
TAG_COLORS = (("void", (20, 20, 24)), ("enemy", (220, 40, 40)), ("monster", (220, 40, 40)),
              ("coin", (250, 210, 40)), ("collectable", (250, 210, 40)), ("key", (255, 215, 0)),
              ("lava", (240, 90, 20)), ("water", (40, 90, 220)), ("pipe", (40, 170, 60)),
              ("question", (240, 180, 40)), ("door", (150, 90, 40)), ("stairs", (200, 200, 90)),
              ("stair", (200, 200, 90)), ("cannon", (60, 60, 60)), ("breakable", (190, 90, 50)),
              ("brick", (190, 90, 50)), ("wall", (90, 90, 110)), ("block", (120, 110, 100)),
              ("ground", (150, 80, 30)), ("solid", (130, 90, 60)), ("floor", (210, 200, 170)),
              ("empty", (110, 160, 255)), ("air", (110, 160, 255)), ("passable", (150, 190, 250)))


def _color_for(name: str, tags: list[str] | None = None) -> tuple[int, int, int]:
    words: set[str] = set()
    for t in [name] + list(tags or []):
        words |= set(t.lower().replace("-", " ").replace("_", " ").split())
    for w, c in TAG_COLORS:
        if w in words:
            h = zlib.crc32(name.encode("utf-8")) & 0x1F  # tiles of one kind stay apart a little
            return tuple(max(0, min(255, v + h - 16)) for v in c)
    h = zlib.crc32(name.encode("utf-8"))
    return 40 + (h & 0xFF) * 200 // 255, 40 + (h >> 8 & 0xFF) * 200 // 255, 40 + (h >> 16 & 0xFF) * 200 // 255


def _plain_tileset(tiles_doc: Any, lp: Path) -> tuple[Tileset, dict[str, int]]:
    """A Tileset from a plain VGLC legend ``{char: [tags]}``."""
    if not isinstance(tiles_doc, dict) or not tiles_doc:
        raise InputError(f"{lp}: tiles: expected a non-empty map of character -> tags")
    if len(tiles_doc) > 256:
        raise InputError(f"{lp}: tiles: {len(tiles_doc)} characters; a level holds at most 256 tile ids")
    tiles, ids, names = [], {}, set()
    for i, (char, tags) in enumerate(tiles_doc.items()):
        where = f"{lp}: tiles.{char}"
        if not isinstance(char, str) or len(char) != 1 or char in "\r\n":
            raise InputError(f"{lp}: tiles: key {char!r} is not one character")
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise InputError(f"{where}: expected a list of tag strings")
        name = (next((t for t in tags if t.lower() not in FLAG_TAGS), None)
                or next((t for t in tags if t.lower() not in BASIC_TAGS), None)
                or (tags[0] if tags else f"tile_{ord(char)}"))
        if name in names:
            name = f"{name} ({char})"
        names.add(name)
        props = {t: True for t in tags if t != name}
        props[TAGS_PROP] = TAG_SEP.join(tags)
        tiles.append(TileDef(i, name, char, _color_for(name, tags), props))
        ids[char] = i
    return Tileset(lp.name.split(".")[0] or "vglc", tiles), ids


def _read_grid(path: Path, chars: dict[str, int], lp: Path) -> tuple[list[str], int, int]:
    raw = read_bytes(path, MAX_TEXT_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if " " not in chars and "\t" not in chars:  # trailing blanks an editor left: not tiles of this legend
        lines = [line.rstrip(" \t") for line in lines]
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise InputError(f"{path}: empty level (no lines)")
    w = len(lines[0])
    if not 0 < w <= MAX_SIDE or len(lines) > MAX_SIDE:
        raise InputError(f"{path}: {w}x{len(lines)} characters is outside 1..{MAX_SIDE} per side")
    for i, line in enumerate(lines, 1):
        if len(line) != w:
            raise InputError(f"{path}: line {i}: {len(line)} characters, expected {w} (the first line's)")
        for j, c in enumerate(line, 1):
            if c not in chars:
                raise InputError(f"{path}: line {i} column {j}: character {c!r} is not in the legend "
                                 f"{shown_path(lp)}")
    return lines, w, len(lines)


def read_vglc(path: str | Path, legend: str | Path | None = None) -> Level:
    """Read a VGLC text level with its legend (default: :func:`legend_path`, else ``legend.json`` beside it)."""
    p = Path(path)
    if legend is None:
        lp = legend_path(p)
        if not lp.is_file() and (p.parent / "legend.json").is_file():
            lp = p.parent / "legend.json"
        if not lp.is_file():
            raise InputError(f"{p}: no legend: expected {lp.name} beside it")
    else:
        lp = Path(legend)
    doc = decode(read_bytes(lp, MAX_TEXT_BYTES), "json", str(lp))
    if not isinstance(doc, dict):
        raise InputError(f"{lp}: expected a JSON object")
    if "tiles" not in doc and doc and all(isinstance(v, list) for v in doc.values()):
        doc = {"tiles": doc}  # a bare {char: [tags]} map
    conj = doc.get("conjure")
    if conj is None:
        tileset, ids = _plain_tileset(doc.get("tiles"), lp)
        lines, w, h = _read_grid(p, ids, lp)
        lut = {c: i for c, i in ids.items()}
        tiles = np.array([[lut[c] for c in line] for line in lines], dtype=np.uint8)
        level = Level({"tiles": tiles}, tileset, [], [], {"source": "vglc"})
        return _checked(level, p)
    return _conjure_level(p, lp, conj)


def _conjure_level(p: Path, lp: Path, conj: Any) -> Level:
    if not isinstance(conj, dict) or conj.get("schema") != SCHEMA:
        raise InputError(f"{lp}: conjure.schema: expected {SCHEMA!r}")
    try:
        tileset = Tileset.from_dict(conj.get("tileset"), "conjure.tileset")
    except ContentError as e:
        raise InputError(f"{lp}: {e}") from None
    problems = tileset.problems("conjure.tileset")
    if problems:
        raise InputError(f"{lp}: {problems[0]}")
    ids = {t.char: t.id for t in tileset.tiles}
    ent_chars = conj.get("entity_chars", {})
    if not isinstance(ent_chars, dict):
        raise InputError(f"{lp}: conjure.entity_chars: expected a map")
    kinds: dict[str, tuple[str, int]] = {}
    for c, spec in ent_chars.items():
        where = f"{lp}: conjure.entity_chars.{c}"
        if len(c) != 1 or c in ids or c in "\r\n":
            raise InputError(f"{where}: must be one character that no tile uses")
        if not (isinstance(spec, dict) and isinstance(spec.get("kind"), str) and spec["kind"]
                and isinstance(spec.get("tile"), str) and spec["tile"] in ids):
            raise InputError(f"{where}: expected {{\"kind\": KIND, \"tile\": a tile character}}")
        kinds[c] = (spec["kind"], ids[spec["tile"]])
    lines, w, h = _read_grid(p, {**ids, **{c: -1 for c in kinds}}, lp)
    raw_ents = conj.get("entities", [])
    if not isinstance(raw_ents, list):
        raise InputError(f"{lp}: conjure.entities: expected a list")
    entities: list[dict] = []
    under: dict[tuple[int, int], int] = {}
    for i, e in enumerate(raw_ents):
        where = f"{lp}: conjure.entities[{i}]"
        if not isinstance(e, dict):
            raise InputError(f"{where}: expected a map")
        tile = e.get("tile")
        if not isinstance(tile, str) or tile not in ids:
            raise InputError(f"{where}.tile: {tile!r} is not a tile character")
        x, y = e.get("x"), e.get("y")
        if type(x) is not int or type(y) is not int or not (0 <= x < w and 0 <= y < h):
            raise InputError(f"{where}: position {x!r},{y!r} lies outside the {w}x{h} level")
        entities.append({k: v for k, v in e.items() if k != "tile"})
        under.setdefault((x, y), ids[tile])
    tiles = np.zeros((h, w), dtype=np.uint8)
    taken = {e["id"] for e in entities if isinstance(e.get("id"), str)}
    for y, line in enumerate(lines):
        row = tiles[y]
        for x, c in enumerate(line):
            tid = ids.get(c)
            if tid is not None:
                row[x] = tid
                continue
            kind, default = kinds[c]
            if (x, y) in under:
                row[x] = under[(x, y)]
            else:  # an entity typed into the text
                row[x] = default
                eid = f"{kind}-{x}-{y}"
                while eid in taken:
                    eid += "'"
                taken.add(eid)
                entities.append(Entity(eid, kind, x, y, {}).to_dict())
    layer = conj.get("layer", "tiles")
    doc = {"width": w, "height": h, "layers": [{"name": layer, "tiles": tiles.tobytes()}],
           "tileset": tileset.to_dict(), "entities": entities, "regions": conj.get("regions", []),
           "metadata": conj.get("metadata", {})}
    try:  # from_dict checks every field's type and names it
        level = Level.from_dict(doc)
    except ContentError as e:
        raise InputError(f"{lp}: {str(e).replace('level.', 'conjure.', 1)}") from None
    return _checked(level, lp)


def _checked(level: Level, where: Path) -> Level:
    try:
        level.validate()
    except ContentError as e:
        raise InputError(f"{where}: {e}") from None
    return level


class VglcFormat:
    id = "vglc"
    kinds = ("level",)
    extensions = (".vglc.txt", ".vglc")
    options = ("entities",)
    description = ("VGLC text (one char per tile) + NAME.legend.json; option entities=overlay|none; "
                   "reads VGLC levels with their legend")

    def export(self, content: Level, path: Path, options: dict) -> list[Path]:
        if not isinstance(content, Level):
            raise InputError(f"vglc export takes levels, not {type(content).__name__}")
        unknown = sorted(set(options) - {"entities"})
        if unknown:
            raise InputError(f"vglc: unknown option {unknown[0]!r} (known: entities)")
        return write_vglc(content, path, options.get("entities", "overlay"))

    def load(self, path: Path) -> Level:
        return read_vglc(path)


@hookimpl
def register_exporters(register):
    register(VglcFormat())
