"""Conjure: a plugin-based content generation engine for games.

``import engine`` is light: numpy, msgpack and pluggy, never torch. Plugins load when an :class:`Engine`
is made.
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
