"""``conjure plugins new NAME``: write a working plugin package to start from.

The package is ``conjure-NAME/`` holding a ``pyproject.toml`` (with the ``conjure`` entry point), the module
``conjure_NAME/__init__.py`` (a generator of the chosen kind and the hookimpl registering it), a test using
the ``engine.testing`` fixtures, and a README. ``pip install -e conjure-NAME`` and the engine finds it.
"""
from __future__ import annotations

import re
from pathlib import Path
from string import Template

from .errors import InputError

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_NAME = 40
SCAFFOLD_KINDS = ("level", "character", "story")
#: Module names a plugin must not take (they would shadow the engine or common packages).
RESERVED = {"engine", "plugins", "conjure", "test", "tests", "game-demo"}


def check_name(name: str) -> str:
    """Validate a plugin name: lowercase letters, digits and single dashes, starting with a letter."""
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > MAX_NAME:
        raise InputError(f"plugin name {name!r}: use lowercase letters, digits and single dashes, starting "
                         f"with a letter, at most {MAX_NAME} characters (e.g. 'caves' or 'ice-caves')")
    if name.startswith("conjure-") or name in RESERVED:
        hint = f"; try {name[len('conjure-'):]!r}" if name.startswith("conjure-") else ""
        raise InputError(f"plugin name {name!r} is reserved or redundant (the package is called "
                         f"conjure-NAME already){hint}")
    return name


def names(name: str) -> dict[str, str]:
    """The names derived from a plugin name: distribution, module, generator id, class name."""
    check_name(name)
    return {
        "name": name,
        "dist": f"conjure-{name}",
        "module": "conjure_" + name.replace("-", "_"),
        "gen_id": name,
        "cls": "".join(part.capitalize() for part in name.split("-")) + "Generator",
        "title": name.replace("-", " ").title(),
    }


# --------------------------------------------------------------------------------------------- templates
PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A Conjure plugin: the $gen_id $kind generator"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["conjure"]

# The engine finds plugins through this entry-point group.
[project.entry-points.conjure]
$name = "$module"

[tool.setuptools]
packages = ["$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

LEVEL = '''\
"""$title: a Conjure level generator (a walled room with pillars, a spawn and an exit)."""
from __future__ import annotations

import numpy as np

from engine import Entity, Generator, Level, Param, TileDef, Tileset, hookimpl
from engine.quality import dungeon_problems

FLOOR, WALL = 0, 1


def tileset() -> Tileset:
    """A fresh tileset per level (post-processing plugins may change it in place)."""
    return Tileset("$gen_id", [
        TileDef(FLOOR, "floor", ".", (150, 140, 120)),
        TileDef(WALL, "wall", "#", (70, 62, 80), {"solid": True}),
    ])


class $cls(Generator):
    id = "$gen_id"
    kind = "level"
    version = "1"  # bump whenever the same request would give different output
    description = "A walled room with pillars, a spawn and an exit"
    params = (
        Param("width", "int", 32, min=8, max=256, help="map width in tiles"),
        Param("height", "int", 24, min=8, max=256, help="map height in tiles"),
        Param("pillars", "float", 0.2, min=0.0, max=0.3, help="share of the floor turned into pillars"),
    )

    def generate(self, request):
        p = request.params
        rng = request.rng()  # never the global random state: same request, same level
        w, h = p["width"], p["height"]
        tiles = np.full((h, w), WALL, dtype=np.uint8)
        inside = np.where(rng.random((h - 2, w - 2)) < p["pillars"], WALL, FLOOR)
        tiles[1:-1, 1:-1] = inside
        tiles[1, 1] = tiles[h - 2, w - 2] = FLOOR
        entities = [Entity("spawn", "spawn", 1, 1), Entity("exit", "exit", w - 2, h - 2)]
        return Level({"tiles": tiles}, tileset(), entities, metadata={"genre": "$gen_id"})

    def validate(self, level, request):
        # an empty list means valid; otherwise the engine resamples (request.attempt grows)
        return dungeon_problems(level, require_lock=False)


@hookimpl
def register_level_generators(register):
    register($cls())
'''

CHARACTER = '''\
"""$title: a Conjure character generator (villagers with stats, traits and a line of backstory)."""
from __future__ import annotations

from engine import Character, Generator, Param, hookimpl

FIRST = ("Ada", "Bram", "Cora", "Dag", "Edda", "Finn", "Greta", "Hal", "Ilse", "Jory")
LAST = ("Ashdown", "Briar", "Cole", "Dunmore", "Elder", "Fallow", "Grey", "Holt")
TRAITS = ("brave", "curious", "greedy", "kind", "lazy", "loyal", "proud", "shy", "stubborn", "witty")
HOMES = ("the mill", "the harbour", "the old keep", "the market", "the border farms")


class $cls(Generator):
    id = "$gen_id"
    kind = "character"
    version = "1"  # bump whenever the same request would give different output
    description = "Villagers with stats, traits and a line of backstory"
    params = (
        Param("role", "choice", "villager", choices=("villager", "guard", "merchant"), help="what they do"),
        Param("level", "int", 1, min=1, max=20, help="experience level; raises every attribute"),
    )

    def generate(self, request):
        p = request.params
        rng = request.rng()  # never the global random state: same request, same character
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        attributes = {a: int(rng.integers(3, 9)) + p["level"] for a in ("strength", "wits", "charm")}
        traits = sorted(str(t) for t in rng.choice(TRAITS, size=2, replace=False))
        backstory = f"{name.split()[0]} is a {traits[0]} {p['role']} from {rng.choice(HOMES)}."
        return Character(id=p["role"], name=name, role=p["role"], attributes=attributes, traits=traits,
                         backstory=backstory, style="$gen_id")


@hookimpl
def register_character_generators(register):
    register($cls())
'''

STORY = '''\
"""$title: a Conjure story generator (a fetch quest with a short branching dialogue)."""
from __future__ import annotations

from engine import Beat, Choice, DialogueNode, Generator, Param, Quest, Story, hookimpl

ITEMS = ("a silver key", "a lost ledger", "the healer's herbs", "an old map")
PLACES = ("the flooded crypt", "the watchtower", "the salt mine", "the hermit's hut")


class $cls(Generator):
    id = "$gen_id"
    kind = "story"
    version = "1"  # bump whenever the same request would give different output
    description = "A fetch quest with a short branching dialogue"
    params = (
        Param("giver", "str", "Mira", help="name of the quest giver"),
        Param("polite", "bool", True, help="whether the giver says please"),
    )

    def generate(self, request):
        p = request.params
        rng = request.rng()  # never the global random state: same request, same story
        item, place = str(rng.choice(ITEMS)), str(rng.choice(PLACES))
        please = "Please, " if p["polite"] else ""
        beats = [Beat("go", "goto", f"Go to {place}.", place="place"),
                 Beat("fetch", "fetch", f"Find {item}.", item="item"),
                 Beat("back", "return", f"Bring it to {p['giver']}.", character="giver")]
        nodes = [
            DialogueNode("start", "giver", [f"{please}bring me {item} from {place}."],
                         [Choice("I will.", "yes", ["quest_accepted"]), Choice("Not now.", "no")]),
            DialogueNode("yes", "giver", ["Thank you. Come back safe."]),
            DialogueNode("no", "giver", ["Then I will wait."]),
        ]
        return Story(id="$gen_id", title=f"{item.capitalize()} from {place}",
                     quest=Quest("fetch", "giver", f"Fetch {item} from {place}.", beats, "50 gold"),
                     start="start", nodes=nodes, places=[{"id": "place", "name": place}],
                     characters=[{"id": "giver", "name": p["giver"]}], items=[{"id": "item", "name": item}])


@hookimpl
def register_story_generators(register):
    register($cls())
'''

MODULES = {"level": LEVEL, "character": CHARACTER, "story": STORY}

PARAMS_CASES = {
    "level": '({}, {"width": 8, "height": 8}, {"pillars": 0.0})',
    "character": '({}, {"role": "guard", "level": 20})',
    "story": '({}, {"giver": "Old Tom", "polite": False})',
}

TEST = '''\
"""Tests for $dist, with the fixtures of Conjure's pytest plugin (engine.testing)."""
import $module


def test_registers_and_generates(conjure_engine):
    engine = conjure_engine($module)
    assert [g.id for g in engine.generators("$kind")] == ["$gen_id"]
    content = engine.generate("$kind", "$gen_id", seed=1)
    assert content.metadata["generator"] == "$gen_id"


def test_contract(conjure_engine, check_generator):
    # determinism, params, validation and generate_batch, for a few seeds and parameter sets
    check_generator(conjure_engine($module), "$gen_id", seeds=[0, 1, "abc"],
                    params_cases=$params_cases)
'''

CONFTEST = '''\
"""Load Conjure's pytest plugin (fixtures conjure_engine, check_generator) unless its entry point did."""
import engine.testing


def pytest_configure(config):
    if not config.pluginmanager.is_registered(engine.testing):
        config.pluginmanager.register(engine.testing, "conjure-testing")
'''

README = """\
# $dist

A [Conjure](https://example.invalid/conjure) plugin adding the `$gen_id` $kind generator.

```sh
pip install -e .                     # the engine finds it through the `conjure` entry point
conjure list plugins                 # shows $name, its version and what it registered
conjure generate $kind -g $gen_id -s 7$example_out
python -m pytest                     # runs tests/ with Conjure's fixtures
```

Edit `$module/__init__.py`; bump the generator's `version` whenever the same seed and params would give
different output. See Conjure's `docs/plugins.md` for the generator contract and every hook.
"""

GITIGNORE = "__pycache__/\n*.egg-info/\nbuild/\ndist/\n.pytest_cache/\n"


def render(name: str, kind: str = "level") -> dict[str, str]:
    """The files of a new plugin package, as ``{relative path: text}`` (paths under ``conjure-NAME/``)."""
    if kind not in SCAFFOLD_KINDS:
        raise InputError(f"--kind {kind!r}: expected one of {', '.join(SCAFFOLD_KINDS)}")
    n = names(name)
    subs = dict(n, kind=kind, params_cases=PARAMS_CASES[kind],
                example_out=" -o level.png" if kind == "level" else "")
    fill = lambda text: Template(text).substitute(subs)  # noqa: E731
    return {
        "pyproject.toml": fill(PYPROJECT),
        f"{n['module']}/__init__.py": fill(MODULES[kind]),
        f"tests/test_{n['module'][len('conjure_'):]}.py": fill(TEST),
        "tests/conftest.py": CONFTEST,
        "README.md": fill(README),
        ".gitignore": GITIGNORE,
    }


def taken_ids(name: str) -> list[str]:
    """Generator ids or plugin names already in use that ``name`` would clash with."""
    from .core import Engine

    try:
        eng = Engine()
    except Exception:  # a broken environment must not stop scaffolding; the clash shows on install
        return []
    clash = [f"generator {name!r}" for g in eng.generators() if g.id == name]
    clash += [f"plugin {i.name!r}" for i in eng.plugins() if i.name in (name, f"plugins.{name}")]
    return clash


def create(name: str, kind: str = "level", directory: str | Path = ".", check_clash: bool = True) -> Path:
    """Write ``conjure-NAME/`` under ``directory``; refuse to touch an existing path. Returns the folder."""
    files = render(name, kind)
    if check_clash:
        clash = taken_ids(name)
        if clash:
            raise InputError(f"plugin name {name!r} is taken in this environment (by {', '.join(clash)}); "
                             "pick another name")
    root = Path(directory) / f"conjure-{name}"
    if root.exists() or root.is_symlink():
        raise InputError(f"{root}: already exists; refusing to overwrite it (pick another name or --dir)")
    if not Path(directory).is_dir():
        raise InputError(f"{directory}: no such folder")
    try:
        root.mkdir()
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"{root}: cannot write ({e.strerror})") from None
    return root
