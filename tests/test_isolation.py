"""Isolation: a plugin that fails to import, raises in a hook, registers something malformed, returns the wrong
type or content that breaks its schema is named in the error (plugin and generator); the engine, the other
plugins and ``conjure list`` keep working, and ``conjure list plugins`` shows the broken one and why.

The end-to-end tests put a real (tiny) broken distribution on ``PYTHONPATH`` of a fresh ``conjure`` process: a
``.dist-info`` folder with an ``entry_points.txt`` is all ``importlib.metadata`` needs, so nothing is installed
into the shared test environment.
"""
import importlib.metadata
import json
import textwrap

import numpy as np
import pytest

from engine import Engine, Entity, Exporter, Generator, GenerationError, Level, PluginError, TileDef, Tileset, hookimpl

from .conftest import run_cli

TS = Tileset("t", [TileDef(0, "floor", ".", (0, 0, 0)), TileDef(1, "wall", "#", (9, 9, 9), {"solid": True})])


class Flat(Generator):
    id = "flat"
    kind = "level"

    def generate(self, request):
        return Level({"tiles": np.zeros((4, 4), np.uint8)}, TS, [Entity("spawn", "spawn", 0, 0)])


class FlatPlugin:
    @hookimpl
    def register_level_generators(self, register):
        register(Flat())


def _info(eng, name):
    return {p.name: p for p in eng.plugins()}[name]


# ---------------------------------------------------------------- in process
def _fake_entry_points(monkeypatch, *eps):
    real = importlib.metadata.entry_points

    def fake(**kw):
        if kw.get("group") == "conjure":
            return importlib.metadata.EntryPoints(eps)
        return real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def test_entry_point_that_fails_to_import(monkeypatch, tmp_path):
    (tmp_path / "conjure_needs_lib.py").write_text("import conjure_no_such_dependency_xyz\n")
    (tmp_path / "conjure_exits.py").write_text("import sys\nsys.exit('argparse at import time')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _fake_entry_points(monkeypatch,
                       importlib.metadata.EntryPoint("needs-lib", "conjure_needs_lib", "conjure"),
                       importlib.metadata.EntryPoint("exits", "conjure_exits", "conjure"),
                       importlib.metadata.EntryPoint("gone", "conjure_module_that_is_not_there", "conjure"),
                       importlib.metadata.EntryPoint("bad-attr", "engine:no_such_attribute", "conjure"))
    eng = Engine()
    assert "dungeon" in {g.id for g in eng.generators()}
    assert eng.generate("level", "dungeon", seed=1).width == 48
    needs = _info(eng, "needs-lib")
    assert needs.status == "broken" and needs.errors == [
        "failed to load: ModuleNotFoundError: No module named 'conjure_no_such_dependency_xyz'"]
    assert _info(eng, "exits").errors == ["failed to load: SystemExit: argparse at import time"]
    assert "conjure_module_that_is_not_there" in _info(eng, "gone").errors[0]
    assert "no_such_attribute" in _info(eng, "bad-attr").errors[0]


def test_plugin_with_a_bad_hook_signature_is_broken_not_fatal():
    class WrongArgs:
        @hookimpl
        def register_level_generators(self, reg):  # the spec's argument is `register`
            reg(Flat())

    eng = Engine([WrongArgs(), FlatPlugin()], load=[], entry_points=False)
    info = _info(eng, "WrongArgs")
    assert info.status == "broken" and info.errors[0].startswith("invalid plugin:") and "reg" in info.errors[0]
    assert [g.id for g in eng.generators()] == ["flat"]


def test_registration_whose_attributes_raise_is_malformed_not_fatal():
    class Haunted(Flat):
        @property
        def id(self):
            raise RuntimeError("id lookup exploded")

    class WeirdParams(Flat):
        id = "weird-params"
        params = 42

    class P:
        @hookimpl
        def register_level_generators(self, register):
            register(Haunted())
            register(WeirdParams())
            register(object())

    eng = Engine([P(), FlatPlugin()], load=[], entry_points=False)
    errors = _info(eng, "P").errors
    assert len(errors) == 3 and all(e.startswith("register_level_generators: malformed registration") for e in errors)
    assert "id lookup exploded" in errors[0] and "'weird-params'" in errors[1]
    assert [g.id for g in eng.generators()] == ["flat"]


def test_generator_errors_name_plugin_and_generator():
    class Raises(Flat):
        id = "raises"

        def generate(self, request):
            raise ZeroDivisionError("division by zero")

    class Wrong(Flat):
        id = "wrong-type"

        def generate(self, request):
            return "a level, honest"

    class BadBatch(Flat):
        id = "bad-batch"

        def generate_batch(self, requests):
            return [self.generate(requests[0])]

    class BadValidate(Flat):
        id = "bad-validate"

        def validate(self, content, request):
            raise KeyError("spawn")

    class Schema(Flat):
        id = "bad-schema"

        def generate(self, request):
            lv = super().generate(request)
            lv.layers["tiles"][0, 0] = 7  # not in the tileset
            return lv

    class P:
        @hookimpl
        def register_level_generators(self, register):
            for g in (Raises, Wrong, BadBatch, BadValidate, Schema):
                register(g())

    eng = Engine([P()], entry_points=False)
    cases = [(lambda: eng.generate("level", "raises"), "generator 'raises': generate raised ZeroDivisionError"),
             (lambda: eng.generate("level", "wrong-type"), "generator 'wrong-type': generate returned str, expected Level"),
             (lambda: eng.generate_batch("level", "bad-batch", seeds=[1, 2]),
              "generator 'bad-batch': generate_batch returned 1 items for 2 requests"),
             (lambda: eng.generate("level", "bad-validate"), "generator 'bad-validate': validate raised KeyError")]
    for call, message in cases:
        with pytest.raises(PluginError) as e:
            call()
        assert str(e.value).startswith("plugin 'P', " + message)
        assert e.value.plugin == "P" and "\n" not in str(e.value)
    with pytest.raises(GenerationError, match=r"generator 'bad-schema' made no valid level in 3 tries .*tile id 7"):
        eng.generate("level", "bad-schema", tries=3)
    assert eng.generate("level", "dungeon", seed=2).width == 48  # the engine keeps working


def test_exporter_that_raises_is_named(tmp_path):
    class Boom(Exporter):
        id = "boom"
        kinds = ("level",)
        extensions = (".boom",)

        def dumps(self, content, options):
            raise MemoryError("pretend") if options.get("mem") else ValueError("cannot encode")

    class P:
        @hookimpl
        def register_exporters(self, register):
            register(Boom())

    eng = Engine([P(), FlatPlugin()], load=[], entry_points=False)
    lv = eng.generate("level", "flat")
    with pytest.raises(PluginError, match="plugin 'P': exporter 'boom' raised ValueError: cannot encode"):
        eng.export(lv, tmp_path / "x.boom")
    assert not (tmp_path / "x.boom").exists()


# ---------------------------------------------------------------- a broken distribution, end to end
BROKEN_MODULES = {
    "conjure_broken_import": "import conjure_no_such_dependency_xyz  # the author forgot a dependency\n",
    "conjure_broken_hook": """
        from engine import hookimpl

        @hookimpl
        def register_level_generators(register):
            raise RuntimeError("weights file missing")
    """,
    "conjure_broken_malformed": """
        from engine import Generator, hookimpl

        class Bad(Generator):
            id = "Not An Id"
            kind = "level"

        @hookimpl
        def register_level_generators(register):
            register(Bad())
    """,
    "conjure_broken_mixed": """
        import numpy as np
        from engine import Entity, Generator, Level, TileDef, Tileset, hookimpl

        TS = Tileset("t", [TileDef(0, "floor", ".", (0, 0, 0))])

        class Fine(Generator):
            id = "still-fine"
            kind = "level"

            def generate(self, request):
                return Level({"tiles": np.zeros((3, 3), np.uint8)}, TS, [Entity("s", "spawn", 0, 0)])

        class WrongType(Fine):
            id = "wrong-type"

            def generate(self, request):
                return {"tiles": []}

        class BadSchema(Fine):
            id = "bad-schema"

            def generate(self, request):
                lv = super().generate(request)
                lv.entities[0].x = 99
                return lv

        @hookimpl
        def register_level_generators(register):
            register(Fine())
            register(WrongType())
            register(BadSchema())
    """,
}
ENTRY_POINTS = {"broken-import": "conjure_broken_import", "broken-hook": "conjure_broken_hook",
                "broken-malformed": "conjure_broken_malformed", "broken-mixed": "conjure_broken_mixed"}


@pytest.fixture(scope="module")
def broken_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    for mod, text in BROKEN_MODULES.items():
        (site / f"{mod}.py").write_text(textwrap.dedent(text))
    info = site / "conjure_broken-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: conjure-broken\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(
        "[conjure]\n" + "".join(f"{k} = {v}\n" for k, v in ENTRY_POINTS.items()))
    return {"PYTHONPATH": str(site)}


def test_cli_list_keeps_working_and_shows_the_broken(broken_env):
    r = run_cli("list", "plugins", "--json", env=broken_env)
    assert r.returncode == 0, r.stderr
    infos = {p["name"]: p for p in json.loads(r.stdout)}
    assert all(infos[n]["source"] == "distribution conjure-broken" and infos[n]["version"] == "0.3.0"
               for n in ENTRY_POINTS)
    assert infos["broken-import"]["status"] == "broken"
    assert infos["broken-import"]["errors"] == [
        "failed to load: ModuleNotFoundError: No module named 'conjure_no_such_dependency_xyz'"]
    assert infos["broken-hook"]["errors"] == [
        "register_level_generators raised RuntimeError: weights file missing"]
    assert infos["broken-malformed"]["errors"][0].startswith(
        "register_level_generators: malformed registration 'Not An Id': id must be")
    assert infos["broken-mixed"]["status"] == "ok"
    assert infos["broken-mixed"]["registered"] == ["level generator still-fine", "level generator wrong-type",
                                                   "level generator bad-schema"]
    assert all(infos[n]["status"] == "ok" for n in infos if n.startswith("plugins."))

    r = run_cli("list", "plugins", env=broken_env)
    assert r.returncode == 0 and b"broken" in r.stdout and b"weights file missing" in r.stdout
    r = run_cli("list", "--json", env=broken_env)
    assert r.returncode == 0
    assert {"dungeon", "terrain", "still-fine", "wrong-type"} <= {g["id"] for g in json.loads(r.stdout)}


def _errors(r) -> list[str]:
    """The error lines of a CLI run (broken plugins also get one warning line each)."""
    lines = r.stderr.decode().strip().splitlines()
    assert all(ln.startswith(("conjure: error: ", "conjure: warning: plugin ")) for ln in lines), lines
    return [ln for ln in lines if ln.startswith("conjure: error: ")]


def test_cli_errors_name_plugin_and_generator(broken_env):
    r = run_cli("generate", "level", "-g", "wrong-type", env=broken_env)
    assert r.returncode == 1
    assert _errors(r) == ["conjure: error: plugin 'broken-mixed', generator 'wrong-type': "
                          "generate returned dict, expected Level"]
    assert b"conjure: warning: plugin 'broken-hook' is broken" in r.stderr  # the broken ones are named
    r = run_cli("generate", "level", "-g", "bad-schema", "--tries", "2", env=broken_env)
    assert r.returncode == 1 and len(_errors(r)) == 1
    assert b"generator 'bad-schema'" in r.stderr and b"level.entities[0].x: 99 outside 0..2" in r.stderr
    r = run_cli("generate", "level", "-g", "still-fine", env=broken_env)
    assert r.returncode == 0, r.stderr
    r = run_cli("generate", "level", "-g", "dungeon", "-s", "3", env=broken_env)
    assert r.returncode == 0, r.stderr


def test_blocking_the_broken_ones(broken_env):
    env = dict(broken_env, CONJURE_BLOCK_PLUGINS="broken-import,broken-hook")
    r = run_cli("list", "plugins", "--json", env=env)
    infos = {p["name"]: p for p in json.loads(r.stdout)}
    assert infos["broken-import"]["status"] == "blocked" and infos["broken-hook"]["status"] == "blocked"


def test_trace_shows_hook_calls_of_the_broken(broken_env):
    r = run_cli("list", env=dict(broken_env, CONJURE_TRACE_PLUGINS="1"))
    assert r.returncode == 0
    assert b"register_level_generators" in r.stderr
