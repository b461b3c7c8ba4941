"""The project's own error types.

Every error Conjure raises on purpose is a :class:`ConjureError`. The CLI maps them to exit codes:
:class:`InputError` (bad usage, bad parameters, bad or corrupt files) exits 2, :class:`GenerationError`
(a generator could not produce valid content) exits 1, :class:`PluginError` (a plugin broke its contract)
exits 1.
"""
from __future__ import annotations


class ConjureError(Exception):
    """Base class of every error Conjure raises on purpose. ``str(err)`` is one line naming the cause."""

    exit_code = 1


class InputError(ConjureError):
    """Bad usage or bad input: unknown generator, bad parameter, unreadable or corrupt file."""

    exit_code = 2


class ContentError(InputError):
    """Content that breaks its schema: names the bad field, e.g. ``level.entities[3].x``."""


class GenerationError(ConjureError):
    """A generator failed to produce valid content (e.g. ran out of tries)."""

    exit_code = 1


class GenerationTimeout(GenerationError):
    """A request ran past its time budget (``timeout``: ``--timeout``, a ``timeout`` in a bake job, the
    ``timeout=`` of :meth:`Engine.generate` / :meth:`Engine.submit`)."""


class PluginError(ConjureError):
    """A plugin broke its contract: names the plugin and, where known, the generator."""

    exit_code = 1

    def __init__(self, message: str, plugin: str | None = None, generator: str | None = None):
        self.plugin = plugin
        self.generator = generator
        where = []
        if plugin:
            where.append(f"plugin {plugin!r}")
        if generator:
            where.append(f"generator {generator!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
