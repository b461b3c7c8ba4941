"""LDtk projects (``.ldtk``): an exporter and importer for levels.

Export (see ``docs/formats.md``) writes a complete LDtk 1.5 project holding one level: per level layer an
IntGrid layer (value = tile id + 1, named and coloured after the tiles) and, unless ``layers=intgrid``, a Tiles
layer drawn from a tileset image ``NAME.<digest>.tileset.png`` written beside it; an Entities layer with one
entity definition per entity kind (typed fields for the properties, the entity id in ``conjure_id``); and a
level field ``conjure`` (JSON: tileset, regions, metadata) so that reading the file back gives the same level.
``-O template=my.ldtk`` fills a user's project instead: their layer, entity, tileset, enum and level-field
definitions are kept, our tiles go into their IntGrid layer through their values' identifiers (a tile's name,
else one of its true properties, the most specific first: ``locked``, ``door``, ``solid``...), our entities into their entity definitions
of the same name (fields of the same name filled). ``-O simplified=1`` also writes LDtk's "Super Simple Export"
folder (``NAME/simplified/LEVEL/``: ``data.json``, one CSV per IntGrid layer, one PNG per layer and
``_composite.png``).

Same level, options and template -> the same bytes: identifiers (``iid``) are UUIDs derived from the content.
Every problem with a file read (template or import) is an :class:`InputError` naming the file and the field.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from engine import hookimpl
from engine.content import Level
from engine.errors import ContentError, InputError
from engine.generator import int_option
from engine.images import png_bytes, tileset_sheet
from engine.serialize import atomic_write, read_bytes

JSON_VERSION = "1.5.3"
APP_BUILD_ID = 473703
MAX_FILE_BYTES = 64 << 20
MAX_CELLS = 16384 * 16384
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONJURE_FIELD = "conjure"
ID_FIELD = "conjure_id"
ENTITY_LAYER = "Entities"
LAYER_CHOICES = ("both", "intgrid", "tiles")
FIELD_TYPES = {int: ("Int", "F_Int", "V_Int"), float: ("Float", "F_Float", "V_Float"),
               bool: ("Bool", "F_Bool", "V_Bool"), str: ("String", "F_String", "V_String")}
HEADER = {"fileType": "LDtk Project JSON", "app": "Conjure", "doc": "https://ldtk.io/json",
          "schema": "https://ldtk.io/files/JSON_SCHEMA.json", "appAuthor": "Conjure", "appVersion": JSON_VERSION,
          "url": "https://ldtk.io"}
ENTITY_COLORS = ("#5FCDE4", "#F2A65A", "#E45F7B", "#9CD67F", "#C792EA", "#FFD166", "#7F8CFF", "#B0B0B0")


# ============================================================================================ helpers
def _hex(rgb) -> str:
    return "#%02X%02X%02X" % tuple(int(c) for c in rgb[:3])


def _rgb(text: Any) -> tuple[int, int, int] | None:
    if isinstance(text, str) and re.fullmatch(r"#[0-9A-Fa-f]{6}", text):
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
    return None


class _Ids:
    """Deterministic UUIDs (``iid``) and increasing ``uid``\\ s for one project."""

    def __init__(self, seed: bytes, next_uid: int = 1):
        self.seed = seed
        self.next_uid = next_uid

    def iid(self, label: str) -> str:
        digest = hashlib.blake2b(self.seed + label.encode(), digest_size=16).digest()
        return str(uuid.UUID(bytes=digest, version=4))

    def uid(self) -> int:
        self.next_uid += 1
        return self.next_uid - 1


def _option_bool(options: dict, name: str) -> bool:
    v = options.get(name, False)
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return v.strip().lower() in ("1", "true", "yes", "on")
    raise InputError(f"ldtk option {name}: expected true or false, got {v!r}")


def _identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not IDENT.match(name):
        raise InputError(f"ldtk export: {what} {name!r} is not an LDtk identifier (letters, digits and _, not "
                         "starting with a digit)")
    return name


def _level_name(level: Level) -> str:
    gen, seed = level.metadata.get("generator"), level.metadata.get("seed")
    if gen is None:
        return "Level_0"
    name = re.sub(r"[^A-Za-z0-9_]", "_", f"{gen}_{seed}" if seed is not None else str(gen))
    return name if IDENT.match(name) else f"Level_{name}"


def _read_json(path: Path, what: str) -> Any:
    # engine.serialize.read_bytes opens without blocking and refuses FIFOs, devices and folders on the open
    # descriptor, and reads at most the limit (a stat() then read_bytes() hangs on a FIFO, never ends on /dev/zero)
    try:
        data = read_bytes(path, MAX_FILE_BYTES)
    except InputError as e:
        raise InputError(f"{e} (the {what})") from None
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: the {what} is not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"{path}: the {what} nests too deeply") from None
    except ValueError as e:
        raise InputError(f"{path}: the {what} is not JSON ({e})") from None


def _need(d: Any, key: str, typ, where: str, src: Path) -> Any:
    if not isinstance(d, dict):
        raise InputError(f"{src}: {where}: expected an object")
    v = d.get(key)
    ok = isinstance(v, typ) and not (typ in (int, (int, float)) and isinstance(v, bool))
    if not ok:
        want = {int: "an integer", str: "a string", list: "a list", dict: "an object", bool: "true or false",
                (int, float): "a number"}.get(typ, str(typ))
        raise InputError(f"{src}: {where}.{key}: expected {want}, got {type(v).__name__}")
    return v


def _field_value(v: Any) -> tuple[str, str, str] | None:
    for t in (bool, int, float, str):
        if type(v) is t:
            return FIELD_TYPES[t]
    return None


def _real_value(vid: str, v: Any) -> list:
    return [None] if v is None else [{"id": vid, "params": [v]}]


# ============================================================================================ definitions
def _layer_def(ids: _Ids, name: str, kind: str, grid: int, int_values=(), tileset_uid=None) -> dict:
    return {"__type": kind, "identifier": name, "type": kind, "uid": ids.uid(), "doc": None, "uiColor": None,
            "gridSize": grid, "guideGridWid": 0, "guideGridHei": 0, "guideOpacity": 0, "guideColor": None, "displayOpacity": 1, "inactiveOpacity": 1,
            "hideInList": False, "hideFieldsWhenInactive": True, "canSelectWhenInactive": True,
            "renderInWorldView": True, "pxOffsetX": 0, "pxOffsetY": 0, "parallaxFactorX": 0, "parallaxFactorY": 0,
            "parallaxScaling": True, "requiredTags": [], "excludedTags": [], "layerUidsPreventingAutoTilingHere": [],
            "tilesetDefUid": tileset_uid, "tilePivotX": 0, "tilePivotY": 0, "biomeFieldUid": None,
            "intGridValues": list(int_values), "intGridValuesGroups": [], "autoRuleGroups": [],
            "autoSourceLayerDefUid": None, "uiFilterTags": [], "useAsyncRender": False}


def _field_def(ids: _Ids, name: str, ftype: tuple[str, str, str], hidden: bool = False) -> dict:
    return {"identifier": name, "doc": None, "__type": ftype[0], "uid": ids.uid(), "type": ftype[1],
            "isArray": False, "canBeNull": True, "arrayMinLength": None, "arrayMaxLength": None,
            "editorDisplayMode": "Hidden" if hidden else "NameAndValue", "editorDisplayScale": 1,
            "editorDisplayPos": "Above", "editorLinkStyle": "StraightArrow", "editorDisplayColor": None,
            "editorAlwaysShow": False, "editorShowInWorld": True, "editorCutLongValues": True,
            "editorTextSuffix": None, "editorTextPrefix": None, "useForSmartColor": False, "exportToToc": False,
            "searchable": False, "min": None, "max": None, "regex": None, "acceptFileTypes": None,
            "defaultOverride": None, "textLanguageMode": None, "symmetricalRef": False, "autoChainRef": True,
            "allowOutOfLevelRef": True, "allowedRefs": "OnlySame", "allowedRefsEntityUid": None,
            "allowedRefTags": [], "tilesetUid": None}


def _entity_def(ids: _Ids, kind: str, color: str, grid: int, fields: list[dict]) -> dict:
    return {"identifier": kind, "uid": ids.uid(), "tags": [], "exportToToc": False, "allowOutOfBounds": False,
            "doc": None, "width": grid, "height": grid, "resizableX": False, "resizableY": False,
            "minWidth": None, "maxWidth": None, "minHeight": None, "maxHeight": None, "keepAspectRatio": False,
            "tileOpacity": 1, "fillOpacity": 1, "lineOpacity": 1, "hollow": False, "color": color,
            "renderMode": "Rectangle", "showName": True, "tilesetId": None, "tileRenderMode": "FitInside",
            "tileRect": None, "uiTileRect": None, "nineSliceBorders": [], "maxCount": 0,
            "limitScope": "PerLevel", "limitBehavior": "MoveLastOne", "pivotX": 0, "pivotY": 0,
            "fieldDefs": fields}


def _kind_fields(level: Level) -> tuple[dict[str, dict[str, tuple]], dict[str, list[str]]]:
    """Per entity kind: {property: LDtk field type}, and the properties written as JSON text (values that are
    not one LDtk scalar type across the kind: lists, objects, null, mixed types)."""
    seen: dict[str, dict[str, set]] = {}
    for e in level.entities:
        _identifier(e.kind, "entity kind")
        for k, v in e.properties.items():
            _identifier(k, f"property of entity {e.id!r}:")
            if k == ID_FIELD:
                raise InputError(f"ldtk export: entity {e.id!r}: property name {ID_FIELD!r} is reserved")
            seen.setdefault(e.kind, {}).setdefault(k, set()).add(_field_value(v))
    types, as_json = {}, {}
    for kind, props in seen.items():
        types[kind] = {}
        for k, ts in props.items():
            if len(ts) == 1 and None not in ts:
                types[kind][k] = next(iter(ts))
            else:
                types[kind][k] = FIELD_TYPES[str]
                as_json.setdefault(kind, []).append(k)
    return types, as_json


def _field_instance(fdef: dict, value: Any) -> dict:
    vid = {"F_Int": "V_Int", "F_Float": "V_Float", "F_Bool": "V_Bool"}.get(fdef["type"], "V_String")
    return {"__identifier": fdef["identifier"], "__type": fdef["__type"], "__value": value, "__tile": None,
            "defUid": fdef["uid"], "realEditorValues": _real_value(vid, value)}


# ============================================================================================ export
def _layer_instance(ids: _Ids, ldef: dict, level_uid: int, level_iid: str, px_w: int, px_h: int) -> dict:
    g = ldef["gridSize"]
    cw, ch = -(-px_w // g), -(-px_h // g)
    return {"__identifier": ldef["identifier"], "__type": ldef["__type"], "__cWid": cw, "__cHei": ch,
            "__gridSize": g, "__opacity": 1, "__pxTotalOffsetX": ldef.get("pxOffsetX", 0),
            "__pxTotalOffsetY": ldef.get("pxOffsetY", 0), "__tilesetDefUid": ldef.get("tilesetDefUid"),
            "__tilesetRelPath": None, "iid": ids.iid(f"{level_iid}/layer/{ldef['uid']}"), "levelId": level_uid,
            "layerDefUid": ldef["uid"], "pxOffsetX": 0, "pxOffsetY": 0, "visible": True, "optionalRules": [],
            "intGridCsv": [0] * (cw * ch) if ldef["__type"] == "IntGrid" else [], "autoLayerTiles": [],
            "seed": int.from_bytes(hashlib.blake2b(f"{level_iid}/{ldef['uid']}".encode(), digest_size=3).digest(),
                                   "big"),
            "overrideTilesetUid": None, "gridTiles": [], "entityInstances": []}


def _entity_instance(ids: _Ids, e, index: int, edef: dict, grid: int, level_iid: str, values: dict) -> dict:
    by_name = {f["identifier"]: f for f in edef["fieldDefs"]}
    # in the order of ``values`` (the entity's own property order), so a level read back keeps it
    fields = [_field_instance(by_name[k], v) for k, v in values.items() if k in by_name]
    return {"__identifier": edef["identifier"], "__grid": [e.x, e.y], "__pivot": [edef.get("pivotX", 0),
            edef.get("pivotY", 0)], "__tags": list(edef.get("tags", [])), "__tile": None,
            "__smartColor": edef.get("color", "#B0B0B0"), "iid": ids.iid(f"{level_iid}/entity/{index}"),
            "width": edef.get("width", grid), "height": edef.get("height", grid), "defUid": edef["uid"],
            "px": [e.x * grid + round(edef.get("pivotX", 0) * grid), e.y * grid + round(edef.get("pivotY", 0) * grid)],
            "fieldInstances": fields, "__worldX": e.x * grid, "__worldY": e.y * grid}


def _project_root(ids: _Ids, grid: int, defs: dict, level: dict, simplified: bool) -> dict:
    return {"__header__": dict(HEADER), "iid": ids.iid("project"), "jsonVersion": JSON_VERSION,
            "appBuildId": APP_BUILD_ID, "nextUid": ids.next_uid, "identifierStyle": "Free", "toc": [],
            "worldLayout": "Free", "worldGridWidth": 256, "worldGridHeight": 256,
            "defaultLevelWidth": level["pxWid"], "defaultLevelHeight": level["pxHei"], "defaultPivotX": 0,
            "defaultPivotY": 0, "defaultGridSize": grid, "defaultEntityWidth": grid, "defaultEntityHeight": grid,
            "bgColor": "#40465B", "defaultLevelBgColor": "#696A79", "minifyJson": True, "externalLevels": False,
            "exportTiled": False, "simplifiedExport": simplified, "imageExportMode": "None", "exportLevelBg": True,
            "pngFilePattern": None, "backupOnSave": False, "backupLimit": 10, "backupRelPath": None,
            "levelNamePattern": "Level_%idx", "tutorialDesc": None, "customCommands": [], "flags": [],
            "jsonStyle": "Minified", "dummyWorldIid": ids.iid("world"), "defs": defs, "levels": [level],
            "worlds": []}


def _level_dict(ids: _Ids, level: Level, grid: int, fields: list[dict], layers: list[dict]) -> dict:
    uid = ids.uid()
    iid = ids.iid("level")
    return {"identifier": _level_name(level), "iid": iid, "uid": uid, "worldX": 0, "worldY": 0,
            "worldDepth": 0, "pxWid": level.width * grid, "pxHei": level.height * grid, "__bgColor": "#696A79",
            "bgColor": None, "useAutoIdentifier": False, "bgRelPath": None, "bgPos": None, "bgPivotX": 0.5,
            "bgPivotY": 0.5, "__smartColor": "#ADADB5", "__bgPos": None, "externalRelPath": None,
            "fieldInstances": fields, "layerInstances": layers, "__neighbours": []}


def _conjure_json(level: Level, as_json: dict, intgrid: dict | None = None, entities: dict | None = None) -> str:
    """The level field ``conjure``: what LDtk has no place for. ``intgrid`` (templates): per level layer, the
    template's IntGrid layer and {tile id: value}; without it a layer's IntGrid value is tile id + 1."""
    d = level.to_dict(binary=False)
    keep = {"schema": d["schema"], "layers": list(level.layers), "tileset": d["tileset"], "regions": d["regions"],
            "metadata": d["metadata"], "json_properties": as_json}
    if intgrid:
        keep["intgrid"] = intgrid
    if entities:  # templates: per entity iid, the id and properties their definitions have no field for
        keep["entities"] = entities
    # the content's own key order (not sorted): a level read back serialises to the same bytes
    return json.dumps(keep, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _entity_values(e, types: dict, as_json: dict) -> dict:
    out = {ID_FIELD: e.id}
    for k, v in e.properties.items():
        out[k] = json.dumps(v, ensure_ascii=False, allow_nan=False) if k in as_json.get(e.kind, ()) else v
    return out


def build_project(level: Level, grid: int = 16, layers: str = "both", image: str | None = None,
                  simplified: bool = False, theme: str | None = None) -> dict:
    """A complete LDtk project (as a dict) holding ``level``; ``image`` is the tileset image's relative path
    (needed when ``layers`` includes tiles)."""
    try:
        level.validate()
    except ContentError as e:
        raise InputError(f"ldtk export: {e}") from None
    for name in level.layers:
        _identifier(name, "layer name")
    types, as_json = _kind_fields(level)
    ids = _Ids(hashlib.blake2b(level_digest(level) + f"|{grid}|{layers}|{theme}".encode(), digest_size=16).digest())
    defs = {"layers": [], "entities": [], "tilesets": [], "enums": [], "externalEnums": [], "levelFields": []}
    tiles_wanted = layers in ("both", "tiles")
    ts_def = None
    if tiles_wanted:
        h_px, w_px = tileset_rgba(level, grid).shape[:2]
        custom = [{"tileId": t.id, "data": json.dumps({"name": t.name, "char": t.char}, ensure_ascii=False)}
                  for t in level.tileset.tiles]
        ts_def = {"__cWid": w_px // grid, "__cHei": h_px // grid, "identifier": _safe(level.tileset.name, "Tiles"),
                  "uid": ids.uid(), "relPath": image, "embedAtlas": None, "pxWid": w_px, "pxHei": h_px,
                  "tileGridSize": grid, "spacing": 0, "padding": 0, "tags": [], "tagsSourceEnumUid": None,
                  "enumTags": [], "customData": custom, "savedSelections": [], "cachedPixelData": None}
        defs["tilesets"].append(ts_def)
    ent_layer = _layer_def(ids, ENTITY_LAYER, "Entities", grid)
    defs["layers"].append(ent_layer)
    int_values = [{"value": t.id + 1, "identifier": t.name if IDENT.match(t.name) else None,
                   "color": _hex(t.color), "tile": None, "groupUid": 0} for t in level.tileset.tiles]
    pairs = []
    for name in level.layers:
        tl = _layer_def(ids, f"{name}_tiles", "Tiles", grid, tileset_uid=ts_def["uid"]) if tiles_wanted else None
        il = _layer_def(ids, name, "IntGrid", grid, int_values) if layers in ("both", "intgrid") else None
        defs["layers"] += [x for x in (tl, il) if x is not None]
        pairs.append((name, il, tl))
    kinds = sorted({e.kind for e in level.entities})
    for i, kind in enumerate(kinds):
        fields = [_field_def(ids, ID_FIELD, FIELD_TYPES[str], hidden=True)]
        fields += [_field_def(ids, k, t) for k, t in sorted(types.get(kind, {}).items())]
        defs["entities"].append(_entity_def(ids, kind, ENTITY_COLORS[i % len(ENTITY_COLORS)], grid, fields))
    conj_def = _field_def(ids, CONJURE_FIELD, ("String", "F_Text", "V_String"), hidden=True)
    defs["levelFields"].append(conj_def)
    lvl = _level_dict(ids, level, grid, [_field_instance(conj_def, _conjure_json(level, as_json))], [])
    insts = [_layer_instance(ids, d, lvl["uid"], lvl["iid"], lvl["pxWid"], lvl["pxHei"]) for d in defs["layers"]]
    by_uid = {li["layerDefUid"]: li for li in insts}
    by_kind = {d["identifier"]: d for d in defs["entities"]}
    by_uid[ent_layer["uid"]]["entityInstances"] = [
        _entity_instance(ids, e, i, by_kind[e.kind], grid, lvl["iid"], _entity_values(e, types, as_json))
        for i, e in enumerate(level.entities)]
    for name, il, tl in pairs:
        arr = level.layers[name]
        if il is not None:
            by_uid[il["uid"]]["intGridCsv"] = (arr.astype(np.int64) + 1).ravel().tolist()
        if tl is not None:
            li = by_uid[tl["uid"]]
            li["__tilesetRelPath"] = image
            cols = ts_def["__cWid"]
            li["gridTiles"] = [{"px": [x * grid, y * grid], "src": [int(t) % cols * grid, int(t) // cols * grid],
                                "f": 0, "t": int(t), "d": [y * level.width + x], "a": 1}
                               for (y, x), t in np.ndenumerate(arr)]
    lvl["layerInstances"] = insts
    return _project_root(ids, grid, defs, lvl, simplified)


def tileset_rgba(level: Level, grid: int, theme: str | None = None) -> np.ndarray:
    """The tileset image: :func:`engine.images.tileset_sheet` (a tile's colour, border and id dots), with the
    tiles a theme maps (``-O theme=NAME``, :mod:`engine.themes`) drawn from its art over their colour."""
    rgba, cols, _ = tileset_sheet(level.tileset, grid)
    if theme is None:
        return rgba
    from engine.themes import draw_tileset

    return draw_tileset(rgba, cols, level.tileset, grid, theme)


def _safe(name: str, fallback: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name or "")
    return s if IDENT.match(s) else fallback


def level_digest(level: Level) -> bytes:
    from engine.serialize import dumps

    return hashlib.blake2b(dumps(level, "msgpack"), digest_size=16).digest()


def project_bytes(project: dict) -> bytes:
    """The project as compact JSON (what LDtk writes with ``jsonStyle: Minified``): a 256x256 level with its
    Tiles layer is about 5 MB instead of 14 MB indented."""
    return (json.dumps(project, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")


# ============================================================================================ templates
def fill_template(level: Level, template: Path, simplified: bool = False, out: Path | None = None) -> dict:
    """The user's project ``template`` with its levels replaced by ``level`` (their definitions kept). With
    ``out`` (the project file to be written), their tilesets' ``relPath`` are rewritten relative to ``out``'s
    folder, so a project written elsewhere than the template still finds their images."""
    try:
        level.validate()
    except ContentError as e:
        raise InputError(f"ldtk export: {e}") from None
    src = Path(template)
    try:
        proj = _fill(level, src, simplified)
        if out is not None:
            _rebase_tilesets(proj, src, Path(out))
        return proj
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as e:  # a shape we missed
        raise InputError(f"{src}: malformed LDtk template ({type(e).__name__}: {e})") from None


def _rebase_tilesets(proj: dict, template: Path, out: Path) -> None:
    """Tileset ``relPath`` values (relative to the template's folder) made relative to ``out``'s folder."""
    base = os.path.abspath(template.parent)
    dest = os.path.abspath(out.parent)
    for ts in proj["defs"]["tilesets"]:
        rel = ts.get("relPath") if isinstance(ts, dict) else None
        if not isinstance(rel, str) or not rel or os.path.isabs(rel) or re.match(r"^[A-Za-z]:[\\/]", rel):
            continue  # no image (an embedded atlas), or an absolute path that is right from anywhere
        target = os.path.normpath(os.path.join(base, rel.replace("\\", "/")))
        ts["relPath"] = Path(os.path.relpath(target, dest)).as_posix()


def _check_entity_def(ed: Any, where: str, src: Path) -> None:
    _need(ed, "identifier", str, where, src)
    _need(ed, "uid", int, where, src)
    for key in ("width", "height"):
        if not 1 <= _need(ed, key, int, where, src) <= 4096:
            raise InputError(f"{src}: {where}.{key}: outside 1..4096")
    for key in ("pivotX", "pivotY"):
        if not 0 <= _need(ed, key, (int, float), where, src) <= 1:
            raise InputError(f"{src}: {where}.{key}: outside 0..1")
    _need(ed, "color", str, where, src)
    if not all(isinstance(t, str) for t in _need(ed, "tags", list, where, src)):
        raise InputError(f"{src}: {where}.tags: expected strings")
    for j, f in enumerate(_need(ed, "fieldDefs", list, where, src)):
        _need(f, "identifier", str, f"{where}.fieldDefs[{j}]", src)
        _need(f, "uid", int, f"{where}.fieldDefs[{j}]", src)
        _need(f, "__type", str, f"{where}.fieldDefs[{j}]", src)


def _fill(level: Level, src: Path, simplified: bool) -> dict:
    proj = _read_json(src, "LDtk template")
    if not isinstance(proj, dict):
        raise InputError(f"{src}: an LDtk project is a JSON object")
    defs = _need(proj, "defs", dict, "project", src)
    for key in ("layers", "entities", "tilesets", "enums", "externalEnums", "levelFields"):
        defs.setdefault(key, [])
        _need(defs, key, list, "defs", src)
    if proj.get("worlds"):
        raise InputError(f"{src}: worlds: multi-world templates are not supported (one world, levels in 'levels')")
    if "externalLevels" in proj and not isinstance(proj["externalLevels"], bool):
        raise InputError(f"{src}: externalLevels: expected true or false, got {proj['externalLevels']!r}")
    uids = [0]
    for key in ("layers", "entities", "tilesets", "enums", "levelFields"):
        for i, d in enumerate(defs[key]):
            uids.append(_need(d, "uid", int, f"defs.{key}[{i}]", src))
            for j, f in enumerate(d.get("fieldDefs", []) if key == "entities" else []):
                uids.append(_need(f, "uid", int, f"defs.{key}[{i}].fieldDefs[{j}]", src))
    next_uid = max(max(uids) + 1, proj.get("nextUid", 0) if isinstance(proj.get("nextUid"), int) else 0)
    seed = hashlib.blake2b(level_digest(level) + hashlib.blake2b(json.dumps(proj, sort_keys=True).encode())
                           .digest(), digest_size=16).digest()
    ids = _Ids(seed, next_uid)
    layer_defs = defs["layers"]
    for i, ld in enumerate(layer_defs):
        _need(ld, "identifier", str, f"defs.layers[{i}]", src)
        _need(ld, "__type", str, f"defs.layers[{i}]", src)
        g = _need(ld, "gridSize", int, f"defs.layers[{i}]", src)
        if not 1 <= g <= 1024:
            raise InputError(f"{src}: defs.layers[{i}].gridSize: {g} outside 1..1024")
    intgrids = [ld for ld in layer_defs if ld["__type"] == "IntGrid"]
    if not intgrids:
        raise InputError(f"{src}: defs.layers: no IntGrid layer to put the level's tiles in")
    targets: dict[str, dict] = {}
    for n, name in enumerate(level.layers):
        same = [ld for ld in intgrids if ld["identifier"].lower() == name.lower()]
        if same:
            targets[name] = same[0]
        elif n == 0:
            targets[name] = intgrids[0]
    grid = targets[next(iter(targets))]["gridSize"]
    mappings = {name: tile_mapping(level, ld, src) for name, ld in targets.items()}
    # entities
    ent_layers = [ld for ld in layer_defs if ld["__type"] == "Entities"]
    if ent_layers:
        ent_layer = ent_layers[0]
    else:
        ent_layer = _layer_def(ids, ENTITY_LAYER, "Entities", grid)
        layer_defs.insert(0, ent_layer)
    types, as_json = _kind_fields(level)
    theirs = {}
    for i, ed in enumerate(defs["entities"]):
        _check_entity_def(ed, f"defs.entities[{i}]", src)
        theirs.setdefault(ed["identifier"].lower(), ed)
    for i, kind in enumerate(sorted({e.kind for e in level.entities})):
        if kind.lower() not in theirs:
            fields = [_field_def(ids, ID_FIELD, FIELD_TYPES[str], hidden=True)]
            fields += [_field_def(ids, k, t) for k, t in sorted(types.get(kind, {}).items())]
            ed = _entity_def(ids, kind, ENTITY_COLORS[i % len(ENTITY_COLORS)], ent_layer["gridSize"], fields)
            defs["entities"].append(ed)
            theirs[kind.lower()] = ed
    conj = next((f for f in defs["levelFields"] if f.get("identifier") == CONJURE_FIELD), None)
    if conj is None:
        conj = _field_def(ids, CONJURE_FIELD, ("String", "F_Text", "V_String"), hidden=True)
        defs["levelFields"].append(conj)
    elif conj.get("type") not in ("F_Text", "F_String") or conj.get("isArray"):
        raise InputError(f"{src}: defs.levelFields: a field {CONJURE_FIELD!r} exists and is not a single string")
    intgrid = {name: [targets[name]["identifier"], {str(t.id): int(mappings[name][t.id]) for t in level.tileset.tiles}]
               for name in targets}
    lvl = _level_dict(ids, level, grid, [], [])
    insts = [_layer_instance(ids, ld, lvl["uid"], lvl["iid"], lvl["pxWid"], lvl["pxHei"]) for ld in layer_defs]
    by_uid = {li["layerDefUid"]: li for li in insts}
    for name, ld in targets.items():
        li = by_uid[ld["uid"]]
        values = mappings[name][level.layers[name]]
        if li["__gridSize"] != grid:  # another grid: one value per cell of that layer, nearest level tile
            ys = np.minimum(np.arange(li["__cHei"]) * li["__gridSize"] // grid, level.height - 1)
            xs = np.minimum(np.arange(li["__cWid"]) * li["__gridSize"] // grid, level.width - 1)
            values = values[np.ix_(ys, xs)]
        li["intGridCsv"] = values.astype(np.int64).ravel().tolist()
    el = by_uid[ent_layer["uid"]]
    eg = ent_layer["gridSize"]
    extras = {}
    for i, e in enumerate(level.entities):
        ed = theirs[e.kind.lower()]
        values = _template_values(e, ed, types, as_json)
        inst = _entity_instance(ids, e, i, ed, eg, lvl["iid"], values)
        el["entityInstances"].append(inst)
        extras[inst["iid"]] = {"id": e.id, "kind": e.kind, "properties": e.to_dict()["properties"]}
    lvl["fieldInstances"] = [_field_instance(conj, _conjure_json(level, as_json, intgrid, extras))]
    lvl["layerInstances"] = insts
    proj["levels"] = [lvl]
    proj["worlds"] = []
    proj["toc"] = []
    proj["externalLevels"] = False
    proj["simplifiedExport"] = bool(simplified) or bool(proj.get("simplifiedExport") is True)
    proj["nextUid"] = ids.next_uid
    proj.setdefault("__header__", dict(HEADER))
    for key, default in (("jsonVersion", JSON_VERSION), ("iid", ids.iid("project")), ("dummyWorldIid",
                         ids.iid("world")), ("worldLayout", "Free")):
        proj.setdefault(key, default)
    return proj


def tile_mapping(level: Level, layer_def: dict, src: Path) -> np.ndarray:
    """A lookup table tile id -> the template IntGrid value: the value whose identifier is the tile's name,
    else one of the tile's true properties (the last listed first: ``door, locked`` tries ``locked``), else 0
    (empty)."""
    by_name: dict[str, int] = {}
    for i, v in enumerate(layer_def.get("intGridValues") or []):
        value = _need(v, "value", int, f"layer {layer_def['identifier']!r} intGridValues[{i}]", src)
        if not 1 <= value <= 2 ** 31 - 1:
            raise InputError(f"{src}: layer {layer_def['identifier']!r} intGridValues[{i}].value: {value} outside "
                             "1..2147483647")
        ident = v.get("identifier")
        if isinstance(ident, str):
            by_name.setdefault(ident.lower(), value)
    table = np.zeros(256, dtype=np.int64)
    for t in level.tileset.tiles:
        for key in [t.name] + [k for k, v in reversed(t.properties.items()) if v is True]:
            if key.lower() in by_name:
                table[t.id] = by_name[key.lower()]
                break
    return table


def _template_values(e, edef: dict, types: dict, as_json: dict) -> dict:
    """Values for the template's field definitions of the same name (case-insensitive), converted to their
    type; ours (a definition we added) take every property."""
    ours = _entity_values(e, types, as_json)
    out = {}
    lower = {k.lower(): v for k, v in ours.items()}
    for f in edef["fieldDefs"]:
        ident = f.get("identifier")
        if not isinstance(ident, str) or ident.lower() not in lower or f.get("isArray"):
            continue
        v = lower[ident.lower()]
        t = f.get("type")
        try:
            if t == "F_Int" and not isinstance(v, bool):
                v = int(v) if float(v) == int(float(v)) else None
            elif t == "F_Float" and not isinstance(v, bool):
                v = float(v)
            elif t == "F_Bool":
                v = v if isinstance(v, bool) else None
            elif t in ("F_String", "F_Text"):
                v = v if isinstance(v, str) else json.dumps(v)
            else:
                continue
        except (TypeError, ValueError, OverflowError):
            continue
        if v is not None:
            out[ident] = v
    return out


# ============================================================================================ super simple export
def simplified_files(project: dict, level: Level, grid: int, tiles_rgba: np.ndarray | None) -> dict[str, bytes]:
    """LDtk's "Super Simple Export" of the project's level: {file name: bytes} for its folder."""
    lvl = project["levels"][0]
    defs = {d["uid"]: d for d in project["defs"]["layers"]}
    files: dict[str, bytes] = {}
    pngs, composite = [], np.zeros((lvl["pxHei"], lvl["pxWid"], 4), dtype=np.uint8)
    for li in reversed(lvl["layerInstances"]):  # back to front
        ld = defs[li["layerDefUid"]]
        name = li["__identifier"]
        g, cw, ch = li["__gridSize"], li["__cWid"], li["__cHei"]
        img = np.zeros((ch * g, cw * g, 4), dtype=np.uint8)
        if li["__type"] == "IntGrid":
            vals = np.array(li["intGridCsv"], dtype=np.int64).reshape(ch, cw)
            rows = [",".join(str(v) for v in row) + "," for row in vals.tolist()]
            files[f"{name}.csv"] = ("\n".join(rows) + "\n").encode()
            colors = {v["value"]: _rgb(v.get("color")) or (255, 0, 255) for v in ld.get("intGridValues", [])}
            lut = np.zeros((max([0, *colors]) + 1, 4), dtype=np.uint8)
            for v, c in colors.items():
                lut[v] = (*c, 255)
            img = np.repeat(np.repeat(lut[np.clip(vals, 0, len(lut) - 1)], g, axis=0), g, axis=1)
        elif li["__type"] == "Tiles" and tiles_rgba is not None:
            for t in li["gridTiles"]:
                (x, y), (sx, sy) = t["px"], t["src"]
                img[y:y + g, x:x + g] = tiles_rgba[sy:sy + g, sx:sx + g]
        elif li["__type"] != "Entities":
            pass
        if li["__type"] == "Entities":
            continue
        img = img[:lvl["pxHei"], :lvl["pxWid"]]
        files[f"{name}.png"] = png_bytes(img)
        pngs.append(f"{name}.png")
        opaque = img[..., 3] > 0
        composite[:img.shape[0], :img.shape[1]][opaque] = img[opaque]
    files["_composite.png"] = png_bytes(composite)
    entities: dict[str, list] = {}
    for li in lvl["layerInstances"]:
        for ei in li["entityInstances"]:
            fields = {f["__identifier"]: f["__value"] for f in ei["fieldInstances"]}
            entities.setdefault(ei["__identifier"], []).append({
                "id": ei["__identifier"], "iid": ei["iid"], "layer": li["__identifier"], "x": ei["px"][0],
                "y": ei["px"][1], "width": ei["width"], "height": ei["height"],
                "color": int(ei["__smartColor"][1:], 16), "customFields": fields})
    data = {"identifier": lvl["identifier"], "uniqueIdentifer": lvl["iid"], "x": lvl["worldX"], "y": lvl["worldY"],
            "width": lvl["pxWid"], "height": lvl["pxHei"], "bgColor": lvl["__bgColor"], "neighbourLevels": [],
            "customFields": {f["__identifier"]: f["__value"] for f in lvl["fieldInstances"]},
            "layers": list(reversed(pngs)), "entities": entities}
    files["data.json"] = (json.dumps(data, ensure_ascii=False, indent=1) + "\n").encode()
    return files


def _write_folder(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` into ``folder`` as a whole: a temporary sibling folder renamed into place, so a failure
    leaves the earlier folder (or none), never a half-written one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not folder.exists():
            old.rename(folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return [folder / n for n in files]


# ============================================================================================ import
def load_project(path: str | Path) -> Level:
    """The first level of an LDtk project as a Level: exactly the level written when the file is one of ours,
    else its IntGrid layers (tile id = IntGrid value) and its entities."""
    src = Path(path)
    proj = _read_json(src, "LDtk project")
    if not isinstance(proj, dict):
        raise InputError(f"{src}: an LDtk project is a JSON object")
    levels = proj.get("levels")
    if not levels and isinstance(proj.get("worlds"), list) and proj["worlds"]:
        levels = _need(proj["worlds"][0], "levels", list, "worlds[0]", src)
    if not isinstance(levels, list) or not levels:
        raise InputError(f"{src}: levels: the project holds no level")
    lvl = levels[0]
    where = "levels[0]"
    insts = lvl.get("layerInstances") if isinstance(lvl, dict) else None
    if insts is None:
        rel = _need(lvl, "externalRelPath", str, where, src)
        ext = (src.parent / rel).resolve()
        if src.parent.resolve() not in ext.parents:
            raise InputError(f"{src}: {where}.externalRelPath: {rel!r} points outside the project's folder")
        lvl = _read_json(ext, "LDtk level file")
        where, src_level = "level", ext
        insts = _need(lvl, "layerInstances", list, where, ext)
    else:
        src_level = src
        insts = _need(lvl, "layerInstances", list, where, src)
    raw_fields = lvl.get("fieldInstances") if isinstance(lvl, dict) else None
    fields = {f.get("__identifier"): f.get("__value") for f in raw_fields if isinstance(f, dict)} \
        if isinstance(raw_fields, list) else {}
    conj = None
    if isinstance(fields.get(CONJURE_FIELD), str):
        try:
            conj = json.loads(fields[CONJURE_FIELD])
        except ValueError:
            raise InputError(f"{src_level}: {where}.fieldInstances.{CONJURE_FIELD}: not JSON") from None
        if not isinstance(conj, dict) or conj.get("schema") != Level.SCHEMA:
            raise InputError(f"{src_level}: {where}.fieldInstances.{CONJURE_FIELD}: not a {Level.SCHEMA} record")
    grids = {}
    for i, li in enumerate(insts):
        w = f"{where}.layerInstances[{i}]"
        if _need(li, "__type", str, w, src_level) != "IntGrid":
            continue
        name = _need(li, "__identifier", str, w, src_level)
        cw, ch = _need(li, "__cWid", int, w, src_level), _need(li, "__cHei", int, w, src_level)
        if not (0 < cw and 0 < ch and cw * ch <= MAX_CELLS):
            raise InputError(f"{src_level}: {w}: {cw}x{ch} cells is not a level size")
        csv = _need(li, "intGridCsv", list, w, src_level)
        if len(csv) != cw * ch or not all(type(v) is int for v in csv):
            raise InputError(f"{src_level}: {w}.intGridCsv: expected {cw}x{ch}={cw * ch} integers")
        grids[name] = (np.array(csv, dtype=np.int64).reshape(ch, cw), li)
    if not grids:
        raise InputError(f"{src_level}: {where}: no IntGrid layer (a level is read from IntGrid layers)")
    try:
        if conj is not None:
            return _ours(src_level, where, conj, grids, insts)
        return _theirs(src_level, where, lvl, proj, grids, insts)
    except ContentError as e:
        raise InputError(f"{src_level}: {e}") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as e:  # a shape we missed
        raise InputError(f"{src_level}: {where}: malformed LDtk data ({type(e).__name__}: {e})") from None


def _same(original: Any, value: Any) -> bool:
    """Whether a field value is what the exporter wrote for ``original`` (a template field's type)."""
    if value == original and type(value) is not bool or value is original:
        return True
    return isinstance(value, str) and not isinstance(original, str) and value == json.dumps(original)


def _entities(src: Path, where: str, insts: list, as_json: dict, extras: dict | None = None) -> list[dict]:
    out, taken = [], set()
    extras = extras if isinstance(extras, dict) else {}
    for i, li in enumerate(insts):
        ents = li.get("entityInstances") if isinstance(li, dict) else None
        for j, ei in enumerate(ents if isinstance(ents, list) else []):
            w = f"{where}.layerInstances[{i}].entityInstances[{j}]"
            kind = _need(ei, "__identifier", str, w, src)
            grid = _need(ei, "__grid", list, w, src)
            if len(grid) != 2 or not all(type(v) is int for v in grid):
                raise InputError(f"{src}: {w}.__grid: expected [x, y]")
            props, eid = {}, None
            extra = extras.get(ei.get("iid"))
            if isinstance(extra, dict) and isinstance(extra.get("properties"), dict):
                eid = extra.get("id") if isinstance(extra.get("id"), str) else None
                props = dict(extra["properties"])
                if isinstance(extra.get("kind"), str) and extra["kind"].lower() == kind.lower():
                    kind = extra["kind"]
            keys = {k.lower(): k for k in props}
            finsts = ei.get("fieldInstances")
            for f in finsts if isinstance(finsts, list) else []:
                if not isinstance(f, dict):
                    continue
                name, value = f.get("__identifier"), f.get("__value")
                if value is not None and _field_value(value) is None:  # Point, arrays, references: as JSON
                    value = json.dumps(value, ensure_ascii=False, sort_keys=True)
                if isinstance(name, str) and name.lower() in keys and extra is not None:
                    key = keys[name.lower()]
                    if not _same(props[key], value):  # edited in the editor
                        props[key] = value
                    continue
                if name == ID_FIELD:
                    eid = value if isinstance(value, str) else None
                elif isinstance(name, str) and value is not None:
                    if name in as_json.get(kind, ()) and isinstance(value, str):
                        try:
                            value = json.loads(value)
                        except ValueError:
                            raise InputError(f"{src}: {w}: field {name!r} is not JSON") from None
                    props[name] = value
            if eid is None or eid in taken:
                eid = f"{kind}-{grid[0]}-{grid[1]}"
                n = 2
                while eid in taken:
                    eid, n = f"{kind}-{grid[0]}-{grid[1]}-{n}", n + 1
            taken.add(eid)
            out.append({"id": eid, "kind": kind, "x": grid[0], "y": grid[1], "properties": props})
    return out


def _ours(src: Path, where: str, conj: dict, grids: dict, insts: list) -> Level:
    names = conj.get("layers")
    if not isinstance(names, list) or not names:
        raise InputError(f"{src}: {where}.fieldInstances.{CONJURE_FIELD}.layers: expected the layer names")
    layers = []
    mapped = conj.get("intgrid") or {}
    for name in names:
        source, table = name, None
        if name in mapped:  # written into a template: its values stand for our tiles
            try:
                source, table = str(mapped[name][0]), {int(k): int(v) for k, v in mapped[name][1].items()}
            except (TypeError, ValueError, IndexError, KeyError, AttributeError):
                raise InputError(f"{src}: {where}.fieldInstances.{CONJURE_FIELD}.intgrid.{name}: expected "
                                 "[layer, {tile id: value}]") from None
        if source not in grids:
            raise InputError(f"{src}: {where}: no IntGrid layer {source!r}")
        vals = grids[source][0]
        if table is None:
            lut = {v: v - 1 for v in range(1, 257)}
        else:
            lut = {}
            for tid, value in sorted(table.items()):
                if value in lut:
                    raise InputError(f"{src}: {where}: IntGrid layer {source!r}: value {value} stands for tiles "
                                     f"{lut[value]} and {tid}, so the level cannot be read back exactly")
                lut[value] = tid
        ids = np.full(max(257, int(vals.max()) + 1), -1, dtype=np.int64)
        for value, tid in lut.items():
            if 0 <= value < len(ids):
                ids[value] = tid
        out = ids[np.clip(vals, 0, len(ids) - 1)]
        bad = (out < 0) | (vals < 0)
        if bad.any():
            y, x = (int(v) for v in np.argwhere(bad)[0])
            raise InputError(f"{src}: {where}: IntGrid layer {source!r}: cell x={x}, y={y} holds value "
                             f"{int(vals[y, x])}, which is no tile")
        layers.append({"name": name, "tiles": out.tolist()})
    h, w = len(layers[0]["tiles"]), len(layers[0]["tiles"][0])
    d = {"schema": Level.SCHEMA, "width": w, "height": h, "layers": layers, "tileset": conj.get("tileset"),
         "entities": _entities(src, where, insts, conj.get("json_properties") or {}, conj.get("entities")),
         "regions": conj.get("regions") or [], "metadata": conj.get("metadata") or {}}
    return Level.from_dict(d).validate()


def _theirs(src: Path, where: str, lvl: dict, proj: dict, grids: dict, insts: list) -> Level:
    first = next(iter(grids.values()))[0]
    keep = {n: v for n, (v, li) in grids.items() if v.shape == first.shape}
    top = max(int(v.max()) for v in keep.values())
    if top > 255 or min(int(v.min()) for v in keep.values()) < 0:
        raise InputError(f"{src}: {where}: IntGrid values must lie in 0..255 to become tile ids (found {top})")
    names: dict[int, tuple[str, tuple]] = {0: ("empty", (0, 0, 0))}
    layer_defs = {d.get("uid"): d for d in (proj.get("defs") or {}).get("layers") or [] if isinstance(d, dict)}
    for n, (v, li) in grids.items():
        for iv in (layer_defs.get(li.get("layerDefUid")) or {}).get("intGridValues") or []:
            value, ident = iv.get("value"), iv.get("identifier")
            if type(value) is int and 0 < value <= 255 and value not in names:
                names[value] = (ident if isinstance(ident, str) and ident else f"value_{value}",
                                _rgb(iv.get("color")) or (255, 0, 255))
    used = sorted({int(x) for v in keep.values() for x in np.unique(v)} | set(names))
    seen_names: set[str] = set()
    tiles = []
    for value in used:
        name, color = names.get(value, (f"value_{value}", (255, 0, 255)))
        if name in seen_names:
            name = f"{name}_{value}"
        seen_names.add(name)
        tiles.append({"id": value, "name": name, "char": "?", "color": list(color), "properties": {}})
    h, w = first.shape
    d = {"schema": Level.SCHEMA, "width": w, "height": h,
         "layers": [{"name": n, "tiles": v.tolist()} for n, v in keep.items()],
         "tileset": {"name": "ldtk", "tiles": tiles}, "entities": _entities(src, where, insts, {}), "regions": [],
         "metadata": {"ldtk_level": lvl.get("identifier") if isinstance(lvl.get("identifier"), str) else None}}
    level = Level.from_dict(d)
    for e in level.entities:
        if not (0 <= e.x < w and 0 <= e.y < h):
            raise InputError(f"{src}: {where}: entity {e.id!r} at x={e.x}, y={e.y} lies outside the level")
    return level.validate()


# ============================================================================================ the exporter
class LDtkFormat:
    id = "ldtk"
    kinds = ("level",)
    extensions = (".ldtk",)
    options = ("tile_size", "layers", "template", "simplified", "theme")
    description = ("LDtk project: IntGrid + Tiles + Entities layers, tileset PNG beside it (options: tile_size, "
                   "layers=both|intgrid|tiles, template=my.ldtk, simplified=1, theme=NAME); reads LDtk projects "
                   "back")

    def _project(self, content, options: dict, image: str | None, single: bool,
                 out: Path | None = None) -> tuple[dict, str, int, bool]:
        if not isinstance(content, Level):
            raise InputError(f"ldtk export takes levels, not {type(content).__name__}")
        layers = options.get("layers", "intgrid" if single else "both")
        if layers not in LAYER_CHOICES:
            raise InputError(f"ldtk option layers: expected one of {', '.join(LAYER_CHOICES)}, got {layers!r}")
        simplified = _option_bool(options, "simplified")
        template = options.get("template")
        if template is not None:
            if not isinstance(template, str) or not template:
                raise InputError(f"ldtk option template: expected a path to an .ldtk file, got {template!r}")
            if "tile_size" in options or "layers" in options or "theme" in options:
                raise InputError("ldtk options tile_size, layers and theme do not apply with template= (the "
                                 "template's layers and tilesets are used)")
            return fill_template(content, Path(template), simplified, out), "template", 0, simplified
        if single and options.get("theme") is not None:  # before the theme's own check: layers=both cannot help
            raise InputError("ldtk: a single-file export has no tileset image to draw a theme in; write to a file "
                             "(-o NAME.ldtk) for theme=")
        if single and layers != "intgrid":
            raise InputError("ldtk: a single-file export has no tileset image; use -O layers=intgrid or write to a "
                             "file")
        grid = int_option(options, "tile_size", 16, 1, 256, "ldtk")
        theme = options.get("theme")
        if theme is not None and layers == "intgrid":
            raise InputError("ldtk option theme: needs a Tiles layer (layers=both or tiles)")
        return build_project(content, grid, layers, image, simplified, theme), layers, grid, simplified

    def dumps(self, content, options: dict) -> bytes:
        if _option_bool(options, "simplified"):
            raise InputError("ldtk: simplified=1 writes a folder; write to a file")
        return project_bytes(self._project(content, options, None, True)[0])

    def export(self, content, path: Path, options: dict) -> list[Path]:
        path = Path(path)
        written = []
        layers = options.get("layers", "both")
        png = None
        rgba = None
        image = None
        if options.get("template") is None and layers in ("both", "tiles") and isinstance(content, Level):
            rgba = tileset_rgba(content, int_option(options, "tile_size", 16, 1, 256, "ldtk"), options.get("theme"))
            png = png_bytes(rgba)
            image = f"{path.stem}.{hashlib.blake2b(png, digest_size=4).hexdigest()}.tileset.png"
        project, _, grid, simplified = self._project(content, options, image, False, path)
        data = project_bytes(project)
        if simplified:
            folder = path.parent / path.stem / "simplified" / project["levels"][0]["identifier"]
            written += _write_folder(folder, simplified_files(project, content, grid, rgba))
        if png is not None:
            written.append(atomic_write(path.with_name(image), png))
        written.append(atomic_write(path, data))  # the project last: it never points at a missing image
        return written

    def load(self, path: Path) -> Level:
        return load_project(path)


@hookimpl
def register_exporters(register):
    register(LDtkFormat())
