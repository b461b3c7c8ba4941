"""conjure-caves' own tests, written with Conjure's fixtures for plugin authors."""
import numpy as np
import pytest
from scipy import ndimage

import conjure_caves
from conjure_caves.caves import FOUR


@pytest.fixture
def engine(conjure_engine):
    return conjure_engine(conjure_caves)


def test_contract(engine, check_generator):
    check_generator(engine, "caves", seeds=[0, 1, "deep"],
                    params_cases=[{}, {"width": 16, "height": 16}, {"fill": 0.5, "steps": 10},
                                  {"steps": 1, "fill": 0.35, "treasure": 0}])


def test_one_connected_cave_from_spawn_to_exit(engine):
    for seed in range(12):
        lv = engine.generate("level", "caves", seed=seed, params={"width": 48, "height": 32})
        floor = lv.tiles == 0
        labels, count = ndimage.label(floor, structure=FOUR)
        assert count == 1
        spawn, exit_ = lv.entities_of("spawn")[0], lv.entities_of("exit")[0]
        assert floor[spawn.y, spawn.x] and floor[exit_.y, exit_.x]
        assert (spawn.x, spawn.y) != (exit_.x, exit_.y)
        assert lv.tiles[0].all() and lv.tiles[-1].all() and lv.tiles[:, 0].all() and lv.tiles[:, -1].all()


def test_validator_rejects_split_caves(engine):
    lv = engine.generate("level", "caves", seed=3)
    req = engine.request("level", "caves", seed=3)
    lv.tiles[:, lv.width // 2] = 1  # a rock wall through the middle
    problems = engine.problems(lv, req)
    assert any("separate regions" in p for p in problems) or any("cannot be reached" in p for p in problems)


def test_params_shape_the_cave(engine):
    small = engine.generate("level", "caves", seed=1, params={"width": 20, "height": 16, "treasure": 0})
    assert (small.width, small.height) == (20, 16) and not small.entities_of("treasure")
    rich = engine.generate("level", "caves", seed=1, params={"treasure": 9})
    assert len(rich.entities_of("treasure")) == 9


def test_ascii_exporter(engine, tmp_path):
    lv = engine.generate("level", "caves", seed=5, params={"width": 24, "height": 16})
    (path,) = engine.export(lv, tmp_path / "cave.caves.txt")
    rows = path.read_text().splitlines()
    assert len(rows) == 16 and all(len(r) == 24 for r in rows)
    assert sum(r.count("@") for r in rows) == 1 and sum(r.count(">") for r in rows) == 1
    assert set("".join(rows)) <= set("#.@>$")
    assert np.array_equal(np.array([[c == "#" for c in r] for r in rows]), lv.tiles == 1)
