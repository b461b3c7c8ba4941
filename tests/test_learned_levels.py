"""dungeon-vae and platformer-gan: registration, lazy torch, corpora, rules, training errors (each generator's own
tests: tests/test_dungeon_vae.py, tests/test_platformer_gan.py)."""
import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT, run_cli, run_py

GENS = ("dungeon-vae", "platformer-gan")
MODELS = ROOT / "plugins" / "data" / "models"


def test_engine_does_not_import_torch():
    r = run_py("import sys, engine; e = engine.Engine(); "
               "assert 'dungeon-vae' in [g.id for g in e.generators()]; "
               "import engine.eval_levels; print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_listed():
    r = run_cli("list", "--json")
    assert r.returncode == 0, r.stderr
    ids = json.dumps(json.loads(r.stdout))
    for g in GENS:
        assert f'"{g}"' in ids

# --------------------------------------------------------------------------------------------- corpora
CORPORA = ROOT / "plugins" / "data" / "corpora"
MARIO = CORPORA / "mario-like"
ZELDA = CORPORA / "zelda-like"
ZELDA_LEGEND = CORPORA / "legends" / "zelda-like.json"


def test_vglc_game_folder_as_published_reads_with_parent_legend():
    from plugins.learned_levels.corpus import load_corpus, tile_tags

    c = load_corpus([MARIO / "Processed"])
    assert c.view == "side" and len(c.grids) >= 12 and not c.skipped
    assert {g.shape[0] for g in c.grids} == {14} and all(150 <= g.shape[1] <= 300 for g in c.grids)
    assert sorted(t.char for t in c.tileset.tiles) == sorted("XS-?QE<>[]oBb")
    assert tile_tags(c.tileset.tiles[[t.char for t in c.tileset.tiles].index("<")]) == \
        ["solid", "top-left pipe", "pipe"]
    assert any(p.endswith("mario-like.json") for p, _ in c.files)  # the legend is a file used
    train, held = c.split()
    assert len(held) == round(len(c.grids) * 0.15) and not set(train) & set(held)
    assert c.split(seed=1) != (train, held) and c.split() == (train, held)


CASTLE = ["X" * 48, "X" * 48,
          "XXX---------XXXX--------------XXX---------------",
          "XX-----------------------------X----------------",
          "X-----------------------------------------------",
          "X-----------------------------------------------",
          "X-----------------------XXXX--------------------",
          "X-----------------E-----------------------------",
          "XXXXX-----------XXXXX--------------------XX-----",
          "XXXXX-------E---XXXXX----------------XXXXXXX----",
          "XXXXXXXXXX---XXXXXXXXX----XXXXXX---XXXXXXXXXXXXX",
          "XXXXXXXXXX---XXXXXXXXX----XXXXXX---XXXXXXXXXXXXX",
          "XXXXXXXXXXLLLXXXXXXXXXLLLLXXXXXXLLLXXXXXXXXXXXXX",
          "XXXXXXXXXXLLLXXXXXXXXXLLLLXXXXXXLLLXXXXXXXXXXXXX"]
CORRIDOR = ["X" * 48, "X" * 48] + ["-" * 48] * 2 + [
            "-------TTTT----------------TTTT-----------------"] + ["-" * 48] * 2 + [
            "------------------TTTT--------------------------", "-" * 48,
            "---<>------------------------<>-----------------",
            "---[]--------E---------------[]-------E---------",
            "---[]------------------------[]-----------------",
            "XXXXXXXXXXXXXXXXX---XXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "XXXXXXXXXXXXXXXXX---XXXXXXXXXXXXXXXXXXXXXXXXXXXX"]


def test_ceilinged_side_view_levels_are_side_view(tmp_path):
    """Castle/underground levels with a solid top row have gravity too: a floor heavier than the ceiling
    (the bottom third) or, when ceiling and floor weigh the same, side-view tags (pipes, platforms) say so;
    a walled top-down corpus stays top-down."""
    from plugins.learned_levels.corpus import detect_view, load_corpus

    base = {"X": ["solid", "ground"], "-": ["passable", "empty"], "L": ["hazard", "lava", "passable"],
            "E": ["enemy", "damaging", "passable"]}
    for name, rows, extra in (("castle", CASTLE, {}),
                              ("corridor", CORRIDOR, {"<": ["solid", "top-left pipe", "pipe"],
                                                      ">": ["solid", "top-right pipe", "pipe"],
                                                      "[": ["solid", "left pipe", "pipe"],
                                                      "]": ["solid", "right pipe", "pipe"],
                                                      "T": ["solid", "platform"]})):
        d = tmp_path / name / "Processed"
        d.mkdir(parents=True)
        (tmp_path / name / f"{name}.json").write_text(json.dumps({"tiles": {**base, **extra}}))
        for i in range(3):  # the same level shifted: three levels
            (d / f"{name}-{i}.txt").write_text("".join(r[i * 5:] + r[:i * 5] + "\n" for r in rows))
        c = load_corpus([d])
        assert c.view == "side" and len(c.grids) == 3, name
        solid = np.array([bool({"solid"} & set(t)) for t in c.tags] + [False])
        assert all(solid[g[0]].mean() >= solid[g[-1]].mean() for g in c.grids)  # top row: no help here
        if name == "corridor":  # ceiling and floor alike: the tags decide
            assert detect_view(c.grids, solid) == "top" and detect_view(c.grids, solid, c.tags) == "side"
    assert load_corpus([ZELDA], legend=ZELDA_LEGEND).view == "top"
    assert load_corpus([MARIO / "Processed"]).view == "side"


def test_top_down_corpus_needs_a_legend_and_reads_rooms():
    from engine.errors import InputError
    from plugins.learned_levels.corpus import load_corpus

    with pytest.raises(InputError) as e:
        load_corpus([ZELDA])
    msg = str(e.value)
    assert "zelda-like-1.txt, zelda-like-10.txt, zelda-like-2.txt (+7 more): no legend" in msg
    assert "zelda-like-1.json" in msg and "README.txt: not a level" in msg
    assert len(e.value.skipped) == 21
    c = load_corpus([ZELDA], legend=ZELDA_LEGEND)
    assert c.view == "top" and c.room == (11, 16) and len(c.tileset.tiles) >= 8
    assert all(g.shape[0] % 11 == 0 and g.shape[1] % 16 == 0 for g in c.grids)
    assert {r for _, r in c.skipped} >= {"not a level: a README/notes file"}


def test_fitted_rules_pass_the_corpora_and_round_trip():
    from plugins.learned_levels.corpus import load_corpus
    from plugins.learned_levels.rules import Rules, fit_rules

    for c in (load_corpus([MARIO]), load_corpus([ZELDA], legend=ZELDA_LEGEND)):
        r = fit_rules(c)
        assert r.report["corpus_pass"] == 1.0, r.report["failures"]
        again = Rules.from_dict(json.loads(json.dumps(r.to_dict())))
        assert all(again.problems(g) == [] for g in c.grids)
        broken = c.grids[0].copy()
        if c.view == "side":  # a wall of solid tiles across the whole level
            solid = int(np.nonzero(c.role_mask("solid"))[0][0])
            broken[:, broken.shape[1] // 2] = solid
        else:  # wall in every stairs tile's neighbourhood
            wall = int(np.nonzero(c.role_mask("solid"))[0][0])
            for y, x in np.argwhere(c.role_mask("stairs")[broken]):
                broken[y - 1:y + 2, x - 1:x + 2] = wall
                broken[y, x] = c.grids[0][y, x]
        assert r.problems(broken)


def test_side_view_rules_fit_the_corpus_not_a_default():
    """A corpus with 5-wide gaps needs jumps 5 wide: the fit finds it, the 4x4 default would reject it."""
    from plugins.learned_levels.corpus import load_corpus
    from plugins.learned_levels.rules import fit_rules

    c = load_corpus([MARIO])
    g = c.grids[0].copy()
    ground = [t.id for t in c.tileset.tiles if t.char == "X"][0]
    air = [t.id for t in c.tileset.tiles if t.char == "-"][0]
    g[:, 20:40] = air
    g[12:, 20:40] = ground
    g[12:, 28:33] = air  # a 5-wide gap
    c.grids = [g]
    c.sources = ["x"]
    r = fit_rules(c)
    assert r.params["jump_distance"] >= 6 and r.report["corpus_pass"] == 1.0


def test_legend_search_stops_at_the_data_folders_parent(tmp_path, monkeypatch):
    """--data x/zel/Processed with no legend in x/zel must not take an unrelated legend from x/; the game's
    legend one folder above Processed/ is found; a legend is named by its path (relative to the cwd)."""
    from engine.errors import InputError
    from plugins.learned_levels.corpus import load_corpus

    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "g1.legend.json").write_text(json.dumps({"tiles": {"X": ["solid"], "-": ["passable"]}}))
    proc = tmp_path / "x" / "zel" / "Processed"
    proc.mkdir(parents=True)
    (proc / "room.txt").write_text("WWWW\nW--W\nWWWW\n")
    with pytest.raises(InputError) as e:
        load_corpus([proc])
    assert "g1.legend.json" not in str(e.value)
    assert e.value.skipped[0][1].startswith("no legend:") and "up to x/zel " in e.value.skipped[0][1]
    with pytest.raises(InputError):  # the same with the file itself as the --data root
        load_corpus([proc / "room.txt"])
    game = {"tiles": {"W": ["solid", "wall"], "-": ["passable", "floor"]}}
    (tmp_path / "x" / "zel" / "zel.json").write_text(json.dumps(game))
    for root in (proc, Path("x/zel/Processed"), proc / "room.txt", tmp_path / "x" / "zel"):
        c = load_corpus([root])
        assert len(c.grids) == 1 and [Path(p).name for p in c.legends] == ["zel.json"], root
    (proc / "bad.txt").write_text("WWWW\nW-ZW\n")
    c = load_corpus([proc])
    assert c.skipped == [(str(proc / "bad.txt"), "line 2 column 3: character 'Z' is not in the legend x/zel/zel.json")]


def test_held_out_split_matches_path_and_hash_not_file_name(tmp_path, monkeypatch):
    """Two --data folders both holding level1.txt: only the one the card holds out is held out, also when the
    card's files are found from another working directory (beside the weights)."""
    from engine.weights import file_digest
    from plugins.learned_levels.corpus import load_corpus
    from plugins.learned_levels.model import LevelModel

    legend = {"tiles": {"X": ["solid", "ground"], "-": ["passable", "empty"]}}
    rows = ["----\n----\nXXXX\n", "----\n-XX-\nXXXX\n", "----\n----\nX--X\n", "--X-\n----\nXXXX\n"]
    names = []
    for i, (folder, name) in enumerate([("a", "level1.txt"), ("b", "level1.txt"), ("a", "level2.txt"),
                                        ("b", "level2.txt")]):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "game.json").write_text(json.dumps(legend))
        (tmp_path / folder / name).write_text(rows[i])
        names.append(f"{folder}/{name}")
    monkeypatch.chdir(tmp_path)
    data = [{"path": p, "sha256": file_digest(tmp_path / p)} for p in names + ["a/game.json", "b/game.json"]]
    card = {"data": data, "split": {"held_out": ["b/level1.txt"]}}
    for cwd in (tmp_path, tmp_path / "a"):
        monkeypatch.chdir(cwd)
        m = object.__new__(LevelModel)
        m.card, m.path, m._corpus = card, tmp_path / "model.safetensors", None
        c = m.corpus()
        train, held = m.split(c)
        assert [Path(c.sources[i]).relative_to(tmp_path) if Path(c.sources[i]).is_absolute()
                else Path(c.sources[i]) for i in held] == [Path("b/level1.txt")], cwd
        assert len(train) == 3
    monkeypatch.chdir(tmp_path)  # a corpus read elsewhere: a namesake with other bytes is not held out
    (tmp_path / "b" / "level1.txt").write_text(rows[3])
    c = load_corpus([tmp_path / "a", tmp_path / "b"])
    m = object.__new__(LevelModel)
    m.card, m.path, m._corpus = card, tmp_path / "model.safetensors", None
    assert m.split(c) == c.split()


@pytest.mark.parametrize("case", ["empty", "junk", "missing-char", "mixed-heights", "mixed-heights-tie"])
def test_bad_corpora_give_per_file_reasons(tmp_path, case):
    from engine.errors import InputError
    from plugins.learned_levels.corpus import load_corpus

    legend = {"tiles": {"X": ["solid", "ground"], "-": ["passable", "empty"]}}
    (tmp_path / "game.json").write_text(json.dumps(legend))
    d = tmp_path / "Processed"
    d.mkdir()
    if case == "junk":
        (d / "a.txt").write_bytes(b"\x00\x01\x02binary")
        (d / "b.txt").write_text("ragged\nlines here\n")
    elif case == "missing-char":
        (d / "a.txt").write_text("--Z-\nXXXX\n")
    elif case == "mixed-heights":
        for i in range(3):
            (d / f"a{i}.txt").write_text("----\n----\nXXXX\n")
        (d / "tall.txt").write_text("----\n----\n----\nXXXX\n")
        c = load_corpus([d])
        assert len(c.grids) == 3 and len(c.skipped) == 1
        assert "tall.txt" in c.skipped[0][0] and "4 rows" in c.skipped[0][1]
        return
    elif case == "mixed-heights-tie":  # a truncated 3-row file must not win a tie against a 4-row one
        (d / "a.txt").write_text("----\n----\n----\nXXXX\n")
        (d / "b.txt").write_text("----\n----\nXXXX\n")
        with pytest.raises(InputError) as e:
            load_corpus([d])
        msg = str(e.value)
        assert "\n" not in msg and f"3 rows ({d / 'b.txt'}) and 4 rows ({d / 'a.txt'})" in msg
        assert sorted((Path(p).name, r.split(":")[0]) for p, r in e.value.skipped) == \
            [("a.txt", "4 rows high"), ("b.txt", "3 rows high")]
        for i in range(2):  # the most common height wins, taller or not
            (d / f"c{i}.txt").write_text("----\n----\n----\nXXXX\n")
        c = load_corpus([d])
        assert {g.shape[0] for g in c.grids} == {4} and len(c.grids) == 3
        assert [Path(p).name for p, _ in c.skipped] == ["b.txt"] and "3 rows high" in c.skipped[0][1]
        return
    with pytest.raises(InputError) as e:
        load_corpus([d])
    msg = str(e.value)
    if case == "empty":
        assert "no level could be read" in msg
    elif case == "junk":
        assert "a.txt: not a level: a binary file" in msg and "b.txt: line 1 column 1: character 'r'" in msg
    else:
        assert f"a.txt: line 1 column 3: character 'Z' is not in the legend {tmp_path / 'game.json'}" in msg
    assert [Path(p).name for p, _ in e.value.skipped] == sorted(p.name for p in d.iterdir())


# --------------------------------------------------------------------------------------------- end to end
def _card(folder):
    text = (folder / "model.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    return json.loads(text)


def test_must_show_side_view_train_generate_export_load_back(tmp_path):
    """Train platformer-gan on the VGLC-layout Mario-like game folder exactly as the docs say, generate in its
    tileset, export VGLC text and Tiled, and read both back."""
    from plugins.learned_levels.corpus import load_corpus

    out = tmp_path / "gan"
    r = run_cli("train", "platformer-gan", "--data", MARIO, "--epochs", "1", "-O", "tiny=1", "--out", out)
    assert r.returncode == 0, r.stderr
    assert b"README.txt: not a level" in r.stderr and b"passing: 100%" in r.stderr
    card = _card(out)
    used = [d["path"] for d in card["data"]]
    assert len(used) == 17 and not any("README" in p for p in used) and any(p.endswith("mario-like.json") for p in used)
    assert card["rules"]["params"] == {"jump_height": 4, "jump_distance": 4}
    assert card["split"]["holdout"] == "by level" and len(card["split"]["held_out"]) == 2
    for fmt in ("vglc.txt", "tmj"):
        r = run_cli("generate", "level", "-g", "platformer-gan", "-p", f"weights={out}", "-p", "width=64", "-s", "2",
                    "-o", tmp_path / f"lv.{fmt}")
        assert r.returncode == 0, r.stderr
    text = (tmp_path / "lv.vglc.txt").read_text().splitlines()
    assert len(text) == 14 and all(len(x) == 64 for x in text) and set("".join(text)) <= set("XS-?QE<>[]oBb")
    legend = json.loads((tmp_path / "lv.legend.json").read_text())["tiles"]
    mario = json.loads((MARIO / "mario-like.json").read_text())["tiles"]
    assert {c: legend[c] for c in mario} == mario
    back_vglc = load_corpus([tmp_path / "lv.vglc.txt"])
    back_tiled = load_corpus([tmp_path / "lv.tmj"])
    chars = lambda c: ["".join(c.tileset[int(i)].char for i in row) for row in c.grids[0]]  # noqa: E731
    assert chars(back_vglc) == text and chars(back_tiled) == text
    pipe = [t for t in back_tiled.tileset.tiles if t.char == "<"][0]
    assert pipe.properties["pipe"] is True and pipe.properties["tags"] == "solid|top-left pipe|pipe"

def test_failed_training_leaves_nothing_and_names_every_file(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.md").write_text("hello")
    (bad / "level.txt").write_text("--Z-\nXXXX\n")
    (bad / "game.json").write_text(json.dumps({"tiles": {"X": ["solid"], "-": ["passable"]}}))
    out = tmp_path / "new" / "w"
    r = run_cli("train", "platformer-gan", "--data", bad, "--out", out)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert f"skipped {bad / 'notes.md'}: not a level: documentation" in err
    assert f"skipped {bad / 'level.txt'}: line 1 column 3: character 'Z'" in err
    assert err.strip().splitlines()[-1].startswith("conjure: error: no level could be read")
    assert "Traceback" not in err and not (tmp_path / "new").exists()


def test_divergence_stops_naming_the_learning_rate(eng, tmp_path):
    from engine.errors import InputError
    from engine.training import train

    data = [ROOT / "plugins/data/levels/dungeon/d000.vglc.txt"]
    with pytest.raises(InputError, match=r"diverged.*-O lr="):
        train(eng, "dungeon-vae", data, epochs=3, out=tmp_path / "w", show_progress=False, tiny=True, lr=1e6)
    assert not (tmp_path / "w").exists()


def test_top_down_corpus_refused_by_the_side_view_trainer(eng, tmp_path):
    from engine.errors import InputError
    from engine.training import train

    with pytest.raises(InputError, match="reads as top-down"):
        train(eng, "platformer-gan", [ZELDA], legend=ZELDA_LEGEND, epochs=1, out=tmp_path / "w",
              show_progress=False, tiny=True)


def test_device_falls_back_to_cpu_with_a_message(capsys):
    import torch

    from plugins.learned_common import resolve_device, torch_threads

    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("cuda") == "cpu"
        assert "no CUDA GPU" in capsys.readouterr().err
        assert resolve_device("auto") == "cpu"
    n = torch_threads()
    assert torch.get_num_threads() == n and torch_threads() == n


def test_evaluate_against_the_weights_own_corpus_and_data(eng, tmp_path):
    from engine.evaluate import evaluate

    m = evaluate(eng, "platformer-gan", count=4, seed=0, params={"width": 48})
    assert m["corpus"] == "the corpus platformer-gan (shipped weights) was trained on"
    assert m["corpus_split"] == "14 train / 2 held out"  # the shipped GAN is the mario-like corpus's
    assert m["corpus_levels"] == 16 and 0 <= m["fidelity_3x3"] <= m["fidelity_2x2"] <= 1
    assert {t["char"] for t in m["tiles"]} >= {"X", "-", "<", "E"}
    assert m["corpus_own"]["fidelity_2x2"] > 0.9 and m["playable_by_corpus_rules"] == 1.0
    m2 = evaluate(eng, "platformer", count=3, seed=0, data=[str(ROOT / "plugins/data/levels/platformer")])
    assert m2["corpus"].startswith("--data") and isinstance(m2["novelty"], float)


def test_tiled_maps_with_external_tileset_layers_and_objects(tmp_path):
    from PIL import Image

    from plugins.learned_levels.corpus import load_corpus, tile_tags

    im = Image.new("RGB", (32, 16), (150, 80, 30))
    im.paste((250, 220, 60), (16, 0, 32, 16))
    im.save(tmp_path / "tiles.png")
    prop = lambda n, t, v: {"name": n, "type": t, "value": v}  # noqa: E731
    (tmp_path / "tiles.tsj").write_text(json.dumps({
        "name": "mytiles", "tilewidth": 16, "tileheight": 16, "tilecount": 2, "columns": 2, "type": "tileset",
        "image": "tiles.png", "imagewidth": 32, "imageheight": 16,
        "tiles": [{"id": 0, "properties": [prop("name", "string", "ground"), prop("solid", "bool", True)]},
                  {"id": 1, "properties": [prop("name", "string", "coin"), prop("collectable", "bool", True)]}]}))
    layer = lambda n, d: {"type": "tilelayer", "name": n, "width": 4, "height": 3, "x": 0, "y": 0, "data": d}  # noqa: E731
    (tmp_path / "m1.tmj").write_text(json.dumps({
        "type": "map", "orientation": "orthogonal", "width": 4, "height": 3, "tilewidth": 16, "tileheight": 16,
        "infinite": False, "tilesets": [{"firstgid": 1, "source": "tiles.tsj"}],
        "layers": [layer("ground", [0] * 8 + [1] * 4), layer("items", [0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]),
                   {"type": "objectgroup", "name": "things", "objects": [
                       {"id": 1, "name": "g1", "type": "enemy", "x": 32, "y": 16, "width": 16, "height": 16}]}]}))
    c = load_corpus([tmp_path])
    names = {t.name: t for t in c.tileset.tiles}
    assert tile_tags(names["ground"]) == ["ground", "solid"] and "collectable" in tile_tags(names["coin"])
    assert c.view == "side" and c.grids[0].tolist() == [[0, 0, 0, 0], [0, names["coin"].id, names["enemy"].id, 0],
                                                         [names["ground"].id] * 4]
    assert c.entity_kind == {names["enemy"].id: "enemy"}
    assert sorted(r for _, r in c.skipped) == ["not a level: a Tiled tileset (read through the maps that use it)",
                                               "not a level: an image"]
    lv = c.level_from_grid(c.grids[0])  # the enemy object comes back as an entity
    assert [(e.kind, e.x, e.y) for e in lv.entities] == [("enemy", 2, 1)] and c.grid_of(lv).tolist() == c.grids[0].tolist()


def test_packs_are_read_level_by_level(eng, tmp_path):
    from engine.packs import write_pack
    from plugins.learned_levels.corpus import load_corpus

    write_pack(tmp_path / "p.cpk", [eng.generate("level", "platformer", s, {"width": 40}) for s in range(3)])
    c = load_corpus([tmp_path / "p.cpk"])
    assert len(c.grids) == 3 and c.view == "side" and c.sources[2].endswith("p.cpk#3")


def test_mapping_file_overrides_tags_view_and_room(tmp_path):
    from engine.errors import InputError
    from plugins.learned_levels.corpus import load_corpus, roles_of, tile_tags

    m = tmp_path / "map.json"
    m.write_text(json.dumps({"tiles": {"B": ["cannon", "passable"]}, "view": "top", "room": None}))
    c = load_corpus([MARIO], mapping=m)
    b = [t for t in c.tileset.tiles if t.char == "B"][0]
    assert tile_tags(b) == ["cannon", "passable"] and "solid" not in roles_of(tile_tags(b))
    assert c.view == "top" and c.room is None
    m.write_text(json.dumps({"view": "sideways"}))
    with pytest.raises(InputError, match="view: expected 'side' or 'top'"):
        load_corpus([MARIO], mapping=m)

def test_mirror_swaps_left_and_right_tiles_from_their_tags():
    from plugins.learned_levels.corpus import load_corpus, mirror_ids

    c = load_corpus([MARIO])
    m = mirror_ids(c.tileset)
    ch = {t.char: t.id for t in c.tileset.tiles}
    assert m[ch["<"]] == ch[">"] and m[ch["]"]] == ch["["] and m[ch["X"]] == ch["X"] and m[ch["?"]] == ch["?"]
    g = c.grids[0]
    flipped = m[g[:, ::-1]]
    top = "".join(c.tileset[int(i)].char for i in flipped.ravel())
    assert "<>" in top and "><" not in top  # pipe tops still read left to right


def test_vertical_side_view_levels_climb_from_bottom_to_top():
    from plugins.learned_levels.rules import Rules

    air, ground = 0, 1
    g = np.zeros((30, 8), dtype=np.uint8)
    g[-1, :] = ground
    for y in range(26, 0, -4):  # a platform every 4 rows, alternating sides
        g[y, (0 if (y // 4) % 2 else 4):(4 if (y // 4) % 2 else 8)] = ground
    r = Rules("side", [[], ["solid"]], {"jump_height": 4, "jump_distance": 3})
    assert r.endpoints(g)[0][1] == 28 and r.endpoints(g)[1][1] == 1
    assert r.problems(g) == []
    assert r._side_problems(g, 3, 3)  # jumps 3 high cannot climb 4-row steps


def test_evaluate_refuses_a_changed_namesake_of_the_training_corpus(tmp_path):
    """`evaluate -p weights=` measures against the very files trained on (the card's SHA-256), never against
    other files that happen to sit at the same paths."""
    import shutil

    game = tmp_path / "game"
    shutil.copytree(MARIO, game)
    out = tmp_path / "gan"
    r = run_cli("train", "platformer-gan", "--data", game, "--epochs", "1", "-O", "tiny=1", "--out", out)
    assert r.returncode == 0, r.stderr
    level = sorted((game / "Processed").glob("*.txt"))[0]
    rows = level.read_text().splitlines()
    rows[0] = "?" + rows[0][1:] if rows[0][0] != "?" else "-" + rows[0][1:]
    level.write_text("\n".join(rows) + "\n")
    r = run_cli("evaluate", "platformer-gan", "-p", f"weights={out}", "-p", "width=32", "--count", "2")
    assert r.returncode == 2 and b"differs from the one trained on" in r.stderr, r.stderr
