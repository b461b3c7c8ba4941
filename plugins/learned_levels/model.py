"""What a learned level model carries besides its network, shared by ``dungeon-vae`` and ``platformer-gan``.

A weights file (``model.safetensors``) holds, next to the network's tensors, three JSON documents as uint8
tensors: ``__config__`` (sizes, checked against bounds before anything is built), ``__tileset__`` (the
corpus tileset: glyphs, names, tags, colors; entity tiles and what they stand on; view; room size) and
``__rules__`` (the playability rules fitted on the corpus, :class:`~plugins.learned_levels.rules.Rules`).
So a model generates in its corpus's tileset and validates with its corpus's rules wherever it is copied.
The model card beside it lists the corpus files (with hashes), the legend/mapping, and the held-out split,
which :meth:`LevelModel.corpus` reads back for ``conjure evaluate``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError

from .corpus import Corpus, grid_of, level_from_grid, load_corpus, roles_of, skipped_summary, tile_tags, \
    tileset_from_dict
from .rules import Rules, fit_rules

REPO = Path(__file__).resolve().parents[2]
REFINE = 2


class LevelModel:
    """Tileset, rules and card of a loaded level model (subclasses add the network)."""

    def __init__(self, tensors: dict, card: dict, path: Path, source: str):
        from plugins.learned_common import tensor_json

        self.card = card
        self.path = path
        doc = tensor_json(tensors, "__tileset__", source, None)
        if doc is None:
            raise InputError(f"{source}: no __tileset__ tensor (weights from an older version: retrain them)")
        self.tileset, self.entity_under, self.entity_kind = tileset_from_dict(doc, f"{source}: __tileset__")
        self.view = doc.get("view", "side")
        room = doc.get("room")
        self.room = tuple(room) if isinstance(room, list) and len(room) == 2 else None
        self.rules = Rules.from_dict(tensor_json(tensors, "__rules__", source, None), f"{source}: __rules__")
        if len(self.rules.roles) != len(self.tileset.tiles):
            raise InputError(f"{source}: __rules__ has {len(self.rules.roles)} tiles, the tileset "
                             f"{len(self.tileset.tiles)}")
        self.classes = len(self.tileset.tiles)
        self.roles = [roles_of(tile_tags(t)) for t in self.tileset.tiles]
        self._corpus: Corpus | None = None
        self._codes = (tensors.get("__patterns3__"), tensors.get("__patterns2__"))
        shares = tensors.get("__tile_shares__")
        self._shares = shares.numpy().astype(np.float64) if shares is not None and shares.numel() == self.classes \
            else None
        self._patterns = None
        self.patterns_source = ""

    def mean_probs(self) -> np.ndarray:
        """The network's mean per-cell tile distribution over a fixed set of latents (subclasses)."""
        raise NotImplementedError

    def sampled_shares(self, w: np.ndarray) -> np.ndarray | None:
        """Tile-kind shares of a few levels sampled (constrained) with tile weights ``w``; None: not offered."""
        return None

    def tile_weights(self) -> np.ndarray:
        """Per tile kind, the factor that sampling multiplies the network's probabilities by: the kind's share
        in the training strips over its mean probability in the network's output (latents from a fixed
        seed), clipped to [1/4, 8] and rounded to 2 significant digits (so float noise cannot change it).
        A network that gives a rare kind (enemies, pipes) too little mass draws it about as often as the
        corpus has it. Models that offer :meth:`sampled_shares` then correct it ``REFINE`` times on shares
        of levels sampled under the constraint (×0.5–2 a step, within [1/4, 16]). The shares are stored with
        weights trained from now on (``__tile_shares__``), else counted once from the card's corpus; all ones
        when neither is at hand."""
        if getattr(self, "_tile_w", None) is None:
            w = np.ones(self.classes)
            share = self._shares
            if share is None:
                try:
                    corpus = self.corpus()
                except InputError:
                    corpus = None
                if corpus is not None:
                    train, _ = self.split(corpus)
                    share = strip_shares(self.pattern_strips([corpus.grids[i] for i in train]), self.classes)
            if share is not None:
                mean = self.mean_probs()
                w = np.clip(share / np.maximum(mean, 1e-9), 0.25, 8.0)
                w = np.where(share > 0, w, 1.0)
                w = np.array([float(f"{x:.2g}") for x in w])
                for _ in range(REFINE):
                    got = self.sampled_shares(w)
                    if got is None:
                        break
                    f = np.clip(share / np.maximum(got, 1e-9), 0.5, 2.0)
                    w = np.clip(w * np.where(share > 0, f, 1.0), 0.25, 16.0)
                    w = np.array([float(f"{x:.2g}") for x in w])
            self._tile_w = w
        return self._tile_w

    def pattern_strips(self, grids: list[np.ndarray]) -> list[np.ndarray]:
        """The strips (:mod:`.decode`) of training grids; subclasses say how their levels are cut."""
        raise NotImplementedError

    def patterns(self):
        """The corpus pattern table for constrained decoding: stored with the weights (``__patterns3__``,
        ``__patterns2__``), else rebuilt once from the training split of the corpus the card lists (cached
        on this model, which is cached per process). None when neither is available."""
        from . import decode

        if self._patterns is None:
            c3, c2 = self._codes
            if c3 is not None and c2 is not None:
                self._patterns = decode.patterns_from_codes(c3.numpy(), c2.numpy(), self.classes)
                self.patterns_source = "weights"
            else:
                try:
                    corpus = self.corpus()
                except InputError:
                    self._patterns = False
                    return None
                train, _ = self.split(corpus)
                self._patterns = decode.build_patterns(self.pattern_strips([corpus.grids[i] for i in train]),
                                                       self.classes)
                self.patterns_source = "corpus"
        return self._patterns or None

    def mask(self, role: str) -> np.ndarray:
        return np.array([role in r for r in self.roles], dtype=bool)

    def to_level(self, grid: np.ndarray, metadata: dict, regions: list | None = None):
        return level_from_grid(grid, self.tileset, self.entity_under, self.entity_kind, metadata, regions)

    def grid_of(self, level) -> np.ndarray:
        return grid_of(level, self.tileset, self.entity_kind)

    def corpus(self) -> Corpus:
        """The corpus these weights were trained on, re-read from the files the card lists (paths as written,
        else relative to the repository for shipped weights)."""
        if self._corpus is None:
            self._corpus, self._card_path = card_corpus(self.card, self.path)
        return self._corpus

    def split(self, corpus: Corpus) -> tuple[list[int], list[int]]:
        """The card's held-out split, as indices into ``corpus`` (:func:`card_split`)."""
        return card_split(self.card, corpus, getattr(self, "_card_path", None))


class CorpusWeights:
    """The ``LevelCorpus`` protocol (and ``model``) for a generator whose weights are a :class:`LevelModel`
    subclass (``model_class``): the corpus, split and rules its weights carry, and corpus reading."""

    id: str
    model_class: type

    def model(self, weights: str = "", device: str = "cpu"):
        from .. import learned_common as lc

        lc.torch_threads()
        dev = lc.resolve_device(device, self.id) if device != "cpu" else "cpu"
        cls = self.model_class
        return lc.load_cached(self.id, weights, lambda t, c, p: cls(t, c, p, dev), device=dev)

    def corpus(self, params: dict):
        """The corpus the weights in ``params`` were trained on."""
        return self.model(params.get("weights", "")).corpus()

    def corpus_split(self, params: dict, corpus):
        return self.model(params.get("weights", "")).split(corpus)

    def rules(self, params: dict):
        return self.model(params.get("weights", "")).rules

    def read_corpus(self, paths, legend=None):
        return load_corpus(list(paths), legend=legend)


def find_card_file(weights: Path, p: str, sha256: str | None = None, from_card: str | None = None) -> str:
    """A training file a model card lists: relative to the card's folder (``from_card``, written by training
    since 2026-12: found from any working directory), else as written (relative to where training ran), in
    the repository or beside the weights; with the card's SHA-256, only the very file trained on (never a
    namesake)."""
    from engine.weights import file_digest

    changed = []
    card_dir = Path(weights) if Path(weights).is_dir() else Path(weights).parent
    first = [card_dir / from_card] if from_card else []
    for cand in (*first, Path(p), REPO / p, Path(weights).parent / p):
        if cand.is_file():
            if not sha256 or file_digest(cand) == sha256:
                return str(cand)
            changed.append(str(cand))
    if changed:
        raise InputError(f"{weights}: training file {p} (listed in its model card) differs from the one "
                         f"trained on ({changed[0]} has another SHA-256); evaluate with --data")
    raise InputError(f"{weights}: training file {p} (listed in its model card) is not there; "
                     "evaluate with --data")


def card_corpus(card: dict, weights: Path) -> tuple[Corpus, dict[str, str]]:
    """(the corpus a model card's weights were trained on, {path read: the card's path}): the card's files
    (levels, legend, mapping) found by :func:`find_card_file` and read by ``load_corpus``."""
    info = card.get("corpus") or {}
    data = [d for d in card.get("data", []) if isinstance(d, dict) and "path" in d]
    if not data:
        raise InputError(f"{weights}: the model card lists no training files to evaluate against (give --data)")
    digests = {d["path"]: d.get("sha256") for d in data}
    paths = [find_card_file(weights, d["path"], d.get("sha256"), d.get("from_card")) for d in data]
    extra = {k: find_card_file(weights, info[k], digests.get(info[k]), info.get(f"{k}_from_card"))
             if info.get(k) else None for k in ("legend", "mapping")}
    corpus = load_corpus(paths, legend=extra["legend"], mapping=extra["mapping"])
    return corpus, {str(Path(f)): d["path"] for f, d in zip(paths, data)}


def card_split(card: dict, corpus: Corpus, card_path: dict[str, str] | None = None) -> tuple[list[int], list[int]]:
    """A model card's held-out split as indices into ``corpus`` (re-read from the card's files): a level is
    held out when its file is a held-out path of the card with the card's SHA-256 for it (and, in a file of
    several levels, the same ``#N``), so namesakes in two ``--data`` folders (``a/level1.txt``,
    ``b/level1.txt``) never collide. ``card_path`` maps the paths the corpus was read from to the card's
    paths (when they were found elsewhere: in the repository, beside the weights); other paths are compared
    relative to the working directory, as the card writes them. No held-out list (or no match): the
    corpus's own default split."""
    held_out = [str(h) for h in (card.get("split") or {}).get("held_out", [])]
    if not held_out:
        return corpus.split()
    sha = {d["path"]: d.get("sha256") for d in card.get("data", []) if isinstance(d, dict) and "path" in d}

    def parts(src: str, known) -> tuple[str, str]:
        if src in known:
            return src, ""
        base, hash_, n = src.rpartition("#")
        return (base, n) if hash_ and n.isdigit() else (src, "")

    want = {parts(h, sha) for h in held_out}
    card_path = card_path or {}
    digest = dict(corpus.files)
    held = []
    for i, src in enumerate(corpus.sources):
        f, n = parts(src, digest)
        p = card_path.get(f) or _rel(f)
        if (p, n) in want and sha.get(p) in (None, digest.get(f)):
            held.append(i)
    hs = set(held)
    train = [i for i in range(len(corpus.grids)) if i not in hs]
    return (train, held) if held and train else corpus.split()


def prepare(job: Any, gen_id: str, view: str, holdout: float = 0.15, vertical: bool = False):
    """Read ``job``'s corpus (its paths, legend, mapping), check its view (and, side view, that a vertical
    corpus is refused unless ``vertical``: a generator that decodes column by column at one height cannot
    learn levels whose height varies), fit its rules, split it.
    Returns ``(corpus, rules, train_idx, held_idx)``; reports skipped files and the fitted rules."""
    import sys

    from .corpus import CorpusError

    paths = list(job.paths) or list(job.data)
    try:
        corpus = load_corpus(paths, engine=job.engine, legend=job.legend, mapping=job.mapping)
    except CorpusError as e:  # one line per file before the one-line error
        show = e.skipped if job.verbose else e.skipped[:10]
        for p, r in show:
            print(f"{gen_id}: skipped {p}: {r}", file=sys.stderr)
        if len(e.skipped) > len(show):
            print(f"{gen_id}: ... {len(e.skipped) - len(show)} more skipped (--verbose lists them all)",
                  file=sys.stderr)
        raise
    for line in skipped_summary(corpus, job.verbose):
        job.say(f"{gen_id}: {line}")
    if corpus.view != view:
        other = {"side": "side-view (with gravity)", "top": "top-down"}
        raise InputError(f"{gen_id} learns {other[view]} levels, but this corpus reads as {other[corpus.view]} "
                         f"({len(corpus.grids)} levels); train "
                         f"{'dungeon-vae or level-lm' if corpus.view == 'top' else 'platformer-gan or level-lm'} "
                         f"on it, or set "
                         f"\"view\": \"{view}\" in a --mapping file")
    refuse_vertical(corpus, gen_id, paths, vertical)
    rules = fit_rules(corpus)
    job.say(f"{gen_id}: {len(corpus.grids)} levels, {len(corpus.tileset.tiles)} tile kinds; rules: "
            f"{rules.describe()}; corpus levels passing: {rules.report['corpus_pass']:.0%}")
    for f, why in rules.report["failures"][:10]:
        job.say(f"{gen_id}: corpus level failing its own rules: {f}: {why}")
    train, held = corpus.split(holdout, job.seed)
    return corpus, rules, train, held


def refuse_vertical(corpus: Corpus, gen_id: str, paths, supported: bool = False) -> None:
    """One clear line when a generator that learns horizontal side-view levels is given a vertical corpus
    (Kid Icarus: levels more than twice as high as wide, climbed from the bottom up, heights differing)."""
    if corpus.view == "side" and corpus.orientation == "vertical" and not supported:
        hs = sorted({int(g.shape[0]) for g in corpus.grids})
        where = ", ".join(map(str, paths))
        raise InputError(f"{gen_id} cannot learn {where}: its {len(corpus.grids)} levels are vertical "
                         f"({corpus.grids[0].shape[1]} columns wide, {hs[0]}-{hs[-1]} rows high, climbed from the "
                         f"bottom up) and {gen_id} learns side-view levels that run left to right at one height")


def _rel(p: str) -> str:
    """``p`` as the model card writes it: relative to the working directory when under it."""
    try:
        return str(Path(p).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return p


def card_extras(corpus: Corpus, rules: Rules, train: list[int], held: list[int], job: Any, history: dict) -> dict:
    rel = _rel

    return {"corpus": {**corpus.describe(), "legend": rel(str(job.legend)) if job.legend else None,
                       "mapping": rel(str(job.mapping)) if job.mapping else None,
                       "skipped": [[rel(p), r] for p, r in corpus.skipped]},
            "split": {"holdout": "by level", "seed": job.seed, "train": [rel(corpus.sources[i]) for i in train],
                      "held_out": [rel(corpus.sources[i]) for i in held]},
            "rules": rules.to_dict(), "history": history.get("history", []),
            "best_epoch": history.get("best_epoch")}


def extra_tensors(corpus: Corpus, rules: Rules, strips: list[np.ndarray] | None = None) -> dict:
    """The tileset and rules as JSON tensors, and with ``strips`` (the training split's, cut as the generator
    decodes) the corpus pattern table (:mod:`.decode`) as int64 tensors."""
    import torch

    from plugins.learned_common import json_tensor

    out = {"__tileset__": json_tensor(corpus.tileset_dict()), "__rules__": json_tensor(rules.to_dict())}
    if strips is not None:
        from .decode import build_patterns

        p = build_patterns(strips, corpus.classes)
        out["__patterns3__"] = torch.from_numpy(p.codes.copy())
        out["__patterns2__"] = torch.from_numpy(p.codes2.copy())
        out["__tile_shares__"] = torch.from_numpy(strip_shares(strips, corpus.classes))
    return out


def strip_shares(strips: list[np.ndarray], classes: int) -> np.ndarray:
    """Share of each tile kind in the training strips (float64)."""
    share = np.zeros(classes)
    for s in strips:
        share += np.bincount(np.asarray(s).ravel(), minlength=classes)[:classes]
    return share / max(1.0, share.sum())


def common_ids(corpus_or_model: Any, grids: list[np.ndarray] | None = None) -> dict:
    """Tile ids the generators need, from roles and the corpus's statistics: ``air`` (most common non-solid
    tile of the top rows), ``ground`` (most common solid tile of the bottom row), ``floor`` (most common
    walkable non-entity tile), ``wall`` (most common solid tile), ``void``, ``door``, ``locked``, ``enemy``."""
    ts = corpus_or_model.tileset
    roles = [roles_of(tile_tags(t)) for t in ts.tiles]
    n = len(ts.tiles)
    ent = set(getattr(corpus_or_model, "entity_kind", {}) or {})

    def most(cands, counts):
        cands = [i for i in cands if i not in ent]
        if not cands:
            return None
        return max(cands, key=lambda i: (counts[i], -i))

    grids = grids if grids is not None else list(getattr(corpus_or_model, "grids", []))
    top = np.zeros(n)
    bottom = np.zeros(n)
    allc = np.zeros(n)
    for g in grids:
        top += np.bincount(g[0].ravel(), minlength=n)[:n]
        bottom += np.bincount(g[-1].ravel(), minlength=n)[:n]
        allc += np.bincount(g.ravel(), minlength=n)[:n]
    solid = [i for i in range(n) if "solid" in roles[i]]
    passable = [i for i in range(n) if "solid" not in roles[i] and "void" not in roles[i]]
    out = {"air": most([i for i in passable if not roles[i] & {"enemy", "collectable", "hazard"}] or passable, top),
           "ground": most(solid, bottom), "wall": most(solid, allc),
           "floor": most([i for i in passable if not roles[i] & {"enemy", "collectable", "door", "locked", "stairs",
                                                               "goal", "start", "key"}] or passable, allc),
           "void": most([i for i in range(n) if "void" in roles[i]], allc),
           "door": most([i for i in range(n) if "door" in roles[i] and "locked" not in roles[i]
                         and "solid" not in roles[i]], allc),
           "locked": most([i for i in range(n) if "locked" in roles[i]], allc),
           "enemy": most([i for i in range(n) if "enemy" in roles[i]] , allc)}
    if out["enemy"] is None:  # entity enemies (Tiled objects, Conjure legends) are entity tiles
        e = [i for i in range(n) if "enemy" in roles[i]]
        out["enemy"] = max(e, key=lambda i: (allc[i], -i)) if e else None
    return out
