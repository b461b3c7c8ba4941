import json

import msgpack
import numpy as np
import pytest

from engine import (Beat, Cast, Character, Choice, ContentError, DialogueNode, Entity, InputError, Level, Quest,
                    Region, Sprite, Story, TileDef, Tileset)
from engine.serialize import MAX_FILE_BYTES, atomic_write, dumps, loads, read_bytes


def small_level():
    ts = Tileset("t", [TileDef(0, "floor", ".", (1, 2, 3)), TileDef(1, "wall", "#", (4, 5, 6), {"solid": True})])
    tiles = np.zeros((4, 5), dtype=np.uint8)
    tiles[0, :] = 1
    deco = np.zeros((4, 5), dtype=np.uint8)
    return Level({"tiles": tiles, "deco": deco}, ts, [Entity("spawn", "spawn", 1, 2, {"hp": 3, "tag": "a"})],
                 [Region("room-1", "room", "the Hall", 0, 0, 5, 4, {})], {"genre": "test", "nested": {"a": [1, 2]}})


def small_character():
    spr = Sprite([(0, 0, 0, 0), (255, 0, 0, 255)], {"idle": np.eye(4, dtype=np.uint8)}, {"idle": ["idle"]})
    return Character("c1", "Ana", "mage", {"int": 12}, ["kind"], spr, "A mage.", "elven", {"x": 1})


def small_story():
    nodes = [DialogueNode("start", "c1", ["Hi."], [Choice("Yes", "end", ["ok"]), Choice("No", "end")]),
             DialogueNode("end", "c1", ["Bye."])]
    return Story("s1", "A Quest", Quest("fetch", "c1", "Get it.", [Beat("b1", "goto", "Go.", place="p1")], "gold"),
                 "start", nodes, places=[{"id": "p1", "name": "the Hall"}], characters=[{"id": "c1", "name": "Ana"}])


ALL = [small_level, small_character, small_story, lambda: Cast([small_character()])]


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_round_trip_exact(make, fmt):
    c = make().validate()
    data = dumps(c, fmt)
    back = loads(data, fmt)
    assert back == c
    assert dumps(back, fmt) == data  # byte-identical re-serialization


def test_msgpack_stores_tiles_as_raw_bytes():
    d = msgpack.unpackb(dumps(small_level()), raw=False)
    assert isinstance(d["layers"][0]["tiles"], bytes) and len(d["layers"][0]["tiles"]) == 20
    assert d["schema"] == "conjure.level/1"
    j = json.loads(dumps(small_level(), "json"))
    assert j["layers"][0]["tiles"][0] == [1, 1, 1, 1, 1]


def bad_level_cases():
    def layer_shape(lv):
        lv.layers["deco"] = np.zeros((3, 5), np.uint8)
        return "level.layers['deco']: shape"

    def unknown_tile(lv):
        lv.layers["tiles"][2, 3] = 9
        return "tile id 9 at x=3, y=2 is not in tileset"

    def entity_out(lv):
        lv.entities[0].x = 70
        return "level.entities[0].x: 70 outside 0..4"

    def entity_prop(lv):
        lv.entities[0].properties["bad"] = [1]
        return "level.entities[0].properties.bad"

    def dup_tile(lv):
        lv.tileset.tiles.append(TileDef(0, "again", "x", (0, 0, 0)))
        return "level.tileset.tiles[2].id: tile id 0 defined twice"

    def region(lv):
        lv.regions[0].w = 50
        return "level.regions[0]"

    def meta(lv):
        lv.metadata["x"] = object()
        return "level.metadata.x"

    return [layer_shape, unknown_tile, entity_out, entity_prop, dup_tile, region, meta]


@pytest.mark.parametrize("break_it", bad_level_cases())
def test_level_validation_names_the_field(break_it):
    lv = small_level()
    needle = break_it(lv)
    with pytest.raises(ContentError) as e:
        lv.validate()
    assert needle in str(e.value)


def test_story_validation():
    s = small_story()
    s.nodes[0].choices[0].target = "nowhere"
    assert any("choices[0].target: 'nowhere' is not a node" in p for p in s.problems())
    s = small_story()
    s.quest.beats[0].place = "p9"
    assert any("beats[0].place: 'p9' is not in story.places" in p for p in s.problems())
    s = small_story()
    s.nodes.append(DialogueNode("orphan", "c1", ["?"]))
    assert any("unreachable" in p for p in s.problems())
    s = small_story()
    s.nodes[1].choices = [Choice("again", "start")]  # a loop with no ending
    assert any("no ending" in p for p in s.problems())


def test_sprite_validation():
    c = small_character()
    c.sprite.frames["idle"][0, 0] = 7
    assert any("color index 7 beyond the palette" in p for p in c.problems())


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_truncated_and_corrupt_files(fmt):
    data = dumps(small_level(), fmt)
    with pytest.raises(InputError, match="truncated|malformed"):
        loads(data[: len(data) // 2], fmt, "x.bin")
    with pytest.raises(InputError, match="x.bin"):
        loads(b"\xc1\xff\x00garbage", fmt, "x.bin")


def test_unknown_schema_and_version():
    d = small_level().to_dict()
    d["schema"] = "conjure.level/2"
    with pytest.raises(InputError, match="major version 2; this Conjure reads conjure.level/1"):
        loads(msgpack.packb(d), "msgpack", "f")
    d["schema"] = "conjure.spaceship/1"
    with pytest.raises(InputError, match="unknown schema"):
        loads(msgpack.packb(d), "msgpack", "f")
    del d["schema"]
    with pytest.raises(InputError, match="missing or malformed 'schema'"):
        loads(msgpack.packb(d), "msgpack", "f")


def test_wrong_field_types_are_named():
    d = small_level().to_dict()
    d["entities"][0]["x"] = "left"
    with pytest.raises(ContentError, match=r"level.entities\[0\].x: expected int"):
        loads(msgpack.packb(d), "msgpack", "f")
    d = small_level().to_dict()
    d["layers"][0]["tiles"] = b"\x00" * 3
    with pytest.raises(ContentError, match=r"level.layers\[0\].tiles: 3 bytes, expected 4x5=20"):
        loads(msgpack.packb(d), "msgpack", "f")


def test_ext_types_refused():
    data = msgpack.packb({"schema": msgpack.ExtType(1, b"x")})
    with pytest.raises(InputError, match="extension type"):
        loads(data, "msgpack", "f")


def test_size_limit(tmp_path):
    p = tmp_path / "big.msgpack"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="over the 10-byte limit"):
        read_bytes(p, limit=10)
    assert MAX_FILE_BYTES >= 1 << 20
    with pytest.raises(InputError, match="no such file"):
        read_bytes(tmp_path / "missing.msgpack")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "a.bin"
    atomic_write(p, b"old")
    import os

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(p, b"new")
    assert p.read_bytes() == b"old"
    assert [f.name for f in tmp_path.iterdir()] == ["a.bin"]  # no temporary left behind
