"""level-lm: training through the engine, constrained decoding, controls, prompts, determinism, top-down rooms.

Tiny models are trained once per session on small slices of the corpora (a few seconds); the shipped
weights are checked where they exist."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import Engine
from engine.errors import InputError
from engine.testing import check_generator
from engine.training import train

ROOT = Path(__file__).resolve().parent.parent
MARIO = ROOT / "plugins" / "data" / "corpora" / "mario-like"
ZELDA = ROOT / "plugins" / "data" / "corpora" / "zelda-like"
ZELDA_LEGEND = ROOT / "plugins" / "data" / "corpora" / "legends" / "zelda-like.json"
SHIPPED = ROOT / "plugins" / "data" / "models" / "level-lm" / "model.safetensors"
SHIPPED_TOP = ROOT / "plugins" / "data" / "models" / "level-lm-top" / "model.safetensors"
PLUGINS = ["plugins.level_lm", "plugins.vglc", "plugins.formats", "plugins.tiled"]


def _engine() -> Engine:
    return Engine(load=PLUGINS, entry_points=False)


@pytest.fixture(scope="session")
def eng():
    return _engine()


@pytest.fixture(scope="session")
def side_model(tmp_path_factory):
    if not MARIO.is_dir():
        pytest.skip("mario-like corpus not present")
    out = tmp_path_factory.mktemp("lm-side")
    files = sorted((MARIO / "Processed").glob("*.txt"))[:4]
    card = train(_engine(), "level-lm", files, out=out, show_progress=False, tiny=1, steps=40, seed=3,
                 legend=MARIO / "mario-like.json")
    return out, card


@pytest.fixture(scope="session")
def top_model(tmp_path_factory):
    if not ZELDA.is_dir():
        pytest.skip("zelda-like corpus not present")
    out = tmp_path_factory.mktemp("lm-top")
    files = sorted((ZELDA / "Processed").glob("zelda-like-*.txt"))[:3]
    card = train(_engine(), "level-lm", files, out=out, show_progress=False, tiny=1, steps=40,
                 legend=ZELDA_LEGEND)
    return out, card


def _grid(eng, lv):
    from plugins.level_lm import level_grid, load

    return level_grid(lv, load(lv.metadata["params"]["weights"]).spec)


# ------------------------------------------------------------------------------------------ prompts
def test_prompt_parsing():
    from plugins.learned_level_lm.controls import parse_prompt

    assert parse_prompt("many pipes, no enemies, high elevation", "side") == \
        {"pipes": "many", "enemies": "none", "elevation": "many"}
    assert parse_prompt("a few gaps and some enemies", "side") == {"gaps": "few", "enemies": "some"}
    assert parse_prompt("flat", "side") == {"elevation": "none"}
    assert parse_prompt("many rooms, no enemies", "top") == {"rooms": "many", "enemies": "none"}
    with pytest.raises(InputError, match="'dragons'"):
        parse_prompt("many dragons", "side")
    with pytest.raises(InputError, match="no quantity"):
        parse_prompt("pipes", "side")
    with pytest.raises(InputError, match="not an attribute of side-view"):
        parse_prompt("many rooms", "side")


def test_prompt_unknown_word_is_an_input_error(eng, side_model):
    out, _ = side_model
    with pytest.raises(InputError, match="^level-lm: prompt: .*'castles'"):
        eng.generate("level", "level-lm", 0, {"weights": str(out), "prompt": "many castles"})


# ------------------------------------------------------------------------------------------ patterns
def test_strip_dp_never_dead_ends():
    from plugins.learned_level_lm.patterns import Patterns

    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 3, (30, 6)) for _ in range(3)]
    p = Patterns.from_strips(seqs, 4)
    S = np.full((20, 6), 3)
    border = np.full(8, 3)
    for t in range(20):
        a = None if t == 0 else (border if t == 1 else np.r_[3, S[t - 2], 3])
        b = border if t == 0 else np.r_[3, S[t - 1], 3]
        unary = np.ones((6, 4), bool)
        unary[:, 3] = False
        col = p.column(a, b, unary)
        if not col.feasible:
            break
        cur = [3, 3]
        for y in range(6):
            m = col.masks[y][cur[y], cur[y + 1]][:3]
            assert m.any(), "an allowed prefix must always have an allowed next tile"
            cur.append(int(np.flatnonzero(m)[rng.integers(m.sum())]))
        S[t] = cur[2:]
    assert t > 0
    from plugins.learned_level_lm.patterns import pad, window_codes

    codes = window_codes(pad(S[:t], 3), 4).reshape(t, 6)[:-1]  # the last window column holds the right border
    assert np.isin(codes, p.codes).all()


# ------------------------------------------------------------------------------------------ side view
def test_side_training_card_and_tileset(side_model, eng):
    out, card = side_model
    assert (out / "model.json").is_file() and card["generator"] == "level-lm"
    assert card["metrics"]["rules"]["params"]["jump_height"] >= 1
    assert "level-lm" in card["command"] and "-O tiny=1" in card["command"]
    lv = eng.generate("level", "level-lm", 5, {"weights": str(out), "width": 40})
    chars = {t.char for t in lv.tileset.tiles}
    assert {"X", "-", "<", ">", "[", "]", "E"} <= chars  # the corpus's own characters
    assert lv.tiles.shape == (14, 40)


def test_side_contract_determinism_batch_and_process(eng, side_model):
    out, _ = side_model
    check_generator(eng, "level-lm", seeds=[0, 7, "x"],
                    params_cases=[{"weights": str(out), "width": 32},
                                  {"weights": str(out), "width": 40, "prompt": "no enemies, some pipes"}],
                    subprocess_plugins=PLUGINS)


def test_side_constraints_hold(eng, side_model):
    out, _ = side_model
    levels = eng.generate_batch("level", "level-lm", list(range(6)), {"weights": str(out), "width": 48})
    for lv in levels:
        # a level whose sampler fell back outside the corpus patterns is resampled, never returned
        assert lv.metadata["pattern_fidelity"] == 1.0 and lv.metadata["pattern_fallbacks"] == 0
        assert lv.metadata["playable"] and lv.metadata["tries"] >= 1


@pytest.mark.parametrize("attr,check", [
    ("enemies", lambda m, g: not m.spec.masks["enemy"][g].any()),
    ("pipes", lambda m, g: not m.spec.masks["pipe"][g].any()),
    ("gaps", lambda m, g: m.spec.masks["solid"][g[-1]].all()),
])
def test_side_none_controls_are_exact(eng, side_model, attr, check):
    from plugins.level_lm import load

    out, _ = side_model
    m = load(str(out))
    for lv in eng.generate_batch("level", "level-lm", [1, 2, 3], {"weights": str(out), "width": 40, attr: "none"}):
        assert check(m, _grid(eng, lv)), attr


def test_side_controls_refused_where_they_do_not_apply(eng, side_model):
    out, _ = side_model
    with pytest.raises(InputError, match="rooms"):
        eng.generate("level", "level-lm", 0, {"weights": str(out), "rooms": "many"})


def test_bad_weights_are_input_errors(eng, tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(InputError):
        eng.generate("level", "level-lm", 0, {"weights": str(bad)})
    with pytest.raises(InputError, match="no such file"):
        eng.generate("level", "level-lm", 0, {"weights": str(tmp_path / "nope")})


def test_cache_matches_full_window(side_model):
    from plugins.level_lm import load

    out, _ = side_model
    net = load(str(out)).net
    rng = np.random.default_rng(1)
    T = net.ctx
    strips = rng.integers(0, net.K, (2, T, net.h))
    attrs = rng.integers(0, 5, (2, net.cfg["n_attr"]))
    cache = net.new_cache(2)
    for t in range(T):
        step = net.step(strips[:, t], attrs, cache, np.arange(2), np.full(2, t))
    full = net.window(strips, attrs)
    assert np.allclose(step, full, atol=1e-4)


# ------------------------------------------------------------------------------------------ top down
def test_top_down_rooms_and_doors(eng, top_model):
    """A tiny model's dungeons (decoded without the engine's validation: a 40-step model rarely meets the
    corpus's stairs patterns): one region per room with the doors it says, the start room on the bottom edge
    with the corpus's entrance door, what the corpus's dungeons share measured from the card's files."""
    from engine.generator import Request
    from plugins.level_lm import LevelLM, level_grid, load

    out, card = top_model
    m = load(str(out))
    assert m.dungeon_facts() == {"goal_kinds": ["stairs"], "goal_count": 1, "entrance": "s"}
    rh, rw = m.spec.room
    params = {**{p.name: p.default for p in LevelLM.params}, "weights": str(out)}
    for n in (1, 3):
        lv = LevelLM().generate(Request("level", "level-lm", 4, {**params, "room_count": n}))
        assert lv.metadata["rooms"] == n and lv.metadata["entrance"] == "s"
        rooms = [r for r in lv.regions if r.kind == "room"]
        assert len(rooms) == n and all((r.w, r.h) == (rw, rh) for r in rooms)
        g = level_grid(lv, m.spec)
        for r in rooms:
            room = g[r.y:r.y + rh, r.x:r.x + rw]
            sides = m.spec.door_sides(room)
            assert "".join(s for s in "nesw" if sides[s]) == r.properties["doors"]
        start = rooms[lv.metadata["start_room"]]
        assert start.y + rh == g.shape[0] and "s" in start.properties["doors"]
        assert m.spec.masks["door"][g[-1, start.x:start.x + rw]].any()


def _top_parts(lv, m):
    from plugins.level_lm import level_grid

    g = level_grid(lv, m.spec)
    rooms = [r for r in lv.regions if r.kind == "room"]
    return g, rooms[lv.metadata["start_room"]], rooms[lv.metadata["goal_room"]]


@pytest.mark.skipif(not SHIPPED_TOP.is_file(), reason="no shipped level-lm-top weights")
def test_shipped_top_stairs_once_in_the_goal_room_and_an_entrance(eng):
    """Every corpus dungeon has one stairs tile, in its farthest room, and a door in the bottom outer wall:
    so does every dungeon (16 seeds), and the rules' start is that entrance."""
    from plugins.level_lm import load

    m = load("", "top")
    assert m.dungeon_facts() == {"goal_kinds": ["stairs"], "goal_count": 1, "entrance": "s"}
    stairs, door = m.spec.masks["stairs"], m.spec.masks["door"]
    for lv in eng.generate_batch("level", "level-lm", list(range(16)), {"model": "top"}):
        g, start, goal = _top_parts(lv, m)
        cells = np.argwhere(stairs[g])
        assert len(cells) == 1 and lv.metadata["playable"]
        (y, x), = cells
        assert goal.x <= x < goal.x + goal.w and goal.y <= y < goal.y + goal.h
        assert start.y + start.h == g.shape[0]  # the start room on the bottom edge, its entrance open
        edge = np.flatnonzero(door[g[-1]])
        assert len(edge) and all(start.x <= x < start.x + start.w for x in edge)


@pytest.mark.skipif(not SHIPPED_TOP.is_file(), reason="no shipped level-lm-top weights")
def test_shipped_top_one_room_and_validate_refuses_misplaced_stairs(eng):
    from engine.generator import Request
    from plugins.level_lm import LevelLM, load

    m = load("", "top")
    lv = eng.generate("level", "level-lm", 2, {"model": "top", "room_count": 1})
    g, start, goal = _top_parts(lv, m)
    assert lv.metadata["rooms"] == 1 and start is goal and lv.metadata["playable"]
    assert int(m.spec.masks["stairs"][g].sum()) == 1 and m.spec.masks["door"][g[-1]].any()
    # validate refuses a second stairs tile outside the goal room, and a dungeon without its entrance
    lv = eng.generate("level", "level-lm", 2, {"model": "top", "room_count": 3})
    params = {**{p.name: p.default for p in LevelLM.params}, "model": "top", "room_count": 3}
    req = Request("level", "level-lm", 2, params)
    assert LevelLM().validate(lv, req) == []
    g, start, goal = _top_parts(lv, m)
    other = next(r for r in lv.regions if r.kind == "room" and r is not goal)
    S = int(np.flatnonzero(m.spec.masks["stairs"][:m.spec.V])[0])
    floor = int(np.flatnonzero(m.spec.masks["door"][:m.spec.V])[0])
    tiles = lv.tiles  # edited in place
    tiles[other.y + 5, other.x + 5] = S
    got = " ".join(LevelLM().validate(lv, req))
    assert "2 stairs tiles, every corpus dungeon has 1" in got and "outside the goal room" in got
    tiles[other.y + 5, other.x + 5] = g[other.y + 5, other.x + 5]
    wall = int(g[0, start.x])
    tiles[-1, :] = np.where(tiles[-1, :] == floor, wall, tiles[-1, :])
    assert "no entrance" in " ".join(LevelLM().validate(lv, req))


@pytest.mark.skipif(not SHIPPED_TOP.is_file(), reason="no shipped level-lm-top weights")
def test_room_count_outside_the_rooms_bucket_is_an_input_error(eng):
    with pytest.raises(InputError, match="room_count=30 .*rooms=few"):
        eng.generate("level", "level-lm", 0, {"model": "top", "rooms": "few", "room_count": 30})
    with pytest.raises(InputError, match="rooms=none"):
        eng.generate("level", "level-lm", 0, {"model": "top", "rooms": "none"})
    lv = eng.generate("level", "level-lm", 0, {"model": "top", "rooms": "few", "room_count": 3})
    assert lv.metadata["rooms"] == 3 and lv.metadata["measured"]["rooms"] == "few"


@pytest.mark.skipif(not SHIPPED_TOP.is_file(), reason="no shipped level-lm-top weights")
def test_temperature_calibration(monkeypatch):
    from plugins.learned_level_lm import train as tr
    from plugins.level_lm import load

    m = load("", "top")
    assert m.spec.temperature in tr.TEMPERATURES  # the shipped model was calibrated at training
    monkeypatch.setattr(tr, "TEMPERATURES", (1.0, 1.6))
    monkeypatch.setattr(tr, "CALIBRATION_SAMPLES", 2)
    corpus = m.corpus()
    t, info = tr.calibrate(SHIPPED_TOP, corpus.grids[:3], m.spec.d, [])
    scores = info["l1_tile_shares_by_temperature"]
    assert t in (1.0, 1.6) and scores[str(t)] == min(scores.values())


@pytest.mark.skipif(not SHIPPED_TOP.is_file(), reason="no shipped level-lm-top weights")
def test_top_down_contract(eng):
    check_generator(eng, "level-lm", seeds=[0, 3], params_cases=[{"model": "top", "room_count": 2,
                                                                  "enemies": "none"}])


# ------------------------------------------------------------------------------------------ shipped
@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped level-lm weights")
def test_shipped_side_model(eng):
    card = json.loads((SHIPPED.parent / "model.json").read_text())
    assert card["generator"] == "level-lm" and SHIPPED.stat().st_size <= 5 * 1024 * 1024
    lv = eng.generate("level", "level-lm", 0, {"prompt": "many pipes, no enemies", "width": 64})
    assert lv.metadata["measured"]["enemies"] == "none" and lv.metadata["playable"]


@pytest.mark.skipif(not SHIPPED_TOP.is_file(), reason="no shipped level-lm-top weights")
def test_shipped_top_model(eng):
    assert SHIPPED_TOP.stat().st_size <= 5 * 1024 * 1024
    lv = eng.generate("level", "level-lm", 0, {"model": "top", "room_count": 4})
    assert lv.metadata["rooms"] == 4 and lv.metadata["playable"]


# ------------------------------------------------------------------------------------------ speed paths
def test_batched_sampler_matches_one_by_one(eng, side_model):
    """From ``BATCH_SAMPLE`` jobs on, strips are sampled by ``sample_many`` (numpy over the batch); every level
    must be the one the one-job sampler gives the same seed alone, counted controls (caps) included."""
    from plugins.learned_level_lm.sampler import BATCH_SAMPLE

    out, _ = side_model
    seeds = list(range(BATCH_SAMPLE + 2))
    for p in ({"weights": str(out), "width": 40}, {"weights": str(out), "width": 48, "enemies": "few"}):
        batch = eng.generate_batch("level", "level-lm", seeds, p)
        for s, lv in zip(seeds, batch):
            one = eng.generate("level", "level-lm", s, p)
            assert np.array_equal(lv.tiles, one.tiles), (p, s)
            assert [(e.kind, e.x, e.y) for e in lv.entities] == [(e.kind, e.x, e.y) for e in one.entities]
            assert lv.metadata == one.metadata


def test_incremental_reach_equals_full_search():
    """SideReach (continuations resumed as columns arrive, snapshots, rewinds) finds exactly the cells a full
    search of the finished columns finds."""
    from plugins.learned_level_lm.reach import SideReach
    from plugins.learned_levels.rules import fast_reach

    rng = np.random.default_rng(5)
    table = np.array([False, True, False])  # tile 1 is solid
    checked = 0
    for _ in range(60):
        h, w = 10, 40
        jh, jd = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        ground = rng.integers(1, 4, size=w)
        cols = [np.where((np.arange(h) >= h - ground[x]) | (rng.random(h) < 0.15), 1,
                         rng.integers(0, 3, size=h) * 0).astype(np.int64) for x in range(w)]
        r = SideReach(table, h, jh, jd)
        for x in range(w):
            r.add(cols[x])
            if x % 4 == 3:
                r.dead()
                r.snapshot()
        r.rewind(int(rng.integers(0, w)))
        for x in range(r.w, w):
            r.add(cols[x])
        r.update()
        if r.start is None:
            continue
        solid = table[np.stack(cols, 1)]
        assert r.seen == fast_reach(solid, r.start, jh, jd)
        assert r.maxx == max(x for x, _ in r.seen)
        checked += 1
    assert checked > 30


def test_too_tall_side_view_levels_are_refused_before_training(tmp_path):
    """A corpus the weights could not be loaded from (levels over 128 rows) is refused up front, not trained."""
    game = tmp_path / "tall"
    (game / "Processed").mkdir(parents=True)
    (game / "tall.json").write_text(json.dumps({"tiles": {"X": ["solid", "ground"], "-": ["passable", "empty"]}}))
    for i in range(3):
        rows = ["-" * 300] * 129 + ["X" * 300] * (1 + i % 1)
        (game / "Processed" / f"t{i}.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"levels are 130 rows high; side-view levels of 3..128 rows"):
        train(_engine(), "level-lm", [game / "Processed"], out=tmp_path / "o", show_progress=False, tiny=1,
              steps=5)
    assert not (tmp_path / "o").exists()


def test_training_refuses_epochs_naming_steps(tmp_path):
    files = sorted((MARIO / "Processed").glob("*.txt"))[:2]
    with pytest.raises(InputError, match=r"level-lm: its training length is -O steps=N"):
        train(_engine(), "level-lm", files, epochs=3, out=tmp_path / "o", show_progress=False, tiny=1, steps=5,
              legend=MARIO / "mario-like.json")
    assert not (tmp_path / "o").exists()


def test_bit_reach_equals_side_reach_and_the_rules():
    """BitReach (bitmask columns) gives SideReach's answers at every check (dead, start, goal, the reachable
    cells, after snapshots and rewinds), and its goal test equals the rules' verdict on the finished grid,
    which is what lets level-lm skip the rules' search for a level the sampler proved playable."""
    from plugins.learned_level_lm.reach import BitReach, SideReach
    from plugins.learned_levels.rules import Rules

    rng = np.random.default_rng(7)
    table = np.array([False, True, False])  # tile 1 is solid
    checked = 0
    for _ in range(150):
        h, w = int(rng.integers(3, 18)), int(rng.integers(6, 45))
        jh, jd = int(rng.integers(1, 6)), int(rng.integers(1, 7))
        ground = rng.integers(0, 4, size=w)
        p = rng.random() * 0.4
        cols = [np.where((np.arange(h) >= h - ground[x]) | (rng.random(h) < p), 1, 0).astype(np.int64)
                for x in range(w)]
        a, b = SideReach(table, h, jh, jd), BitReach(table, h, jh, jd)

        def feed(lo):
            for x in range(lo, w):
                a.add(cols[x])
                b.add(cols[x])
                if x % 4 == 3:
                    assert a.dead() == b.dead()
                    a.snapshot()
                    b.snapshot()

        feed(0)
        k = int(rng.integers(0, w))
        k = a.rewind(k)
        assert b.rewind(k) == k == b.w
        feed(k)
        a.update()
        b.update()
        assert (a.start, a.maxx, a.goal_reached()) == (b.start, b.maxx, b.goal_reached())
        assert a.seen == b.cells()
        rules = Rules("side", [[], ["solid"], []], {"jump_height": jh, "jump_distance": jd})
        grid = np.stack(cols, 1)
        if h <= 2 * w:
            assert b.goal_reached() == (not rules.problems(grid))
            checked += b.goal_reached()
    assert checked > 20


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped level-lm weights")
def test_proven_playable_levels_agree_with_the_rules(eng):
    """A level the sampler proved playable is not searched again by the rules: the rules agree on it."""
    from plugins.level_lm import level_grid, load

    m = load()
    levels = eng.generate_batch("level", "level-lm", list(range(6)), {"width": 60})
    for lv in levels:
        g = level_grid(lv, m.spec)
        assert lv.metadata["playable"] and m.spec.rules.problems(g) == []


def test_one_level_step_matches_batch_step_and_full_window(side_model):
    """The batch-of-one step (LineCache, the window a slice) gives the batched step's logits and the full
    window's (no cache), past the ring's length too; version 2's step stays close (same network)."""
    from plugins.level_lm import load

    out, _ = side_model
    net = load(str(out)).net
    rng = np.random.default_rng(2)
    T = net.ring + 8
    strips = rng.integers(0, net.K - 1, (2, T, net.h))
    attrs = rng.integers(0, 5, (2, net.cfg["n_attr"]))
    ring, ring2 = net.new_cache(2), net.new_cache(2)
    lines = [net.new_cache(1), net.new_cache(1)]
    for t in range(T):
        b = net.step(strips[:, t], attrs, ring, np.arange(2), np.full(2, t))
        v2 = net.step_v2(strips[:, t], attrs, ring2, np.arange(2), np.full(2, t))
        one = np.stack([net.step(strips[i:i + 1, t], attrs[i:i + 1], lines[i], np.arange(1), np.full(1, t))[0]
                        for i in range(2)])
        assert np.allclose(one, b, atol=1e-4) and np.allclose(v2, b, atol=1e-4)
        lo = max(0, t - net.ctx + 1)
        if t % 9 == 0:
            assert np.allclose(net.window(strips[:, lo:t + 1], attrs), one, atol=1e-4)


@pytest.mark.skipif(not SHIPPED_TOP.is_file(), reason="no shipped level-lm-top weights")
def test_kind_weights_checked_calibrated_and_applied(monkeypatch):
    """Per-kind weights (calibrated after training toward the training levels' tile shares) are checked when
    read, scale the drawn kinds, and are the same alone or in a batch."""
    from engine.generator import Request
    from plugins.learned_level_lm import spec as spec_mod
    from plugins.learned_level_lm import train as tr
    from plugins.level_lm import LevelLM, Model, level_grid

    m = Model(SHIPPED_TOP)
    d = dict(m.spec.d)
    for bad in ([1.0] * (m.spec.V - 1), [0.0] * m.spec.V, ["x"] * m.spec.V):
        with pytest.raises(InputError, match="kind_weights"):
            spec_mod.check({**d, "kind_weights": bad})
    O = m.spec.d["rules"]["chars"].index("O")
    base = {p.name: p.default for p in LevelLM.params}
    base.update(model="top", room_count=6)
    reqs = [Request("level", "level-lm", s, dict(base)) for s in range(3)]

    def share(w):
        m.spec.kind_weights = w
        made = LevelLM()._make(m, reqs)
        grids = [level_grid(lv, m.spec) for lv, _ in made]
        return sum(int((g == O).sum()) for g in grids) / sum(g.size for g in grids), made

    w = np.ones(m.spec.V)
    lo, _ = share(w)
    w[O] = 4.0
    hi, batch = share(w)
    assert hi > lo
    for r, (lv, _) in zip(reqs, batch):  # batch == alone with the weights
        assert np.array_equal(LevelLM()._make(m, [r])[0][0].tiles, lv.tiles)
    monkeypatch.setattr(tr, "KIND_ROUNDS", 2)
    monkeypatch.setattr(tr, "CALIBRATION_SAMPLES", 2)
    corpus = m.corpus()
    got, info = tr.calibrate_kinds(SHIPPED_TOP, corpus.grids[:3], m.spec.d)
    assert len(got) == m.spec.V and all(0.2 <= x <= 5 for x in got)
    assert len(info["l1_tile_shares_by_round"]) == 2


# --------------------------------------------------------------------------------------------- other corpus kinds
VGLC_LIKE = ROOT / "tests" / "data" / "vglc-like"


@pytest.fixture(scope="session")
def kind_models(tmp_path_factory):
    """Tiny models on the VGLC-layout corpora whose rules are more than jumps: Lode Runner (no jumping,
    ladders, ropes, gold required, one start), Mega Man (void, ladders, one spawn, collectables), Kid Icarus
    (vertical, one-way platforms)."""
    if not VGLC_LIKE.is_dir():
        pytest.skip("vglc-like corpora not present")
    out = {}
    for key, game in (("lr", "Lode Runner"), ("mm", "MegaMan"), ("ki", "Kid Icarus")):
        d = tmp_path_factory.mktemp(f"lm-{key}")
        train(_engine(), "level-lm", [VGLC_LIKE / game], out=d, show_progress=False, tiny=1, steps=60)
        out[key] = d
    return out


@pytest.mark.parametrize("key", ["lr", "mm", "ki"])
def test_other_corpus_kinds_generate_levels_their_rules_pass(eng, kind_models, key):
    from plugins.level_lm import level_grid, load
    from plugins.learned_level_lm.reach import exact_jump_model

    from engine.generator import Request
    from plugins.level_lm import LevelLM

    w = str(kind_models[key])
    m = load(w)
    assert not exact_jump_model(m.spec.rules, m.spec.vertical)  # the sampler runs the rules' own search
    levels = eng.generate_batch("level", "level-lm", list(range(8)), {"weights": w})
    params = {**{p.name: p.default for p in LevelLM.params}, "weights": w}
    raw = 0
    for i, lv in enumerate(levels):
        g = level_grid(lv, m.spec)
        assert LevelLM().validate(lv, Request("level", "level-lm", i, params)) == []
        # a level decoded past its backtracking budget may keep a last strip outside the right-edge windows
        assert m.spec.rules.problems(g) == [] and lv.metadata["pattern_fidelity"] >= (1.0 if not
                                                                                     lv.metadata["gave_up"] else 0.99)
        raw += bool(lv.metadata["raw_valid"])
        if key == "ki":  # vertical: as wide as the corpus, taller than twice that (the rules' vertical levels)
            assert g.shape[1] == 16 and max(33, m.spec.heights[0]) <= g.shape[0] <= m.spec.heights[1]
        else:
            assert g.shape == (m.spec.h, m.spec.width)
    assert raw >= 6, raw
    if key != "ki":
        assert m.spec.width == {"lr": 32, "mm": 44}[key]  # the corpus's median width is the default


def test_rules_reach_proves_only_what_the_rules_pass(kind_models):
    """A RulesReach's end check is the rules' own: a level it proved is what Rules.problems passes, and a
    grid it did not check is not proven."""
    from engine.generator import Request
    from plugins.level_lm import LevelLM, load

    m = load(str(kind_models["lr"]))
    gen = LevelLM()
    base = {p.name: p.default for p in LevelLM.params}
    jobs_seen = []
    orig = gen._run

    def spy(mm, jobs, reqs):
        orig(mm, jobs, reqs)
        jobs_seen.extend(jobs)

    gen._run = spy
    reqs = [Request("level", "level-lm", i, {**base, "weights": str(kind_models["lr"])}) for i in range(4)]
    gen.generate_batch(reqs)
    for job in jobs_seen:
        grid = m.spec.from_strips(job.S).astype(np.uint8)
        if not job.giveup:
            assert job.reach.proven(grid) and m.spec.rules.problems(grid) == []
        other = grid.copy()
        other[0, 0] = (int(other[0, 0]) + 1) % m.spec.V
        assert not job.reach.proven(other)


def test_vertical_levels_deterministic_across_processes_and_batches(eng, kind_models):
    w = str(kind_models["ki"])
    check_generator(eng, "level-lm", seeds=[0, "v"], params_cases=[{"weights": w}, {"weights": w, "height": 40},
                                                                   {"weights": str(kind_models["lr"])}],
                    subprocess_plugins=PLUGINS)  # Lode Runner: the ladder boost is per level, batch == alone
    lv = eng.generate("level", "level-lm", 1, {"weights": w, "height": 50})
    assert lv.tiles.shape == (50, 16)
    with pytest.raises(InputError, match=r"height=30: .* more than 32 rows high"):
        eng.generate("level", "level-lm", 1, {"weights": w, "height": 30})
    with pytest.raises(InputError, match=r"gaps=many: this model's levels are vertical"):
        eng.generate("level", "level-lm", 1, {"weights": w, "gaps": "many"})


def test_height_is_refused_for_horizontal_models(eng, kind_models):
    with pytest.raises(InputError, match=r"height=40: this model's levels run left to right"):
        eng.generate("level", "level-lm", 1, {"weights": str(kind_models["lr"]), "height": 40})
    with pytest.raises(InputError, match=r"width=8: side-view levels are 16 columns wide or more"):
        eng.generate("level", "level-lm", 1, {"weights": str(kind_models["lr"]), "width": 8})


def test_unsupported_corpus_kind_refused_in_one_line(tmp_path):
    """The one kind level-lm still refuses: top-down maps not made of equal rooms (one line, exit 2, nothing
    left behind)."""
    from .conftest import run_cli

    maps = sorted((ROOT / "plugins" / "data" / "levels" / "dungeon").glob("d00[0-2].*"))
    if not maps:
        pytest.skip("shipped dungeon corpus not present")
    r = run_cli("train", "level-lm", *[a for p in maps if p.name.endswith(".vglc.txt") for a in ("--data", p)],
                "--out", tmp_path / "o", "-O", "tiny=1")
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert "level-lm" in last and "maps made of equal rooms" in last, last
    assert not (tmp_path / "o").exists()
