"""Byte-identical output across refactors: BLAKE2b digests of a fixed set of requests and of every exporter's
files for them, recorded in ``tests/digests.json``.

The file was recorded before the architecture split of issue 17 (engine/bake/, plugins/tiled/,
engine/images.py, the runtime slot) and must hold after it: moving code must not move a byte.

Entries are keyed by generator id and version (``terrain@1``), then by the request's name and the exporter.
**An engineer who bumps a generator's version (because its output changed) updates that generator's
entries**: run ``CONJURE_UPDATE_DIGESTS=1 python -m pytest tests/test_digests.py`` and commit the new
``tests/digests.json`` with the version bump; stale keys of the old version are dropped. An exporter whose
output changes on purpose does the same and says so in its commit. Any other difference is a regression.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

DIGESTS = Path(__file__).with_name("digests.json")
UPDATE = os.environ.get("CONJURE_UPDATE_DIGESTS") == "1"

#: name -> (kind, generator, seed, params, context names, exporters)
LEVEL_EXPORTS = ("msgpack", "json", "png", "tmj", "tmx")
REQUESTS = {
    "terrain-small": ("level", "terrain", 7, {"width": 40, "height": 32}, (), LEVEL_EXPORTS),
    "terrain-chunk": ("level", "terrain", "world", {"width": 32, "height": 32, "chunk_x": 2, "chunk_y": -1},
                      (), ("msgpack",)),
    "platformer": ("level", "platformer", 3, {"width": 80}, (), LEVEL_EXPORTS),
    "hero": ("character", "classic-character", 11, {"role": "ranger"}, (), ("msgpack", "json", "png", "atlas")),
    "cast": ("character", "classic-character", 5, {}, ("terrain-small",), ("msgpack", "json", "png", "atlas")),
    "story": ("story", "grammar-story", 5, {}, ("terrain-small", "cast"),
              ("msgpack", "json", "png", "ink", "ink-json", "story-md")),
}
EXTENSIONS = {"msgpack": ".msgpack", "json": ".json", "png": ".png", "tmj": ".tmj", "tmx": ".tmx",
              "atlas": ".atlas.json", "ink": ".ink", "ink-json": ".ink.json", "story-md": ".story.md"}


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def compute(eng, tmp: Path) -> dict:
    """{generator@version: {request name: {exporter: {file name: digest}}}} for :data:`REQUESTS`."""
    made: dict = {}
    out: dict = {}
    for name, (kind, gen, seed, params, ctx_names, exporters) in REQUESTS.items():
        ctx = None
        if ctx_names:
            ctx = {}
            for c in ctx_names:
                ctx["cast" if made[c].SCHEMA.startswith("conjure.cast") else "level"] = made[c]
        content = made[name] = eng.generate(kind, gen, seed, params, ctx)
        key = f"{gen}@{eng.generator(gen).version}"
        entry = out.setdefault(key, {})[name] = {}
        for fmt in exporters:
            folder = tmp / name / fmt
            paths = eng.export(content, folder / f"{name}{EXTENSIONS[fmt]}", fmt)
            entry[fmt] = {Path(p).name: _digest(Path(p).read_bytes()) for p in sorted(paths)}
    return out


def test_outputs_are_byte_identical_to_the_recorded_digests(eng, tmp_path):
    got = compute(eng, tmp_path)
    if UPDATE:
        recorded = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
        for key in got:  # drop the old versions of the generators recorded now
            gen = key.split("@")[0]
            recorded = {k: v for k, v in recorded.items() if k.split("@")[0] != gen}
        recorded.update(got)
        DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        pytest.skip("digests rewritten (CONJURE_UPDATE_DIGESTS=1)")
    recorded = json.loads(DIGESTS.read_text())
    missing = sorted(set(got) - set(recorded))
    assert not missing, (f"no recorded digests for {missing}: a generator version changed; record them with "
                         "CONJURE_UPDATE_DIGESTS=1 (see this test's docstring)")
    diffs = [f"{key} {name} {fmt} {fname}"
             for key, names in got.items() for name, fmts in names.items() for fmt, files in fmts.items()
             for fname, digest in files.items()
             if recorded[key].get(name, {}).get(fmt, {}).get(fname) != digest]
    assert not diffs, "output changed without a version bump: " + "; ".join(diffs)
    assert got == {k: recorded[k] for k in got}
