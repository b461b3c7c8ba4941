"""``conjure plugins new`` and the plugin-author helpers of ``engine.testing``.

One test pip-installs a scaffolded plugin into the test environment (editable, no deps, no build isolation),
checks the engine finds it, lists it and generates with it in fresh processes, runs the plugin's own tests,
and uninstalls it in a ``finally``.
"""
import json
import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest

from engine import Entity, Generator, InputError, Level, Param, TileDef, Tileset, hookimpl
from engine.scaffold import SCAFFOLD_KINDS, check_name, create, render
from engine.testing import ContractError, check_generator, make_engine

from .conftest import ROOT, run_cli, run_cli_process


def _pytest(path, env=None):
    full = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
                          capture_output=True, text=True, cwd=path, env=full, timeout=300)


# ---------------------------------------------------------------- the scaffold
def test_cli_writes_the_package(tmp_path):
    r = run_cli("plugins", "new", "ice-caves", "--dir", tmp_path)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "conjure-ice-caves"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [".gitignore", "README.md", "conjure_ice_caves/__init__.py", "pyproject.toml",
                     "tests/conftest.py", "tests/test_ice_caves.py"]
    py = (root / "pyproject.toml").read_text()
    assert 'name = "conjure-ice-caves"' in py
    assert '[project.entry-points.conjure]\nice-caves = "conjure_ice_caves"' in py
    assert b"pip install -e" in r.stdout


def test_cli_refuses_to_overwrite(tmp_path):
    (tmp_path / "conjure-taken").mkdir()
    (tmp_path / "conjure-taken" / "keep.txt").write_text("mine")
    r = run_cli("plugins", "new", "taken", "--dir", tmp_path)
    assert r.returncode == 2
    assert b"already exists; refusing to overwrite" in r.stderr and len(r.stderr.splitlines()) == 1
    assert (tmp_path / "conjure-taken" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("bad", ["Caves", "ice_caves", "1caves", "-x", "a--b", "x" * 41, "conjure-caves",
                                 "engine", "ca ves", "../up", ""])
def test_names_are_validated(bad):
    with pytest.raises(InputError, match="plugin name"):
        check_name(bad)


def test_cli_rejects_bad_name_kind_and_taken_ids(tmp_path):
    r = run_cli("plugins", "new", "Bad_Name", "--dir", tmp_path)
    assert r.returncode == 2 and b"plugin name 'Bad_Name'" in r.stderr
    r = run_cli("plugins", "new", "ok", "--kind", "weapon", "--dir", tmp_path)
    assert r.returncode == 2 and b"invalid choice" in r.stderr
    r = run_cli("plugins", "new", "dungeon", "--dir", tmp_path)
    assert r.returncode == 2 and b"is taken in this environment (by generator 'dungeon'" in r.stderr
    r = run_cli("plugins", "new", "ok", "--dir", tmp_path / "missing")
    assert r.returncode == 2 and b"no such folder" in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", SCAFFOLD_KINDS)
def test_each_kind_passes_its_own_tests_uninstalled(tmp_path, kind):
    root = create(f"my-{kind}", kind, tmp_path, check_clash=False)
    r = _pytest(root, env={"PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "2 passed" in r.stdout


def test_render_is_pure_and_names_line_up():
    files = render("ice-caves", "character")
    assert files == render("ice-caves", "character")
    mod = files["conjure_ice_caves/__init__.py"]
    assert 'id = "ice-caves"' in mod and 'kind = "character"' in mod and "class IceCavesGenerator" in mod
    assert "register_character_generators(register)" in mod and "request.rng()" in mod
    assert "import random" not in mod
    with pytest.raises(InputError, match="--kind 'weapon'"):
        render("x", "weapon")


def test_scaffolded_plugin_installs_lists_generates_and_passes_its_tests(tmp_path):
    # about processes: an installed plugin is found by a fresh process (its .pth runs at start-up)
    name = "scaf" + "".join(random.Random(os.getpid() ^ time.time_ns()).choice("abcdefghij") for _ in range(8))
    r = run_cli("plugins", "new", name, "--dir", tmp_path)
    assert r.returncode == 0, r.stderr
    root = tmp_path / f"conjure-{name}"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    try:
        r = subprocess.run(pip + ["install", "--quiet", "--no-build-isolation", "--no-deps", "-e", str(root)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]

        r = run_cli_process("list", "--json")
        assert r.returncode == 0, r.stderr
        gens = {g["id"]: g for g in json.loads(r.stdout)}
        assert gens[name]["plugin"] == name and gens[name]["kind"] == "level"
        r = run_cli_process("list", "plugins", "--json")
        info = {p["name"]: p for p in json.loads(r.stdout)}[name]
        assert info == {"name": name, "source": f"distribution conjure-{name}", "version": "0.1.0",
                        "status": "ok", "errors": [], "registered": [f"level generator {name}"]}

        out = tmp_path / "made.json"
        r = run_cli_process("generate", "level", "-g", name, "-s", "5", "-p", "width=12", "-o", out)
        assert r.returncode == 0, r.stderr
        doc = json.loads(out.read_text())
        assert doc["width"] == 12 and doc["metadata"]["generator"] == name

        r = _pytest(root)  # its own tests, against the installed package
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        assert "2 passed" in r.stdout
    finally:
        subprocess.run(pip + ["uninstall", "--quiet", "--yes", f"conjure-{name}"], capture_output=True,
                       timeout=300)
    r = run_cli_process("list", "--json")
    assert name not in {g["id"] for g in json.loads(r.stdout)}


# ---------------------------------------------------------------- engine.testing catches broken contracts
TS = Tileset("t", [TileDef(0, "floor", ".", (0, 0, 0)), TileDef(1, "wall", "#", (9, 9, 9), {"solid": True})])


class Good(Generator):
    id = "good"
    kind = "level"
    params = (Param("size", "int", 6, min=4, max=32), Param("walls", "float", 0.1, min=0.0, max=0.5))

    def level(self, rng, n, walls):
        tiles = (rng.random((n, n)) < walls).astype(np.uint8)
        tiles[0, 0] = 0
        return Level({"tiles": tiles}, TS, [Entity("spawn", "spawn", 0, 0)])

    def generate(self, request):
        return self.level(request.rng(), request.params["size"], request.params["walls"])


class UsesGlobalRandom(Good):
    id = "global-random"

    def generate(self, request):
        return self.level(np.random.default_rng(np.random.randint(1 << 30)), 6, 0.3)


class UsesTime(Good):
    id = "uses-time"

    def generate(self, request):
        return self.level(np.random.default_rng(time.perf_counter_ns()), 6, 0.3)


class BadBatch(Good):
    id = "bad-batch"

    def generate_batch(self, requests):
        shared = requests[0].rng()  # one stream for the whole batch: differs from one by one
        return [self.level(shared, r.params["size"], r.params["walls"]) for r in requests]


class Invalid(Good):
    id = "invalid"

    def generate(self, request):
        lv = super().generate(request)
        lv.entities[0].x = 99
        return lv


class P:
    @hookimpl
    def register_level_generators(self, register):
        for cls in (Good, UsesGlobalRandom, UsesTime, BadBatch, Invalid):
            register(cls())


@pytest.fixture(scope="module")
def checked():
    return make_engine(P(), tries=3)


def test_check_generator_passes_a_good_one(checked):
    report = check_generator(checked, "good", seeds=[0, "x"], params_cases=[{}, {"size": 4, "walls": 0.5}])
    assert report.cases == 4 and report.params_checked == ["size", "walls"]


@pytest.mark.parametrize("gen_id,needle", [
    ("global-random", "not deterministic"),
    ("uses-time", "not deterministic"),
    ("bad-batch", "generate_batch differs from generate"),
    ("invalid", "made no valid level in 3 tries"),
    ("missing", "not registered"),
])
def test_check_generator_names_the_broken_contract(checked, gen_id, needle):
    with pytest.raises(ContractError, match=needle) as e:
        check_generator(checked, gen_id, seeds=[0, 1])
    assert f"generator {gen_id!r}" in str(e.value)


def test_check_generator_leaves_global_random_state_alone(checked):
    random.seed(3)
    np.random.seed(3)
    check_generator(checked, "good", seeds=[0])
    assert random.random() == random.Random(3).random()
    assert np.random.random() == np.random.RandomState(3).random_sample()


def test_check_generator_across_processes():
    check_generator(make_engine(builtins=True), "dungeon", seeds=[1], subprocess_plugins=["plugins.dungeon"])


def test_make_engine_has_only_the_given_plugins():
    eng = make_engine(P())
    assert {p.name for p in eng.plugins()} == {"P"}
    assert make_engine(builtins=True).generator("dungeon").id == "dungeon"
    # environment variables do not leak into author tests
    assert make_engine(P()).host.infos.keys() == {"P"}
