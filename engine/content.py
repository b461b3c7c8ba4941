"""The content model: Level, Character, Cast and Story.

Every content type has a versioned schema name (``"conjure.level/1"``), ``to_dict``/``from_dict`` (plain
types only: tiles and sprite pixels travel as raw bytes in msgpack, as rows of ints in JSON), and
``problems()``/``validate()`` that name the bad field (``level.entities[3].x: 70 outside 0..63``).

Tile layers are ``numpy.uint8`` arrays of shape ``(height, width)``, indexed ``[y, x]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .errors import ContentError

SCALARS = (str, int, float, bool)
MAX_DEPTH = 32


# --------------------------------------------------------------------------------------------- helpers
def _is_scalar(v: Any) -> bool:
    return isinstance(v, SCALARS) and not (isinstance(v, float) and not math.isfinite(v))


def _check_props(props: Any, where: str, out: list[str]) -> None:
    """Properties are flat maps of str -> str/int/float/bool (they become Tiled custom properties)."""
    if not isinstance(props, dict):
        out.append(f"{where}: expected a map, got {type(props).__name__}")
        return
    for k, v in props.items():
        if not isinstance(k, str) or not k:
            out.append(f"{where}: property names must be non-empty strings, got {k!r}")
        elif not _is_scalar(v):
            out.append(f"{where}.{k}: expected str, int, float or bool, got {type(v).__name__}")


def _check_meta(value: Any, where: str, out: list[str], depth: int = 0) -> None:
    """Metadata is JSON-like: maps with str keys, lists, scalars, None; bounded depth."""
    if depth > MAX_DEPTH:
        out.append(f"{where}: nested deeper than {MAX_DEPTH}")
    elif value is None or _is_scalar(value):
        return
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_meta(v, f"{where}[{i}]", out, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                out.append(f"{where}: keys must be strings, got {k!r}")
            else:
                _check_meta(v, f"{where}.{k}", out, depth + 1)
    else:
        out.append(f"{where}: {type(value).__name__} is not JSON-like")


def _meta(value: Any) -> Any:
    """Normalise metadata to plain types (tuples -> lists) so msgpack and JSON agree."""
    if isinstance(value, dict):
        return {k: _meta(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_meta(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _need(d: Any, key: str, types: type | tuple, where: str) -> Any:
    if not isinstance(d, dict):
        raise ContentError(f"{where}: expected a map, got {type(d).__name__}")
    if key not in d:
        raise ContentError(f"{where}.{key}: missing")
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and types in (int, (int, float))):
        tn = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise ContentError(f"{where}.{key}: expected {tn}, got {type(v).__name__}")
    return v


def _opt(d: dict, key: str, types: type | tuple, where: str, default: Any) -> Any:
    if key not in d or d[key] is None and default is None:
        return default
    return _need(d, key, types, where)


def _tile_id_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255


def _grid_to_wire(a: np.ndarray, binary: bool) -> Any:
    return a.tobytes() if binary else a.tolist()


def _grid_from_wire(v: Any, h: int, w: int, where: str) -> np.ndarray:
    if isinstance(v, (bytes, bytearray)):
        if len(v) != h * w:
            raise ContentError(f"{where}: {len(v)} bytes, expected {h}x{w}={h * w}")
        return np.frombuffer(bytes(v), dtype=np.uint8).reshape(h, w).copy()
    if isinstance(v, list):
        if len(v) != h or any(not isinstance(r, list) or len(r) != w for r in v):
            raise ContentError(f"{where}: expected {h} rows of {w} tile ids")
        if not all(type(x) is int for row in v for x in row):  # not floats (truncated), bools, strings
            raise ContentError(f"{where}: rows must hold integers")
        try:
            a = np.array(v, dtype=np.int64)
        except (ValueError, TypeError, OverflowError):
            raise ContentError(f"{where}: rows must hold integers") from None
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ContentError(f"{where}: tile ids must lie in 0..255")
        return a.astype(np.uint8).reshape(h, w)
    raise ContentError(f"{where}: expected bytes or rows, got {type(v).__name__}")


class Content:
    """Base class of the content types."""

    KIND: ClassVar[str] = ""
    SCHEMA: ClassVar[str] = ""
    metadata: dict

    def to_dict(self, binary: bool = True) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict) -> "Content":  # pragma: no cover - abstract
        raise NotImplementedError

    def problems(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def validate(self) -> "Content":
        """Raise ContentError naming the first bad field; return self when valid."""
        p = self.problems()
        if p:
            more = f" (and {len(p) - 1} more)" if len(p) > 1 else ""
            raise ContentError(p[0] + more)
        return self

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()  # type: ignore[union-attr]

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------- levels
@dataclass
class TileDef:
    """One tile id: its name, a one-character glyph (VGLC text), an RGB color (previews) and properties
    such as ``solid``, ``hazard``, ``door``, ``locked``."""

    id: int
    name: str
    char: str = "?"
    color: tuple[int, int, int] = (255, 0, 255)
    properties: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "char": self.char, "color": list(self.color),
                "properties": dict(self.properties)}


@dataclass
class Tileset:
    """Names every tile id a level uses."""

    name: str
    tiles: list[TileDef]

    def __post_init__(self):
        self._by_id = {t.id: t for t in self.tiles}

    def __getitem__(self, key: int | str) -> TileDef:
        if isinstance(key, str):
            for t in self.tiles:
                if t.name == key:
                    return t
            raise KeyError(key)
        return self._by_id[key]

    def id(self, name: str) -> int:
        """The id of the tile called ``name``."""
        return self[name].id

    def lookup(self, prop: str) -> np.ndarray:
        """A 256-entry bool table: ``lookup("solid")[tiles]`` is a mask of solid cells."""
        table = np.zeros(256, dtype=bool)
        for t in self.tiles:
            if _tile_id_ok(t.id) and isinstance(t.properties, dict) and t.properties.get(prop):
                table[t.id] = True
        return table

    def known(self) -> np.ndarray:
        table = np.zeros(256, dtype=bool)
        table[[t.id for t in self.tiles if _tile_id_ok(t.id)]] = True
        return table

    def to_dict(self) -> dict:
        return {"name": self.name, "tiles": [t.to_dict() for t in self.tiles]}

    @classmethod
    def from_dict(cls, d: Any, where: str = "tileset") -> "Tileset":
        name = _need(d, "name", str, where)
        raw = _need(d, "tiles", list, where)
        tiles = []
        for i, t in enumerate(raw):
            w = f"{where}.tiles[{i}]"
            color = _need(t, "color", list, w)
            if len(color) != 3 or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255
                                          for c in color):
                raise ContentError(f"{w}.color: expected three ints in 0..255")
            tiles.append(TileDef(id=_need(t, "id", int, w), name=_need(t, "name", str, w),
                                 char=_need(t, "char", str, w), color=tuple(color),
                                 properties=dict(_need(t, "properties", dict, w))))
        return cls(name, tiles)

    def problems(self, where: str = "tileset") -> list[str]:
        out: list[str] = []
        if not self.tiles:
            out.append(f"{where}.tiles: empty")
        seen_ids: set[int] = set()
        seen_names: set[str] = set()
        for i, t in enumerate(self.tiles):
            w = f"{where}.tiles[{i}]"
            if not isinstance(t.id, int) or isinstance(t.id, bool) or not 0 <= t.id <= 255:
                out.append(f"{w}.id: {t.id!r} is not a tile id in 0..255")
            elif t.id in seen_ids:
                out.append(f"{w}.id: tile id {t.id} defined twice")
            seen_ids.add(t.id)
            if not isinstance(t.name, str) or not t.name:
                out.append(f"{w}.name: must be a non-empty string")
            elif t.name in seen_names:
                out.append(f"{w}.name: tile name {t.name!r} used twice")
            seen_names.add(t.name)
            if not isinstance(t.char, str) or len(t.char) != 1:
                out.append(f"{w}.char: must be exactly one character, got {t.char!r}")
            _check_props(t.properties, f"{w}.properties", out)
        return out


@dataclass
class Entity:
    """A thing placed on a level: ``kind`` (spawn, exit, key, enemy, treasure, npc, coin, goal…),
    a tile position and flat properties."""

    id: str
    kind: str
    x: int
    y: int
    properties: dict = field(default_factory=dict)

    def __post_init__(self):  # numpy ints (from a Generator or argwhere) are accepted as the ints they are
        for axis in ("x", "y"):
            v = getattr(self, axis)
            if isinstance(v, np.integer):
                setattr(self, axis, int(v))

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "x": self.x, "y": self.y, "properties": dict(self.properties)}


@dataclass
class Region:
    """A named place on a level (a dungeon room, a biome area, a platformer section) that stories can
    refer to by ``id``; a rectangle in tiles."""

    id: str
    kind: str
    name: str
    x: int
    y: int
    w: int
    h: int
    properties: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "name": self.name, "x": self.x, "y": self.y, "w": self.w,
                "h": self.h, "properties": dict(self.properties)}

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h


@dataclass(eq=False)
class Level(Content):
    """Named uint8 tile layers of one shape ``(height, width)``, the tileset naming their ids, entities,
    regions and metadata."""

    KIND: ClassVar[str] = "level"
    SCHEMA: ClassVar[str] = "conjure.level/1"

    layers: dict[str, np.ndarray]
    tileset: Tileset
    entities: list[Entity] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.layers.values())).shape if self.layers else (0, 0)

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def tiles(self) -> np.ndarray:
        """The first layer (most levels have one)."""
        return next(iter(self.layers.values()))

    def entities_of(self, kind: str) -> list[Entity]:
        return [e for e in self.entities if e.kind == kind]

    def to_dict(self, binary: bool = True) -> dict:
        h, w = self.shape
        return {
            "schema": self.SCHEMA,
            "width": int(w),
            "height": int(h),
            "layers": [{"name": n, "tiles": _grid_to_wire(a, binary)} for n, a in self.layers.items()],
            "tileset": self.tileset.to_dict(),
            "entities": [e.to_dict() for e in self.entities],
            "regions": [r.to_dict() for r in self.regions],
            "metadata": _meta(self.metadata),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Level":
        w = _need(d, "width", int, "level")
        h = _need(d, "height", int, "level")
        if not (0 < w <= 16384 and 0 < h <= 16384):
            raise ContentError(f"level.width/height: {w}x{h} outside 1..16384")
        layers = {}
        for i, layer in enumerate(_need(d, "layers", list, "level")):
            where = f"level.layers[{i}]"
            name = _need(layer, "name", str, where)
            if name in layers:
                raise ContentError(f"{where}.name: layer {name!r} appears twice")
            layers[name] = _grid_from_wire(layer.get("tiles"), h, w, f"{where}.tiles")
        tileset = Tileset.from_dict(_need(d, "tileset", dict, "level"), "level.tileset")
        ents = []
        for i, e in enumerate(_need(d, "entities", list, "level")):
            where = f"level.entities[{i}]"
            ents.append(Entity(_need(e, "id", str, where), _need(e, "kind", str, where), _need(e, "x", int, where),
                               _need(e, "y", int, where), dict(_need(e, "properties", dict, where))))
        regions = []
        for i, r in enumerate(_opt(d, "regions", list, "level", [])):
            where = f"level.regions[{i}]"
            regions.append(Region(*(_need(r, k, str, where) for k in ("id", "kind", "name")),
                                  *(_need(r, k, int, where) for k in ("x", "y", "w", "h")),
                                  properties=dict(_need(r, "properties", dict, where))))
        meta = _opt(d, "metadata", dict, "level", {})
        return cls(layers, tileset, ents, regions, dict(meta))

    def problems(self) -> list[str]:
        out: list[str] = []
        if not self.layers:
            return ["level.layers: a level needs at least one layer"]
        shape = self.shape
        known = self.tileset.known()
        for name, a in self.layers.items():
            where = f"level.layers[{name!r}]"
            if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 2:
                out.append(f"{where}: expected a 2-D uint8 array")
                continue
            if a.shape != shape:
                out.append(f"{where}: shape {a.shape} differs from the level's {shape}")
                continue
            bad = ~known[a]
            if bad.any():
                y, x = map(int, np.argwhere(bad)[0])
                out.append(f"{where}: tile id {int(a[y, x])} at x={x}, y={y} is not in tileset "
                           f"{self.tileset.name!r}")
        out += self.tileset.problems("level.tileset")
        h, w = shape
        ids: set[str] = set()
        for i, e in enumerate(self.entities):
            where = f"level.entities[{i}]"
            if not isinstance(e.id, str) or not e.id:
                out.append(f"{where}.id: must be a non-empty string")
            elif e.id in ids:
                out.append(f"{where}.id: {e.id!r} used twice")
            ids.add(e.id)
            if not isinstance(e.kind, str) or not e.kind:
                out.append(f"{where}.kind: must be a non-empty string")
            for axis, lim in (("x", w), ("y", h)):
                v = getattr(e, axis)
                if not isinstance(v, int) or isinstance(v, bool):
                    out.append(f"{where}.{axis}: {v!r} is a {type(v).__name__}, expected an int")
                elif not 0 <= v < lim:
                    out.append(f"{where}.{axis}: {v!r} outside 0..{lim - 1}")
            _check_props(e.properties, f"{where}.properties", out)
        for i, r in enumerate(self.regions):
            where = f"level.regions[{i}]"
            if not isinstance(r.id, str) or not r.id:
                out.append(f"{where}.id: must be a non-empty string")
            elif r.id in ids:
                out.append(f"{where}.id: {r.id!r} used twice (ids are shared by entities and regions)")
            ids.add(r.id)
            if not (0 <= r.x and 0 <= r.y and r.w > 0 and r.h > 0 and r.x + r.w <= w and r.y + r.h <= h):
                out.append(f"{where}: rectangle {r.x},{r.y} {r.w}x{r.h} does not fit the {w}x{h} level")
            _check_props(r.properties, f"{where}.properties", out)
        _check_meta(self.metadata, "level.metadata", out)
        return out


# --------------------------------------------------------------------------------------------- characters
@dataclass
class Sprite:
    """Palette-indexed pixel art: ``palette`` is a list of RGBA tuples (index 0 is transparent by
    convention), ``frames`` maps frame names to uint8 index arrays of one shape, ``animations`` maps
    animation names to lists of frame names (``{"idle": ["idle"], "walk": ["walk1", "walk2"]}``)."""

    palette: list[tuple[int, int, int, int]]
    frames: dict[str, np.ndarray]
    animations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return next(iter(self.frames.values())).shape if self.frames else (0, 0)

    def rgba(self, frame: str) -> np.ndarray:
        """The frame as an (h, w, 4) uint8 RGBA array."""
        pal = np.array(self.palette, dtype=np.uint8).reshape(-1, 4)
        return pal[self.frames[frame]]

    def to_dict(self, binary: bool = True) -> dict:
        h, w = self.size
        return {"width": int(w), "height": int(h), "palette": [list(c) for c in self.palette],
                "frames": [{"name": n, "pixels": _grid_to_wire(a, binary)} for n, a in self.frames.items()],
                "animations": {k: list(v) for k, v in self.animations.items()}}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "Sprite":
        w = _need(d, "width", int, where)
        h = _need(d, "height", int, where)
        if not (0 < w <= 1024 and 0 < h <= 1024):
            raise ContentError(f"{where}.width/height: {w}x{h} outside 1..1024")
        pal = []
        for i, c in enumerate(_need(d, "palette", list, where)):
            if not (isinstance(c, list) and len(c) == 4 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)):
                raise ContentError(f"{where}.palette[{i}]: expected four ints in 0..255 (RGBA)")
            pal.append(tuple(c))
        frames = {}
        for i, f in enumerate(_need(d, "frames", list, where)):
            fw = f"{where}.frames[{i}]"
            name = _need(f, "name", str, fw)
            frames[name] = _grid_from_wire(f.get("pixels"), h, w, f"{fw}.pixels")
        anims = _need(d, "animations", dict, where)
        for k, v in anims.items():
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ContentError(f"{where}.animations.{k}: expected a list of frame names")
        return cls(pal, frames, {k: list(v) for k, v in anims.items()})

    def problems(self, where: str) -> list[str]:
        out = []
        if not self.palette or len(self.palette) > 256:
            out.append(f"{where}.palette: needs 1..256 colors")
        if not self.frames:
            out.append(f"{where}.frames: a sprite needs at least one frame")
        shape = self.size
        for name, a in self.frames.items():
            if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 2 or a.shape != shape:
                out.append(f"{where}.frames[{name!r}]: expected a uint8 array of shape {shape}")
            elif a.size and int(a.max()) >= len(self.palette):
                out.append(f"{where}.frames[{name!r}]: color index {int(a.max())} beyond the palette "
                           f"({len(self.palette)} colors)")
        for k, v in self.animations.items():
            for f in v:
                if f not in self.frames:
                    out.append(f"{where}.animations.{k}: unknown frame {f!r}")
        return out


@dataclass(eq=False)
class Character(Content):
    """A hero, NPC or enemy: name, role, integer attributes, traits, a sprite, a backstory."""

    KIND: ClassVar[str] = "character"
    SCHEMA: ClassVar[str] = "conjure.character/1"

    id: str
    name: str
    role: str
    attributes: dict[str, int] = field(default_factory=dict)
    traits: list[str] = field(default_factory=list)
    sprite: Sprite | None = None
    backstory: str = ""
    style: str = ""
    metadata: dict = field(default_factory=dict)

    def _body(self, binary: bool) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role, "style": self.style,
                "attributes": dict(self.attributes), "traits": list(self.traits),
                "sprite": self.sprite.to_dict(binary) if self.sprite else None,
                "backstory": self.backstory, "metadata": _meta(self.metadata)}

    def to_dict(self, binary: bool = True) -> dict:
        return {"schema": self.SCHEMA, **self._body(binary)}

    @classmethod
    def from_dict(cls, d: dict, where: str = "character") -> "Character":
        attrs = _need(d, "attributes", dict, where)
        for k, v in attrs.items():
            if not isinstance(v, int) or isinstance(v, bool):
                raise ContentError(f"{where}.attributes.{k}: expected int, got {type(v).__name__}")
        traits = _need(d, "traits", list, where)
        if not all(isinstance(t, str) for t in traits):
            raise ContentError(f"{where}.traits: expected a list of strings")
        sprite = d.get("sprite")
        return cls(id=_need(d, "id", str, where), name=_need(d, "name", str, where),
                   role=_need(d, "role", str, where), attributes=dict(attrs), traits=list(traits),
                   sprite=Sprite.from_dict(sprite, f"{where}.sprite") if sprite is not None else None,
                   backstory=_need(d, "backstory", str, where), style=_opt(d, "style", str, where, ""),
                   metadata=dict(_opt(d, "metadata", dict, where, {})))

    def problems(self, where: str = "character") -> list[str]:
        out: list[str] = []
        for f in ("id", "name", "role"):
            v = getattr(self, f)
            if not isinstance(v, str) or not v.strip():
                out.append(f"{where}.{f}: must be a non-empty string")
        for k, v in self.attributes.items():
            if not isinstance(k, str) or not isinstance(v, int) or isinstance(v, bool):
                out.append(f"{where}.attributes.{k}: expected an int")
        if not all(isinstance(t, str) for t in self.traits):
            out.append(f"{where}.traits: expected strings")
        if self.sprite is not None:
            out += self.sprite.problems(f"{where}.sprite")
        _check_meta(self.metadata, f"{where}.metadata", out)
        return out


@dataclass(eq=False)
class Cast(Content):
    """Several characters made together (e.g. the cast of a level: one per enemy and NPC spawn)."""

    KIND: ClassVar[str] = "character"
    SCHEMA: ClassVar[str] = "conjure.cast/1"

    characters: list[Character]
    metadata: dict = field(default_factory=dict)

    def to_dict(self, binary: bool = True) -> dict:
        return {"schema": self.SCHEMA, "characters": [c._body(binary) for c in self.characters],
                "metadata": _meta(self.metadata)}

    @classmethod
    def from_dict(cls, d: dict) -> "Cast":
        chars = [Character.from_dict(c, f"cast.characters[{i}]")
                 for i, c in enumerate(_need(d, "characters", list, "cast"))]
        return cls(chars, dict(_opt(d, "metadata", dict, "cast", {})))

    def problems(self) -> list[str]:
        out: list[str] = []
        ids: set[str] = set()
        for i, c in enumerate(self.characters):
            out += c.problems(f"cast.characters[{i}]")
            if c.id in ids:
                out.append(f"cast.characters[{i}].id: {c.id!r} used twice")
            ids.add(c.id)
        _check_meta(self.metadata, "cast.metadata", out)
        return out


# --------------------------------------------------------------------------------------------- stories
BEAT_KINDS = ("goto", "meet", "fetch", "defeat", "return", "talk", "explore", "escort", "deliver")


@dataclass
class Beat:
    """One step of a quest. ``place``, ``character`` and ``item`` hold ids (of the level's regions, the
    cast's characters, the story's items) when the beat refers to one."""

    id: str
    kind: str
    text: str
    place: str | None = None
    character: str | None = None
    item: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "text": self.text, "place": self.place,
                "character": self.character, "item": self.item}


@dataclass
class Quest:
    kind: str
    giver: str  # character id
    summary: str
    beats: list[Beat]
    reward: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "giver": self.giver, "summary": self.summary,
                "beats": [b.to_dict() for b in self.beats], "reward": self.reward}


@dataclass
class Choice:
    """A dialogue choice: its text, the node it leads to, and the flags choosing it sets."""

    text: str
    target: str
    set_flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "target": self.target, "set_flags": list(self.set_flags)}


@dataclass
class DialogueNode:
    """A node of the dialogue graph: who speaks, their lines, and the choices (none = an ending)."""

    id: str
    speaker: str
    lines: list[str]
    choices: list[Choice] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "speaker": self.speaker, "lines": list(self.lines),
                "choices": [c.to_dict() for c in self.choices]}


@dataclass(eq=False)
class Story(Content):
    """A quest (beats) and a dialogue graph. ``places``, ``characters`` and ``items`` list every id the
    story mentions (``{"id": ..., "name": ...}``); with context they come from the level and the cast."""

    KIND: ClassVar[str] = "story"
    SCHEMA: ClassVar[str] = "conjure.story/1"

    id: str
    title: str
    quest: Quest
    start: str
    nodes: list[DialogueNode]
    places: list[dict] = field(default_factory=list)
    characters: list[dict] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def node(self, node_id: str) -> DialogueNode:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def to_dict(self, binary: bool = True) -> dict:
        return {"schema": self.SCHEMA, "id": self.id, "title": self.title, "quest": self.quest.to_dict(),
                "start": self.start, "nodes": [n.to_dict() for n in self.nodes],
                "places": [dict(p) for p in self.places], "characters": [dict(c) for c in self.characters],
                "items": [dict(i) for i in self.items], "metadata": _meta(self.metadata)}

    @classmethod
    def from_dict(cls, d: dict) -> "Story":
        q = _need(d, "quest", dict, "story")
        beats = []
        for i, b in enumerate(_need(q, "beats", list, "story.quest")):
            w = f"story.quest.beats[{i}]"
            beats.append(Beat(_need(b, "id", str, w), _need(b, "kind", str, w), _need(b, "text", str, w),
                              *(_opt(b, k, str, w, None) for k in ("place", "character", "item"))))
        quest = Quest(_need(q, "kind", str, "story.quest"), _need(q, "giver", str, "story.quest"),
                      _need(q, "summary", str, "story.quest"), beats, _need(q, "reward", str, "story.quest"))
        nodes = []
        for i, n in enumerate(_need(d, "nodes", list, "story")):
            w = f"story.nodes[{i}]"
            lines = _need(n, "lines", list, w)
            if not all(isinstance(x, str) for x in lines):
                raise ContentError(f"{w}.lines: expected strings")
            choices = []
            for j, c in enumerate(_need(n, "choices", list, w)):
                cw = f"{w}.choices[{j}]"
                flags = _need(c, "set_flags", list, cw)
                if not all(isinstance(x, str) for x in flags):
                    raise ContentError(f"{cw}.set_flags: expected strings")
                choices.append(Choice(_need(c, "text", str, cw), _need(c, "target", str, cw), list(flags)))
            nodes.append(DialogueNode(_need(n, "id", str, w), _need(n, "speaker", str, w), list(lines), choices))
        refs = {}
        for key in ("places", "characters", "items"):
            lst = _need(d, key, list, "story")
            for i, r in enumerate(lst):
                _need(r, "id", str, f"story.{key}[{i}]")
                _need(r, "name", str, f"story.{key}[{i}]")
            refs[key] = [dict(r) for r in lst]
        return cls(_need(d, "id", str, "story"), _need(d, "title", str, "story"), quest,
                   _need(d, "start", str, "story"), nodes, metadata=dict(_opt(d, "metadata", dict, "story", {})),
                   **refs)

    def problems(self) -> list[str]:
        out: list[str] = []
        if not self.title.strip():
            out.append("story.title: empty")
        ref_ids: dict[str, set[str]] = {}
        for key in ("places", "characters", "items"):
            ids = set()
            for i, r in enumerate(getattr(self, key)):
                rid = r.get("id") if isinstance(r, dict) else None
                if not isinstance(rid, str) or not rid:
                    out.append(f"story.{key}[{i}].id: must be a non-empty string")
                elif rid in ids:
                    out.append(f"story.{key}[{i}].id: {rid!r} listed twice")
                ids.add(rid)
            ref_ids[key] = ids
        if self.quest.giver not in ref_ids["characters"]:
            out.append(f"story.quest.giver: {self.quest.giver!r} is not in story.characters")
        if not self.quest.beats:
            out.append("story.quest.beats: a quest needs at least one beat")
        for i, b in enumerate(self.quest.beats):
            if b.kind not in BEAT_KINDS:
                out.append(f"story.quest.beats[{i}].kind: {b.kind!r} is not one of {', '.join(BEAT_KINDS)}")
            for attr, key in (("place", "places"), ("character", "characters"), ("item", "items")):
                v = getattr(b, attr)
                if v is not None and v not in ref_ids[key]:
                    out.append(f"story.quest.beats[{i}].{attr}: {v!r} is not in story.{key}")
        ids = [n.id for n in self.nodes]
        idset = set(ids)
        if len(idset) != len(ids):
            out.append("story.nodes: node ids must be unique")
        if self.start not in idset:
            out.append(f"story.start: {self.start!r} is not a node")
        for i, n in enumerate(self.nodes):
            if not n.lines and not n.choices:
                out.append(f"story.nodes[{i}]: a node needs lines or choices")
            for j, c in enumerate(n.choices):
                if c.target not in idset:
                    out.append(f"story.nodes[{i}].choices[{j}].target: {c.target!r} is not a node")
                if not c.text.strip():
                    out.append(f"story.nodes[{i}].choices[{j}].text: empty")
        if not out:
            # every node reachable from start, and every node can reach an ending
            succ = {n.id: [c.target for c in n.choices] for n in self.nodes}
            seen, stack = {self.start}, [self.start]
            while stack:
                for t in succ[stack.pop()]:
                    if t not in seen:
                        seen.add(t)
                        stack.append(t)
            for n in self.nodes:
                if n.id not in seen:
                    out.append(f"story.nodes[{n.id!r}]: unreachable from story.start")
            pred: dict[str, list[str]] = {n.id: [] for n in self.nodes}
            for nid, ts in succ.items():
                for t in ts:
                    pred[t].append(nid)
            ends = {n.id for n in self.nodes if not n.choices}
            stack = list(ends)
            while stack:
                for q in pred[stack.pop()]:
                    if q not in ends:
                        ends.add(q)
                        stack.append(q)
            for n in self.nodes:
                if n.id not in ends:
                    out.append(f"story.nodes[{n.id!r}]: no ending can be reached from it")
        _check_meta(self.metadata, "story.metadata", out)
        return out


CONTENT_TYPES: dict[str, type[Content]] = {c.SCHEMA.split("/")[0]: c for c in (Level, Character, Cast, Story)}
KINDS = ("level", "character", "story")
