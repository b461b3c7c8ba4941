"""dungeon-vae: rooms composed into dungeons by a layout graph, controls, determinism (across processes, batch
vs single), validity, training round trip, the shipped weights, and maps without rooms."""
import json
import shutil

import numpy as np
import pytest

from engine.weights import check_safetensors, load_model_card

from .conftest import ROOT, run_cli

GEN = "dungeon-vae"
MODELS = ROOT / "plugins" / "data" / "models"
FREE = MODELS / GEN / "dungeon"  # the model of maps without rooms (plugins/data/levels/dungeon)
ZELDA = ROOT / "plugins" / "data" / "corpora" / "zelda-like"
ZELDA_LEGEND = ROOT / "plugins" / "data" / "corpora" / "legends" / "zelda-like.json"


def _chars(m, g):
    return ["".join(m.tileset.tiles[int(i)].char for i in row) for row in g]


def test_cli_byte_identical_across_processes(tmp_path):
    outs = []
    for i in range(2):
        p = tmp_path / f"{i}.msgpack"
        r = run_cli("generate", "level", "-g", GEN, "-s", "1", "-p", "room_count=4", "-o", p)
        assert r.returncode == 0, r.stderr
        outs.append(p.read_bytes())
    assert outs[0] == outs[1]


def test_batch_equals_one_by_one_and_dungeons_are_rooms_joined_by_doors(eng):
    seeds = list(range(10))
    batch = eng.generate_batch("level", GEN, seeds)
    for s in (0, 7):
        assert eng.generate("level", GEN, s).to_dict() == batch[s].to_dict()
    m = eng.generator(GEN).model()
    pats = m.patterns()
    chars = set()
    for lv in batch:
        md = lv.metadata
        assert eng.problems(lv) == [] and md["raw_valid"] and not md["repaired"]
        rooms = [r for r in lv.regions if r.kind == "room"]
        assert len(rooms) == md["rooms"] >= 2
        g = m.grid_of(lv)
        roles = {r.properties["role"] for r in rooms}
        assert {"start", "goal"} <= roles
        for r in rooms:  # every room: the corpus's 3x3 patterns (its walls round it), doors where the layout says
            t = g[r.y:r.y + r.h, r.x:r.x + r.w]
            assert pats.fidelity(t.astype(np.int64)) == 1.0
            text = _chars(m, t)
            assert ("D" in text[0]) == ("n" in r.properties["doors"])
            assert ("D" in "".join(row[-1] for row in text)) == ("e" in r.properties["doors"])
            assert ("S" in "".join(text)) == (r.properties["role"] == "goal")  # stairs: the goal room's
            chars |= set("".join(text))
    assert set("FBMPOIDSW") <= chars, chars  # rare kinds too (monsters, element blocks, stairs)
    assert len({lv.tiles.tobytes() for lv in batch}) == len(batch)


def test_any_size_from_one_room_to_a_grid(eng):
    one = eng.generate("level", GEN, 3, {"room_count": 1})
    assert (one.width, one.height) == (16, 11) and eng.problems(one) == []
    grid = eng.generate("level", GEN, 3, {"rooms_x": 3, "rooms_y": 2})
    assert (grid.width, grid.height) == (48, 22) and len(grid.regions) == 6 and eng.problems(grid) == []
    big = eng.generate("level", GEN, 3, {"room_count": 24})
    assert big.metadata["rooms"] == 24 and eng.problems(big) == []



@pytest.mark.parametrize("params", [{}, {"rooms": "many"}, {"rooms_x": 3, "rooms_y": 2}])
def test_every_dungeon_has_its_entrance_on_the_corpus_side_and_the_stairs_in_the_goal_room(eng, params):
    m = eng.generator(GEN).model()
    assert m.entrance == "s" and m.goal_kinds == {"stairs": 1}  # every zelda-like dungeon: entered from the south
    stairs = m.masks["stairs"][:m.classes]
    for lv in eng.generate_batch("level", GEN, list(range(12 if not params.get("rooms_x") else 3)), params):
        g = m.grid_of(lv)
        rooms = {r.properties["role"]: r for r in lv.regions if r.kind == "room" and r.properties["role"] != "room"}
        st, goal = rooms["start"], rooms["goal"]
        assert lv.metadata["entrance"] == "s" and st.y + st.h == lv.height  # the start room on the bottom edge
        assert "s" in st.properties["doors"]
        bottom = _chars(m, g[-1:, st.x:st.x + st.w])[0]
        assert "D" in bottom, bottom  # a door in the outer wall
        assert "D" not in _chars(m, np.delete(g[-1:], np.s_[st.x:st.x + st.w], axis=1))[0]  # only there
        assert int(stairs[g].sum()) == 1 and int(stairs[g[goal.y:goal.y + goal.h, goal.x:goal.x + goal.w]].sum()) == 1
        assert lv.metadata["goal_room"] != lv.metadata["start_room"] and eng.problems(lv) == []


def test_room_count_overrides_the_rooms_control(eng):
    lv = eng.generate("level", GEN, 2, {"rooms": "few", "room_count": 30})
    assert lv.metadata["rooms"] == 30 and "rooms" not in lv.metadata["asked"] and eng.problems(lv) == []
    assert eng.generate("level", GEN, 2, {"rooms": "many", "rooms_x": 2, "rooms_y": 1}).metadata["rooms"] == 2

@pytest.mark.parametrize("attr,buckets", [("rooms", ("few", "many")), ("enemies", ("none", "few", "many"))])
def test_controls_land_in_their_buckets(eng, attr, buckets):
    gen = eng.generator(GEN)
    m = gen.model()
    for b in buckets:
        levels = eng.generate_batch("level", GEN, list(range(4)), {attr: b, **({} if attr == "rooms" else
                                                                               {"room_count": 5})})
        for lv in levels:
            assert lv.metadata["measured"][attr] == b and lv.metadata["asked"] == {attr: b}
            if b == "none":
                assert not m.masks["enemy"][m.grid_of(lv)].any()


def test_controls_refused_where_the_corpus_has_no_such_tiles(eng):
    from engine.errors import InputError

    with pytest.raises(InputError, match="keys=few: this model has no keys control"):
        eng.generate("level", GEN, 1, {"keys": "few"})
    with pytest.raises(InputError, match="rooms=none"):
        eng.generate("level", GEN, 1, {"rooms": "none"})
    assert eng.generate("level", GEN, 1, {"keys": "none", "room_count": 2}).metadata["asked"] == {"keys": "none"}


def test_conditions_openness_and_enemy_density(eng):
    def enemies(params):
        lvs = eng.generate_batch("level", GEN, list(range(4)), dict(params, room_count=4))
        m = eng.generator(GEN).model()
        return [int(m.masks["enemy"][m.grid_of(lv)].sum()) for lv in lvs]

    assert sum(enemies({"enemy_density": 0.0})) == 0
    assert sum(enemies({"enemy_density": 0.05})) > 0
    lv = eng.generate("level", GEN, 2, {"openness": 0.5, "room_count": 3})
    assert lv.metadata["measured"]["openness"] > 0


def test_blend_and_interpolate(eng):
    gen = eng.generator(GEN)
    p = {"room_count": 3}
    a = eng.generate("level", GEN, 3, p)
    path = gen.interpolate(3, 9, steps=3, params=p)
    assert len(path) == 3 and path[0].tiles.tobytes() == a.tiles.tobytes()
    mid = eng.generate("level", GEN, 3, dict(p, blend_seed="9", blend=0.5))
    assert mid.tiles.tobytes() != a.tiles.tobytes()
    grids = gen.interpolate_levels(a, mid, steps=3)
    assert len(grids) == 3 and grids[0].shape == (11, 16)


def test_check_generator(eng):
    from engine.testing import check_generator

    check_generator(eng, GEN, seeds=[0, 5], params_cases=[{"room_count": 2}, {"openness": 0.4, "room_count": 3}])


def test_shipped_weights_are_the_room_model_with_cards():
    for folder, data in ((MODELS / GEN, "plugins/data/corpora/zelda-like --legend "
                                        "plugins/data/corpora/legends/zelda-like.json"),
                         (FREE, "plugins/data/levels/dungeon")):
        card = load_model_card(folder / "model.json")
        assert card["command"].startswith(f"conjure train {GEN} --data {data} ")
        assert card["command"].endswith(f"--out {folder.relative_to(ROOT)}")
        assert card["generator"] == GEN and card["data"] and card["metrics"]
        f = folder / "model.safetensors"
        assert f.stat().st_size <= 5 * 1024 * 1024
        check_safetensors(f.read_bytes(), str(f))
    assert load_model_card(MODELS / GEN / "model.json")["config"]["rooms"] == 1


def test_tiny_train_generate_round_trip(eng, tmp_path):
    """Train on the zelda-like corpus (tiny), generate a valid dungeon, and get the same bytes from the weights
    copied where the corpus files are not (pattern table, tile shares, door cells, buckets travel with them)."""
    from engine.training import train

    out = tmp_path / "w"
    card = train(eng, GEN, [ZELDA], legend=ZELDA_LEGEND, epochs=3, seed=1, out=out, show_progress=False,
                 tiny=True)
    assert card["config"]["rooms"] == 1 and card["config"]["cdim"] == 6
    assert len(card["history"]) == 3 and card["history"][-1]["train_loss"] < card["history"][0]["train_loss"]
    p = {"weights": str(out), "room_count": 3}
    lv = eng.generate("level", GEN, 0, p)
    assert eng.problems(lv) == [] and lv.metadata["rooms"] == 3
    m = eng.generator(GEN).model(str(out))
    assert m.patterns_source == "weights" and m.buckets is not None and m.rspec.doors["n"]
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(out / "model.safetensors", moved)
    doc = json.loads((out / "model.json").read_text())
    for d in doc["data"]:
        d["path"] = "nowhere/" + d["path"].split("/")[-1]
    (moved / "model.json").write_text(json.dumps(doc))
    again = eng.generate("level", GEN, 0, dict(p, weights=str(moved)))
    assert again.tiles.tobytes() == lv.tiles.tobytes()


def test_cli_train_top_down_then_generate_a_grid_of_rooms(tmp_path):
    out = tmp_path / "vae"
    r = run_cli("train", GEN, "--data", ZELDA, "--legend", ZELDA_LEGEND, "--epochs", "2", "-O", "tiny=1",
                "--out", out)
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "model.json").read_text())
    assert "--legend plugins/data/corpora/legends/zelda-like.json" in card["command"]
    assert card["corpus"]["room"] == [11, 16] and card["config"]["rooms"] == 1
    r = run_cli("generate", "level", "-g", GEN, "-p", f"weights={out}", "-p", "rooms_x=2", "-p", "rooms_y=1",
                "-s", "1", "-o", tmp_path / "d.vglc.txt")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "d.vglc.txt").read_text().splitlines()
    assert len(text) == 11 and all(len(x) == 32 for x in text) and set("".join(text)) <= set("FBMPOIDSW-")


def test_maps_without_rooms_window_model(eng):
    """The free-form model (plugins/data/levels/dungeon, 32x32 windows): valid levels with start, key and
    goal placed; decoded again (new draws, new latents) before any repair."""
    p = {"weights": str(FREE)}
    levels = eng.generate_batch("level", GEN, [0, 1], p)
    for lv in levels:
        assert (lv.width, lv.height) == (32, 32) and eng.problems(lv) == []
        assert lv.metadata["latent_tries"] >= 1 and "room_latents" in lv.metadata
        assert {e.kind for e in lv.entities} >= {"spawn", "exit", "key"}
    assert eng.generate("level", GEN, 1, p).to_dict() == levels[1].to_dict()
    from engine.errors import InputError

    with pytest.raises(InputError, match="maps without rooms"):
        eng.generate("level", GEN, 1, dict(p, rooms="few"))


def _locked_corpus(tmp_path, maps: int = 6):
    """zelda-like maps whose stairs room is behind locked doors (its door cells 'L'), with one key 'K' per
    locked cell on the floors of other rooms."""
    game = tmp_path / "locks" / "Processed"
    game.mkdir(parents=True)
    for f in sorted((ZELDA / "Processed").glob("zelda-like-*.txt"))[:maps]:
        rows = [list(r) for r in f.read_text().splitlines()]
        H, W = len(rows), len(rows[0])
        rooms = [(y, x) for y in range(0, H, 11) for x in range(0, W, 16)
                 if any(rows[y + a][x + b] != "-" for a in range(11) for b in range(16))]
        goal = next((y, x) for y, x in rooms if any(rows[y + a][x + b] == "S" for a in range(11) for b in range(16)))
        locked = 0
        for a in range(11):
            for b in range(16):
                if (a < 2 or a > 8 or b < 2 or b > 13) and rows[goal[0] + a][goal[1] + b] == "D":
                    rows[goal[0] + a][goal[1] + b] = "L"
                    locked += 1
        spots = [(y + 2, x + b) for y, x in rooms if (y, x) != goal for b in range(3, 13) if rows[y + 2][x + b] == "F"]
        for y, x in spots[:locked]:
            rows[y][x] = "K"
        (game / f.name).write_text("\n".join("".join(r) for r in rows) + "\n")
    legend = json.loads(ZELDA_LEGEND.read_text())
    legend["tiles"]["K"] = ["key", "passable"]
    legend["tiles"]["L"] = ["door", "locked", "passable"]
    (tmp_path / "locks" / "locks.json").write_text(json.dumps(legend))
    return game


def test_key_lock_progression_and_keys_control_on_a_corpus_with_locked_doors(eng, tmp_path):
    """Where the corpus's rooms have locked doors and keys: the goal room's doors are the corpus's locked-door
    cells, keys (one per locked cell) lie in rooms before it, and the goal is out of reach without them; the
    keys control is offered (none exact, a bucket lands)."""
    from engine.training import train

    out = tmp_path / "w"
    train(eng, GEN, [_locked_corpus(tmp_path)], epochs=12, seed=1, out=out, show_progress=False, tiny=True)
    gen = eng.generator(GEN)
    m = gen.model(str(out))
    assert m.locks and "keys" in m.available
    levels = eng.generate_batch("level", GEN, list(range(5)), {"weights": str(out), "room_count": 4})
    assert all(eng.problems(lv) == [] for lv in levels)
    locked_levels = [lv for lv in levels if lv.metadata["locked_sides"]]
    assert locked_levels  # the others: a goal door on a side the corpus never locks, kept open
    for lv in locked_levels:
        g = m.grid_of(lv)
        goal = next(r for r in lv.regions if r.properties["role"] == "goal")
        locked = int(m.masks["locked"][g[goal.y:goal.y + goal.h, goal.x:goal.x + goal.w]].sum())
        assert locked and int(m.masks["key"][g].sum()) >= locked and not m.masks["key"][
            g[goal.y:goal.y + goal.h, goal.x:goal.x + goal.w]].any()
        no_keys = g.copy()
        no_keys[m.masks["key"][g]] = m.cfg["floor"]
        assert m.rules.problems(no_keys)  # the stairs are behind the locks
    assert gen.level_controls({"weights": str(out)})["keys"][0] == "none"
    for b in ("none", "many"):  # the keys control: none exact (no lock then), a bucket lands
        lv = eng.generate("level", GEN, 2, {"weights": str(out), "room_count": 3, "keys": b})
        assert lv.metadata["measured"]["keys"] == b and eng.problems(lv) == []
