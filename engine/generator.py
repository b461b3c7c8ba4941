"""The generator and exporter contracts.

A **generator** is an object with::

    id: str            # unique, lowercase, e.g. "dungeon"
    kind: str          # "level", "character" or "story"
    version: str       # bump it whenever the same request would give different output
    description: str
    params: tuple[Param, ...]
    def generate(self, request: Request) -> Content
    def generate_batch(self, requests: list[Request]) -> list[Content]   # optional
    def validate(self, content: Content, request: Request) -> list[str]  # optional, problems found

Subclass :class:`Generator` for defaults (``generate_batch`` loops, ``validate`` finds nothing).

An **exporter** writes content to a file format (and may read it back)::

    id: str                        # e.g. "msgpack", "tmj", "png"
    kinds: tuple[str, ...]         # content kinds it takes ("level", "character", "story")
    extensions: tuple[str, ...]    # e.g. (".tmj",); the longest matching suffix picks the exporter
    description: str
    options: tuple[str, ...]       # optional: the option names it takes (others are refused)
    def export(self, content, path: Path, options: dict) -> list[Path]   # files written
    def dumps(self, content, options: dict) -> bytes                     # optional: single-file formats
    def load(self, path: Path) -> Content                                # optional: importers

Subclass :class:`Exporter`: implement ``dumps`` and ``export`` writes it atomically.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .content import Content
from .params import Param
from .seeds import Seed, derive

ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Request:
    """What a generator is asked for: kind, generator id, seed, checked params, context, attempt.

    ``attempt`` counts resamples: the engine retries invalid content with ``attempt`` 1, 2, … and every
    random stream derives from (seed, attempt), so a retry is as reproducible as the first try.
    """

    kind: str
    generator: str
    seed: Seed
    params: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    attempt: int = 0

    def derive(self, *path: int | str) -> int:
        """A 64-bit seed for a named sub-stream of this request."""
        return derive(self.seed, "attempt", self.attempt, *path)

    def rng(self, *path: int | str) -> np.random.Generator:
        """A fresh numpy Generator for this request (and optional named sub-stream)."""
        return np.random.Generator(np.random.PCG64(self.derive(*path)))

    def torch_generator(self, *path: int | str, device: str = "cpu"):
        """A fresh ``torch.Generator`` for this request; imports torch on first use only."""
        import torch  # noqa: PLC0415 - torch is optional at import time by design

        g = torch.Generator(device=device)
        g.manual_seed(self.derive("torch", *path) & 0x7FFF_FFFF_FFFF_FFFF)
        return g

    def retry(self) -> "Request":
        return Request(self.kind, self.generator, self.seed, self.params, self.context, self.attempt + 1)


class Generator:
    """Convenience base class for generators (plugins may also use any object with the same attributes)."""

    id: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def generate(self, request: Request) -> Content:  # pragma: no cover - abstract
        raise NotImplementedError

    def generate_batch(self, requests: list[Request]) -> list[Content]:
        return [self.generate(r) for r in requests]

    def validate(self, content: Content, request: Request) -> list[str]:
        return []


class Exporter:
    """Convenience base class for exporters: implement ``dumps`` (single file) or override ``export``."""

    id: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ()
    extensions: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: the option names ``export``/``dumps`` take (``-O KEY=VALUE``); the engine refuses others.
    #: ``None`` means not declared: anything is passed through.
    options: ClassVar[tuple[str, ...] | None] = None

    def dumps(self, content: Content, options: dict) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def export(self, content: Content, path: Path, options: dict) -> list[Path]:
        from .serialize import atomic_write

        return [atomic_write(path, self.dumps(content, options))]


def int_option(options: dict, name: str, default: int, lo: int, hi: int, fmt: str) -> int:
    """An exporter's integer option (``-O name=VALUE``), checked: an InputError names the format and option.
    (Unknown option names are refused by the engine from the exporter's ``options``.)"""
    from .errors import InputError

    v = options.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise InputError(f"{fmt} option {name}: expected an int in {lo}..{hi}, got {v!r}")
    return v


def describe_generator(gen: Any) -> dict[str, Any]:
    return {"id": gen.id, "kind": gen.kind, "version": gen.version,
            "description": getattr(gen, "description", ""),
            "params": [p.describe() for p in gen.params]}
