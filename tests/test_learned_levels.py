"""dungeon-vae and platformer-gan: registration, lazy torch, determinism, batching, params, validity,
training and the shipped weights."""
import json
from pathlib import Path

import numpy as np
import pytest

from engine.weights import check_safetensors, load_model_card

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


@pytest.mark.parametrize("gen", GENS)
def test_cli_byte_identical_across_processes(gen, tmp_path):
    outs = []
    for i in range(2):
        p = tmp_path / f"{i}.msgpack"
        r = run_cli("generate", "level", "-g", gen, "-s", "1", "-o", p)
        assert r.returncode == 0, r.stderr
        outs.append(p.read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("gen", GENS)
def test_batch_equals_one_by_one_and_valid(eng, gen):
    seeds = list(range(32))
    batch = eng.generate_batch("level", gen, seeds)
    for s in (0, 5, 17, 31):
        assert eng.generate("level", gen, s).to_dict() == batch[s].to_dict()
    for lv in batch:
        assert eng.problems(lv) == []
        m = lv.metadata
        assert isinstance(m["raw_valid"], bool) and isinstance(m["repaired"], bool)
        if m["raw_valid"]:
            assert not m["repaired"]
    assert len({lv.tiles.tobytes() for lv in batch}) == len(batch)


def test_dungeon_conditions_move_properties(eng):
    seeds = range(8)

    def mean(params, f):
        return np.mean([f(lv) for lv in eng.generate_batch("level", "dungeon-vae", seeds, params)])

    openness = lambda lv: lv.metadata["measured"]["openness"]  # noqa: E731
    assert mean({"openness": 0.55}, openness) > mean({"openness": 0.2}, openness) + 0.05
    enemies = lambda lv: len(lv.entities_of("enemy"))  # noqa: E731
    assert mean({"enemy_density": 0.12}, enemies) > mean({"enemy_density": 0.0}, enemies) + 2


def test_dungeon_blend_and_interpolate(eng):
    gen = eng.generator("dungeon-vae")
    a = eng.generate("level", "dungeon-vae", 3)
    path = gen.interpolate(3, 9, steps=4)
    assert len(path) == 4
    assert path[0].tiles.tobytes() == a.tiles.tobytes()
    mid = eng.generate("level", "dungeon-vae", 3, {"blend_seed": "9", "blend": 0.5})
    assert mid.tiles.tobytes() != a.tiles.tobytes()
    grids = gen.interpolate_levels(a, mid, steps=3)
    assert len(grids) == 3 and grids[0].shape == (32, 32)


def test_platformer_width_and_targets(eng):
    for w in (40, 130):
        lv = eng.generate("level", "platformer-gan", 2, {"width": w})
        assert lv.width == w and lv.height == 16
    few = [len(lv.entities_of("enemy")) for lv in eng.generate_batch("level", "platformer-gan", range(4),
                                                                     {"enemies": 0, "width": 64})]
    many = [len(lv.entities_of("enemy")) for lv in eng.generate_batch("level", "platformer-gan", range(4),
                                                                      {"enemies": 8, "width": 64})]
    assert np.mean(many) > np.mean(few) + 2
    lv = eng.generate("level", "platformer-gan", 4, {"search": 0, "repair": True})
    assert lv.metadata["search_generations"] == 0


@pytest.mark.parametrize("gen", GENS)
def test_shipped_weights_are_safetensors_with_cards(gen):
    folder = MODELS / gen
    files = list(folder.glob("*.safetensors"))
    assert files
    card = load_model_card(folder / "model.json")
    assert card["command"].startswith(f"conjure train {gen} --data plugins/data/levels/")
    assert card["generator"] == gen and card["data"] and card["metrics"]
    for f in files:
        assert f.stat().st_size <= 5 * 1024 * 1024
        check_safetensors(f.read_bytes(), str(f))
        assert f.name in [w["file"] for w in card["weights"]]


def test_train_tiny_loss_goes_down_and_weights_load(eng, tmp_path):
    from engine.training import train

    data = [ROOT / "plugins/data/levels/dungeon/d000.vglc.txt", ROOT / "plugins/data/levels/dungeon/d001.vglc.txt"]
    card = train(eng, "dungeon-vae", data, epochs=6, seed=1, out=tmp_path, show_progress=False, tiny=True)
    assert card["metrics"]["loss_last"] < card["metrics"]["loss_first"]
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "model.json").is_file()
    lv = eng.generate("level", "dungeon-vae", 0, {"weights": str(tmp_path)})
    assert eng.problems(lv) == []


def test_cli_train_gan_one_epoch(tmp_path):
    out = tmp_path / "gan"
    r = run_cli("train", "platformer-gan", "--data", "plugins/data/levels/platformer/p000.vglc.txt",
                "--epochs", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "model.json").read_text())
    assert card["command"].startswith("conjure train platformer-gan --data") and card["epochs"] == 1
    r = run_cli("generate", "level", "-g", "platformer-gan", "-p", f"weights={out}", "-p", "width=48",
                "-o", tmp_path / "x.json")
    assert r.returncode == 0, r.stderr


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


def test_top_down_corpus_needs_a_legend_and_reads_rooms():
    from engine.errors import InputError
    from plugins.learned_levels.corpus import load_corpus

    with pytest.raises(InputError) as e:
        load_corpus([ZELDA])
    msg = str(e.value)
    assert "no legend" in msg and "Graph" in msg and "README" in msg
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


@pytest.mark.parametrize("case", ["empty", "junk", "missing-char", "mixed-heights"])
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
    with pytest.raises(InputError) as e:
        load_corpus([d])
    msg = str(e.value)
    if case == "empty":
        assert "no level could be read" in msg
    elif case == "junk":
        assert "a.txt: not a level: a binary file" in msg and "b.txt: line 1 column 1: character 'r'" in msg
    else:
        assert "a.txt: line 1 column 3: character 'Z' is not in the legend game.json" in msg
