"""The project's own error types.

Every error Conjure raises on purpose is a :class:`ConjureError`. The CLI maps them to exit codes:
:class:`InputError` (bad usage, bad parameters, bad or corrupt files) exits 2, :class:`GenerationError`
(a generator could not produce valid content) exits 1, :class:`PluginError` (a plugin broke its contract)
exits 1.
"""
from __future__ import annotations

import re

#: Longest run of non-space characters a message keeps whole (a path fits; a pasted 5,000-digit value not).
MAX_TOKEN = 160
#: Longest message kept whole.
MAX_MESSAGE = 2000
_ADDRESS = re.compile(r"<([\w.]+(?: [\w.]+)*?) (?:object )?at 0x[0-9a-fA-F]+>")
_LONG = re.compile(r"\S{%d,}" % (MAX_TOKEN + 1))


def cut(text: str, keep: int = MAX_TOKEN) -> str:
    """``text`` shortened to about ``keep`` characters, saying how many were cut (for echoing user values)."""
    text = str(text)
    if len(text) <= keep:
        return text
    head, tail = keep * 2 // 3, keep // 4
    return f"{text[:head]}…[{len(text) - head - tail} characters cut]…{text[len(text) - tail:]}"


def _short_message(message: object) -> object:
    if not isinstance(message, str):
        return message
    message = _ADDRESS.sub(r"<\1>", message)  # "<_io.BytesIO object at 0x7f...>" -> "<_io.BytesIO>"
    message = _LONG.sub(lambda m: cut(m.group(0)), message.replace("\n", " ").replace("\r", " "))
    return cut(message, MAX_MESSAGE)


class ConjureError(Exception):
    """Base class of every error Conjure raises on purpose. ``str(err)`` is one line naming the cause:
    line breaks become spaces and over-long values (a pasted 5,000-character parameter) are cut."""

    exit_code = 1

    def __init__(self, *args: object):
        super().__init__(*(_short_message(a) for a in args[:1]), *args[1:])


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
