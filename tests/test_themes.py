"""Tile themes (engine/themes.py; the kenney theme cut by plugins/themes.py): the built-in CC0 theme, themed PNG
previews, themes from plugins, bad themes."""
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import engine
from engine import InputError
from engine.cli import main as cli_main
from engine import themes
from plugins import themes as kenney_plugin


@pytest.fixture(scope="module")
def dungeon(eng):
    return eng.generate("level", "dungeon", 3, {"width": 24, "height": 20})


def test_builtin_theme_has_its_licence_and_images():
    t = themes.theme("kenney")
    assert t.license == "CC0-1.0" and "CC0" in t.license_text and "Kenney" in t.source
    assert t.tile_size == 32 and {"wall", "floor", "ground", "water"} <= set(t.tiles) and "enemy" in t.entities
    assert all(a.shape == (32, 32, 4) and a.dtype == np.uint8 for a in [*t.tiles.values(), *t.entities.values()])
    assert "ground" in t.tops  # grass on the surface, earth below


def test_themed_png_draws_tiles_deterministically(eng, dungeon):
    a = eng.dumps(dungeon, "png", theme="kenney")
    assert a == eng.dumps(dungeon, "png", theme="kenney")  # same level, same bytes
    flat = eng.dumps(dungeon, "png", tile_size=16)
    img, base = (np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in (a, flat))
    assert img.shape == base.shape == (20 * 16, 24 * 16, 3)
    wall = dungeon.tileset["wall"].id
    y, x = map(int, np.argwhere(dungeon.tiles == wall)[0])
    cell = img[y * 16:(y + 1) * 16, x * 16:(x + 1) * 16]
    assert len(np.unique(cell.reshape(-1, 3), axis=0)) > 3  # textured, not one flat colour
    void = dungeon.tileset["void"].id  # unmapped tiles keep their flat colour
    y, x = map(int, np.argwhere(dungeon.tiles == void)[0])
    assert (img[y * 16, x * 16] == dungeon.tileset[void].color).all()


def test_surface_tiles_use_the_top_image(eng):
    level = eng.generate("level", "platformer", 2, {"width": 40})
    t = themes.theme("kenney")
    img = themes.level_rgb(level, t, 8, entities=False)
    ground = level.tileset["ground"].id
    col = int(np.argwhere(level.tiles[-1] == ground)[0][0])
    rows = np.flatnonzero(level.tiles[:, col] == ground)
    top, below = int(rows[0]), int(rows[-1])
    assert top != below
    cell = lambda r: img[r * 8:(r + 1) * 8, col * 8:(col + 1) * 8]  # noqa: E731
    assert not np.array_equal(cell(top), cell(below))  # grass above, earth below


def test_cli_theme_option_and_list(tmp_path, capsys):
    out = tmp_path / "d.png"
    assert cli_main(["generate", "level", "-s", "3", "-o", str(out), "-O", "theme=kenney", "-O", "tile_size=8"]) == 0
    assert Image.open(out).size[0] % 8 == 0
    assert cli_main(["generate", "level", "-s", "3", "-o", str(out), "-O", "theme=nope"]) == 2
    assert "unknown theme 'nope' (known: kenney" in capsys.readouterr().err
    assert cli_main(["generate", "character", "-s", "3", "-o", str(tmp_path / "c.png"), "-O", "theme=kenney"]) == 2
    assert "themes draw levels" in capsys.readouterr().err
    assert cli_main(["list", "themes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "kenney" and rows[0]["license"] == "CC0-1.0"


def _theme_folder(tmp_path, name="mossy", **changes):
    folder = tmp_path / name
    (folder / "img").mkdir(parents=True)
    Image.new("RGBA", (16, 16), (10, 200, 30, 255)).save(folder / "img" / "moss.png")
    (folder / "LICENSE").write_text("CC0 1.0: no rights reserved\n")
    m = {"name": name, "source": "drawn for this test", "license": "CC0-1.0", "license_file": "LICENSE",
         "tile_size": 16, "tiles": {"floor": "img/moss.png"}, "entities": {}}
    m.update(changes)
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def test_a_plugin_registers_a_theme(tmp_path, dungeon, monkeypatch):
    monkeypatch.setattr(themes, "_REGISTERED", {})
    t = themes.register_theme(_theme_folder(tmp_path))
    assert "mossy" in themes.themes() and themes.theme("mossy") is t
    img = themes.level_rgb(dungeon, t, 4)
    floor = dungeon.tileset["floor"].id
    y, x = map(int, np.argwhere(dungeon.tiles == floor)[0])
    assert tuple(img[y * 4 + 1, x * 4 + 1]) == (10, 200, 30)
    with pytest.raises(InputError, match="registered twice"):
        themes.register_theme(_theme_folder(tmp_path / "again"))


@pytest.mark.parametrize("changes, words", [
    ({"tiles": {"floor": "../../etc/passwd"}}, "relative path inside the theme folder"),
    ({"tiles": {"floor": "/etc/passwd"}}, "relative path inside the theme folder"),
    ({"tiles": {"floor": "img/missing.png"}}, "no such file"),
    ({"tiles": {"floor": "LICENSE"}}, "not a readable image"),
    ({"tiles": {"floor": {"picture": "img/moss.png"}}}, "expected an image path"),
    ({"tile_size": 1000}, "tile_size 1000 outside 4..128"),
    ({"name": "Bad Name"}, "must be lowercase"),
    ({"license_file": "NOPE"}, "no such file"),
    ({"source": 3}, "field 'source' is missing"),
])
def test_bad_themes_are_one_line_errors(tmp_path, changes, words):
    with pytest.raises(InputError, match=words) as e:
        themes.load_theme(_theme_folder(tmp_path, **changes))
    assert "\n" not in str(e.value)


def test_huge_image_is_refused(tmp_path):
    folder = _theme_folder(tmp_path)
    Image.new("RGBA", (600, 600)).save(folder / "img" / "moss.png")
    with pytest.raises(InputError, match="over 512x512"):
        themes.load_theme(folder)


def test_cut_kenney_reproduces_the_shipped_theme(tmp_path):
    """The shipped images are exactly what cut_kenney makes from the arcade wheel's CC0 art."""
    # Found without importing arcade: importing it opens pyglet's window machinery, which breaks (or is broken
    # by) any test that set pyglet.options["headless"] earlier in the process (tests/test_ldtk.py does).
    import importlib.util
    import os

    spec = importlib.util.find_spec("arcade")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("arcade (a test extra) ships the Kenney art; it is not installed")
    src = os.path.join(spec.submodule_search_locations[0], "resources", "assets", "images")
    out = kenney_plugin.cut_kenney(src, tmp_path / "kenney")
    shipped = kenney_plugin.BUILTIN_DIR / "kenney"
    assert themes.builtin_dir().resolve() == kenney_plugin.BUILTIN_DIR.resolve()
    made = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert made == sorted(p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file())
    for rel in made:
        assert (out / rel).read_bytes() == (shipped / rel).read_bytes(), rel
    shutil.rmtree(out)


class _FakeEntryPoint:
    """Stands for an installed distribution's ``conjure.themes`` entry point."""

    def __init__(self, name, value, load):
        self.name, self.value, self.group, self._load = name, value, themes.ENTRY_POINT_GROUP, load

    def load(self):
        return self._load()


def test_a_broken_theme_entry_point_breaks_only_itself(tmp_path, monkeypatch, dungeon):
    import importlib.metadata

    good = _theme_folder(tmp_path, name="mossy")

    def broken_import():
        raise ModuleNotFoundError("No module named 'their_themes'")

    eps = [_FakeEntryPoint("ruined", "their_themes:ruined", broken_import),
           _FakeEntryPoint("badfolder", "their_themes:folder", lambda: str(tmp_path / "nowhere")),
           _FakeEntryPoint("mossy", "their_themes:mossy", lambda: str(good))]
    scans = []

    def entry_points(group=None, **kw):
        scans.append(group)
        return list(eps) if group == themes.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(themes, "_ENTRY_POINTS", None)
    with pytest.warns(RuntimeWarning) as caught:
        found = themes.themes()
    warned = " | ".join(str(w.message) for w in caught)
    assert "'ruined'" in warned and "ModuleNotFoundError" in warned and "'badfolder'" in warned
    assert {"kenney", "mossy"} <= set(found) and "ruined" not in found  # the others still work
    assert themes.theme("kenney").name == "kenney" and themes.theme("mossy").name == "mossy"
    with pytest.raises(InputError, match="theme entry point 'ruined' .*broken.*ModuleNotFoundError") as e:
        themes.theme("ruined")  # only asking for the broken one fails, with its own message
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="'badfolder'.*no such file"):
        themes.theme("badfolder")
    themes.themes(), themes.describe_all()
    assert scans == [themes.ENTRY_POINT_GROUP]  # scanned once per process, not on every lookup
    assert themes.png_bytes(dungeon, "mossy", 4)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("ext", ["tmj", "tmx"])
def test_tiled_tileset_drawn_from_a_theme(eng, tmp_path, ext):
    """-O theme=NAME on a Tiled map: the tileset PNG has the theme's art in the slots of the tiles it maps, the
    rest as before; pytiled-parser still loads the map, and it reads back to the same level."""
    import pytiled_parser

    level = eng.generate("level", "platformer", 2, {"width": 40})
    plain = eng.export(level, tmp_path / f"plain.{ext}", tile_size=16)
    themed = eng.export(level, tmp_path / f"themed.{ext}", tile_size=16, theme="kenney")
    assert themed == eng.export(level, tmp_path / f"themed.{ext}", tile_size=16, theme="kenney")  # same names
    a, b = (np.asarray(Image.open(w[0]).convert("RGBA")) for w in (plain, themed))
    assert a.shape == b.shape
    cols = a.shape[1] // 16
    kenney = themes.theme("kenney")
    mapped = [t for t in level.tileset.tiles if kenney.image_for(t) is not None]
    assert mapped and len(mapped) < len(level.tileset.tiles)  # e.g. ground is art, sky keeps its slot
    for t in level.tileset.tiles:
        y, x = divmod(t.id, cols)
        same = np.array_equal(a[y * 16:(y + 1) * 16, x * 16:(x + 1) * 16], b[y * 16:(y + 1) * 16, x * 16:(x + 1) * 16])
        assert same == (t not in mapped), t.name
    m = pytiled_parser.parse_map(themed[-1])
    (ts,) = m.tilesets.values()
    assert (tmp_path / ts.image.name).resolve() == themed[0].resolve() and ts.image_width == b.shape[1]
    assert eng.load(themed[-1]) == level
    with pytest.raises(InputError, match="unknown theme 'nope'"):
        eng.export(level, tmp_path / f"bad.{ext}", theme="nope")
    assert not (tmp_path / f"bad.{ext}").exists()


def test_game_demo_floor_renders_with_theme_tiles(monkeypatch, capsys):
    """The demo draws its floors with the kenney theme by default: a headless floor shows the theme's wall art
    (not the flat patterned slot); --theme none keeps the flat colours; a bad --theme is one line, exit 2."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    monkeypatch.setenv("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    pygame = pytest.importorskip("pygame", reason="the demo draws with pygame-ce")
    from game_demo import __main__ as demo
    from game_demo.content import DEFAULT_THEME, TILE_SIZE, FloorSource, check_theme, tileset_tiles
    from game_demo.play import FloorState
    from game_demo.render import HUD_H, LOGICAL_SIZE, Renderer

    assert DEFAULT_THEME == "kenney" and demo.parse_args([]).theme == "kenney"
    assert check_theme("none") is None and check_theme(None) is None  # --theme none: flat colours
    source = FloorSource("theme-test")
    try:
        floor = source.get(1)
    finally:
        source.close()
    level = floor.level
    wall = level.tileset["wall"].id
    flat = tileset_tiles(source.engine, level, None)
    art = themes.theme("kenney").scaled(themes.theme("kenney").tiles["wall"], TILE_SIZE)
    assert not np.array_equal(floor.tileset_rgb[wall], flat[wall])
    want = themes._over(np.broadcast_to(np.array(level.tileset[wall].color, np.uint8), (16, 16, 3)), art)
    assert np.array_equal(floor.tileset_rgb[wall], want)  # exactly the theme's brick over the wall colour
    pygame.init()
    try:
        state = FloorState(floor)
        r = Renderer(pygame.display.set_mode(LOGICAL_SIZE, 0))
        r.draw_floor(state, "Floor 1")
        shown = pygame.surfarray.array3d(r.canvas).transpose(1, 0, 2)
    finally:
        pygame.quit()
    view_w, view_h = LOGICAL_SIZE[0], LOGICAL_SIZE[1] - HUD_H - 20
    h, w = level.tiles.shape
    cam_x = min(max(0, state.x * TILE_SIZE - view_w // 2), max(0, w * TILE_SIZE - view_w))
    cam_y = min(max(0, state.y * TILE_SIZE - view_h // 2), max(0, h * TILE_SIZE - view_h))
    busy = {(e.x, e.y) for e in level.entities} | {(state.x, state.y)}
    walls = [(x, y) for y in range(h) for x in range(w) if level.tiles[y, x] == wall and (x, y) not in busy
             and 0 <= x * TILE_SIZE - cam_x <= view_w - TILE_SIZE and 0 <= y * TILE_SIZE - cam_y <= view_h - TILE_SIZE]
    assert walls
    x, y = walls[0]
    px, py = x * TILE_SIZE - cam_x, y * TILE_SIZE - cam_y + HUD_H
    assert np.array_equal(shown[py:py + TILE_SIZE, px:px + TILE_SIZE], want)  # on screen: the theme's wall
    assert demo.main(["--headless", "--theme", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--theme" in err and "unknown theme 'nope'" in err and err.count("\n") == 1


def test_the_engine_lists_themes_without_importing_a_plugin():
    """The registry is engine/themes.py: `conjure list themes` and the server's theme list import no plugin
    module (the kenney theme's files are plugin data, found as package data); plugins.themes re-exports it."""
    from .conftest import run_py

    r = run_py("import sys, json, io, contextlib; from engine.cli import main\n"
               "buf = io.StringIO()\n"
               "with contextlib.redirect_stdout(buf): code = main(['list', 'themes', '--json'])\n"
               "print(code, [t['name'] for t in json.loads(buf.getvalue())], 'plugins.themes' in sys.modules)")
    assert r.stdout.split() == ["0", "['kenney']", "False"], r.stdout + r.stderr
    assert kenney_plugin.theme is themes.theme and kenney_plugin.register_theme is themes.register_theme
