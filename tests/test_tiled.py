"""Tiled TMJ/TMX export and import, proved with real clients: pytiled-parser, arcade (headless, in a
subprocess) and pytmx + pygame-ce (dummy video driver, in a subprocess)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import Entity, InputError, Level, Region, TileDef, Tileset
from plugins.tiled import escape_name, image_name, load_map

from .conftest import ROOT, run_cli

GENERATORS = ("dungeon", "platformer", "terrain")
TS = 16


# ============================================================================================ fixtures
@pytest.fixture(scope="module")
def maps(eng, tmp_path_factory):
    """Every built-in level generator at two seeds, as .tmj and .tmx: seed 3 through the CLI (the issue's
    must-show), seed 11 through the API. Returns [(level, tmj path, tmx path)]."""
    out = tmp_path_factory.mktemp("maps")
    result = []
    for gen in GENERATORS:
        for seed in (3, 11):
            level = eng.generate("level", gen, seed=seed)
            paths = []
            for ext in ("tmj", "tmx"):
                p = out / f"{gen}-{seed}.{ext}"
                if seed == 3:
                    r = run_cli("generate", "level", "-g", gen, "-s", "3", "-o", p)
                    assert r.returncode == 0, r.stderr.decode()
                    assert f"wrote {p}".encode() in r.stdout
                else:
                    written = eng.export(level, p)
                    assert written == [p.with_name(image_name(p, written[0].read_bytes())), p]
                paths.append(p)
            result.append((level, *paths))
    return result


def _entity_rows(level: Level) -> list[tuple]:
    """What a client should see for each entity: name, type, pixel x/y, properties (names escaped)."""
    return [(e.id, e.kind, e.x * TS, e.y * TS, {escape_name(k): v for k, v in e.properties.items()})
            for e in level.entities]


def _region_rows(level: Level) -> list[tuple]:
    return [(r.id, r.kind, r.x * TS, r.y * TS, r.w * TS, r.h * TS,
             {"conjure:name": r.name, **{escape_name(k): v for k, v in r.properties.items()}})
            for r in level.regions]


# ============================================================================================ real clients
@pytest.mark.parametrize("ext", ["tmj", "tmx"])
def test_pytiled_parser_sees_the_same_tiles_and_entities(maps, ext):
    import pytiled_parser

    for level, tmj, tmx in maps:
        path = tmj if ext == "tmj" else tmx
        m = pytiled_parser.parse_map(path)
        assert (m.map_size.width, m.map_size.height) == (level.width, level.height)
        assert m.orientation == "orthogonal" and not m.infinite
        (firstgid, ts), = m.tilesets.items()
        assert firstgid == 1 and ts.tile_count == max(t.id for t in level.tileset.tiles) + 1
        image = path.parent / ts.image
        assert image.is_file() and ts.image.name == image_name(path, image.read_bytes())
        tile_layers = [lay for lay in m.layers if isinstance(lay, pytiled_parser.TileLayer)]
        assert [lay.name for lay in tile_layers] == list(level.layers)
        for lay, tiles in zip(tile_layers, level.layers.values()):
            assert np.array_equal(np.array(lay.data), tiles.astype(np.int64) + 1)  # gid = id + firstgid
        for t in level.tileset.tiles:  # tile properties: name, char, color and the tile's own
            props = ts.tiles[t.id].properties
            assert props["name"] == t.name and props["char"] == t.char
            assert tuple(props["color"])[:3] == t.color
            assert {k: props[k] for k in t.properties} == t.properties
        groups = {lay.name: lay for lay in m.layers if isinstance(lay, pytiled_parser.ObjectLayer)}
        seen = [(o.name, o.class_, o.coordinates.x, o.coordinates.y, dict(o.properties))
                for o in groups["entities"].tiled_objects]
        assert seen == _entity_rows(level)
        seen = [(o.name, o.class_, o.coordinates.x, o.coordinates.y, o.size.width, o.size.height,
                 dict(o.properties)) for o in groups["regions"].tiled_objects]
        assert seen == _region_rows(level)
        assert m.properties["generator"] == level.metadata["generator"]
        assert m.properties["seed"] == level.metadata["seed"]
        assert json.loads(m.properties["params"]) == level.metadata["params"]


ARCADE_SCRIPT = r"""
import json, os, sys
os.environ["ARCADE_HEADLESS"] = "1"
try:
    import arcade
    window = arcade.Window(32, 32, "conjure test")
except Exception as e:
    print("SKIP " + json.dumps(f"{type(e).__name__}: {e}"))
    sys.exit(0)
out = {}
for path in sys.argv[1:]:
    tm = arcade.load_tilemap(path)
    layers = {name: [[s.center_x, s.center_y, s.properties["tile_id"], s.properties["name"]] for s in sl]
              for name, sl in tm.sprite_lists.items()}
    objects = {name: [[o.name, o.type, [list(p) for p in o.shape], o.properties] for o in objs]
               for name, objs in tm.object_lists.items()}
    out[path] = {"size": [tm.width, tm.height], "layers": layers, "objects": objects}
print("OK " + json.dumps(out))
"""


def test_arcade_loads_every_tmj(maps):
    paths = [str(tmj) for _, tmj, _ in maps]
    env = dict(os.environ, ARCADE_HEADLESS="1")
    r = subprocess.run([sys.executable, "-c", ARCADE_SCRIPT, *paths], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    if last.startswith("SKIP "):
        pytest.skip(f"arcade cannot run headless here: {json.loads(last[5:])}")
    got = json.loads(last[3:])
    for level, tmj, _ in maps:
        res = got[str(tmj)]
        H, W = level.shape
        assert res["size"] == [W, H]
        sprites = res["layers"]["tiles"]
        assert len(sprites) == W * H
        grid = np.full((H, W), -1)
        for cx, cy, tile_id, name in sprites:  # arcade flips Y: row 0 is at the top
            x, y = int(cx // TS), H - 1 - int(cy // TS)
            grid[y, x] = tile_id
            assert name == level.tileset[tile_id].name
        assert np.array_equal(grid, level.tiles)
        ents = res["objects"]["entities"]
        assert [(o[0], o[1]) for o in ents] == [(e.id, e.kind) for e in level.entities]
        for (_, _, shape, props), e in zip(ents, level.entities):
            xs, ys = [p[0] for p in shape], [p[1] for p in shape]
            assert (min(xs) / TS, H - max(ys) / TS) == (e.x, e.y)
            assert props == {escape_name(k): v for k, v in e.properties.items()}
        assert [o[0] for o in res["objects"]["regions"]] == [r.id for r in level.regions]


PYTMX_SCRIPT = r"""
import json, os, sys
os.environ["SDL_VIDEODRIVER"] = "dummy"
import pygame
import pytmx
from pytmx.util_pygame import load_pygame
from PIL import Image
pygame.display.init()
pygame.display.set_mode((1, 1))
out = {}
for path in sys.argv[1:]:
    tm = load_pygame(path)
    idx = [i for i, lay in enumerate(tm.layers) if lay.name == "tiles"][0]
    layer = tm.layers[idx]
    grid = [[tm.tiledgidmap[g] if g else 0 for g in row] for row in layer.data]
    ts = tm.tilesets[0]
    png = Image.open(os.path.join(os.path.dirname(path), ts.source)).convert("RGBA")
    pixels = {}
    for y, row in enumerate(grid):
        for x, tiled_gid in enumerate(row):
            if tiled_gid in pixels:
                continue
            surf = tm.get_tile_image(x, y, idx)
            local = tiled_gid - ts.firstgid
            c, r = local % ts.columns, local // ts.columns
            crop = png.crop((c * ts.tilewidth, r * ts.tileheight, (c + 1) * ts.tilewidth, (r + 1) * ts.tileheight))
            pixels[tiled_gid] = [pygame.image.tobytes(surf, "RGBA") == crop.tobytes(),
                                 list(surf.get_at((ts.tilewidth // 2, ts.tileheight // 2))),
                                 list(crop.getpixel((ts.tilewidth // 2, ts.tileheight // 2)))]
    objects = {g.name: [[o.name, o.type, o.x, o.y, o.width, o.height, dict(o.properties)] for o in g]
               for g in tm.objectgroups}
    out[path] = {"grid": grid, "pixels": pixels, "objects": objects, "props": dict(tm.properties)}
print("OK " + json.dumps(out))
"""


def test_pytmx_renders_the_tileset_colors(maps):
    paths = [str(tmx) for _, _, tmx in maps]
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYGAME_HIDE_SUPPORT_PROMPT="1")
    r = subprocess.run([sys.executable, "-c", PYTMX_SCRIPT, *paths], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1][3:])
    for level, _, tmx in maps:
        res = got[str(tmx)]
        assert np.array_equal(np.array(res["grid"]), level.tiles.astype(np.int64) + 1)
        assert set(res["pixels"]) == {str(int(t) + 1) for t in np.unique(level.tiles)}
        for gid, (same, rendered, in_png) in res["pixels"].items():
            assert same, f"{tmx.name}: tile gid {gid} renders differently from the tileset PNG"
            assert rendered == in_png
            assert tuple(in_png[:3]) == level.tileset[int(gid) - 1].color  # tile centre = the tile color
        ents = [tuple(o[:4]) + (o[6],) for o in res["objects"]["entities"]]
        assert ents == [(n, k, float(x), float(y), p) for n, k, x, y, p in _entity_rows(level)]
        assert res["props"]["generator"] == level.metadata["generator"]


# ============================================================================================ our own checks
@pytest.mark.parametrize("ext", ["tmj", "tmx"])
def test_data_length_and_gid_range(maps, ext):
    from PIL import Image

    import pytiled_parser

    for level, tmj, tmx in maps:
        path = tmj if ext == "tmj" else tmx
        if ext == "tmj":
            doc = json.loads(path.read_text())
            assert not path.read_bytes().startswith(b"\n")
            layer = doc["layers"][0]
            data, ts = layer["data"], doc["tilesets"][0]
            for key in ("version", "orientation", "renderorder", "width", "height", "tilewidth", "tileheight",
                        "nextobjectid", "tiledversion", "infinite", "nextlayerid"):
                assert key in doc, key
            for key in ("firstgid", "name", "tilewidth", "tileheight", "tilecount", "margin", "spacing",
                        "columns", "imagewidth", "imageheight", "image"):
                assert key in ts, key
            for lay in doc["layers"]:
                assert {"type", "name", "opacity", "visible"} <= set(lay)
                if lay["type"] == "objectgroup":
                    assert "draworder" in lay
                    for o in lay["objects"]:
                        assert {"id", "name", "x", "y", "width", "height", "rotation", "visible"} <= set(o)
            tilecount, cols, iw, ih = ts["tilecount"], ts["columns"], ts["imagewidth"], ts["imageheight"]
            image = path.parent / ts["image"]
        else:
            m = pytiled_parser.parse_map(path)
            (_, t), = m.tilesets.items()
            data = [g for row in m.layers[0].data for g in row]
            tilecount, cols, iw, ih = t.tile_count, t.columns, t.image_width, t.image_height
            image = path.parent / t.image
        assert len(data) == level.width * level.height
        assert all(1 <= g <= tilecount for g in data)
        with Image.open(image) as im:
            assert im.size == (iw, ih) == (cols * TS, -(-tilecount // cols) * TS)


@pytest.mark.parametrize("ext", ["tmj", "tmx"])
def test_round_trip_gives_an_equal_level(eng, maps, ext):
    for level, tmj, tmx in maps:
        back = eng.load(tmj if ext == "tmj" else tmx)
        assert back == level
        assert load_map(tmj if ext == "tmj" else tmx) == level  # the engine-free reader
        assert back.metadata["params"] == level.metadata["params"]


def test_tile_id_zero_is_a_real_tile(maps):
    level, tmj, _ = maps[0]  # dungeon: id 0 is void
    assert level.tileset[0].name == "void" and (level.tiles == 0).any()
    data = json.loads(tmj.read_text())["layers"][0]["data"]
    assert 0 not in data and 1 in data


def test_same_level_gives_the_same_bytes(eng, tmp_path, maps):
    level = maps[2][0]
    for ext in ("tmj", "tmx"):
        a = [p.read_bytes() for p in eng.export(level, tmp_path / f"a.{ext}")]
        b = [p.read_bytes() for p in eng.export(level, tmp_path / f"b.{ext}")]
        assert a[0] == b[0]
        assert a[1] == b[1].replace(b"b.", b"a.", 1) if ext == "tmj" else a[1] == b[1].replace(b'"b.', b'"a.', 1)
        assert a[0] == b[0]


def _odd_level() -> Level:
    """Two layers, sparse tile ids (0, 7, 255), reserved-looking names, every property type, odd metadata."""
    ts = Tileset("odd", [TileDef(0, "nothing", " ", (0, 0, 0), {"solid": False}),
                         TileDef(7, "rock", "#", (90, 90, 90), {"solid": True, "hp": 3, "friction": 0.25}),
                         TileDef(255, "gem", "*", (200, 20, 240), {"kind": "loot & <stuff>"})])
    base = np.zeros((5, 7), dtype=np.uint8)
    base[0, :] = 7
    base[4, 6] = 255
    over = np.zeros((5, 7), dtype=np.uint8)
    over[2, 3] = 255
    ents = [Entity("p", "spawn", 0, 0, {}),
            Entity("e1", "enemy", 6, 4, {"type": "orc", "type_": "x", "x": 1.5, "name": "Bob", "angry": True}),
            Entity("chest", "treasure", 3, 2, {"value": 2 ** 40, "note": "line1\nline2 \"quoted\""})]
    regions = [Region("hall", "room", "The Hall", 0, 0, 7, 3, {"lit": True, "id": 4}),
               Region("nook", "room", "Nook", 6, 4, 1, 1, {})]
    meta = {"generator": "hand", "seed": 2 ** 63 + 5, "params": {"a": [1, 2.5, None]}, "note": None,
            "width": 7, "flag": False, "ratio": 0.1, "name": "Odd"}
    return Level({"ground": base, "overlay": over}, ts, ents, regions, meta)


@pytest.mark.parametrize("ext", ["tmj", "tmx"])
def test_odd_levels_round_trip(eng, tmp_path, ext):
    import pytiled_parser

    level = _odd_level()
    assert not level.problems()
    path = tmp_path / f"odd.{ext}"
    eng.export(level, path, tile_size=8)
    back = eng.load(path)
    assert back == level
    assert back.metadata["seed"] == 2 ** 63 + 5
    m = pytiled_parser.parse_map(path)
    assert m.tile_size.width == 8
    (_, t), = m.tilesets.items()
    assert t.tile_count == 256 and t.columns == 16 and (t.image_width, t.image_height) == (128, 128)
    objs = m.layers[2].tiled_objects
    assert objs[1].properties["type_"] == "orc" and objs[1].properties["type__"] == "x"


def test_tile_size_option(eng, tmp_path, maps):
    from PIL import Image

    level = maps[0][0]
    eng.export(level, tmp_path / "big.tmj", tile_size=32)
    doc = json.loads((tmp_path / "big.tmj").read_text())
    assert doc["tilewidth"] == doc["tileheight"] == 32
    (image,) = tmp_path.glob("big.*.tileset.png")
    with Image.open(image) as im:
        assert im.size == (5 * 32, 32)
    for bad in (0, 300, "16", True):
        with pytest.raises(InputError, match="tile_size"):
            eng.export(level, tmp_path / "x.tmj", tile_size=bad)
    with pytest.raises(InputError, match="has no option 'scale'"):
        eng.export(level, tmp_path / "x.tmj", scale=2)
    with pytest.raises(InputError, match="cannot go to stdout"):
        eng.dumps(level, "tmj")


# ============================================================================================ a user's own maps
def _user_tileset_png(path: Path, colors) -> None:
    from PIL import Image

    img = Image.new("RGBA", (len(colors) * 8, 8))
    for i, c in enumerate(colors):
        img.paste(c + (255,), (i * 8, 0, i * 8 + 8, 8))
    img.save(path)


USER_COLORS = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]


def _user_tmj(tmp_path: Path, external: bool) -> Path:
    _user_tileset_png(tmp_path / "tiles.png", USER_COLORS)
    tileset = {"name": "mine", "tilewidth": 8, "tileheight": 8, "tilecount": 3, "columns": 3, "margin": 0,
               "spacing": 0, "image": "tiles.png", "imagewidth": 24, "imageheight": 8,
               "tiles": [{"id": 1, "type": "grass"},
                         {"id": 2, "properties": [{"name": "solid", "type": "bool", "value": True}]}]}
    if external:
        (tmp_path / "mine.tsj").write_text(json.dumps(dict(tileset, type="tileset")))
        tileset_ref = {"firstgid": 1, "source": "mine.tsj"}
    else:
        tileset_ref = dict(tileset, firstgid=1)
    doc = {
        "type": "map", "version": "1.10", "orientation": "orthogonal", "renderorder": "right-down",
        "width": 4, "height": 3, "tilewidth": 8, "tileheight": 8, "infinite": False, "nextlayerid": 4,
        "nextobjectid": 5, "tilesets": [tileset_ref],
        "properties": [{"name": "author", "type": "string", "value": "me"}],
        "layers": [
            {"id": 1, "name": "ground", "type": "tilelayer", "width": 4, "height": 3, "opacity": 1,
             "visible": True, "x": 0, "y": 0, "data": [1, 1, 2, 2, 1, 3, 3, 2, 1, 1, 1, 1]},
            {"id": 2, "name": "deco", "type": "tilelayer", "width": 4, "height": 3, "opacity": 1,
             "visible": True, "x": 0, "y": 0, "data": [0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0]},
            {"id": 3, "name": "things", "type": "objectgroup", "draworder": "topdown", "opacity": 1,
             "visible": True, "x": 0, "y": 0, "objects": [
                 {"id": 1, "name": "start", "type": "spawn", "x": 4, "y": 4, "width": 0, "height": 0,
                  "point": True, "rotation": 0, "visible": True},
                 {"id": 2, "name": "", "class": "enemy", "x": 17, "y": 9, "width": 8, "height": 8,
                  "rotation": 0, "visible": True,
                  "properties": [{"name": "hp", "type": "int", "value": 5},
                                 {"name": "speed", "type": "float", "value": 1},
                                 {"name": "tint", "type": "color", "value": "#ff112233"}]},
                 {"id": 3, "name": "coin", "type": "", "gid": 2, "x": 24, "y": 24, "width": 8, "height": 8,
                  "rotation": 0, "visible": True}]},
            {"id": 4, "name": "Regions", "type": "objectgroup", "draworder": "topdown", "opacity": 1,
             "visible": True, "x": 0, "y": 0, "objects": [
                 {"id": 4, "name": "yard", "type": "area", "x": 0, "y": 0, "width": 16, "height": 12,
                  "rotation": 0, "visible": True}]},
        ]}
    path = tmp_path / "user.tmj"
    path.write_text(json.dumps(doc))
    return path


def _check_user_level(level: Level) -> None:
    assert list(level.layers) == ["ground", "deco"]
    assert level.layers["ground"].tolist() == [[1, 1, 2, 2], [1, 3, 3, 2], [1, 1, 1, 1]]
    assert level.layers["deco"][1, 1] == 3 and level.layers["deco"].sum() == 3  # gid 0 -> tile 0, "empty"
    names = {t.id: t.name for t in level.tileset.tiles}
    assert names == {0: "empty", 1: "mine_0", 2: "grass", 3: "mine_2"}
    assert level.tileset[1].color == USER_COLORS[0] and level.tileset[3].color == USER_COLORS[2]
    assert level.tileset[3].properties == {"solid": True}
    assert len({t.char for t in level.tileset.tiles}) == 4
    assert [(e.id, e.kind, e.x, e.y) for e in level.entities] == [
        ("start", "spawn", 0, 0), ("enemy-2", "enemy", 2, 1), ("coin", "object", 3, 2)]
    assert level.entities[1].properties == {"hp": 5, "speed": 1.0, "tint": "#ff112233"}
    assert [(r.id, r.kind, r.name, r.x, r.y, r.w, r.h) for r in level.regions] == [
        ("yard", "area", "yard", 0, 0, 2, 2)]
    assert level.metadata == {"author": "me"}


@pytest.mark.parametrize("external", [False, True])
def test_a_users_tmj_becomes_a_level(eng, tmp_path, external):
    _check_user_level(eng.load(_user_tmj(tmp_path, external)))


def _user_tmx(tmp_path: Path, external: bool, encoding: str = "csv") -> Path:
    _user_tileset_png(tmp_path / "tiles.png", USER_COLORS)
    body = ('<tileset {} name="mine" tilewidth="8" tileheight="8" tilecount="3" columns="3">'
            '<image source="tiles.png" width="24" height="8"/>'
            '<tile id="1" type="grass"/>'
            '<tile id="2"><properties><property name="solid" type="bool" value="true"/></properties></tile>'
            '</tileset>')
    if external:
        (tmp_path / "mine.tsx").write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + body.format(""))
        tileset = '<tileset firstgid="1" source="mine.tsx"/>'
    else:
        tileset = body.format('firstgid="1"')

    def data(gids):
        if encoding == "csv":
            return f'<data encoding="csv">\n{",".join(map(str, gids))}\n</data>'
        if encoding == "xml":
            return "<data>" + "".join(f'<tile gid="{g}"/>' if g else "<tile/>" for g in gids) + "</data>"
        raw = np.array(gids, dtype="<u4").tobytes()
        return f'<data encoding="base64" compression="zlib">{base64.b64encode(zlib.compress(raw)).decode()}</data>'

    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<map version="1.10" tiledversion="1.10.2" orientation="orthogonal" renderorder="right-down" width="4" height="3"
     tilewidth="8" tileheight="8" infinite="0" nextlayerid="5" nextobjectid="5">
 <properties><property name="author" value="me"/></properties>
 {tileset}
 <layer id="1" name="ground" width="4" height="3">{data([1, 1, 2, 2, 1, 3, 3, 2, 1, 1, 1, 1])}</layer>
 <layer id="2" name="deco" width="4" height="3">{data([0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0])}</layer>
 <objectgroup id="3" name="things">
  <object id="1" name="start" type="spawn" x="4" y="4"><point/></object>
  <object id="2" class="enemy" x="17" y="9" width="8" height="8">
   <properties><property name="hp" type="int" value="5"/><property name="speed" type="float" value="1"/>
   <property name="tint" type="color" value="#ff112233"/></properties>
  </object>
  <object id="3" name="coin" gid="2" x="24" y="24" width="8" height="8"/>
 </objectgroup>
 <objectgroup id="4" name="Regions"><object id="4" name="yard" type="area" x="0" y="0" width="16" height="12"/>
 </objectgroup>
</map>"""
    path = tmp_path / "user.tmx"
    path.write_text(xml)
    return path


@pytest.mark.parametrize("external,encoding", [(False, "csv"), (True, "csv"), (False, "xml"),
                                               (False, "base64")])
def test_a_users_tmx_becomes_a_level(eng, tmp_path, external, encoding):
    _check_user_level(eng.load(_user_tmx(tmp_path, external, encoding)))


def test_user_levels_export_again(eng, tmp_path):
    level = eng.load(_user_tmj(tmp_path, False))
    eng.export(level, tmp_path / "again.tmx")
    assert eng.load(tmp_path / "again.tmx") == level


# ============================================================================================ bad input
def _mutate_tmj(path: Path, fn) -> Path:
    doc = json.loads(path.read_text())
    fn(doc)
    out = path.with_name("bad.tmj")
    out.write_text(json.dumps(doc))
    return out


def _bad_layer(d, **kw):
    d["layers"][0].update(kw)


BAD_TMJ = [
    ("short data", lambda d: _bad_layer(d, data=d["layers"][0]["data"][:-1]),
     r"layer 'tiles'\.data: \d+ gids, expected width x height = \d+"),
    ("unknown gid", lambda d: d["layers"][0]["data"].__setitem__(5, 99),
     r"layer 'tiles'\.data: gid 99 at x=5, y=0 is not in any tileset"),
    ("empty cell", lambda d: d["layers"][0]["data"].__setitem__(0, 0),
     r"layer 'tiles'\.data: gid 0 at x=0, y=0 is an empty cell"),
    ("flipped", lambda d: d["layers"][0]["data"].__setitem__(1, 0x80000001),
     r"layer 'tiles'\.data: flipped or rotated tile at x=1, y=0"),
    ("infinite", lambda d: d.update(infinite=True), r"infinite: infinite \(chunked\) maps"),
    ("chunks", lambda d: _bad_layer(d, chunks=[]), r"layer 'tiles'\.chunks: chunked"),
    ("isometric", lambda d: d.update(orientation="isometric"), r"orientation: 'isometric' maps"),
    ("no image", lambda d: d["tilesets"][0].update(image="nowhere.png"),
     r"tilesets\[0\]\.image: tileset image .*nowhere\.png is missing"),
    ("layer width", lambda d: _bad_layer(d, width=3), r"layer 'tiles'\.width: 3 differs from the map's"),
    ("bad encoding", lambda d: _bad_layer(d, data="AAAA", encoding="base32"),
     r"layer 'tiles'\.encoding: unknown encoding 'base32'"),
    ("bad base64", lambda d: _bad_layer(d, data="!!!", encoding="base64"), r"layer 'tiles'\.data: malformed base64"),
    ("string gids", lambda d: _bad_layer(d, data=["1"] * len(d["layers"][0]["data"])),
     r"layer 'tiles'\.data: expected a list of integer gids"),
    ("class property", lambda d: d["layers"][1]["objects"][0].update(
        properties=[{"name": "p", "type": "class", "value": {}}]),
     r"layer 'entities'\.objects\[0\]\.properties\.p: property type 'class'"),
    ("object outside", lambda d: d["layers"][1]["objects"][0].update(x=-100),
     r"layer 'entities' object 1 \(spawn\): position x=-100"),
    ("missing width", lambda d: d.pop("width"), r"width: missing"),
    ("no tile layer", lambda d: d.update(layers=d["layers"][1:]), r"layers: the map has no tile layer"),
    ("not a map", lambda d: d.update(type="tileset"), r"type: expected 'map'"),
]


@pytest.mark.parametrize("name,mutate,message", BAD_TMJ, ids=[b[0] for b in BAD_TMJ])
def test_bad_tmj_is_a_one_line_input_error(eng, maps, name, mutate, message):
    bad = _mutate_tmj(maps[0][1], mutate)
    with pytest.raises(InputError, match=message) as ei:
        eng.load(bad)
    text = str(ei.value)
    assert text.startswith(str(bad)) and "\n" not in text


def test_too_many_tile_ids(eng, tmp_path):
    path = _user_tmj(tmp_path, False)
    doc = json.loads(path.read_text())
    ts = doc["tilesets"][0]
    ts.update(tilecount=300, columns=3)
    doc["layers"][0]["data"][0] = 300
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"layer 'ground'\.data: gid 300 at x=0, y=0 is above 255: a level "
                                         r"holds at most 256 tile ids"):
        eng.load(path)


@pytest.mark.parametrize("text,message", [
    ('{"type": "map", "width": ', r"malformed or truncated JSON"),
    ("[1, 2]", r"expected a JSON object at the top level"),
    ("", r"malformed or truncated JSON"),
])
def test_malformed_json(eng, tmp_path, text, message):
    (tmp_path / "m.tmj").write_text(text)
    with pytest.raises(InputError, match=message):
        eng.load(tmp_path / "m.tmj")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<map orientation="orthogonal" width="1" height="1" tilewidth="8" tileheight="8">&lol2;</map>"""


@pytest.mark.parametrize("text,message", [
    (BILLION_LAUGHS, r"DOCTYPE/ENTITY declarations are not allowed"),
    ('<map orientation="orthogonal" width="2"', r"malformed XML \(.* at line 1 column \d+\)"),
    ("<tileset/>", r"expected a <map> element, got <tileset>"),
    ('<map orientation="hexagonal" width="1" height="1" tilewidth="8" tileheight="8"/>',
     r"orientation: 'hexagonal' maps cannot become levels"),
])
def test_malformed_xml(eng, tmp_path, text, message):
    (tmp_path / "m.tmx").write_text(text)
    with pytest.raises(InputError, match=message):
        eng.load(tmp_path / "m.tmx")


def test_bad_tmx_data(eng, maps, tmp_path):
    text = maps[0][2].read_text()
    for old, new, message in [
        ("<data encoding=\"csv\">\n1,", "<data encoding=\"csv\">\n", r"layer 'tiles'\.data: \d+ gids, expected"),
        ('infinite="0"', 'infinite="1"', r"infinite: infinite"),
        (".tileset.png", ".missing.png", r"tileset\[0\]\.image: tileset image .* is missing"),
        ("<data encoding=\"csv\">\n1,", "<data encoding=\"csv\">\nx,", r"expected comma-separated integer gids"),
    ]:
        bad = tmp_path / "bad.tmx"
        bad.write_text(text.replace(old, new, 1))
        with pytest.raises(InputError, match=message):
            eng.load(bad)


def test_tileset_image_of_the_wrong_size(eng, maps, tmp_path):
    """A map whose tileset image was swapped or overwritten is refused before anything misdraws."""
    original = maps[0][2]
    text = original.read_text()
    assert 'width="80" height="16"' in text  # the dungeon tileset: 5 tiles of 16 px
    bad = original.with_name("wrong-size.tmx")  # beside the original, so its image is found
    bad.write_text(text.replace('width="80" height="16"', 'width="96" height="16"', 1))
    with pytest.raises(InputError, match=r"tileset\[0\]\.image: tileset image .* is 80x16, the map declares 96x16"):
        eng.load(bad)
    bad.unlink()


def test_cli_info_on_a_bad_map_exits_2_with_one_line(maps, tmp_path):
    bad = _mutate_tmj(maps[0][1], lambda d: d["layers"][0]["data"].pop())
    r = run_cli("info", bad)
    assert r.returncode == 2
    err = r.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "layer 'tiles'.data" in err and str(bad) in err
    r = run_cli("info", maps[0][1])
    assert r.returncode == 0 and b"entities: spawn x1" in r.stdout


def test_failed_export_leaves_the_earlier_files_and_no_temp_files(eng, tmp_path, monkeypatch, maps):
    level = maps[0][0]
    path = tmp_path / "keep.tmj"
    eng.export(level, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    odd = _odd_level()
    odd.tileset.tiles[1].properties["char"] = "x"  # reserved tile property: refused before anything is written
    with pytest.raises(InputError, match=r"tiles\[1\]\.properties\.char: the name is reserved"):
        eng.export(odd, path)
    odd = _odd_level()
    odd.metadata["conjure:x"] = 1
    with pytest.raises(InputError, match=r"metadata key 'conjure:x'"):
        eng.export(odd, path)
    broken = _odd_level()
    broken.entities[0].x = 99
    with pytest.raises(InputError, match=r"entities\[0\]\.x: 99 outside"):
        eng.export(broken, path)

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(engine.ConjureError, match="No space left"):
        eng.export(_odd_level(), path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before


@pytest.mark.slow
def test_export_figures_256(eng, tmp_path):  # a figure for the report, not a benchmark
    import time

    level = eng.generate("level", "dungeon", seed=1, params={"width": 256, "height": 256, "rooms": 40})
    for ext in ("tmj", "tmx"):
        t0 = time.perf_counter()
        eng.export(level, tmp_path / f"big.{ext}")
        t1 = time.perf_counter()
        assert eng.load(tmp_path / f"big.{ext}") == level
        t2 = time.perf_counter()
        print(f"256x256 {ext}: export {1000 * (t1 - t0):.1f} ms, load {1000 * (t2 - t1):.1f} ms")


def test_image_collection_tileset(eng, tmp_path):
    """A tileset of separate tile images (no tileset image): colors come from each tile's image."""
    from PIL import Image

    for i, c in enumerate(USER_COLORS[:2]):
        Image.new("RGB", (8, 8), c).save(tmp_path / f"t{i}.png")
    doc = {"type": "map", "orientation": "orthogonal", "width": 2, "height": 1, "tilewidth": 8, "tileheight": 8,
           "infinite": False, "tilesets": [{"firstgid": 1, "name": "pics", "tilecount": 2, "columns": 0,
                                            "tilewidth": 8, "tileheight": 8, "tiles": [
                                                {"id": 0, "image": "t0.png"}, {"id": 1, "image": "t1.png"}]}],
           "layers": [{"type": "tilelayer", "name": "t", "width": 2, "height": 1, "data": [2, 1]}]}
    (tmp_path / "pics.tmj").write_text(json.dumps(doc))
    level = eng.load(tmp_path / "pics.tmj")
    assert level.tiles.tolist() == [[2, 1]]
    assert [level.tileset[i].color for i in (1, 2)] == USER_COLORS[:2]
    (tmp_path / "t1.png").unlink()
    with pytest.raises(InputError, match=r"tilesets\[0\]\.tiles\[1\]\.image: tile image .*t1\.png is missing"):
        eng.load(tmp_path / "pics.tmj")


def test_maps_of_one_stem_keep_their_own_tilesets(eng, tmp_path):
    """level.tmx of a platformer and level.tmj of a dungeon side by side: each still loads its own tileset."""
    plat = eng.generate("level", "platformer", 3, {"width": 40})
    dun = eng.generate("level", "dungeon", 3)
    eng.export(plat, tmp_path / "level.tmx", tile_size=32)
    eng.export(dun, tmp_path / "level.tmj")
    assert eng.load(tmp_path / "level.tmx") == plat
    assert eng.load(tmp_path / "level.tmj") == dun
    assert len(list(tmp_path.glob("level.*.tileset.png"))) == 2


def test_every_name_of_the_old_plugins_tiled_module_still_imports():
    """plugins/tiled.py became the package plugins/tiled/ (names, write, read): the old names still import."""
    import plugins.tiled as t

    for name in ("TiledFormat", "load_map", "escape_name", "unescape_name", "image_name", "tileset_image",
                 "register_exporters", "PYTMX_RESERVED", "FIRSTGID", "TILED_VERSION", "MAX_MAP_BYTES",
                 "DEFAULT_CHARS", "SCHEMA_PROP", "ENTITY_LAYER", "REGION_LAYER"):
        assert hasattr(t, name), name
    from engine.images import tileset_sheet

    assert t.tileset_image is tileset_sheet
