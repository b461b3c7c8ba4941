"""LDtk projects (issue 18): our exports load in two real loaders (ldtkpy's typed parser, pyglet-ldtk) and
validate against LDtk's published JSON schema (tests/data/ldtk/, MIT, see its LICENSE); a user's template is
filled with their definitions kept; LDtk's Super Simple Export folder; the importer gives the level back;
bad input is a one-line error naming the file and the field."""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import Engine
from engine.content import Entity, Level, Region, TileDef, Tileset
from engine.errors import InputError

import jsonschema  # noqa: E402  (test extras: jsonschema, ldtkpy, pyglet-ldtk)
import ldtkpy.api as ldtkpy  # noqa: E402

SCHEMA = Path(__file__).with_name("data") / "ldtk" / "JSON_SCHEMA.json"


@pytest.fixture(scope="module")
def eng():
    return Engine(entry_points=False)


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(validator, doc) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in validator.iter_errors(doc)]


def odd_level() -> Level:
    """Two layers, sparse tile ids (0, 7, 255), every property type, JSON-ish values, odd metadata."""
    ts = Tileset("odd set", [TileDef(0, "nothing", " ", (0, 0, 0), {"solid": False}),
                             TileDef(7, "rock", "#", (90, 90, 90), {"solid": True, "hp": 3, "friction": 0.25}),
                             TileDef(255, "gem stone", "*", (200, 20, 240), {"kind": "loot & <stuff>"})])
    base = np.zeros((5, 7), dtype=np.uint8)
    base[0, :] = 7
    base[4, 6] = 255
    over = np.zeros((5, 7), dtype=np.uint8)
    over[2, 3] = 255
    ents = [Entity("p", "spawn", 0, 0, {}),
            Entity("e1", "enemy", 6, 4, {"type": "orc", "x": 1.5, "angry": True, "loot": "a"}),
            Entity("e2", "enemy", 5, 4, {"type": "imp", "x": 2, "angry": False, "loot": 7}),
            Entity("chest", "treasure", 3, 2, {"value": 2 ** 40, "note": "line1\nline2 \"quoted\""})]
    regions = [Region("hall", "room", "The Hall", 0, 0, 7, 3, {"lit": True, "id": 4})]
    meta = {"generator": "hand", "seed": 2 ** 63 + 5, "params": {"a": [1, 2.5, None]}, "note": None, "ratio": 0.1}
    return Level({"ground": base, "overlay": over}, ts, ents, regions, meta)


@pytest.fixture(scope="module")
def levels(eng):
    return {"dungeon": eng.generate("level", "dungeon", 7),
            "shrine": eng.generate("level", "dungeon", 1, {"width": 9, "height": 9}),
            "platformer": eng.generate("level", "platformer", 3, {"width": 60}),
            "terrain": eng.generate("level", "terrain", 2, {"width": 32, "height": 24}),
            "odd": odd_level()}


def pyglet_loader():
    import pyglet

    pyglet.options["headless"] = True
    from ldtk.pyglet_ldtk_loader import Ldtk

    return Ldtk


# ------------------------------------------------------------------------------------------- two loaders + schema
@pytest.mark.parametrize("name", ["dungeon", "shrine", "platformer", "terrain", "odd"])
def test_export_loads_in_ldtkpy_and_pyglet_ldtk_and_fits_the_schema(eng, levels, validator, tmp_path, name):
    level = levels[name]
    written = eng.export(level, tmp_path / f"{name}.ldtk", tile_size=8)
    project = tmp_path / f"{name}.ldtk"
    assert written[-1] == project and written[0].suffix == ".png"
    doc = json.loads(project.read_text())
    assert schema_errors(validator, doc) == []
    assert doc["externalLevels"] is False and doc["simplifiedExport"] is False  # booleans, as LDtk wants
    # ldtkpy: the typed parser
    parsed = ldtkpy.ldtk_json_from_dict(doc)
    lv = parsed.levels[0]
    assert (lv.px_wid, lv.px_hei) == (level.width * 8, level.height * 8)
    layers = {li.identifier: li for li in lv.layer_instances}
    for lname, arr in level.layers.items():
        assert layers[lname].type == "IntGrid"
        assert layers[lname].int_grid_csv == (arr.astype(int) + 1).ravel().tolist()
        tiles = layers[f"{lname}_tiles"].grid_tiles
        assert [t.t for t in tiles] == arr.ravel().tolist()
    ents = layers["Entities"].entity_instances
    assert [(e.identifier, e.grid) for e in ents] == [(e.kind, [e.x, e.y]) for e in level.entities]
    ids = [next(f.value for f in e.field_instances if f.identifier == "conjure_id") for e in ents]
    assert ids == [e.id for e in level.entities]
    # pyglet-ldtk: another maintained loader (reads the tileset image too)
    Ldtk = pyglet_loader()
    m = Ldtk(str(project))
    got = {layer.identifier: layer for layer in m.levels[0].layers}
    first = next(iter(level.layers))
    assert np.array_equal(np.array(got[first].intgrid.intgrid), level.layers[first].astype(int) + 1)
    assert got[f"{first}_tiles"].tileset is not None and got[f"{first}_tiles"].tileset.tileSet is not None
    assert len(got["Entities"].entities) == len(level.entities)
    img = Image.open(written[0])
    assert img.size == (got[f"{first}_tiles"].tileset.width * 8, got[f"{first}_tiles"].tileset.height * 8)


def test_iids_uids_and_same_bytes(eng, levels, tmp_path):
    level = levels["dungeon"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = [p.read_bytes() for p in eng.export(level, tmp_path / "a" / "x.ldtk")]
    b = [p.read_bytes() for p in eng.export(level, tmp_path / "b" / "x.ldtk")]
    assert a == b  # same level and options -> same bytes, iids included
    doc = json.loads(a[-1])
    iids = [doc["iid"], doc["dummyWorldIid"], doc["levels"][0]["iid"]]
    iids += [li["iid"] for li in doc["levels"][0]["layerInstances"]]
    iids += [e["iid"] for li in doc["levels"][0]["layerInstances"] for e in li["entityInstances"]]
    assert len(set(iids)) == len(iids) and all(str(uuid.UUID(i)) == i for i in iids)
    uids = [d["uid"] for k in ("layers", "entities", "tilesets", "levelFields") for d in doc["defs"][k]]
    uids += [f["uid"] for d in doc["defs"]["entities"] for f in d["fieldDefs"]] + [doc["levels"][0]["uid"]]
    assert len(set(uids)) == len(uids) and doc["nextUid"] > max(uids)
    other = eng.generate("level", "dungeon", 8)
    assert json.loads(eng.dumps(other, "ldtk"))["iid"] != doc["iid"]


@pytest.mark.parametrize("name", ["dungeon", "shrine", "platformer", "terrain", "odd"])
def test_round_trip_gives_the_same_level(eng, levels, tmp_path, name):
    level = levels[name]
    for layers in ("both", "intgrid"):
        path = tmp_path / f"{layers}.ldtk"
        eng.export(level, path, layers=layers)
        assert eng.load(path) == level
        assert eng.dumps(eng.load(path), "json") == eng.dumps(level, "json")  # byte-identical: key order kept
    single = tmp_path / "single.ldtk"
    single.write_bytes(eng.dumps(level, "ldtk"))  # one file: IntGrid and entities, no tileset image
    assert eng.load(single) == level
    assert eng.dumps(eng.load(single), "json") == eng.dumps(level, "json")
    assert "Tiles" not in {d["__type"] for d in json.loads(single.read_text())["defs"]["layers"]}


def test_edits_made_in_ldtk_read_back(eng, levels, tmp_path):
    """A cell painted and an entity moved or added in the editor come back in the level."""
    level = levels["dungeon"]
    path = tmp_path / "d.ldtk"
    eng.export(level, path)
    doc = json.loads(path.read_text())
    insts = {li["__identifier"]: li for li in doc["levels"][0]["layerInstances"]}
    insts["tiles"]["intGridCsv"][0] = 3  # wall (id 2)
    ent = insts["Entities"]["entityInstances"][0]
    ent["__grid"] = [ent["__grid"][0] + 1, ent["__grid"][1]]
    added = copy.deepcopy(insts["Entities"]["entityInstances"][-1])
    added["fieldInstances"] = [f for f in added["fieldInstances"] if f["__identifier"] != "conjure_id"]
    insts["Entities"]["entityInstances"].append(added)
    path.write_text(json.dumps(doc))
    back = eng.load(path)
    assert back.tiles[0, 0] == 2 and back.entities[0].x == level.entities[0].x + 1
    assert back.entities[-1].id == f"{added['__identifier']}-{added['__grid'][0]}-{added['__grid'][1]}"


# ------------------------------------------------------------------------------------------- a user's template
def user_template(tmp_path: Path, external: bool = False) -> Path:
    """An LDtk project as a user has it: IntGrid 'Collisions' (wall, floor, door, water) with an auto-layer on
    it, a tileset, an Entities layer with 'Spawn' and 'Enemy' (fields hp: Int, type: String, boss: Bool), an enum
    and a level field of theirs, and one level they drew."""
    from plugins.ldtk import (_entity_def, _field_def, _Ids, _layer_def, _layer_instance, FIELD_TYPES, HEADER,
                              JSON_VERSION)

    ids = _Ids(b"user", 100)
    values = [{"value": v, "identifier": n, "color": c, "tile": None, "groupUid": 0}
              for v, n, c in ((1, "Wall", "#FFFFFF"), (2, "floor", "#808080"), (3, "DOOR", "#A05020"),
                              (4, "water", "#2040C0"), (5, "locked", "#FF00FF"))]
    coll = _layer_def(ids, "Collisions", "IntGrid", 8, values)
    tileset = {"__cWid": 4, "__cHei": 4, "identifier": "Cavern", "uid": ids.uid(), "relPath": "cavern.png",
               "embedAtlas": None, "pxWid": 32, "pxHei": 32, "tileGridSize": 8, "spacing": 0, "padding": 0,
               "tags": [], "tagsSourceEnumUid": None, "enumTags": [], "customData": [], "savedSelections": [],
               "cachedPixelData": None}
    auto = _layer_def(ids, "Walls_auto", "AutoLayer", 8, tileset_uid=tileset["uid"])
    auto["autoSourceLayerDefUid"] = coll["uid"]
    ents = _layer_def(ids, "Things", "Entities", 8)
    spawn = _entity_def(ids, "Spawn", "#00FF00", 8, [])
    enemy = _entity_def(ids, "Enemy", "#FF0000", 8, [_field_def(ids, "hp", FIELD_TYPES[int]),
                                                     _field_def(ids, "type", FIELD_TYPES[str]),
                                                     _field_def(ids, "boss", FIELD_TYPES[bool])])
    mood = _field_def(ids, "mood", FIELD_TYPES[str])
    enum = {"identifier": "Biome", "uid": ids.uid(), "values": [{"id": "Cave", "color": 0, "tileRect": None}],
            "iconTilesetUid": None, "externalRelPath": None, "externalFileChecksum": None, "tags": []}
    lvl = {"identifier": "Their_level", "iid": ids.iid("lvl"), "uid": ids.uid(), "worldX": 0, "worldY": 0,
           "worldDepth": 0, "pxWid": 32, "pxHei": 24, "__bgColor": "#000000", "bgColor": None,
           "useAutoIdentifier": False, "bgRelPath": None, "bgPos": None, "bgPivotX": 0.5, "bgPivotY": 0.5,
           "__smartColor": "#FFFFFF", "__bgPos": None, "externalRelPath": None, "fieldInstances": [],
           "__neighbours": [], "layerInstances": None}
    insts = [_layer_instance(ids, d, lvl["uid"], lvl["iid"], 32, 24) for d in (ents, auto, coll)]
    insts[2]["intGridCsv"] = [1, 1, 1, 1, 1, 2, 3, 1, 1, 2, 4, 1]
    insts[0]["entityInstances"] = [{
        "__identifier": "Enemy", "__grid": [1, 1], "__pivot": [0, 0], "__tags": [], "__tile": None,
        "__smartColor": "#FF0000", "iid": ids.iid("e"), "width": 8, "height": 8, "defUid": enemy["uid"],
        "px": [8, 8], "__worldX": 8, "__worldY": 8,
        "fieldInstances": [{"__identifier": "hp", "__type": "Int", "__value": 5, "__tile": None,
                            "defUid": enemy["fieldDefs"][0]["uid"],
                            "realEditorValues": [{"id": "V_Int", "params": [5]}]}]}]
    project = {"__header__": dict(HEADER, app="LDtk"), "iid": ids.iid("p"), "jsonVersion": JSON_VERSION,
               "appBuildId": 473703, "nextUid": ids.next_uid, "identifierStyle": "Capitalize", "toc": [],
               "worldLayout": "Free", "worldGridWidth": 256, "worldGridHeight": 256, "defaultLevelWidth": 256,
               "defaultLevelHeight": 256, "defaultPivotX": 0, "defaultPivotY": 0, "defaultGridSize": 8,
               "defaultEntityWidth": 8, "defaultEntityHeight": 8, "bgColor": "#40465B",
               "defaultLevelBgColor": "#696A79", "minifyJson": False, "externalLevels": external,
               "exportTiled": False, "simplifiedExport": False, "imageExportMode": "None", "exportLevelBg": True,
               "pngFilePattern": None, "backupOnSave": False, "backupLimit": 10, "backupRelPath": None,
               "levelNamePattern": "Level_%idx", "tutorialDesc": None, "customCommands": [], "flags": [],
               "jsonStyle": "Full", "dummyWorldIid": ids.iid("w"), "worlds": [],
               "defs": {"layers": [ents, auto, coll], "entities": [spawn, enemy], "tilesets": [tileset],
                        "enums": [enum], "externalEnums": [], "levelFields": [mood]},
               "levels": [lvl]}
    path = tmp_path / "mine.ldtk"
    if external:
        (tmp_path / "mine").mkdir()
        lvl["externalRelPath"] = "mine/0000-Their_level.ldtkl"
        (tmp_path / "mine" / "0000-Their_level.ldtkl").write_text(json.dumps(dict(lvl, layerInstances=insts)))
    else:
        lvl["layerInstances"] = insts
    path.write_text(json.dumps(project, indent=1))
    return path


def test_template_keeps_their_definitions_and_maps_tiles_to_their_values(eng, levels, validator, tmp_path):
    template = user_template(tmp_path)
    before = json.loads(template.read_text())
    assert schema_errors(validator, before) == []
    level = levels["dungeon"]
    out = tmp_path / "filled.ldtk"
    assert eng.export(level, out, template=str(template)) == [out]  # no image of ours: their tileset stays
    doc = json.loads(out.read_text())
    assert schema_errors(validator, doc) == []
    for key in ("layers", "tilesets", "enums", "levelFields"):  # theirs kept as they were (ours may follow)
        assert doc["defs"][key][:len(before["defs"][key])] == before["defs"][key]
    assert [d["identifier"] for d in doc["defs"]["layers"]] == ["Things", "Walls_auto", "Collisions"]
    assert doc["defs"]["entities"][:2] == before["defs"]["entities"]
    assert {"exit", "key", "npc", "treasure"} <= {d["identifier"] for d in doc["defs"]["entities"]}
    assert doc["levels"][0]["identifier"] != "Their_level" and len(doc["levels"]) == 1
    insts = {li["__identifier"]: li for li in doc["levels"][0]["layerInstances"]}
    grid = np.array(insts["Collisions"]["intGridCsv"]).reshape(level.height, level.width)
    # dungeon tiles: void (no value: 0), floor -> floor 2, wall -> Wall 1, door -> DOOR 3, locked_door -> its
    # most specific true property "locked" -> 5
    want = np.array([0, 2, 1, 3, 5])[level.tiles]
    assert np.array_equal(grid, want)
    assert insts["Walls_auto"]["autoLayerTiles"] == [] and insts["Walls_auto"]["__type"] == "AutoLayer"
    enemies = [e for e in insts["Things"]["entityInstances"] if e["__identifier"] == "Enemy"]
    assert len(enemies) == len(level.entities_of("enemy")) > 0
    for inst, ent in zip(enemies, level.entities_of("enemy")):
        fields = {f["__identifier"]: f["__value"] for f in inst["fieldInstances"]}
        assert fields == {"type": ent.properties["type"], "hp": ent.properties["hp"]}  # their fields, filled
    parsed = ldtkpy.ldtk_json_from_dict(doc)
    assert parsed.defs.enums[0].identifier == "Biome"
    m = pyglet_loader()(str(out))
    assert len(m.levels) == 1
    # ours in their clothes still reads back (every tile but void has its own value; void is 0)
    assert eng.load(out) == level
    assert eng.dumps(eng.load(out), "json") == eng.dumps(level, "json")  # byte-identical, key order kept
    # and the same template + level give the same bytes
    again = tmp_path / "again.ldtk"
    eng.export(level, again, template=str(template))
    assert again.read_bytes() == out.read_bytes()


def test_filled_template_written_elsewhere_still_points_at_their_tileset(eng, levels, tmp_path):
    """Their tileset's relPath is relative to the template; a project written in another folder gets it
    rewritten relative to its own folder, so the image is found (in LDtk and in a loader)."""
    template = user_template(tmp_path)
    Image.new("RGBA", (32, 32), (90, 60, 30, 255)).save(tmp_path / "cavern.png")
    for out in (tmp_path / "out" / "deep" / "filled.ldtk", tmp_path / "filled.ldtk"):
        out.parent.mkdir(parents=True, exist_ok=True)
        eng.export(levels["dungeon"], out, template=str(template))
        (tileset,) = json.loads(out.read_text())["defs"]["tilesets"]
        assert (out.parent / tileset["relPath"]).resolve() == (tmp_path / "cavern.png").resolve()
        assert "\\" not in tileset["relPath"]
    assert tileset["relPath"] == "cavern.png"  # beside the template: unchanged
    deep = json.loads((tmp_path / "out" / "deep" / "filled.ldtk").read_text())["defs"]["tilesets"][0]
    assert deep["relPath"] == "../../cavern.png"
    m = pyglet_loader()(str(tmp_path / "out" / "deep" / "filled.ldtk"))
    assert len(m.levels) == 1
    assert eng.load(tmp_path / "out" / "deep" / "filled.ldtk") == levels["dungeon"]


def test_template_that_merges_tiles_cannot_be_read_back_exactly(eng, levels, tmp_path):
    template = user_template(tmp_path)
    doc = json.loads(template.read_text())
    doc["defs"]["layers"][2]["intGridValues"][0]["identifier"] = "solid"  # void and wall both become 1
    template.write_text(json.dumps(doc))
    out = tmp_path / "merged.ldtk"
    eng.export(levels["dungeon"], out, template=str(template))
    with pytest.raises(InputError, match=r"value 1 stands for tiles 0 and 2"):
        eng.load(out)


@pytest.mark.parametrize("external", [False, True])
def test_reading_a_users_project(eng, tmp_path, external):
    level = eng.load(user_template(tmp_path, external))
    assert list(level.layers) == ["Collisions"] and level.tiles.shape == (3, 4)
    assert level.tiles.tolist() == [[1, 1, 1, 1], [1, 2, 3, 1], [1, 2, 4, 1]]
    assert [t.name for t in level.tileset.tiles] == ["empty", "Wall", "floor", "DOOR", "water", "locked"]
    assert level.tileset.tiles[1].color == (255, 255, 255)
    (e,) = level.entities
    assert (e.kind, e.x, e.y, e.properties) == ("Enemy", 1, 1, {"hp": 5})
    assert level.metadata["ldtk_level"] == "Their_level"


# ------------------------------------------------------------------------------------------- super simple export
def test_super_simple_export(eng, levels, tmp_path):
    level = levels["platformer"]
    written = eng.export(level, tmp_path / "world.ldtk", simplified=1, tile_size=4)
    doc = json.loads((tmp_path / "world.ldtk").read_text())
    assert doc["simplifiedExport"] is True
    name = doc["levels"][0]["identifier"]
    folder = tmp_path / "world" / "simplified" / name
    assert {p.name for p in folder.iterdir()} == {"data.json", "tiles.csv", "tiles.png", "tiles_tiles.png",
                                                 "_composite.png"}
    assert set(written) >= {folder / "data.json", folder / "tiles.csv"}
    rows = (folder / "tiles.csv").read_text().splitlines()
    assert len(rows) == level.height and rows[0].endswith(",")
    assert [[int(v) for v in r.rstrip(",").split(",")] for r in rows] == (level.tiles.astype(int) + 1).tolist()
    data = json.loads((folder / "data.json").read_text())
    assert (data["width"], data["height"], data["identifier"]) == (level.width * 4, level.height * 4, name)
    assert data["layers"] == ["tiles_tiles.png", "tiles.png"]
    assert sum(len(v) for v in data["entities"].values()) == len(level.entities)
    spawn = data["entities"]["spawn"][0]
    assert (spawn["x"], spawn["y"]) == (level.entities_of("spawn")[0].x * 4, level.entities_of("spawn")[0].y * 4)
    for png in ("tiles.png", "_composite.png"):
        assert Image.open(folder / png).size == (level.width * 4, level.height * 4)
    composite = np.asarray(Image.open(folder / "_composite.png").convert("RGB"))
    ground = level.tileset[1].color
    y, x = (int(v) for v in np.argwhere(level.tiles == 1)[0])
    assert tuple(composite[y * 4 + 1, x * 4 + 1]) != (0, 0, 0) and ground
    # written again: the folder is replaced whole
    eng.export(level, tmp_path / "world.ldtk", simplified="true", tile_size=4)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------- bad input
def test_bad_input_is_one_line_naming_file_and_field(eng, levels, tmp_path):
    level = levels["dungeon"]
    out = tmp_path / "x.ldtk"
    notjson = tmp_path / "bad.ldtk"
    notjson.write_text("{ nope")
    noint = tmp_path / "noint.ldtk"
    doc = json.loads(user_template(tmp_path).read_text())
    doc["defs"]["layers"] = [d for d in doc["defs"]["layers"] if d["__type"] != "IntGrid"]
    noint.write_text(json.dumps(doc))
    strbool = tmp_path / "strbool.ldtk"
    strbool.write_text(json.dumps(dict(json.loads(user_template(tmp_path).read_text()), externalLevels="false")))
    cases = [
        (lambda: eng.export(level, out, template=str(tmp_path / "missing.ldtk")), "missing.ldtk"),
        (lambda: eng.export(level, out, template=str(notjson)), "bad.ldtk: the LDtk template is not JSON"),
        (lambda: eng.export(level, out, template=str(noint)), "noint.ldtk: defs.layers: no IntGrid layer"),
        (lambda: eng.export(level, out, template=str(strbool)), "strbool.ldtk: externalLevels: expected true"),
        (lambda: eng.export(level, out, layers="all"), "ldtk option layers"),
        (lambda: eng.export(level, out, simplified="maybe"), "ldtk option simplified"),
        (lambda: eng.export(level, out, template=str(noint), tile_size=8), "do not apply with template"),
        (lambda: eng.export(level, out, tilesize=8), "has no option 'tilesize'"),
        (lambda: eng.dumps(level, "ldtk", layers="both"), "single-file export has no tileset image"),
        (lambda: eng.dumps(level, "ldtk", theme="kenney"), "no tileset image to draw a theme in; write to a file"),
        (lambda: eng.load(notjson), "bad.ldtk: the LDtk project is not JSON"),
    ]
    for make, words in cases:
        with pytest.raises(InputError) as err:
            make()
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert not out.exists()
    good = tmp_path / "good.ldtk"
    eng.export(level, good)
    doc = json.loads(good.read_text())
    broken = [("levels", lambda d: d.update(levels=[]), "levels: the project holds no level"),
              ("csv", lambda d: d["levels"][0]["layerInstances"][2]["intGridCsv"].pop(),
               "layerInstances[2].intGridCsv: expected"),
              ("outside", lambda d: d["levels"][0].update(layerInstances=None, externalRelPath="../../etc/x.ldtkl"),
               "points outside the project's folder"),
              ("conj", lambda d: d["levels"][0]["fieldInstances"][0].update(__value="{"), "conjure: not JSON"),
              ("empty", lambda d: d["levels"][0]["layerInstances"][2]["intGridCsv"].__setitem__(5, 0),
               "cell x=5, y=0 holds value 0")]
    for name, change, words in broken:
        d = copy.deepcopy(doc)
        change(d)
        p = tmp_path / f"{name}.ldtk"
        p.write_text(json.dumps(d))
        with pytest.raises(InputError) as err:
            eng.load(p)
        assert words in str(err.value) and "\n" not in str(err.value) and p.name in str(err.value), str(err.value)


@pytest.mark.parametrize("what", ["fifo", "char-device", "directory"])
def test_fifo_device_or_folder_as_project_or_template_is_refused_at_once(eng, levels, tmp_path, what):
    """A FIFO with no writer (an open() would wait forever), /dev/zero (never ends) or a folder, given as the
    project to load or as -O template=: a one-line InputError naming it, and nothing written."""
    import os

    if what == "fifo":
        path = tmp_path / "f.ldtk"
        os.mkfifo(path)
    elif what == "directory":
        path = tmp_path / "d.ldtk"
        path.mkdir()
    else:
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero")
        path = Path("/dev/zero")
    out = tmp_path / "out.ldtk"
    for make, words in ((lambda: eng.load(path, "ldtk"), "LDtk project"),
                        (lambda: eng.export(levels["dungeon"], out, template=str(path)), "LDtk template")):
        with pytest.raises(InputError) as err:
            make()
        msg = str(err.value)
        assert str(path) in msg and words in msg and "\n" not in msg, msg
    assert not out.exists()


def test_cli_exit_codes(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    monkeypatch.setenv("CONJURE_LOAD_PLUGINS", "dungeon,plugins.formats,plugins.ldtk")
    out = tmp_path / "d.ldtk"
    assert main(["generate", "level", "-g", "dungeon", "-s", "2", "-o", str(out), "-O", "simplified=1"]) == 0
    assert main(["info", str(out)]) == 0
    assert "dungeon" in capsys.readouterr().out
    code = main(["generate", "level", "-s", "2", "-o", str(out), "-O", f"template={tmp_path / 'none.ldtk'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "none.ldtk" in err and "Traceback" not in err


def test_theme_draws_the_tileset_from_tile_art(eng, levels, validator, tmp_path):
    level = levels["platformer"]
    plain = eng.export(level, tmp_path / "plain.ldtk", tile_size=16)
    themed = eng.export(level, tmp_path / "themed.ldtk", tile_size=16, theme="kenney")
    a = np.asarray(Image.open(plain[0]).convert("RGBA"))
    b = np.asarray(Image.open(themed[0]).convert("RGBA"))
    assert a.shape == b.shape and plain[0].name != themed[0].name
    ground = level.tileset[1]  # mapped by the kenney theme: its slot is art, not the flat colour
    cols = a.shape[1] // 16
    y, x = divmod(ground.id, cols)
    assert not np.array_equal(a[y * 16:(y + 1) * 16, x * 16:(x + 1) * 16], b[y * 16:(y + 1) * 16, x * 16:(x + 1) * 16])
    assert schema_errors(validator, json.loads(themed[-1].read_text())) == []
    assert eng.load(themed[-1]) == level
    for options, words in (({"theme": "kenney", "layers": "intgrid"}, "needs a Tiles layer"),
                           ({"theme": "no-such-theme"}, "unknown theme 'no-such-theme'")):
        with pytest.raises(InputError, match=words):
            eng.export(level, tmp_path / "bad.ldtk", **options)
