"""The plugin system: loading, allow/block lists, tracing, isolation, duplicate ids; one test per hook."""
import inspect
import sys

import numpy as np
import pytest

import engine
from engine import (Cast, Character, Engine, Entity, Exporter, Generator, GenerationError, InputError, Level,
                    Param, PluginError, Story, TileDef, Tileset, hookimpl, hookspecs)

from .conftest import run_py

TS = Tileset("t", [TileDef(0, "floor", ".", (0, 0, 0)), TileDef(1, "wall", "#", (9, 9, 9), {"solid": True})])


class Flat(Generator):
    id = "flat"
    kind = "level"
    version = "1"
    params = (Param("size", "int", 4, min=2, max=32),)

    def generate(self, request):
        n = request.params["size"]
        return Level({"tiles": np.zeros((n, n), np.uint8)}, TS, [Entity("spawn", "spawn", 0, 0)])


class FlatPlugin:
    @hookimpl
    def register_level_generators(self, register):
        register(Flat())


def test_default_plugins_load_and_register():
    e = Engine(entry_points=False)
    names = {p.name for p in e.plugins()}
    assert set(engine.DEFAULT_PLUGINS) <= names
    assert {g.id for g in e.generators()} >= {"terrain", "dungeon", "platformer", "classic-character",
                                              "grammar-story"}
    assert all(p.status == "ok" and p.source == "built-in" for p in e.plugins())


def test_fresh_manager_per_engine():
    a, b = Engine(entry_points=False), Engine([FlatPlugin()], entry_points=False)
    assert a.host.pm is not b.host.pm
    assert "flat" not in {g.id for g in a.generators()} and "flat" in {g.id for g in b.generators()}


def test_allowlist_env_and_empty_string_loads_none():
    e = Engine(env={"CONJURE_LOAD_PLUGINS": "dungeon,plugins.formats"}, entry_points=False)
    assert [g.id for g in e.generators()] == ["dungeon"]
    e = Engine(env={"CONJURE_LOAD_PLUGINS": ""}, entry_points=False)
    assert e.generators() == [] and e.exporters() == []


def test_blocklist():
    e = Engine(env={"CONJURE_BLOCK_PLUGINS": "terrain"}, entry_points=False)
    assert "terrain" not in {g.id for g in e.generators()}
    assert {p.name: p.status for p in e.plugins()}["plugins.terrain"] == "blocked"


def test_trace_env_prints_hook_calls():
    out = run_py("import engine; engine.Engine(load=['dungeon'])", env={"CONJURE_TRACE_PLUGINS": "1"})
    assert out.returncode == 0
    assert "register_level_generators" in out.stderr


def test_duplicate_generator_id_names_both_plugins():
    class Again:
        @hookimpl
        def register_level_generators(self, register):
            d = Flat()
            d.id = "dungeon"
            register(d)

    with pytest.raises(PluginError) as e:
        Engine([Again()], entry_points=False, strict=True)
    assert "'dungeon'" in str(e.value) and "plugins.dungeon" in str(e.value) and "Again" in str(e.value)
    assert str(e.value).startswith("plugin 'Again'")  # the later plugin is the one blamed
    # by default the built-in keeps its id, the later plugin is shown as broken and everything else works
    e = Engine([Again()], entry_points=False)
    assert e.plugin_of("dungeon") == "plugins.dungeon"
    info = {p.name: p for p in e.plugins()}["Again"]
    assert info.status == "broken" and "plugins.dungeon" in info.errors[0] and "'dungeon'" in info.errors[0]
    assert e.generate("level", "dungeon", seed=1).width == 48


def test_plugin_that_raises_in_registration_is_isolated():
    class Boom:
        @hookimpl
        def register_level_generators(self, register):
            raise RuntimeError("kaboom")

    e = Engine([Boom()], entry_points=False)
    assert "dungeon" in {g.id for g in e.generators()}
    info = {p.name: p for p in e.plugins()}["Boom"]
    assert info.status == "broken" and "kaboom" in info.errors[0]


@pytest.mark.parametrize("mangle,needle", [
    (lambda g: setattr(g, "id", "Bad Id!"), "id must be"),
    (lambda g: setattr(g, "kind", "story"), "registered as a level generator"),
    (lambda g: setattr(g, "version", ""), "version"),
    (lambda g: setattr(g, "params", ("width",)), "Param"),
    (lambda g: setattr(g, "generate", None), "generate"),
])
def test_malformed_generator_is_named_and_skipped(mangle, needle):
    class Bad:
        @hookimpl
        def register_level_generators(self, register):
            g = Flat()
            g.id = "bad"
            mangle(g)
            register(g)

    e = Engine([Bad(), FlatPlugin()], entry_points=False)
    assert "flat" in {g.id for g in e.generators()}
    info = {p.name: p for p in e.plugins()}["Bad"]
    assert info.status == "broken" and needle in info.errors[0]


def test_unknown_hook_name_marks_plugin_broken():
    class Typo:
        @hookimpl
        def register_level_generator(self, register):  # missing "s"
            pass

    e = Engine([Typo()], entry_points=False)
    info = {p.name: p for p in e.plugins()}["Typo"]
    assert info.status == "broken" and "unknown hook 'register_level_generator'" in info.errors[0]


def test_generator_that_raises_or_returns_wrong_type_is_named():
    class Raises(Flat):
        id = "raises"

        def generate(self, request):
            raise ValueError("oops")

    class Wrong(Flat):
        id = "wrong"

        def generate(self, request):
            return {"not": "a level"}

    class P:
        @hookimpl
        def register_level_generators(self, register):
            register(Raises())
            register(Wrong())

    e = Engine([P()], entry_points=False)
    with pytest.raises(PluginError, match="plugin 'P', generator 'raises': generate raised ValueError: oops"):
        e.generate("level", "raises")
    with pytest.raises(PluginError, match="generator 'wrong': generate returned dict, expected Level"):
        e.generate("level", "wrong")
    assert e.generate("level", "dungeon", seed=1).width == 48  # the others keep working


def test_invalid_content_is_resampled_then_fails_clearly():
    class Flaky(Flat):
        id = "flaky"

        def generate(self, request):
            lv = super().generate(request)
            if request.attempt < 2:
                lv.entities[0].x = 99  # out of bounds: invalid
            return lv

    class Never(Flat):
        id = "never"

        def validate(self, content, request):
            return ["never good enough"]

    class P:
        @hookimpl
        def register_level_generators(self, register):
            register(Flaky())
            register(Never())

    e = Engine([P()], load=[], entry_points=False)
    lv = e.generate("level", "flaky")
    assert lv.metadata["tries"] == 3
    with pytest.raises(GenerationError, match="made no valid level in 5 tries .*never good enough"):
        e.generate("level", "never", tries=5)


# ---------------------------------------------------------------- one test per hook
HOOKS = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(f, "conjure_spec")]


def test_every_hook_has_a_test_and_a_documented_signature():
    names = {n for n in globals() if n.startswith("test_hook_")}
    for hook in HOOKS:
        assert f"test_hook_{hook}" in names, f"hook {hook} has no test"
        doc = inspect.getdoc(getattr(hookspecs, hook))
        assert doc and ":return:" in doc, hook
        for arg in inspect.signature(getattr(hookspecs, hook)).parameters:
            assert f":param {arg}:" in doc, f"{hook}: {arg} undocumented"
    assert set(HOOKS) == {"register_level_generators", "register_character_generators",
                          "register_story_generators", "register_exporters", "process_level",
                          "process_character", "process_story"}


def test_hook_register_level_generators():
    e = Engine([FlatPlugin()], load=[], entry_points=False)
    assert [g.id for g in e.generators("level")] == ["flat"]
    assert e.generate("level", "flat", params={"size": 6}).width == 6


def test_hook_register_character_generators():
    class Gen(Generator):
        id = "simple-char"
        kind = "character"

        def generate(self, request):
            return Character("c", "Bob", "villager")

    class P:
        @hookimpl
        def register_character_generators(self, register):
            register(Gen())

    e = Engine([P()], load=[], entry_points=False)
    assert e.generate("character", "simple-char").name == "Bob"


def test_hook_register_story_generators():
    from .test_content import small_story

    class Gen(Generator):
        id = "fixed-story"
        kind = "story"

        def generate(self, request):
            return small_story()

    class P:
        @hookimpl
        def register_story_generators(self, register):
            register(Gen())

    e = Engine([P()], load=[], entry_points=False)
    assert e.generate("story", "fixed-story").title == "A Quest"


def test_hook_register_exporters(tmp_path):
    class Txt(Exporter):
        id = "txt"
        kinds = ("level",)
        extensions = (".txt",)

        def dumps(self, content, options):
            return "\n".join("".join(".#"[v] for v in row) for row in content.tiles).encode()

    class P:
        @hookimpl
        def register_exporters(self, register):
            register(Txt())

    e = Engine([P(), FlatPlugin()], load=[], entry_points=False)
    lv = e.generate("level", "flat")
    (path,) = e.export(lv, tmp_path / "x.txt")
    assert path.read_text() == "\n".join(["...."] * 4)
    with pytest.raises(InputError, match="no format can write"):
        e.export(lv, tmp_path / "x.unknown")


def test_hook_process_level():
    calls = []

    class P:
        @hookimpl
        def process_level(self, level, request):
            calls.append(request.generator)
            level.metadata["processed"] = True
            level.entities.append(Entity("sign", "sign", 1, 1, {"text": "hello"}))

    e = Engine([P(), FlatPlugin()], load=[], entry_points=False)
    lv = e.generate("level", "flat")
    assert calls == ["flat"] and lv.metadata["processed"] and lv.entities[-1].kind == "sign"


def test_hook_process_level_that_raises_is_named():
    class P:
        @hookimpl
        def process_level(self, level, request):
            raise KeyError("nope")

    e = Engine([P(), FlatPlugin()], load=[], entry_points=False)
    with pytest.raises(PluginError, match="plugin 'P', generator 'flat': process_level raised KeyError"):
        e.generate("level", "flat")


def test_hook_process_character():
    class P:
        @hookimpl
        def process_character(self, character, request):
            chars = character.characters if isinstance(character, Cast) else [character]
            for c in chars:
                c.traits.append("modded")

    e = Engine([P()], entry_points=False)
    assert "modded" in e.generate("character", seed=1).traits


def test_hook_process_story():
    class P:
        @hookimpl
        def process_story(self, story, request):
            story.title = story.title.upper()

    e = Engine([P()], entry_points=False)
    s = e.generate("story", seed=1)
    assert isinstance(s, Story) and s.title == s.title.upper()


def test_import_engine_leaves_torch_unimported():
    out = run_py("import sys, engine; e = engine.Engine(); e.generate('level', seed=1); "
                 "print('torch' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
