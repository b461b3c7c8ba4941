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

A generator may also take part in **optional protocols**, each declared below as a ``typing.Protocol``
(``isinstance(gen, Trainable)`` tells whether a generator implements one) and listed in :data:`PROTOCOLS`:

- :class:`Trainable`: ``train(job)`` and ``train_options`` -- ``conjure train``.
- :class:`LevelCorpus`: ``corpus(params)``, ``rules(params)``, ``corpus_split(params, corpus)``,
  ``read_corpus(paths, legend)`` -- the level corpus (and its calibrated rules) that ``conjure evaluate``
  measures a learned level generator against, and a reader for ``--data``.
- :class:`ReferenceNames`: ``reference_names(weights)`` -- the names a character generator learned from, for
  the novelty of its names in ``conjure evaluate``.
- :class:`Chunked`: ``chunking`` (a :class:`Chunking`) -- seamless chunks of an endless world for
  ``engine.world(...)`` (:class:`engine.runtime.World`).
- :class:`StoryReference`: ``story_reference(params)`` -- a story generator's training lines and names, for
  copies and contradictions in ``conjure evaluate``.
- :class:`CharacterReference`: ``character_reference(params)`` -- a character generator's name corpora, game
  rules and sprite corpus (trained on / held out), for ``conjure evaluate``.
- :class:`BatchValidator`: ``validate_batch(contents, requests)`` -- ``validate`` for many items at once
  (``Engine.generate_batch`` checks a batch's first tries with it).
- :class:`LevelControls`: ``level_controls(params)``, ``measure_controls(level, params)`` -- a level
  generator's attribute controls (``-p pipes=many``) and how a level measures against them, for
  ``conjure evaluate --controls N``.

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
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

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
    #: When the request's time budget runs out, in ``time.monotonic()`` seconds (``None``: no budget). Not
    #: part of the request's identity: the same request with another budget makes the same bytes.
    deadline: float | None = field(default=None, compare=False, repr=False)

    def time_left(self) -> float | None:
        """Seconds until :attr:`deadline` (negative once past it), or ``None`` when there is no budget."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        """Raise :class:`~engine.errors.GenerationTimeout` once the budget is spent. The engine checks it
        between tries; a generator with a long loop (a search, a sampler) may call it inside the loop."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            from .errors import GenerationTimeout

            raise GenerationTimeout(f"generator {self.generator!r} ran past its time budget "
                                    f"(attempt {self.attempt + 1}, seed {self.seed!r})")

    def with_timeout(self, seconds: float | None) -> "Request":
        """This request with a budget of ``seconds`` from now (``None``: unchanged)."""
        if seconds is None:
            return self
        return replace(self, deadline=time.monotonic() + float(seconds))

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
        return Request(self.kind, self.generator, self.seed, self.params, self.context, self.attempt + 1,
                       self.deadline)


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


# --------------------------------------------------------------------------------------------- optional protocols
@runtime_checkable
class Trainable(Protocol):
    """A generator ``conjure train GENERATOR --data ...`` can train (:func:`engine.training.train`).

    ``train(job)`` gets an :class:`engine.training.TrainJob` (data files, ``job.out`` -- a fresh folder to write
    the weights into --, epochs or None for its default, seed, the engine for reading data through importers,
    ``job.options`` and ``job.progress(total, description)``) and returns a dict: ``"weights"`` (the file
    names it wrote into ``job.out``) and optionally ``"epochs"``, ``"metrics"``, ``"config"``, ``"data"``
    (``(path, sha256)`` of the files it used), ``"device"`` and ``"card"`` (more model-card fields).
    An optional attribute ``train_options: tuple[str, ...]`` names the ``-O KEY=VALUE`` options it takes
    (others are refused before training starts); without it any option is passed through.
    """

    def train(self, job: Any) -> dict: ...


@runtime_checkable
class LevelCorpus(Protocol):
    """A level generator that learned from a corpus, for ``conjure evaluate`` (:mod:`engine.eval_levels`).

    ``corpus(params)`` returns the corpus the weights in use (``params["weights"]``) were trained on: an
    object with ``grids`` (uint8 arrays of tile ids), ``tileset``, ``levels``, ``split(holdout, seed)`` and
    ``grid_of(level)`` (a generated level as ids of that tileset), such as
    ``plugins.learned_levels.corpus.Corpus``; ``rules(params)`` the playability rules fitted on it (with
    ``problems(grid)`` and ``describe()``); ``corpus_split(params, corpus)`` its ``(train, held_out)`` level
    indices; ``read_corpus(paths, legend)`` reads a user's corpus (``conjure evaluate --data``), for any level
    generator whose output is in that corpus's tileset.
    """

    def corpus(self, params: dict) -> Any: ...

    def rules(self, params: dict) -> Any: ...

    def corpus_split(self, params: dict, corpus: Any) -> tuple[list[int], list[int]]: ...

    def read_corpus(self, paths: list, legend: Any = None) -> Any: ...


@runtime_checkable
class ReferenceNames(Protocol):
    """A character generator that learned names from corpora: ``reference_names(weights="")`` returns
    ``{corpus name: [names]}`` it was trained on (for the weights named by its ``weights`` param, "" for the
    shipped ones), so ``conjure evaluate`` measures how many generated names are copies."""

    def reference_names(self, weights: str = "") -> dict[str, list[str]]: ...


@dataclass(frozen=True)
class Chunking:
    """How a level generator makes seamless chunks of an endless world: the names of its params for the
    chunk's size in tiles and its position in chunks. Chunk ``(cx, cy)`` of size ``n`` covers world tiles
    ``[cx*n, (cx+1)*n)`` in x and the same in y, and adjacent chunks must join without a seam."""

    width: str = "width"
    height: str = "height"
    x: str = "chunk_x"
    y: str = "chunk_y"

    def names(self) -> tuple[str, str, str, str]:
        return (self.width, self.height, self.x, self.y)

    def params(self, size: int, cx: int, cy: int) -> dict[str, int]:
        """The params of chunk ``(cx, cy)`` of ``size`` x ``size`` tiles."""
        return {self.width: size, self.height: size, self.x: int(cx), self.y: int(cy)}


@runtime_checkable
class Chunked(Protocol):
    """A level generator that streams as a world (``engine.world(seed, generator=ID)``): it declares
    ``chunking = Chunking(...)`` naming its size and position params (all four must be among its params)."""

    chunking: Chunking


@runtime_checkable
class StoryReference(Protocol):
    """A story generator's reference for ``conjure evaluate`` (:mod:`engine.eval_stories`):
    ``story_reference(params)`` returns ``{"training_lines": [...], "names": [...]}`` -- the lines the weights
    in use (``params["weights"]``) were trained on, placeholders such as ``{place}`` kept (a generated line
    that copies one of more than 8 words is not new), and names a story could wrongly use (items, places)."""

    def story_reference(self, params: dict) -> dict: ...


@runtime_checkable
class CharacterReference(Protocol):
    """A character generator's reference for ``conjure evaluate`` (:mod:`engine.eval_characters`, which lists
    the keys): ``character_reference(params)`` returns a dict with any of ``name_corpora`` (style -> names),
    ``training_names``, ``rules`` (attributes, min, max), ``sprite_frames`` (the down and side idle frame
    names), ``training_sprites`` / ``heldout_sprites`` (palette-index grids and roles) and ``max_colors``."""

    def character_reference(self, params: dict) -> dict: ...


@runtime_checkable
class Costed(Protocol):
    """A generator whose work grows with its params (sizes, search budgets, populations): ``cost(params)``
    returns the work a request asks for in multiples of the work at the defaults (1.0); the engine refuses a
    request costing more than ``engine.core.MAX_COST`` (1000) before anything runs, naming the generator."""

    def cost(self, params: dict) -> float: ...


@runtime_checkable
class BatchValidator(Protocol):
    """A generator that validates many items at once: ``validate_batch(contents, requests)`` returns one list
    of problems per item, in order, each exactly what ``validate(content, request)`` returns for it (e.g. a
    check vectorised over the batch). ``Engine.generate_batch`` calls it once for the first tries of a batch
    (items that passed the schema and text checks); resamples are validated one by one."""

    def validate_batch(self, contents: list, requests: list) -> list[list[str]]: ...


@runtime_checkable
class LevelControls(Protocol):
    """A level generator with attribute controls (e.g. ``-p pipes=many -p enemies=none``), for ``conjure evaluate
    --controls N`` (:mod:`engine.eval_targets`): ``level_controls(params)`` returns ``{attribute: buckets}`` that
    the weights in use can be asked, each attribute a param of that name taking those values (e.g.
    ``{"pipes": ("none", "few", "some", "many")}``); ``measure_controls(level, params)`` returns ``{attribute:
    bucket}`` measured on a level it made with ``params`` (an attribute a level is too small to judge is left
    out)."""

    def level_controls(self, params: dict) -> dict[str, tuple[str, ...]]: ...

    def measure_controls(self, level: Any, params: dict) -> dict[str, str]: ...


#: The optional protocols a generator may implement (documented in docs/plugins.md, checked by its test).
PROTOCOLS: tuple[type, ...] = (Trainable, LevelCorpus, ReferenceNames, Chunked, StoryReference,
                               CharacterReference, Costed, BatchValidator, LevelControls)


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
