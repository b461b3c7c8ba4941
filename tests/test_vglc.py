"""VGLC text + legend export and import, and the level sheet preview."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine import Entity, InputError, Level, TileDef, Tileset
from plugins.preview import image_png, level_rgb, level_sheet
from plugins.vglc import legend_path, read_vglc

from .conftest import run_cli

GENERATORS = ("dungeon", "platformer", "terrain")


@pytest.fixture(scope="module")
def levels(eng):
    return [eng.generate("level", g, seed=s) for g in GENERATORS for s in (3, 8)]


@pytest.mark.parametrize("entities", ["overlay", "none"])
def test_round_trip_gives_an_equal_level(eng, levels, tmp_path, entities):
    for i, level in enumerate(levels):
        path = tmp_path / f"l{i}.vglc.txt"
        written = eng.export(level, path, entities=entities)
        assert written == [path, tmp_path / f"l{i}.legend.json"]
        assert eng.load(path) == level


def test_text_is_one_char_per_tile_with_entities_drawn_over(eng, levels, tmp_path):
    for level in levels:
        path = tmp_path / "x.vglc.txt"
        eng.export(level, path)
        text = path.read_text()
        assert text.endswith("\n")
        lines = text.splitlines()
        assert len(lines) == level.height and all(len(ln) == level.width for ln in lines)
        legend = json.loads(legend_path(path).read_text())
        tags = legend["tiles"]
        ent_char = {v[1]: c for c, v in tags.items() if v[0] == "entity"}
        tile_chars = {t.char for t in level.tileset.tiles}
        assert not tile_chars & set(ent_char.values())
        assert all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in tags.values())
        covered = {(e.x, e.y) for e in level.entities}
        for e in level.entities:
            assert lines[e.y][e.x] in ent_char.values()
        for y, line in enumerate(lines):
            for x, c in enumerate(line):
                if (x, y) not in covered:
                    assert c == level.tileset[int(level.tiles[y, x])].char
        recorded = legend["conjure"]["entities"]
        assert [(e["id"], e["x"], e["y"]) for e in recorded] == [(e.id, e.x, e.y) for e in level.entities]
        assert all(e["tile"] == level.tileset[int(level.tiles[e["y"], e["x"]])].char for e in recorded)


def test_platformer_uses_vglc_mario_glyphs(eng, levels, tmp_path):
    level = levels[2]
    path = tmp_path / "mario.vglc.txt"
    eng.export(level, path)
    legend = json.loads(legend_path(path).read_text())["tiles"]
    assert legend["X"] == ["ground", "solid"] and legend["-"] == ["air", "passable"]
    assert legend["E"] == ["entity", "enemy"] and legend["o"] == ["entity", "coin"]


def test_pure_tiles_option(eng, levels, tmp_path):
    level = levels[0]
    path = tmp_path / "pure.vglc.txt"
    eng.export(level, path, entities="none")
    chars = {t.char for t in level.tileset.tiles}
    assert set(path.read_text()) <= chars | {"\n"}
    with pytest.raises(InputError, match="entities: expected 'overlay' or 'none'"):
        eng.export(level, path, entities="sidecar")


def test_same_level_gives_the_same_bytes(eng, levels, tmp_path):
    a = [p.read_bytes() for p in eng.export(levels[1], tmp_path / "a.vglc.txt")]
    b = [p.read_bytes() for p in eng.export(levels[1], tmp_path / "b.vglc.txt")]
    assert a == b


HANDMADE = """\
WWWWWWW
WF.FFDW
WFFkFFW
WWWWWWW
"""


def test_a_users_vglc_level_with_a_plain_legend(eng, tmp_path):
    (tmp_path / "room.vglc.txt").write_text(HANDMADE)
    (tmp_path / "room.legend.json").write_text(json.dumps({"tiles": {
        "W": ["solid", "wall"], "F": ["passable", "floor"], ".": ["passable", "empty"],
        "D": ["passable", "door"], "k": ["key", "collectable", "passable"]}}))
    level = eng.load(tmp_path / "room.vglc.txt")
    assert [(t.id, t.char, t.name) for t in level.tileset.tiles] == [
        (0, "W", "wall"), (1, "F", "floor"), (2, ".", "empty"), (3, "D", "door"), (4, "k", "key")]
    assert level.tileset["wall"].properties == {"solid": True, "tags": "solid|wall"}
    assert level.tileset["key"].properties == {"collectable": True, "passable": True,
                                               "tags": "key|collectable|passable"}
    assert level.shape == (4, 7) and level.tiles[2, 3] == 4 and level.tiles[1, 2] == 2
    assert level.entities == [] and level.metadata == {"source": "vglc"}
    # it exports back to the same text
    eng.export(level, tmp_path / "again.vglc.txt")
    assert (tmp_path / "again.vglc.txt").read_text() == HANDMADE
    assert eng.load(tmp_path / "again.vglc.txt") == level
    # the legend's own tags come back, in their order
    again = json.loads((tmp_path / "again.legend.json").read_text())["tiles"]
    assert again["W"] == ["solid", "wall"] and again["k"] == ["key", "collectable", "passable"]


def test_a_vglc_corpus_level_with_a_shared_legend(eng, tmp_path):
    """VGLC ships one legend per game (e.g. smb.json): a bare legend.json beside the level, or one passed in."""
    (tmp_path / "mario-1-1.txt").write_text("----E---\n--?-S---\nXXXX-<>X\nXXXX-[]X\n")
    legend = {"tiles": {"X": ["solid", "ground"], "S": ["solid", "breakable"], "-": ["passable", "empty"],
                        "?": ["solid", "question block", "full question block"],
                        "E": ["enemy", "damaging", "hazard", "moving"],
                        "<": ["solid", "top-left pipe", "pipe"], ">": ["solid", "top-right pipe", "pipe"],
                        "[": ["solid", "left pipe", "pipe"], "]": ["solid", "right pipe", "pipe"]}}
    (tmp_path / "smb.json").write_text(json.dumps(legend))
    level = read_vglc(tmp_path / "mario-1-1.txt", tmp_path / "smb.json")
    names = [t.name for t in level.tileset.tiles]
    assert names == ["ground", "breakable", "empty", "question block", "enemy", "top-left pipe",
                     "top-right pipe", "left pipe", "right pipe"]
    assert level.tileset["enemy"].properties == {"damaging": True, "hazard": True, "moving": True,
                                                    "tags": "enemy|damaging|hazard|moving"}
    (tmp_path / "legend.json").write_text(json.dumps(legend["tiles"]))  # a bare {char: tags} map
    again = eng.load(tmp_path / "mario-1-1.txt", format="vglc")
    assert again.tileset.name == "legend" and level.tileset.name == "smb"  # named after the legend file
    assert again.tileset.tiles == level.tileset.tiles and np.array_equal(again.tiles, level.tiles)


def _plain(tmp_path, text, legend=None):
    (tmp_path / "u.vglc.txt").write_text(text)
    (tmp_path / "u.legend.json").write_text(json.dumps(legend or {"tiles": {"#": ["solid", "wall"],
                                                                             ".": ["passable", "floor"]}}))
    return tmp_path / "u.vglc.txt"


@pytest.mark.parametrize("text,legend,message", [
    ("###\n#.#\n#Z#\n", None, r"u\.vglc\.txt: line 3 column 2: character 'Z' is not in the legend /\S+/u\.legend\.json"),
    ("###\n#.\n###\n", None, r"line 2: 2 characters, expected 3"),
    ("", None, r"empty level"),
    ("#.\n", {"tiles": {"#": "wall", "..": ["floor"]}}, r"tiles: key '\.\.' is not one character"),
    ("#.\n", {"tiles": {"#": ["wall"], ".": [1]}}, r"tiles\.\.: expected a list of tag strings"),
    ("#.\n", {"tiles": {}}, r"tiles: expected a non-empty map"),
    ("#.\n", {"tiles": {"#": ["wall"], ".": ["floor"]}, "conjure": {"schema": "conjure.vglc/9"}},
     r"conjure\.schema: expected 'conjure\.vglc/1'"),
])
def test_bad_vglc_is_a_one_line_input_error(eng, tmp_path, text, legend, message):
    path = _plain(tmp_path, text, legend)
    with pytest.raises(InputError, match=message) as ei:
        eng.load(path)
    assert "\n" not in str(ei.value)


def test_malformed_legend_and_missing_legend(eng, tmp_path):
    path = _plain(tmp_path, "#.\n")
    (tmp_path / "u.legend.json").write_text("{\"tiles\": ")
    with pytest.raises(InputError, match=r"u\.legend\.json: malformed or truncated JSON"):
        eng.load(path)
    (tmp_path / "u.legend.json").unlink()
    with pytest.raises(InputError, match=r"u\.vglc\.txt: no legend: expected u\.legend\.json beside it"):
        eng.load(path)
    r = run_cli("info", path)
    assert r.returncode == 2 and len(r.stderr.decode().strip().splitlines()) == 1


def test_entities_typed_into_the_text_become_entities(eng, levels, tmp_path):
    level = levels[0]  # dungeon
    path = tmp_path / "d.vglc.txt"
    eng.export(level, path)
    lines = path.read_text().splitlines()
    floor = level.tileset.id("floor")
    ys, xs = np.nonzero(level.tiles == floor)
    taken = {(e.x, e.y) for e in level.entities}
    x, y = next((int(x), int(y)) for x, y in zip(xs, ys) if (x, y) not in taken)
    lines[y] = lines[y][:x] + "E" + lines[y][x + 1:]
    path.write_text("\n".join(lines) + "\n")
    back = eng.load(path)
    assert back.entities[:-1] == level.entities
    new = back.entities[-1]
    assert (new.id, new.kind, new.x, new.y, new.properties) == (f"enemy-{x}-{y}", "enemy", x, y, {})
    assert np.array_equal(back.tiles, level.tiles)  # the enemy stands on the kind's usual tile (floor)


def test_levels_vglc_cannot_hold_are_refused(eng, tmp_path, levels):
    ts = Tileset("t", [TileDef(0, "a", "#"), TileDef(1, "b", "#")])
    two = Level({"tiles": np.zeros((2, 2), dtype=np.uint8)}, ts)
    with pytest.raises(InputError, match=r"tiles\[1\]\.char: '#' is also the char of tile 'a'"):
        eng.export(two, tmp_path / "x.vglc.txt")
    ts = Tileset("t", [TileDef(0, "a", "#")])
    layered = Level({"a": np.zeros((2, 2), dtype=np.uint8), "b": np.zeros((2, 2), dtype=np.uint8)}, ts)
    with pytest.raises(InputError, match="holds one tile layer; this level has 2"):
        eng.export(layered, tmp_path / "x.vglc.txt")
    assert not list(tmp_path.iterdir())


def test_odd_entities_and_metadata_round_trip(eng, tmp_path):
    ts = Tileset("t", [TileDef(0, "floor", "@"), TileDef(1, "wall", "E", (1, 2, 3), {"solid": True})])
    tiles = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.uint8)
    ents = [Entity("a", "spawn", 1, 1, {"x": 1.5}), Entity("b", "enemy", 1, 1, {"hp": 2}),
            Entity("c", "weird kind", 0, 0, {"ok": True})]
    level = Level({"floor plan": tiles}, ts, ents, [], {"seed": 2 ** 64 - 1, "n": None})
    path = tmp_path / "odd.vglc"
    files = eng.export(level, path)
    assert files[1].name == "odd.legend.json"
    legend = json.loads(files[1].read_text())["tiles"]
    assert legend["@"] == ["floor", "passable"]
    spawn_char = next(c for c, v in legend.items() if v == ["entity", "spawn"])
    assert spawn_char not in "@E"  # tiles own their chars; entity kinds take free ones
    assert eng.load(path) == level


def test_cli_generate_and_info(tmp_path):
    path = tmp_path / "p.vglc.txt"
    r = run_cli("generate", "level", "-g", "platformer", "-s", "3", "-o", path, "-O", "entities=none")
    assert r.returncode == 0, r.stderr
    assert legend_path(path).is_file()
    r = run_cli("info", path)
    assert r.returncode == 0 and b"generator: platformer v" in r.stdout


# ============================================================================================ previews
def test_level_sheet_is_a_grid_of_previews(levels):
    sheet = level_sheet(levels[:5], tile_size=2, columns=2, gap=3)
    cw = max(lv.width for lv in levels[:5]) * 2
    ch = max(lv.height for lv in levels[:5]) * 2
    assert sheet.size == (3 + 2 * (cw + 3), 3 + 3 * (ch + 3)) and sheet.mode == "RGB"
    px = np.asarray(sheet)
    second = level_rgb(levels[1], 2)
    x0, y0 = 3 + cw + 3, 3
    assert np.array_equal(px[y0:y0 + second.shape[0], x0:x0 + second.shape[1]], second)
    assert tuple(px[0, 0]) == (24, 22, 30)
    assert image_png(sheet) == image_png(level_sheet(levels[:5], tile_size=2, columns=2, gap=3))
    assert level_sheet([], 4, 4).size == (5, 5)
    assert level_sheet(levels[:2], 1, 8).size[1] == 2 + max(lv.height for lv in levels[:2]) + 2
    with pytest.raises(ValueError, match="columns"):
        level_sheet(levels, 2, 0)
