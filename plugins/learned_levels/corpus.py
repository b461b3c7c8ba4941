"""Training corpora as users bring them: reading, legends and tags, one unified tileset, skip reasons.

:func:`load_corpus` reads every level under the given paths and returns a :class:`Corpus`:

- **VGLC text** (``*.txt``, ``*.vglc``, or any text file; one character per tile): the legend is, in order,
  the one given (``legend=`` / ``--legend``), ``NAME.legend.json`` beside the file, ``legend.json`` beside it,
  else the nearest JSON file *that is a legend* (``{"tiles": {char: [tags]}}`` or a bare ``{char: [tags]}``)
  in the file's folder or up to three folders above it, never above the parent of the ``--data`` folder
  holding the file, under any name (VGLC keeps ``smb.json`` in the game folder, one above ``Processed/``: give
  ``--data GAME/Processed`` or ``--data GAME``). Any height and width.
- **Tiled maps** (``.tmj``/``.tmx``, embedded or external tilesets, several tile layers: the topmost
  non-empty tile of each cell wins) through the engine's importers; tile tags are the tile's true boolean
  properties (or its ``tags`` property, ``|``-joined).
- **Content packs** (``engine.packs``): every level record.

Other files (READMEs, images, room-graph JSON, scripts) are skipped with their reason; so are levels that
cannot be read (a character missing from the legend, ragged lines, a height unlike the rest of a side-view
corpus). Nothing is read from file names beyond the extension.

**One tileset.** Every tile of every level becomes a tile of the corpus tileset, keyed by its (glyph, name);
the glyph is kept (a clash gets a free glyph). A TileDef carries the corpus glyph in ``char``, its name, a
color, and its tags: each tag as a ``True`` property, and the ordered list in ``properties["tags"]``
(``|``-joined, because tile properties are scalars; :func:`tile_tags` gives the list).

**Entities** (those of Tiled objects and of Conjure's VGLC legends: spawn, exit, key, enemy, coin…) become
tiles of the corpus drawn over their cell, as VGLC draws Mario's enemies: glyph from the level's legend or
``plugins.vglc.ENTITY_CHARS``, tags ``["entity", KIND, role…]``. A generated level turns them back into
entities standing on the corpus's most common tile under that kind (:meth:`Corpus.level_from_grid`), so
entity-like tiles stay what the corpus made them: VGLC enemies stay tiles, Tiled objects stay objects.

**Roles** come from tags (:func:`roles_of`, documented in ``docs/learned-levels.md``); a mapping file
(``mapping=`` / ``--mapping``) replaces the tags of the tiles it names and may fix ``view`` and ``room``.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from engine.content import Entity, Level, TileDef, Tileset
from engine.errors import ConjureError, InputError

VGLC_SUFFIX = ".vglc.txt"
LEGEND_SUFFIX = ".legend.json"
DATA_ROOT = Path(__file__).resolve().parent.parent / "data"
LEVELS_ROOT = DATA_ROOT / "levels"
CORPORA_ROOT = DATA_ROOT / "corpora"
MODELS_ROOT = DATA_ROOT / "models"

TAGS_PROP = "tags"
TAG_SEP = "|"
MAX_LEVELS = 10_000
MAX_FILES = 20_000
LEGEND_SEARCH_DEPTH = 3

#: Roles a tile can have, and the tag words that give them (a tag matches when it equals one of the words or
#: one of its words does: ``"top-left pipe"`` is a pipe). ``passable`` in the tags always wins over solid.
ROLE_WORDS: dict[str, frozenset[str]] = {
    "solid": frozenset({"solid", "impassable", "wall", "unwalkable"}),
    "void": frozenset({"void", "outside", "nothing", "null"}),
    "enemy": frozenset({"enemy", "monster", "enemies"}),
    "collectable": frozenset({"collectable", "collectible", "coin", "treasure", "pickup", "pickupable", "powerup",
                              "gold"}),
    "hazard": frozenset({"hazard", "damaging", "spike", "spikes", "lava", "deadly"}),
    "door": frozenset({"door", "doorway"}),
    "locked": frozenset({"locked", "lock"}),
    "key": frozenset({"key"}),
    "start": frozenset({"start", "spawn", "entrance", "player"}),
    "goal": frozenset({"goal", "exit", "flag", "finish", "triforce"}),
    "stairs": frozenset({"stair", "stairs", "staircase"}),
    "pipe": frozenset({"pipe"}),
    "block": frozenset({"block", "brick", "breakable", "question"}),
    "climbable": frozenset({"climbable", "ladder", "vine", "rope", "chain"}),
    "rope": frozenset({"rope", "bar", "monkeybars"}),
    "platform": frozenset({"solidtop", "semisolid", "jumpthrough", "oneway", "platform"}),
    "entity": frozenset({"entity"}),
}
ROLES = tuple(ROLE_WORDS)

TEXT_EXTS = (".txt", ".vglc", ".lvl", ".level", "")
TILED_EXTS = (".tmj", ".tmx", ".json")
SKIP_EXTS = {".png": "an image", ".jpg": "an image", ".jpeg": "an image", ".gif": "an image", ".bmp": "an image",
             ".py": "a script", ".pyc": "compiled Python", ".md": "documentation", ".pdf": "a document",
             ".tsx": "a Tiled tileset (read through the maps that use it)",
             ".tsj": "a Tiled tileset (read through the maps that use it)",
             ".zip": "an archive (unpack it first)", ".gz": "an archive (unpack it first)",
             ".safetensors": "model weights", ".csv": "a table",
             ".dot": "a Graphviz graph (VGLC's room graphs)", ".gv": "a Graphviz graph"}
README_RE = re.compile(r"^(readme|license|licence|changelog|copying|notes?)\b", re.I)


# --------------------------------------------------------------------------------------------- tags
def tile_tags(t: TileDef) -> list[str]:
    """A tile's tags as a list: ``properties["tags"]`` (``|``-joined) when present, else its name and its
    true boolean properties."""
    kept = t.properties.get(TAGS_PROP)
    if isinstance(kept, str) and kept:
        return kept.split(TAG_SEP)
    return [t.name] + [k for k, v in t.properties.items() if v is True and k != t.name]


def _words(tag: str) -> set[str]:
    t = tag.strip().lower()
    return {t} | set(w for w in re.split(r"[\s_\-/.,:]+", t) if w)


def roles_of(tags: Iterable[str]) -> set[str]:
    """The roles (:data:`ROLES`) that a tile's tags give it."""
    words: set[str] = set()
    exact = {t.strip().lower() for t in tags}
    for t in tags:
        words |= _words(t)
    out = {r for r, ws in ROLE_WORDS.items() if words & ws}
    if "passable" in exact or "walkable" in exact:
        out.discard("solid")
    if "unlocked" in exact:
        out.discard("locked")
    return out


# --------------------------------------------------------------------------------------------- Corpus
@dataclass
class Corpus:
    """Levels read from a user's data, as grids of ids into one unified tileset.

    ``grids[i]`` is ``levels[i]``'s single tile layer (several Tiled layers merged, entities drawn in as their
    tiles), uint8. ``view`` is ``"side"`` (gravity: platformers) or ``"top"`` (top-down); ``room`` the
    top-down room size ``(h, w)`` when the maps are grids of equal rooms (VGLC Zelda: 11×16), else None.
    ``files`` are the level *and legend* files used, with their SHA-256; ``skipped`` every file not used,
    with the reason. ``entity_under[id]`` is the tile id an entity tile stands on (for turning it back)."""

    levels: list[Level]
    grids: list[np.ndarray]
    tileset: Tileset
    view: str
    files: list[tuple[str, str]]
    skipped: list[tuple[str, str]]
    level_files: list[str] = field(default_factory=list)
    legends: list[str] = field(default_factory=list)
    room: tuple[int, int] | None = None
    entity_under: dict[int, int] = field(default_factory=dict)
    entity_kind: dict[int, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    #: side view: ``"horizontal"`` (levels run left to right, one height) or ``"vertical"`` (Kid Icarus: levels
    #: more than twice as high as wide, one width, any height; the player climbs from the bottom to the top)
    orientation: str = "horizontal"
    #: side view: level files whose grids were padded at the top with the corpus's void tile to the tallest
    #: level's height (levels that mark their outside with void, as VGLC Mega Man's ``@``, may differ in height)
    padded: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ views of the tileset
    @property
    def tags(self) -> list[list[str]]:
        """Tags per tile id."""
        return [tile_tags(t) for t in self.tileset.tiles]

    @property
    def classes(self) -> int:
        return len(self.tileset.tiles)

    def role_mask(self, role: str) -> np.ndarray:
        """A bool table over tile ids: True where the tile has ``role``."""
        return np.array([role in roles_of(tile_tags(t)) for t in self.tileset.tiles], dtype=bool)

    def frequencies(self, idx: Iterable[int] | None = None) -> np.ndarray:
        """Share of each tile id over the chosen levels (all by default)."""
        gs = [self.grids[i] for i in (range(len(self.grids)) if idx is None else idx)]
        n = np.zeros(self.classes, dtype=np.float64)
        for g in gs:
            n += np.bincount(g.ravel(), minlength=self.classes)[:self.classes]
        return n / max(1.0, n.sum())

    def split(self, holdout: float = 0.15, seed: int = 0) -> tuple[list[int], list[int]]:
        """(train, held-out) level indices: ``round(n * holdout)`` whole levels held out (at least one when
        there are two or more levels and ``holdout > 0``), chosen by ``seed``."""
        n = len(self.grids)
        if not 0 <= holdout < 1:
            raise InputError(f"holdout: expected a share in 0..1, got {holdout}")
        k = int(round(n * holdout))
        if holdout > 0 and n >= 2:
            k = max(1, k)
        k = min(k, n - 1) if n else 0
        perm = np.random.default_rng(seed).permutation(n)
        held = sorted(int(i) for i in perm[:k])
        train = sorted(int(i) for i in perm[k:])
        return train, held

    def describe(self) -> dict:
        """A JSON summary (for model cards and reports)."""
        sizes = sorted({(int(g.shape[0]), int(g.shape[1])) for g in self.grids})
        return {"levels": len(self.grids), "view": self.view, "orientation": self.orientation,
                "room": list(self.room) if self.room else None,
                "heights": sorted({h for h, _ in sizes}),
                "widths": [min(w for _, w in sizes), max(w for _, w in sizes)] if sizes else [],
                "tiles": {t.char: tile_tags(t) for t in self.tileset.tiles},
                "skipped": len(self.skipped), "padded_with_void": len(self.padded)}

    # ------------------------------------------------------------------ back to levels
    def level_from_grid(self, grid: np.ndarray, metadata: dict | None = None, regions: list | None = None) -> Level:
        """A :class:`Level` in the corpus tileset from a grid of corpus ids; entity tiles (tag ``entity``)
        become entities standing on the corpus's usual tile for them."""
        return level_from_grid(grid, self.tileset, self.entity_under, self.entity_kind, metadata, regions)

    def grid_of(self, level: Level) -> np.ndarray:
        """A level (e.g. a generated one) as a grid of corpus ids: see :func:`grid_of`."""
        return grid_of(level, self.tileset, self.entity_kind)

    def fitted_rules(self):
        """The rules fitted on this corpus (:func:`plugins.learned_levels.rules.fit_rules`), computed once."""
        r = getattr(self, "_rules", None)
        if r is None:
            from .rules import fit_rules

            r = self._rules = fit_rules(self)
        return r

    def tileset_dict(self) -> dict:
        """What a weights file carries to generate in this tileset (see :func:`tileset_from_dict`)."""
        return {"tileset": self.tileset.to_dict(), "view": self.view, "room": list(self.room) if self.room else None,
                "entity_under": {str(k): v for k, v in sorted(self.entity_under.items())},
                "entity_kind": {str(k): v for k, v in sorted(self.entity_kind.items())}}


def tileset_from_dict(d: Any, where: str) -> tuple[Tileset, dict, dict]:
    """(tileset, entity_under, entity_kind) from :meth:`Corpus.tileset_dict`, checked (it is untrusted)."""
    from engine.errors import ContentError

    if not isinstance(d, dict):
        raise InputError(f"{where}: expected a map")
    try:
        ts = Tileset.from_dict(d.get("tileset"), f"{where}.tileset")
    except ContentError as e:
        raise InputError(str(e)) from None
    p = ts.problems(f"{where}.tileset")
    if p:
        raise InputError(p[0])
    ids = {t.id for t in ts.tiles}
    if sorted(ids) != list(range(len(ids))):
        raise InputError(f"{where}.tileset: tile ids must be 0..{len(ids) - 1}")
    under, kind = {}, {}
    for k, v in (d.get("entity_under") or {}).items():
        if not (str(k).isdigit() and int(k) in ids and isinstance(v, int) and v in ids):
            raise InputError(f"{where}.entity_under.{k}: expected tile id -> tile id")
        under[int(k)] = v
    for k, v in (d.get("entity_kind") or {}).items():
        if not (str(k).isdigit() and int(k) in ids and isinstance(v, str) and v):
            raise InputError(f"{where}.entity_kind.{k}: expected tile id -> kind")
        kind[int(k)] = v
    return ts, under, kind


def level_from_grid(grid: np.ndarray, tileset: Tileset, entity_under: dict, entity_kind: dict,
                    metadata: dict | None = None, regions: list | None = None) -> Level:
    tiles = np.asarray(grid).astype(np.uint8).copy()
    ents: list[Entity] = []
    counts: dict[str, int] = {}
    for tid, under in sorted(entity_under.items()):
        kind = entity_kind.get(tid, "entity")
        for y, x in np.argwhere(tiles == tid):
            counts[kind] = counts.get(kind, 0) + 1
            eid = kind if kind in ("spawn", "exit", "goal") and counts[kind] == 1 else f"{kind}-{counts[kind]}"
            ents.append(Entity(eid, kind, int(x), int(y), {}))
            tiles[y, x] = under
    ents.sort(key=lambda e: (e.y, e.x, e.id))
    if entity_under:  # entity tiles are entities in the level: its tileset lists the tiles only
        tileset = Tileset(tileset.name, [t for t in tileset.tiles if t.id not in entity_under])
    return Level({"tiles": tiles}, tileset, ents, list(regions or []), dict(metadata or {}))


def grid_of(level: Level, tileset: Tileset, entity_kind: dict[int, str]) -> np.ndarray:
    """``level``'s first layer as ids of ``tileset`` (tiles matched by glyph and name, else by glyph), with its
    entities whose kind the tileset has as an entity tile drawn in. Raises InputError for a tile that the
    tileset does not have."""
    by_key = {(t.char, t.name): t.id for t in tileset.tiles}
    by_char: dict[str, int] = {}
    for t in tileset.tiles:
        if t.id not in entity_kind:
            by_char.setdefault(t.char, t.id)
    lut = np.zeros(256, dtype=np.int64)
    for t in level.tileset.tiles:
        tid = by_key.get((t.char, t.name), by_char.get(t.char))
        if tid is None:
            lut[t.id] = -1
        else:
            lut[t.id] = tid
    layer = next(iter(level.layers.values()))
    g = lut[layer]
    if (g < 0).any():
        y, x = np.argwhere(g < 0)[0]
        t = level.tileset[int(layer[y, x])]
        raise InputError(f"tile {t.name!r} ({t.char!r}) at x={int(x)}, y={int(y)} is not in the corpus tileset")
    kinds = {k: i for i, k in sorted(entity_kind.items())}
    for e in level.entities:
        tid = kinds.get(e.kind)
        if tid is not None and 0 <= e.y < g.shape[0] and 0 <= e.x < g.shape[1]:
            g[e.y, e.x] = tid
    return g.astype(np.uint8)


# --------------------------------------------------------------------------------------------- reading
def reader_engine() -> Any:
    """A small engine with the Tiled and VGLC importers, for reading corpora outside ``conjure train``."""
    from engine import Engine

    mods = ["plugins.vglc", "plugins.formats"]
    import importlib.util

    for m in ("plugins.tiled",):
        if importlib.util.find_spec(m) is not None:
            mods.append(m)
    return Engine(load=mods, entry_points=False)


def _sha(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def _expand(paths: Iterable[Any]) -> tuple[list[Path], list[tuple[str, str]]]:
    out, bad = [], []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file()
                          and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            out.append(p)
        else:
            bad.append((str(p), "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f in out:  # a file named twice (a folder and a file in it) is read once
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    if len(unique) > MAX_FILES:
        raise InputError(f"--data: {len(unique)} files is over the limit of {MAX_FILES}")
    return unique, bad


def _legend_doc(p: Path, cache: dict) -> dict | None:
    """The ``{char: [tags]}`` map of a legend file, or None when the file is not a legend."""
    key = str(p)
    if key in cache:
        return cache[key]
    doc = None
    try:
        if p.stat().st_size <= 4 * 1024 * 1024:
            raw = json.loads(p.read_bytes().decode("utf-8-sig"))
            tiles = raw.get("tiles") if isinstance(raw, dict) and isinstance(raw.get("tiles"), dict) else raw
            if isinstance(tiles, dict) and tiles and all(isinstance(k, str) and len(k) == 1 and k not in "\r\n"
                                                         for k in tiles) \
                    and all(isinstance(v, (list, str)) for v in tiles.values()):
                doc = {k: ([v] if isinstance(v, str) else [str(t) for t in v]) for k, v in tiles.items()}
                if isinstance(raw, dict) and isinstance(raw.get("conjure"), dict):
                    doc = {"__conjure__": raw["conjure"], **doc}
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, AttributeError):
        doc = None
    cache[key] = doc
    return doc


def _legend_ceiling(f: Path, roots: list[Path]) -> Path:
    """The highest folder the legend search for ``f`` may look in: the parent of the (nearest) ``--data`` root
    holding ``f`` (a root that is a file counts as its folder), so ``--data GAME/Processed`` finds the game's
    legend in ``GAME/`` but never an unrelated one further up."""
    fr = f.resolve()
    best = None
    for r in roots:
        rr = r.resolve()
        top = rr.parent if rr.is_dir() else rr.parent.parent
        if rr.is_dir():
            if not fr.is_relative_to(rr):
                continue
        elif fr != rr:
            continue
        if best is None or len(top.parts) > len(best.parts):
            best = top
    return best if best is not None else fr.parent.parent


def _find_legend(f: Path, roots: list[Path], cache: dict) -> Path | None:
    """The legend for VGLC text ``f``: ``NAME.legend.json`` or ``legend.json`` beside it, else the nearest
    JSON legend in its folder or up to LEGEND_SEARCH_DEPTH folders above, never above the parent of the
    ``--data`` root holding ``f`` (:func:`_legend_ceiling`); several in one folder: the one covering the most
    of the file's characters, then by name."""
    from plugins.vglc import legend_path

    for cand in (legend_path(f), f.parent / "legend.json"):
        if cand.is_file() and _legend_doc(cand, cache) is not None:
            return cand
    ceiling = _legend_ceiling(f, roots)
    chars = None
    d = f.parent
    for _ in range(LEGEND_SEARCH_DEPTH + 1):
        cands = sorted(c for c in d.glob("*.json") if c.is_file() and _legend_doc(c, cache) is not None)
        if cands:
            if len(cands) == 1:
                return cands[0]
            if chars is None:
                try:
                    chars = set(f.read_bytes()[:1 << 20].decode("utf-8", "replace")) - {"\n", "\r"}
                except OSError:
                    chars = set()
            return max(cands, key=lambda c: (len(chars & set(_legend_doc(c, cache))), -cands.index(c)))
        if d.parent == d or d.resolve() == ceiling:
            break
        d = d.parent
    return None


def _read_mapping(mapping: Any) -> dict:
    if mapping is None or mapping == "":
        return {}
    if isinstance(mapping, dict):
        doc = mapping
        where = "mapping"
    else:
        where = str(mapping)
        p = Path(mapping)
        if not p.is_file():
            raise InputError(f"--mapping {p}: no such file")
        try:
            doc = json.loads(p.read_bytes().decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise InputError(f"--mapping {p}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object")
    out: dict = {"tiles": {}}
    tiles = doc.get("tiles", {k: v for k, v in doc.items() if k not in ("view", "room")})
    if not isinstance(tiles, dict):
        raise InputError(f"{where}: tiles: expected a map of character or tile name -> tags")
    for k, v in tiles.items():
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(t, str) and t for t in v):
            raise InputError(f"{where}: tiles.{k}: expected a list of tags")
        out["tiles"][k] = list(v)
    if "view" in doc:
        if doc["view"] not in ("side", "top"):
            raise InputError(f"{where}: view: expected 'side' or 'top', got {doc['view']!r}")
        out["view"] = doc["view"]
    if "room" in doc:
        r = doc["room"]
        if r is not None and not (isinstance(r, list) and len(r) == 2 and all(type(v) is int and 3 <= v <= 256 for v in r)):
            raise InputError(f"{where}: room: expected [height, width] in tiles (3..256), or null")
        out["room"] = tuple(r) if r else None
    return out


class _Unifier:
    """Builds the corpus tileset: one id per (glyph, name), glyphs kept when free."""

    def __init__(self, mapping: dict):
        self.key_to_id: dict[tuple[str, str], int] = {}
        self.tiles: list[TileDef] = []
        self.chars: set[str] = set()
        self.mapping = mapping.get("tiles", {})
        self.entity_under_counts: dict[int, dict[int, int]] = {}
        self.entity_kind: dict[int, str] = {}

    def _free_char(self, want: str) -> str:
        if want and len(want) == 1 and want not in self.chars and want not in "\r\n":
            return want
        from plugins.vglc import FALLBACK_CHARS

        for c in FALLBACK_CHARS + "ABCDFGHIJKLTWX#*^~":
            if c not in self.chars:
                return c
        for i in range(161, 1000):
            if chr(i) not in self.chars and chr(i).isprintable():
                return chr(i)
        raise InputError("corpus: more distinct tiles than glyphs")

    def tile(self, t: TileDef, tags: list[str]) -> int:
        key = (t.char, t.name)
        if key in self.key_to_id:
            return self.key_to_id[key]
        if len(self.tiles) >= 255:
            raise InputError("corpus: more than 255 distinct tiles across the data")
        over = self.mapping.get(t.char, self.mapping.get(t.name))
        if over is not None:
            tags = list(over)
        c = self._free_char(t.char)
        self.chars.add(c)
        props: dict[str, Any] = {k: True for k in tags if k and k != t.name and k != TAGS_PROP}
        props[TAGS_PROP] = TAG_SEP.join(tags)
        tid = len(self.tiles)
        self.tiles.append(TileDef(tid, t.name, c, tuple(int(v) for v in t.color), props))
        self.key_to_id[key] = tid
        return tid

    def entity(self, kind: str, char: str | None) -> int:
        from plugins.vglc import ENTITY_CHARS

        name = f"{kind}"
        key = ("\0entity", kind)
        if key in self.key_to_id:
            return self.key_to_id[key]
        tags = ["entity", kind]
        role = {"spawn": "start", "player": "start", "exit": "goal", "goal": "goal", "coin": "collectable",
                "treasure": "collectable"}.get(kind)
        if role:
            tags.append(role)
        over = self.mapping.get(char or "", self.mapping.get(kind))
        if over is not None:
            tags = ["entity", kind] + [x for x in over if x not in ("entity", kind)]
        c = self._free_char(char or ENTITY_CHARS.get(kind, ""))
        self.chars.add(c)
        from plugins.vglc import _color_for

        props: dict[str, Any] = {k: True for k in tags if k != name}
        props[TAGS_PROP] = TAG_SEP.join(tags)
        tid = len(self.tiles)
        self.tiles.append(TileDef(tid, name if name not in {t.name for t in self.tiles} else f"{name} entity",
                                  c, _color_for(kind, tags), props))
        self.key_to_id[key] = tid
        self.entity_kind[tid] = kind
        return tid

    def grid(self, level: Level, ent_chars: dict[str, str]) -> np.ndarray:
        """The level as one layer of corpus ids (layers merged top-most non-empty, entities drawn in)."""
        layers = list(level.layers.values())
        ts = level.tileset
        lut = np.zeros(256, dtype=np.int64)
        empty = np.zeros(256, dtype=bool)
        for t in ts.tiles:
            tags = tile_tags(t)
            lut[t.id] = self.tile(t, tags)
            empty[t.id] = t.name == "empty" and not t.properties.get("solid")
        out = lut[layers[0]]
        for lay in layers[1:]:
            out = np.where(empty[lay], out, lut[lay])
        for e in level.entities:
            if not (0 <= e.y < out.shape[0] and 0 <= e.x < out.shape[1]):
                continue
            tid = self.entity(e.kind, ent_chars.get(e.kind))
            below = int(out[e.y, e.x])
            if below in self.entity_kind:  # two entities on one cell: keep the first
                continue
            c = self.entity_under_counts.setdefault(tid, {})
            c[below] = c.get(below, 0) + 1
            out[e.y, e.x] = tid
        return out.astype(np.uint8)

    def under(self) -> dict[int, int]:
        return {k: max(v, key=lambda t: (v[t], -t)) for k, v in self.entity_under_counts.items()}


def _read_text_level(f: Path, legend: Path) -> Level:
    from plugins.vglc import read_vglc

    return read_vglc(f, legend)


def _engine_levels(engine: Any, f: Path) -> list[Level]:
    """Levels from a Tiled map or a pack. Raises InputError with the reason otherwise."""
    try:
        from engine import packs  # type: ignore[attr-defined]

        if packs.is_pack(f):
            with packs.open_pack(f) as r:
                got = [x for x in r if isinstance(x, Level)]
            if not got:
                raise InputError("a content pack holding no levels")
            return got
    except ImportError:
        pass
    c = engine.load(f)
    if not isinstance(c, Level):
        raise InputError(f"holds a {type(c).__name__.lower()}, not a level")
    return [c]


def _json_kind(f: Path) -> str | None:
    """``"tmj"`` for a Tiled map saved as .json, ``"json"`` for a Conjure level, else None."""
    try:
        if f.stat().st_size > 64 * 1024 * 1024:
            return None
        doc = json.loads(f.read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(doc, dict) and "layers" in doc and "tilewidth" in doc:
        return "tmj"
    if isinstance(doc, dict) and str(doc.get("schema", "")).startswith("conjure.level"):
        return "json"
    return None


def _vglc_entity_chars(legend_doc: dict | None) -> dict[str, str]:
    conj = (legend_doc or {}).get("__conjure__")
    if isinstance(conj, dict) and isinstance(conj.get("entity_chars"), dict):
        return {v["kind"]: c for c, v in conj["entity_chars"].items() if isinstance(v, dict) and "kind" in v}
    return {}


def _reason(e: Exception, f: Path) -> str:
    msg = str(e)
    for pre in (f"{f}: ", f"{f.name}: "):
        if msg.startswith(pre):
            msg = msg[len(pre):]
    return msg.splitlines()[0] if msg else type(e).__name__


#: Tag words only side-view games use (things that need gravity: climbing, standing on, jumping through);
#: ``ground`` is left out: top-down overworlds have ground too.
SIDE_WORDS = frozenset({"pipe", "ladder", "climbable", "rope", "vine", "platform", "solidtop", "cannon", "spring",
                        "flagpole", "jumpthrough"})
#: Tag words only top-down games use (a floor you walk *on*, seen from above).
TOP_WORDS = frozenset({"floor", "stair", "stairs"})


def detect_view(grids: list[np.ndarray], solid: np.ndarray, tags: list[list[str]] | None = None) -> str:
    """``"side"`` when the maps have gravity, else ``"top"``. ``solid`` marks solid and void tile ids; ``tags``
    (per tile id) break ties. In order:

    - the bottom row is much more solid than the top row (by over 0.25): a platformer's ground under open sky;
    - else the bottom third is much more solid than the top third (by over 0.15): ground, stairs and pipes
      standing on it under a thin ceiling (castles, underground levels with a solid top row);
    - else (a ceiling about as heavy as the floor, or a walled top-down room: the same structure) the tags of
      the tiles the maps use decide: more tile kinds with side-view words (:data:`SIDE_WORDS`: pipes,
      ladders, platforms…) than with top-down words (:data:`TOP_WORDS`: floor, stairs) means side view;
    - else top-down. A mapping file's ``view`` overrides all this."""
    if not grids:
        return "top"
    top = float(np.mean([solid[g[0]].mean() for g in grids]))
    bottom = float(np.mean([solid[g[-1]].mean() for g in grids]))
    if bottom - top > 0.25:
        return "side"
    top3 = float(np.mean([solid[g[:max(1, g.shape[0] // 3)]].mean() for g in grids]))
    bottom3 = float(np.mean([solid[g[-max(1, g.shape[0] // 3):]].mean() for g in grids]))
    if bottom3 - top3 > 0.15:
        return "side"
    if tags:
        used = np.zeros(len(tags), dtype=bool)
        for g in grids:
            used[np.unique(g)[np.unique(g) < len(tags)]] = True
        words = [set().union(*(_words(t) for t in tags[i])) if tags[i] else set() for i in np.nonzero(used)[0]]
        side = sum(1 for w in words if w & SIDE_WORDS)
        topw = sum(1 for w in words if w & TOP_WORDS)
        if side > topw:
            return "side"
    return "top"


def detect_room(grids: list[np.ndarray], border: np.ndarray) -> tuple[int, int] | None:
    """The room size of top-down maps made of equal rooms (the smallest ``h×w``, both ≥ 5, dividing every
    map, whose room edges are ≥ 85% wall/void/door, over the rooms that hold anything but wall/void: VGLC's
    Zelda dungeons are mostly void rooms, which would fit any room size), else None."""
    gh = gw = 0
    for g in grids:
        gh, gw = math.gcd(gh, g.shape[0]), math.gcd(gw, g.shape[1])
    hs = [d for d in range(5, gh + 1) if gh % d == 0]
    ws = [d for d in range(5, gw + 1) if gw % d == 0]
    best = None
    for rh in hs:
        for rw in ws:
            if all(g.shape == (rh, rw) for g in grids) and len(grids) > 0:
                continue  # every map is one room of this size: no grid of rooms to find
            edge = []
            for g in grids:  # per room that holds anything but walls/void (empty rooms fit any size)
                m = border[g]
                H, W = m.shape
                rooms = m.reshape(H // rh, rh, W // rw, rw).transpose(0, 2, 1, 3)
                used = ~rooms.all(axis=(2, 3))
                if not used.any():
                    continue
                sel = np.zeros((rh, rw), bool)
                sel[[0, -1], :] = True
                sel[:, [0, -1]] = True
                edge.append(rooms[used][:, sel].mean())
            score = float(np.mean(edge)) if edge else 0.0
            if score >= 0.85 and (best is None or rh * rw < best[0]):
                best = (rh * rw, (rh, rw))
    return best[1] if best else None


def load_corpus(paths, *, engine=None, legend=None, mapping=None, verbose=False) -> Corpus:
    """Read a corpus (see the module docstring). Raises :class:`InputError` listing every file's reason
    when no level could be read. ``verbose`` prints every skipped file to stderr (else a count)."""
    import sys

    from plugins.vglc import shown_path

    files, skipped = _expand(paths if isinstance(paths, (list, tuple)) else [paths])
    mp = _read_mapping(mapping)
    legend_path_given = None
    if legend:
        legend_path_given = Path(legend)
        cache: dict = {}
        if not legend_path_given.is_file():
            raise InputError(f"--legend {legend_path_given}: no such file")
        if _legend_doc(legend_path_given, cache) is None:
            raise InputError(f"--legend {legend_path_given}: not a legend (expected {{\"tiles\": {{CHAR: [TAGS]}}}} "
                             "or a {CHAR: [TAGS]} map)")
    cache = {}
    roots = [Path(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
    eng = engine
    uni = _Unifier(mp)
    read: list[tuple[Path, Level, np.ndarray, Path | None]] = []
    for f in files:
        name = f.name.lower()
        ext = f.suffix.lower()
        if legend_path_given is not None and f.resolve() == legend_path_given.resolve():
            continue
        if ext in SKIP_EXTS:
            skipped.append((str(f), f"not a level: {SKIP_EXTS[ext]}"))
            continue
        if README_RE.match(name):
            skipped.append((str(f), "not a level: a README/notes file"))
            continue
        try:
            if ext in (".tmj", ".tmx"):
                if eng is None:
                    eng = reader_engine()
                levels = _engine_levels(eng, f)
                for lv in levels:
                    read.append((f, lv, None, None))
                continue
            if ext == ".json":
                if _legend_doc(f, cache) is not None:
                    continue  # a legend: listed with the files used when a level uses it
                fmt = _json_kind(f)
                if fmt is None:
                    skipped.append((str(f), "not a level: JSON that is neither a legend, a Tiled map nor a "
                                            "Conjure level"))
                    continue
                if eng is None:
                    eng = reader_engine()
                c = eng.load(f, fmt)
                if not isinstance(c, Level):
                    raise InputError(f"holds a {type(c).__name__.lower()}, not a level")
                read.append((f, c, None, None))
                continue
            if ext in (".cpk", ".pack", ".msgpack"):
                if eng is None:
                    eng = reader_engine()
                for lv in _engine_levels(eng, f):
                    read.append((f, lv, None, None))
                continue
            try:
                from engine import packs  # type: ignore[attr-defined]

                if packs.is_pack(f):
                    for lv in _engine_levels(eng or reader_engine(), f):
                        read.append((f, lv, None, None))
                    continue
            except ImportError:
                pass
            # VGLC text (any extension)
            try:
                head = f.read_bytes()[:4096]
            except OSError as e:
                raise InputError(f"cannot read ({e.strerror})") from None
            if b"\0" in head:
                skipped.append((str(f), "not a level: a binary file"))
                continue
            lp = legend_path_given or _find_legend(f, roots, cache)
            if lp is None:
                skipped.append((str(f), "no legend: none given (--legend) and no legend JSON beside the file or in "
                                f"the folders above it up to {shown_path(_legend_ceiling(f, roots))} (the "
                                f"--data folder's parent, at most {LEGEND_SEARCH_DEPTH} up)"))
                continue
            lv = _read_text_level(f, lp)
            read.append((f, lv, None, lp))
        except ConjureError as e:
            skipped.append((str(f), _reason(e, f)))
    # side view or top down, from the levels' structure (or the mapping)
    grids = []
    keep: list[tuple[Path, Level, Path | None]] = []
    for f, lv, _, lp in read:
        if len(keep) >= MAX_LEVELS:
            skipped.append((str(f), f"over the limit of {MAX_LEVELS} levels"))
            continue
        ent_chars = _vglc_entity_chars(_legend_doc(lp, cache)) if lp is not None else {}
        try:
            grids.append(uni.grid(lv, ent_chars))
            keep.append((f, lv, lp))
        except InputError as e:
            skipped.append((str(f), _reason(e, f)))
    tileset = Tileset(_tileset_name(keep), list(uni.tiles))
    solid = np.array([bool(roles_of(tile_tags(t)) & {"solid", "void"}) for t in tileset.tiles] + [False], dtype=bool)
    view = mp.get("view") or detect_view(grids, solid, [tile_tags(t) for t in tileset.tiles])
    orientation = "horizontal"
    padded: list[str] = []
    if view == "side" and grids and 2 * sum(is_vertical(g) for g in grids) > len(grids):
        orientation = "vertical"  # Kid Icarus: one width (the screen's), the heights differ: keep that width
        widths: dict[int, int] = {}
        for g in grids:
            widths[g.shape[1]] = widths.get(g.shape[1], 0) + 1
        w0 = max(widths, key=lambda w: (widths[w], -w))
        kept_g, kept = [], []
        for g, k in zip(grids, keep):
            if not is_vertical(g):
                skipped.append((str(k[0]), f"{g.shape[0]}x{g.shape[1]} is not a vertical level, but most of the "
                                           "corpus's levels are (more than twice as high as wide); split them "
                                           "into separate corpora"))
            elif g.shape[1] != w0:
                skipped.append((str(k[0]), f"{g.shape[1]} columns wide, but the corpus's vertical levels are {w0} "
                                           f"columns (found {widths[w0]} of them); split them into separate corpora"))
            else:
                kept_g.append(g)
                kept.append(k)
        grids, keep = kept_g, kept
    elif view == "side" and grids:  # one height: a model of 14-row levels cannot learn 16-row ones
        heights: dict[int, int] = {}
        for g in grids:
            heights[g.shape[0]] = heights.get(g.shape[0], 0) + 1
        voids = [t.id for t in tileset.tiles if "void" in roles_of(tile_tags(t))]
        fill = max(voids, key=lambda v: (sum(int((g == v).sum()) for g in grids), -v)) if voids else None
        if len(heights) > 1 and fill is not None and any((g == fill).any() for g in grids):
            # the levels mark the outside of the level with a void tile (VGLC Mega Man's "@"): shorter ones
            # are the same game with more outside above them; pad them at the top to the tallest
            H = max(heights)
            for i, (g, k) in enumerate(zip(grids, keep)):
                if g.shape[0] < H:
                    padded.append(str(k[0]))
                    grids[i] = np.vstack([np.full((H - g.shape[0], g.shape[1]), fill, dtype=g.dtype), g])
            heights = {H: len(grids)}
        top = max(heights.values())
        tied = sorted(h for h, n in heights.items() if n == top)
        if len(tied) > 1:  # no majority height: which one is the game's is not ours to guess
            first = {h: next(str(k[0]) for g, k in zip(grids, keep) if g.shape[0] == h) for h in tied}
            each = " and ".join(f"{h} rows ({shown_path(first[h])})" for h in tied[:2])
            more = f" (and {len(tied) - 2} more heights)" if len(tied) > 2 else ""
            reason = (f"side-view levels of mixed heights: {each}{more}, {top} level(s) each, none the most "
                      f"common; split them into separate corpora")
            for g, k in zip(grids, keep):
                skipped.append((str(k[0]), f"{g.shape[0]} rows high: {reason}"))
            if verbose:
                for p, r in skipped:
                    print(f"skipped {p}: {r}", file=sys.stderr)
            raise CorpusError(f"{', '.join(map(str, roots))}: {reason}", skipped)
        h0 = tied[0]
        kept_g, kept = [], []
        for g, k in zip(grids, keep):
            if g.shape[0] != h0:
                skipped.append((str(k[0]), f"{g.shape[0]} rows high, but the corpus's side-view levels are {h0} "
                                           f"rows (found {heights[h0]} of them); split mixed heights into separate corpora"))
            else:
                kept_g.append(g)
                kept.append(k)
        grids, keep = kept_g, kept
    if not grids:
        if verbose:
            for p, r in skipped:
                print(f"skipped {p}: {r}", file=sys.stderr)
        raise CorpusError(f"no level could be read from {', '.join(map(str, roots))}: "
                          f"{len(skipped)} file(s) skipped: {group_reasons(skipped)}", skipped)
    room = None
    if view == "top":
        border = np.array([bool(roles_of(tile_tags(t)) & {"solid", "void", "door", "locked"})
                           for t in tileset.tiles], dtype=bool)
        room = mp["room"] if "room" in mp else detect_room(grids, border)
    used_legends = sorted({str(lp) for _, _, lp in keep if lp is not None})
    used = []
    seen = set()
    for f, _, _ in keep:
        if str(f) not in seen:
            seen.add(str(f))
            used.append(str(f))
    file_hashes = [(p, _sha(Path(p))) for p in used + used_legends]
    if verbose:
        for p, r in skipped:
            print(f"skipped {p}: {r}", file=sys.stderr)
    sources, count = [], {}
    for f, _, _ in keep:
        count[str(f)] = count.get(str(f), 0) + 1
    nth: dict[str, int] = {}
    for f, _, _ in keep:
        k = str(f)
        nth[k] = nth.get(k, 0) + 1
        sources.append(k if count[k] == 1 else f"{k}#{nth[k]}")
    return Corpus([lv for _, lv, _ in keep], grids, tileset, view, file_hashes, skipped, used, used_legends, room,
                  uni.under(), dict(uni.entity_kind), sources, orientation, padded)


def is_vertical(grid: np.ndarray) -> bool:
    """A side-view level more than twice as high as wide is vertical (Kid Icarus: the player climbs up)."""
    return grid.shape[0] > 2 * grid.shape[1]


class CorpusError(InputError):
    """No level could be read; ``skipped`` lists every file with its reason (the message groups them)."""

    def __init__(self, message: str, skipped: list[tuple[str, str]]):
        super().__init__(message)
        self.skipped = list(skipped)


def group_reasons(skipped: list[tuple[str, str]], groups: int = 8, names: int = 3) -> str:
    """``REASON: a.txt, b.txt (+3 more); ...`` — the skipped files grouped by reason, short enough for a
    one-line error."""
    by: dict[str, list[str]] = {}
    for p, r in skipped:
        by.setdefault(r, []).append(Path(p).name)
    parts = []
    for r, fs in list(by.items())[:groups]:
        more = f" (+{len(fs) - names} more)" if len(fs) > names else ""
        parts.append(f"{', '.join(fs[:names])}{more}: {r}")
    if len(by) > groups:
        parts.append(f"and {len(by) - groups} other reason(s) (--verbose lists every file)")
    return "; ".join(parts)


def _tileset_name(keep) -> str:
    names = {lv.tileset.name for _, lv, _ in keep}
    return names.pop() if len(names) == 1 else "corpus"


def skipped_summary(corpus: Corpus, verbose: bool = False, limit: int = 10) -> list[str]:
    """Lines describing the skipped files (all with ``verbose``, else the first ``limit`` and a count)."""
    sk = corpus.skipped
    if not sk:
        return []
    show = sk if verbose else sk[:limit]
    out = [f"skipped {p}: {r}" for p, r in show]
    if len(sk) > len(show):
        out.append(f"... {len(sk) - len(show)} more skipped (--verbose lists them all)")
    return out


_SWAP = {"left": "right", "right": "left", "l": "r", "r": "l", "west": "east", "east": "west"}


def mirror_ids(tileset: Tileset) -> np.ndarray:
    """A lookup ``lut[id] -> id`` for a left-right mirror: a tile whose name or tags say ``left`` maps to the
    tile that says ``right`` in the same place (VGLC's ``<``/``>`` pipe tops, ``[``/``]`` bodies), every
    other tile to itself. Mirroring a side-view window is ``lut[win[:, ::-1]]``."""
    def key(t: TileDef, swap: bool) -> tuple:
        words = []
        for tag in [t.name] + tile_tags(t):
            ws = re.split(r"([\s_\-]+)", tag.lower())
            words.append("".join(_SWAP.get(w, w) if swap else w for w in ws))
        return tuple(sorted(set(words)))

    lut = np.arange(max(256, len(tileset.tiles)), dtype=np.int64)
    by_key = {key(t, False): t.id for t in tileset.tiles}
    for t in tileset.tiles:
        other = by_key.get(key(t, True))
        if other is not None:
            lut[t.id] = other
    return lut


# --------------------------------------------------------------------------------------------- old helpers
def load_levels(paths: Iterable[Path], engine: Any = None, genre: str | None = None) -> list[Level]:
    """Levels (as read) from ``paths`` whose tileset is named ``genre`` (the shipped corpora's readers)."""
    c = load_corpus(list(paths), engine=engine)
    return [lv for lv in c.levels if genre is None or lv.tileset.name == genre]


def to_classes(level: Level, entity_classes: dict[str, int]) -> np.ndarray:
    """The level's tile ids as int64 classes, entities in ``entity_classes`` written over their cell."""
    g = level.tiles.astype(np.int64).copy()
    for e in level.entities:
        c = entity_classes.get(e.kind)
        if c is not None and 0 <= e.y < g.shape[0] and 0 <= e.x < g.shape[1]:
            g[e.y, e.x] = c
    return g


def windows(grid: np.ndarray, h: int, w: int, stride_y: int = 1, stride_x: int = 1) -> np.ndarray:
    """All ``h×w`` windows of ``grid`` at the given strides, as ``(n, h, w)`` (the last window always
    touches the far edge). A grid smaller than the window gives none."""
    H, W = grid.shape
    if H < h or W < w:
        return np.zeros((0, h, w), dtype=grid.dtype)
    ys = sorted(set(list(range(0, H - h + 1, stride_y)) + [H - h]))
    xs = sorted(set(list(range(0, W - w + 1, stride_x)) + [W - w]))
    return np.stack([grid[y:y + h, x:x + w] for y in ys for x in xs])


def augment(wins: np.ndarray, mode: str) -> np.ndarray:
    """``"hflip"``: originals and left-right mirrors; ``"d4"``: the 8 symmetries of the square."""
    if mode == "hflip":
        return np.concatenate([wins, wins[:, :, ::-1]])
    if mode == "d4":
        out = []
        for k in range(4):
            r = np.rot90(wins, k, axes=(1, 2))
            out += [r, r[:, :, ::-1]]
        return np.concatenate(out)
    return wins


def corpus_dir(genre: str) -> Path:
    return LEVELS_ROOT / genre


def shipped_corpus(genre: str) -> list[Path]:
    d = corpus_dir(genre)
    return sorted(d.glob("*" + VGLC_SUFFIX)) if d.is_dir() else []
