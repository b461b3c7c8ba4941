"""Hook specifications: the whole plugin API of Conjure.

A plugin is a module or object with functions marked ``@engine.hookimpl`` whose names are those below.
Registration hooks hand the plugin a ``register`` callback; the engine owns the registry, checks what is
registered and names the plugin when something is wrong. Post-processing hooks let a plugin adjust content
after generation and before validation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .content import Cast, Character, Level, Story
    from .generator import Request

PROJECT = "conjure"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_level_generators(register: Callable[[Any], None]) -> None:
    """Register level generators.

    :param register: call ``register(generator)`` once per generator; the generator's ``kind`` must be
        ``"level"``. See :mod:`engine.generator` for the contract.
    :return: nothing; return values are ignored.
    """


@hookspec
def register_character_generators(register: Callable[[Any], None]) -> None:
    """Register character generators.

    :param register: call ``register(generator)`` once per generator; the generator's ``kind`` must be
        ``"character"``. A character generator returns a ``Character``, or a ``Cast`` when asked for a cast.
    :return: nothing; return values are ignored.
    """


@hookspec
def register_story_generators(register: Callable[[Any], None]) -> None:
    """Register story generators.

    :param register: call ``register(generator)`` once per generator; the generator's ``kind`` must be
        ``"story"``.
    :return: nothing; return values are ignored.
    """


@hookspec
def register_exporters(register: Callable[[Any], None]) -> None:
    """Register exporters (file formats), and importers through an exporter's optional ``load``.

    :param register: call ``register(exporter)`` once per exporter; see :mod:`engine.generator` for the
        contract (``id``, ``kinds``, ``extensions``, ``export``, optional ``dumps`` and ``load``).
    :return: nothing; return values are ignored.
    """


@hookspec
def process_level(level: "Level", request: "Request") -> None:
    """Adjust a freshly generated level in place, before it is validated.

    Called for every plugin that implements it, once per attempt, after the generator returns.

    :param level: the level; change its layers, entities, regions or metadata in place.
    :param request: the request it was made for (generator id, seed, params, context, attempt).
    :return: nothing; to reject content, let validation fail (the engine resamples).
    """


@hookspec
def process_character(character: "Character | Cast", request: "Request") -> None:
    """Adjust a freshly generated character (or cast) in place, before it is validated.

    :param character: the ``Character`` or ``Cast``; change it in place.
    :param request: the request it was made for.
    :return: nothing.
    """


@hookspec
def process_story(story: "Story", request: "Request") -> None:
    """Adjust a freshly generated story in place, before it is validated.

    :param story: the story; change it in place.
    :param request: the request it was made for.
    :return: nothing.
    """
