"""Conjure: a plugin-based content generation engine for games.

``import engine`` is light: numpy, msgpack and pluggy, never torch. Plugins load when an :class:`Engine`
is made.

The modules of ``engine/``, one home for each idea (the README's layout section has the same list)::

    __init__.py          the public API (Engine, content types, Generator, Param, hookimpl, derive, rng)
    __main__.py          `python -m engine`: the CLI
    bake/                `conjure bake`: spec, journal, workers/executors, the bake itself, extract
    cli.py               the `conjure` command line: one table of commands (COMMANDS)
    content.py           the content model: Level, Character, Cast, Story, schemas and validation
    core.py              the Engine: requests, generate (+ batch, tries), export, load, context, runtime slot
    data/                engine data files (the text filter's blocklist)
    errors.py            the error types (InputError exit 2, GenerationError/PluginError exit 1)
    eval_characters.py   `conjure evaluate` metrics and report for character generators
    eval_levels.py       `conjure evaluate` metrics and report for level generators
    eval_targets.py      the learned-level targets (met / missed) in those reports, `--controls N`
    eval_stories.py      `conjure evaluate` metrics and report for story generators
    evaluate.py          `conjure evaluate`: dispatch by content kind
    generator.py         the generator and exporter contracts, Request, and the optional protocols
    hookspecs.py         the hook specifications: the whole plugin API
    images.py            pictures: level to RGB, sheets, sprite strips, tileset sheets, PNG bytes
    packs.py             content packs (.cpk): writer, random-access reader, manifest, hashes
    params.py            parameter schemas (Param), checking and coercion
    plugins.py           plugin loading (built-ins, entry points, allow/block lists) and the hook façade
    progress.py          the one progress bar/lines for long jobs (bake, training)
    quality.py           level validators (dungeon reachability, platformer jumps)
    resources.py         the package's version and data paths (importlib.metadata/resources)
    runtime.py           the runtime service: futures, LRU cache, streaming worlds of chunked generators
    scaffold.py          `conjure plugins new`: a working plugin package to start from
    seeds.py             stable seed derivation and seed parsing
    serialize.py         native msgpack/JSON, safe size-limited reads, atomic writes
    serve/               `conjure serve`: content over HTTP and the web playground
    testing.py           pytest helpers for plugin authors (check_generator, conjure_engine)
    textfilter.py        the content filter for generated names and lines
    themes.py            tile themes (-O theme=NAME): registry, loading, themed pictures and tilesets
    training.py          `conjure train`: data, temporary output, model card
    weights.py           safetensors weights and model cards, loaded safely

The folders of ``plugins/`` (beside one module per built-in plugin)::

    data/                shipped data: level corpora, name/sprite/story corpora, trained models
    learned_characters/  parts of character-ml (name model, stats, sprite painter)
    learned_level_lm/    parts of level-lm (the tile transformer, constrained decoding, training)
    learned_levels/      shared parts of dungeon-vae and platformer-gan (corpus, model, rules)
    learned_stories/     parts of story-lm (tokenizer, model, training, corpus)
    tiled/               the Tiled TMJ/TMX exporters and importers: names, write, read
"""
from .content import (Beat, Cast, Character, Choice, Content, DialogueNode, Entity, Level, Quest, Region,
                      Sprite, Story, TileDef, Tileset)
from .core import DEFAULT_GENERATORS, Engine
from .errors import ConjureError, ContentError, GenerationError, InputError, PluginError
from .generator import Exporter, Generator, Request
from .hookspecs import hookimpl
from .params import Param
from .plugins import DEFAULT_PLUGINS
from .seeds import derive, rng

__all__ = [
    "Beat", "Cast", "Character", "Choice", "Content", "DialogueNode", "Entity", "Level", "Quest", "Region",
    "Sprite", "Story", "TileDef", "Tileset", "DEFAULT_GENERATORS", "Engine", "ConjureError", "ContentError",
    "GenerationError", "InputError", "PluginError", "Exporter", "Generator", "Request", "hookimpl", "Param",
    "DEFAULT_PLUGINS", "derive", "rng",
]
