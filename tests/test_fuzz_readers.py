"""Hardened readers, fuzzed: random and mutated bytes (truncation, bit flips, huge length prefixes, deep
nesting, structural mutations of valid documents) must raise only ``ConjureError`` subclasses with a one-line
message, never another exception, a hang or an unbounded allocation.

Readers: native msgpack and JSON (``engine.serialize.loads``), model cards and safetensors weights
(``engine.weights``), content packs (``engine.packs.PackReader``), Tiled TMJ/TMX (``plugins.tiled``) and VGLC
(``plugins.vglc``). Each property runs 2,000 examples here and 20,000 under ``-m slow``. Inputs are small,
so a run takes seconds; size limits and pathological shapes have their own tests below.
"""
from __future__ import annotations

import copy
import importlib
import json
import os
import random
import struct
import time
import tracemalloc
from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ConjureError, Engine
from engine import serialize

# CI runs a fixed set of 2,000 examples per property (derandomized: the same inputs every run, so a red
# test is reproducible); `-m slow` explores 20,000 fresh random ones per property.
FAST = settings(max_examples=2000, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
SLOW = settings(FAST, max_examples=20000, derandomize=False)


def _optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - modules written by other people may not exist yet
        return None


weights = _optional("engine.weights")
packs = _optional("engine.packs")
tiled = _optional("plugins.tiled")
vglc = _optional("plugins.vglc")


def expect_conjure_error_or_result(read, data):
    """Call ``read(data)``: fine if it returns; if it raises, it must be a ConjureError with a one-line message."""
    try:
        read(data)
    except ConjureError as e:
        msg = str(e)
        assert msg.strip(), f"{type(e).__name__} without a message"
        assert "\n" not in msg, f"multi-line message: {msg!r}"


# ---------------------------------------------------------------- valid samples to mutate
@pytest.fixture(scope="module")
def samples():
    eng = Engine(load=["dungeon", "classic_character", "grammar_story", "formats"], entry_points=False)
    level = eng.generate("level", "dungeon", seed=1, params={"width": 16, "height": 16, "rooms": 2,
                                                              "room_size": 4, "treasure": 1})
    char = eng.generate("character", seed=2)
    story = eng.generate("story", seed=3)
    return {"level": level, "character": char, "story": story}


SEED = st.integers(0, 2**32 - 1)


def mutate_bytes(blob: bytes, seed: int) -> bytes:
    """``blob`` truncated, bit-flipped, overwritten with 0xff/0x00 runs (huge or zero lengths), spliced with
    random bytes or with a chunk duplicated; one to four edits chosen by ``seed``."""
    rnd = random.Random(seed)
    data = bytearray(blob)
    for _ in range(rnd.randint(1, 4)):
        n = len(data)
        pos = rnd.randrange(n) if n else 0
        op = rnd.choice(("truncate", "flip", "flip", "ff", "zero", "insert", "dup"))
        if op == "truncate":
            del data[pos:]
        elif op == "flip" and n:
            data[pos] ^= 1 << rnd.randrange(8)
        elif op in ("ff", "zero"):
            data[pos:pos + 4] = (b"\xff" if op == "ff" else b"\x00") * len(data[pos:pos + 4])
        elif op == "insert":
            data[pos:pos] = rnd.randbytes(rnd.randint(1, 16))
        elif op == "dup":
            data[pos:pos] = data[pos:pos + rnd.randint(1, 32)]
    return bytes(data)


def mutations(blobs: list[bytes]):
    """Random bytes, or a valid blob mutated by :func:`mutate_bytes` (cheap to draw: one seed)."""
    return st.one_of(st.tuples(st.sampled_from(blobs), SEED).map(lambda t: mutate_bytes(*t)),
                     st.binary(max_size=256))


# leaves that break types: wrong scalars, huge/odd numbers, odd strings, containers
LEAVES = [None, True, False, 0, -1, 1, 255, 256, -(2**63), 2**64 - 1, 2**31, 0.5, -0.0, float("nan"),
          float("inf"), "", "x", "²", "9" * 5000, "conjure.level/²", "conjure.level/1", "conjure.story/1",
          "conjure.cast/1", "conjure.story/99999999999999999999", [], [1, 2, 3], [[0]], {}, {"id": "x"},
          {"": 1}, "\x00", "é" * 10]


def _paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, path + (i,))


def mutate_tree(doc, seed: int, leaves=LEAVES):
    """A copy of the document ``doc`` with one to three nodes replaced, deleted, wrapped or duplicated."""
    rnd = random.Random(seed)
    doc = copy.deepcopy(doc)
    for _ in range(rnd.randint(1, 3)):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = rnd.choice(paths)
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        op = rnd.choice(("replace", "replace", "replace", "delete", "wrap", "dup"))
        if op == "replace":
            parent[path[-1]] = copy.deepcopy(rnd.choice(leaves))
        elif op == "delete":
            del parent[path[-1]]
        elif op == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    return doc


def tree_mutation(docs, encode, leaves=LEAVES):
    return st.tuples(st.sampled_from(docs), SEED).map(lambda t: encode(mutate_tree(t[0], t[1], leaves)))


def fuzz(strategy, reader_name, examples: int = 2000):
    """Make a CI test (``examples``, default 2,000) and a ``-m slow`` test (20,000) of one property."""

    built: dict = {}

    def check(samples_, data):
        if "s" not in built:  # build the strategy once (it may write and read sample files)
            built["s"] = strategy(samples_)
        expect_conjure_error_or_result(READERS[reader_name], data.draw(built["s"]))

    @settings(FAST, max_examples=examples)
    @given(data=st.data())
    def fast(samples, data):
        check(samples, data)

    @pytest.mark.slow
    @SLOW
    @given(data=st.data())
    def slow(samples, data):
        check(samples, data)

    return fast, slow


# ---------------------------------------------------------------- native msgpack and JSON
def _native(fmt):
    return lambda data: serialize.loads(data, fmt, "<fuzz>")


def _msgpack_blobs(s):
    return [serialize.dumps(c, "msgpack") for c in s.values()]


def _json_blobs(s):
    return [serialize.dumps(c, "json") for c in s.values()]


def _msgpack_tree(s):
    docs = [msgpack.unpackb(b, raw=False) for b in _msgpack_blobs(s)]
    return tree_mutation(docs, lambda d: msgpack.packb(d, use_bin_type=True), LEAVES + [b"", b"\x00" * 7])


def _json_tree(s):
    docs = [json.loads(b) for b in _json_blobs(s)]
    return tree_mutation(docs, lambda d: json.dumps(d).encode())


READERS: dict = {"msgpack": _native("msgpack"), "json": _native("json")}

test_msgpack_bytes, test_msgpack_bytes_slow = fuzz(lambda s: mutations(_msgpack_blobs(s)), "msgpack")
test_msgpack_tree, test_msgpack_tree_slow = fuzz(_msgpack_tree, "msgpack")
test_json_bytes, test_json_bytes_slow = fuzz(lambda s: mutations(_json_blobs(s)), "json")
test_json_tree, test_json_tree_slow = fuzz(_json_tree, "json")


def test_native_readers_accept_their_own_output(samples):
    for c in samples.values():
        for fmt in ("msgpack", "json"):
            assert serialize.loads(serialize.dumps(c, fmt), fmt) == c


@pytest.mark.parametrize("fmt,data", [
    ("json", b"[" * 100_000 + b"]" * 100_000),
    ("json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("json", b'{"schema":"conjure.level/1","metadata":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ("msgpack", b"\x91" * 100_000 + b"\xc0"),
    ("msgpack", b"\x81\xa1a" * 100_000 + b"\xc0"),
    ("json", b"1" * 10_000),
    ("json", b'{"schema":"conjure.level/' + b"9" * 5000 + b'"}'),
    ("json", b'{"schema":"conjure.level/\xc2\xb2"}'),  # a unicode digit
    ("msgpack", b"\xc6\xff\xff\xff\xff"),  # bin32 claiming 4 GiB
    ("msgpack", b"\xdd\xff\xff\xff\xff"),  # array32 claiming 4 billion items
    ("msgpack", b"\xdf\xff\xff\xff\xff"),  # map32 claiming 4 billion pairs
    ("msgpack", b"\xdb\xff\xff\xff\xff"),  # str32 claiming 4 GiB
    ("msgpack", b"\xc7\x01\xff\x00"),  # ext type -1 (timestamp) with a bad length
    ("msgpack", b"\xd4\x05\x00"),  # fixext 1, type 5
])
def test_pathological_native_inputs(fmt, data):
    tracemalloc.start()  # memory is bounded here; time is not (no wall-clock bounds in tests)
    try:
        with pytest.raises(ConjureError) as e:
            serialize.loads(data, fmt, "evil")
        assert str(e.value).startswith("evil: ") and "\n" not in str(e.value)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"{peak} bytes allocated for a {len(data)}-byte input"


def test_deep_metadata_in_valid_content_is_refused(samples):
    doc = samples["level"].to_dict(binary=True)
    deep: list = []
    for _ in range(600):  # msgpack itself nests up to 1024
        deep = [deep]
    doc["metadata"] = {"deep": deep}
    with pytest.raises(ConjureError, match="nested deeper than"):
        serialize.loads(msgpack.packb(doc, use_bin_type=True), "msgpack")


def test_story_checks_are_linear_not_quadratic(samples):
    """A long dialogue chain (the worst case for the reachability checks): 16x the nodes must cost about 16x
    the time, not 256x. A ratio of two timings taken side by side (best of 5), not a wall-clock bound: a
    loaded machine slows both alike; the bound sits at the geometric middle (64x), far from both."""

    def chain(n):
        doc = samples["story"].to_dict(binary=False)
        doc["nodes"] = [{"id": f"n{i}", "speaker": "x", "lines": ["."],
                         "choices": [{"text": "on", "target": f"n{i + 1}", "set_flags": []}] if i < n - 1
                         else []} for i in range(n)]
        doc["start"] = "n0"
        return json.dumps(doc).encode()

    def best(data):
        import gc

        times = []
        for _ in range(5):
            gc.collect()
            gc.disable()  # the collector's passes over many new objects are not the code under test
            try:
                t = time.perf_counter()
                serialize.loads(data, "json")
                times.append(time.perf_counter() - t)
            finally:
                gc.enable()
        return min(times)

    small, large = chain(1_250), chain(20_000)
    ratio = best(large) / best(small)
    assert ratio < 64, f"16x the nodes took {ratio:.1f}x the time (quadratic would be ~256x)"


def test_tileset_with_out_of_range_ids_is_an_input_error(samples):
    doc = samples["level"].to_dict(binary=True)
    for bad in (300, -1, 2**40):
        doc["tileset"]["tiles"][0]["id"] = bad
        with pytest.raises(ConjureError, match=r"level\.(tileset\.tiles\[0\]\.id|layers)"):
            serialize.loads(msgpack.packb(doc, use_bin_type=True), "msgpack")


def test_json_tiles_must_be_integers(samples):
    doc = samples["level"].to_dict(binary=False)
    doc["layers"][0]["tiles"][0][0] = 1.5
    with pytest.raises(ConjureError, match="rows must hold integers"):
        serialize.loads(json.dumps(doc).encode(), "json")
    doc["layers"][0]["tiles"][0][0] = True
    with pytest.raises(ConjureError, match="rows must hold integers"):
        serialize.loads(json.dumps(doc).encode(), "json")


def test_size_limit_is_checked_before_parsing(monkeypatch, tmp_path):
    monkeypatch.setattr(serialize, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ConjureError, match="over the 1000-byte limit"):
        serialize.loads(b"{" + b" " * 2000 + b"}", "json", "big")
    p = tmp_path / "big.json"
    p.write_bytes(b" " * 5000)
    with pytest.raises(ConjureError, match="over the 100-byte limit"):
        serialize.read_bytes(p, limit=100)


# ---------------------------------------------------------------- files on disk (other readers)
@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def put(path, data: bytes) -> None:
    """Write ``data`` to ``path`` without O_TRUNC (truncating opens cost milliseconds on some filesystems)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _file_reader(fuzz_dir, name, load):
    path = Path(fuzz_dir) / name

    def read(data):
        put(path, data)
        return load(path)

    return read


# -- model cards and safetensors
def _safetensors_blob():
    from safetensors.numpy import save

    return save({"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(3, dtype=np.uint8)},
                metadata={"generator": "demo", "version": "1"})


def _st_header_tree(_s):
    blob = _safetensors_blob()
    (n,) = struct.unpack("<Q", blob[:8])
    header, body = json.loads(blob[8:8 + n]), blob[8 + n:]

    def pack(h):
        text = json.dumps(h).encode()
        return struct.pack("<Q", len(text)) + text + body

    return tree_mutation([header], pack)


def _card_docs():
    return [{"generator": "demo", "version": "1", "weights": [{"file": "w.safetensors", "sha256": "0" * 64,
                                                               "bytes": 10}], "metrics": {"loss": 0.5}}]


if weights is not None:
    @pytest.fixture(scope="module", autouse=True)
    def _weights_readers(fuzz_dir):
        READERS["safetensors"] = _file_reader(fuzz_dir, "w.safetensors",
                                              lambda p: weights.load_safetensors_numpy(p, max_bytes=1 << 20))
        READERS["card"] = _file_reader(fuzz_dir, "model.json", lambda p: weights.load_model_card(p))

    test_safetensors_bytes, test_safetensors_bytes_slow = fuzz(lambda s: mutations([_safetensors_blob()]),
                                                               "safetensors")
    test_safetensors_header, test_safetensors_header_slow = fuzz(_st_header_tree, "safetensors")
    test_model_card_bytes, test_model_card_bytes_slow = fuzz(
        lambda s: mutations([json.dumps(d).encode() for d in _card_docs()]), "card")
    test_model_card_tree, test_model_card_tree_slow = fuzz(
        lambda s: tree_mutation(_card_docs(), lambda d: json.dumps(d).encode()), "card")

    @pytest.mark.parametrize("data", [
        struct.pack("<Q", 2**64 - 1) + b"{}",
        struct.pack("<Q", 10**9) + b"{}" * 10,
        struct.pack("<Q", 60) + json.dumps({"w": {"dtype": "F32", "shape": [2**31 - 1, 2**31 - 1],
                                                  "data_offsets": [0, 0]}}).encode()[:60].ljust(60),
        b"",
        b"\x80\x03c__builtin__\neval\n",  # a pickle, refused as not safetensors
    ])
    def test_pathological_weights(fuzz_dir, data):
        path = Path(fuzz_dir) / "evil.safetensors"
        path.write_bytes(data)
        with pytest.raises(ConjureError, match="evil.safetensors"):
            weights.load_safetensors_numpy(path)

    def test_weights_size_limit(fuzz_dir):
        path = Path(fuzz_dir) / "big.safetensors"
        path.write_bytes(_safetensors_blob())
        with pytest.raises(ConjureError, match="limit"):
            weights.load_safetensors_numpy(path, max_bytes=64)
        card = Path(fuzz_dir) / "big.json"
        card.write_bytes(b"{" + b" " * 4096 + b"}")
        with pytest.raises(ConjureError, match="limit"):
            weights.load_model_card(card, max_bytes=1024)
        card.write_bytes(b"[" * 100_000)
        with pytest.raises(ConjureError, match="big.json"):
            weights.load_model_card(card)


# -- content packs
if packs is not None:
    def _pack_blob(fuzz_dir, samples, compression):
        path = Path(fuzz_dir) / f"valid-{compression}.cpk"
        packs.write_pack(path, [samples["level"], samples["character"]], compression=compression)
        return path.read_bytes()

    def _read_pack(path):
        with packs.PackReader(path) as r:
            r.check()
            for c in r:
                pass
            r.read_all()

    @pytest.fixture(scope="module", autouse=True)
    def _pack_readers(fuzz_dir, samples):
        READERS["pack"] = _file_reader(fuzz_dir, "fuzz.cpk", _read_pack)
        READERS["pack-blobs"] = [_pack_blob(fuzz_dir, samples, c) for c in ("none", "zstd")]

    test_pack_bytes, test_pack_bytes_slow = fuzz(lambda s: mutations(READERS["pack-blobs"]), "pack")

    def test_pack_with_huge_counts_and_offsets(fuzz_dir, samples):
        blob = bytearray(_pack_blob(fuzz_dir, samples, "none"))
        for field_off in (16, 24, 32, 40):  # record count, index offset, manifest offset, manifest length
            evil = bytearray(blob)
            evil[field_off:field_off + 8] = struct.pack("<Q", 2**63 + 12345)
            tracemalloc.start()
            try:
                with pytest.raises(ConjureError):
                    READERS["pack"](bytes(evil))
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            assert peak < 16 * 1024 * 1024


# -- Tiled and VGLC importers
if tiled is not None:
    def _tiled_blob(fuzz_dir, samples, fmt):
        eng = Engine(load=["tiled"], entry_points=False)
        (png, path) = eng.export(samples["level"], Path(fuzz_dir) / f"fuzz.{fmt}")
        return path.read_bytes()

    @pytest.fixture(scope="module", autouse=True)
    def _tiled_readers(fuzz_dir, samples):
        for fmt in ("tmj", "tmx"):
            READERS[f"{fmt}-blobs"] = [_tiled_blob(fuzz_dir, samples, fmt)]
            READERS[fmt] = _file_reader(fuzz_dir, f"fuzz.{fmt}", lambda p, f=fmt: tiled.load_map(p, f))

    test_tmj_bytes, test_tmj_bytes_slow = fuzz(lambda s: mutations(READERS["tmj-blobs"]), "tmj")
    test_tmj_tree, test_tmj_tree_slow = fuzz(
        lambda s: tree_mutation([json.loads(b) for b in READERS["tmj-blobs"]], lambda d: json.dumps(d).encode()),
        "tmj")
    test_tmx_bytes, test_tmx_bytes_slow = fuzz(lambda s: mutations(READERS["tmx-blobs"]), "tmx")

    @pytest.mark.parametrize("data", [
        b"<" * 100_000,
        b"<a>" * 50_000,
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]><map>&d;&d;</map>',
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><map>&x;</map>',
    ])
    def test_pathological_tmx(data):
        expect_conjure_error_or_result(READERS["tmx"], data)

    def test_pathological_tmj():
        for data in (b"[" * 100_000, b'{"width":' + b"9" * 5000 + b"}"):
            expect_conjure_error_or_result(READERS["tmj"], data)


if vglc is not None:
    @pytest.fixture(scope="module", autouse=True)
    def _vglc_readers(fuzz_dir, samples):
        eng = Engine(load=["vglc"], entry_points=False)
        written = eng.export(samples["level"], Path(fuzz_dir) / "valid.vglc.txt")
        grid = next(p for p in written if p.name == "valid.vglc.txt")
        legend = next(p for p in written if p != grid)
        READERS["vglc-blobs"] = [grid.read_bytes()]
        READERS["legend-blobs"] = [legend.read_bytes()]
        g = Path(fuzz_dir) / "fuzz.vglc.txt"
        lg = Path(fuzz_dir) / "fuzz.legend.json"

        grid_bytes, legend_bytes = grid.read_bytes(), legend.read_bytes()

        def read_grid(data):
            put(g, data)
            put(lg, legend_bytes)
            return vglc.read_vglc(g, lg)

        def read_legend(data):
            put(g, grid_bytes)
            put(lg, data)
            return vglc.read_vglc(g, lg)

        READERS["vglc"], READERS["vglc-legend"] = read_grid, read_legend

    test_vglc_bytes, test_vglc_bytes_slow = fuzz(lambda s: mutations(READERS["vglc-blobs"]), "vglc")
    test_vglc_legend_bytes, test_vglc_legend_bytes_slow = fuzz(lambda s: mutations(READERS["legend-blobs"]),
                                                               "vglc-legend")
    test_vglc_legend_tree, test_vglc_legend_tree_slow = fuzz(
        lambda s: tree_mutation([json.loads(b) for b in READERS["legend-blobs"]],
                                lambda d: json.dumps(d).encode()), "vglc-legend")


# ---------------------------------------------------------------- issue 16: compressed layers, zstd sizes, UTF-16
if tiled is not None:
    def _compressed_tmj_blobs():
        """Our TMJ export with its tile layer re-encoded as base64 + zlib / gzip / zstd (as Tiled saves it)."""
        import base64
        import gzip
        import zlib

        import zstandard

        doc = json.loads(READERS["tmj-blobs"][0])
        layer = next(lay for lay in doc["layers"] if lay.get("type") == "tilelayer")
        raw = struct.pack(f"<{len(layer['data'])}I", *layer["data"])
        out = {}
        for comp, fn in (("zlib", zlib.compress), ("gzip", gzip.compress),
                         ("zstd", zstandard.ZstdCompressor().compress)):
            out[comp] = (doc, layer, fn(raw))
        return out

    def _compressed_layer(s):
        """The compressed payload mutated (truncated, flipped, huge declared sizes), then base64'd back in."""
        import base64

        variants = _compressed_tmj_blobs()

        def build(t):
            comp, seed = t
            doc, layer, blob = variants[comp]
            doc = copy.deepcopy(doc)
            lay = next(x for x in doc["layers"] if x.get("name") == layer["name"])
            lay.update(encoding="base64", compression=comp,
                       data=base64.b64encode(mutate_bytes(blob, seed)).decode())
            return json.dumps(doc).encode()

        return st.tuples(st.sampled_from(sorted(variants)), SEED).map(build)

    test_tmj_compressed_layer, test_tmj_compressed_layer_slow = fuzz(_compressed_layer, "tmj", 600)

    def _utf16_tmx(s):
        """The TMX export re-encoded as UTF-16 (with a BOM and the declaration saying so), then mutated."""
        text = READERS["tmx-blobs"][0].decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
        return mutations([text.encode("utf-16"), b"\xfe\xff" + text.encode("utf-16-be")])

    test_tmx_utf16, test_tmx_utf16_slow = fuzz(_utf16_tmx, "tmx", 600)

    def test_utf16_tmx_reads_back_and_dtd_is_refused(fuzz_dir):
        text = READERS["tmx-blobs"][0].decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
        path = Path(fuzz_dir) / "u16.tmx"
        path.write_bytes(text.encode("utf-16"))
        assert tiled.load_map(path, "tmx") is not None
        evil = text.replace("<map ", '<!DOCTYPE map [<!ENTITY e "boom">]><map ', 1)
        path.write_bytes(evil.encode("utf-16"))
        with pytest.raises(ConjureError, match="DOCTYPE/ENTITY declarations are not allowed"):
            tiled.load_map(path, "tmx")


if packs is not None:
    def _declared_size_frames(s):
        """A zstd pack whose first record's frame header declares a random content size (the frame itself
        unchanged): every reader must refuse it before allocating what it claims."""
        blob = READERS["pack-blobs"][1]
        magic = b"\x28\xb5\x2f\xfd"
        at = blob.index(magic)

        def build(t):
            size, seed = t
            data = bytearray(blob)
            fhd = data[at + 4]
            fcs_len = (0, 2, 4, 8)[fhd >> 6] or (1 if fhd & 0x20 else 0)
            if fcs_len == 0:
                return bytes(data)
            start = at + 5 + (0 if fhd & 0x20 else 1) + (0, 1, 2, 4)[fhd & 3]
            width = fcs_len
            value = size % (1 << (8 * width))
            if width == 2:
                value = max(0, value - 256)
            data[start:start + width] = value.to_bytes(width, "little")
            return mutate_bytes(bytes(data), seed) if seed % 4 == 0 else bytes(data)

        return st.tuples(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([2**31, 2**32 - 1, 2**63])),
                         SEED).map(build)

    test_pack_zstd_declared_sizes, test_pack_zstd_declared_sizes_slow = fuzz(_declared_size_frames, "pack", 600)


def _non_regular_readers():
    out = [("content", lambda p: serialize.loads(serialize.read_bytes(p), "json"))]
    if packs is not None:
        out.append(("pack", lambda p: packs.open_pack(p).check()))
    if tiled is not None:
        out += [("tmj", lambda p: tiled.load_map(p, "tmj")), ("tmx", lambda p: tiled.load_map(p, "tmx"))]
    if weights is not None:
        out += [("card", weights.load_model_card), ("safetensors", weights.load_safetensors_numpy)]
    if vglc is not None:
        out.append(("vglc", lambda p: vglc.read_vglc(p, p)))
    return out


@pytest.mark.parametrize("what", ["fifo", "directory", "char-device"])
@pytest.mark.parametrize("name,read", _non_regular_readers(), ids=[n for n, _ in _non_regular_readers()])
def test_non_regular_files_are_refused_not_waited_on(tmp_path, what, name, read):
    """A FIFO with no writer, a folder or /dev/zero given as an input file: a one-line ConjureError at once
    (an open() of the FIFO would block forever; /dev/zero never ends)."""
    path = tmp_path / f"input.{name}"
    if what == "fifo":
        os.mkfifo(path)
    elif what == "directory":
        path.mkdir()
    else:
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero")
        path = Path("/dev/zero")
    with pytest.raises(ConjureError) as e:
        read(path)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- no pickle anywhere
ROOT = Path(__file__).resolve().parent.parent
SCANNED = ["engine", "plugins", "examples", "game_demo"]


def _sources():
    for top in SCANNED:
        for p in sorted((ROOT / top).rglob("*.py")):
            if ".venv" not in p.parts and "__pycache__" not in p.parts:
                yield p


@pytest.mark.parametrize("pattern", [
    r"\bimport\s+(c?pickle|dill|shelve|joblib|cloudpickle)\b", r"\bfrom\s+(c?pickle|dill|shelve|joblib)\b",
    r"\bpickle\.", r"\bmarshal\.loads?\(", r"allow_pickle\s*=\s*True", r"\byaml\.(unsafe_)?load\(",
    r"(?<![\w.])eval\(", r"(?<![\w.])exec\(", r"__reduce__",
])
def test_no_unsafe_deserialization_anywhere(pattern):
    import re

    rx = re.compile(pattern)
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in _sources()
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if rx.search(line) and not line.lstrip().startswith("#")]
    assert not hits, f"{pattern!r} found: {hits}"


def test_torch_load_only_with_weights_only():
    import re

    hits = []
    for p in _sources():
        text = p.read_text(encoding="utf-8")
        for m in re.finditer(r"torch\.load\(", text):
            call = text[m.start(): text.find(")", m.start()) + 1]
            if "weights_only=True" not in call:
                hits.append(f"{p.relative_to(ROOT)}: {call}")
        if re.search(r"torch\.(save|jit\.load)\(|\.load_state_dict\(torch\.load", text):
            hits.append(f"{p.relative_to(ROOT)}: pickle-based torch.save/jit.load")
    assert not hits, "pickle-based torch I/O (use engine.weights / safetensors): " + "; ".join(hits)


def test_the_scan_covers_the_code():
    names = {str(p.relative_to(ROOT)) for p in _sources()}
    assert "engine/serialize.py" in names and "plugins/dungeon.py" in names
    assert any(n.startswith("examples/conjure-caves/") for n in names)


# ---------------------------------------------------------------- bugs the properties found (now fixed)
if weights is not None:
    def test_safetensors_unhashable_dtype_is_our_error(fuzz_dir):
        text = json.dumps({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}).encode()
        path = Path(fuzz_dir) / "dtype.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 4)
        with pytest.raises(ConjureError):
            weights.load_safetensors_numpy(path)

if tiled is not None:
    def test_tmj_huge_tile_id_is_our_error(samples):
        doc = json.loads(READERS["tmj-blobs"][0])
        layer = next(lay for lay in doc["layers"] if "data" in lay)
        layer["data"][0] = 2**70
        with pytest.raises(ConjureError):
            READERS["tmj"](json.dumps(doc).encode())


def test_model_configs_from_weights_files_are_bounded(tmp_path):
    """A hostile config in a weights file is refused before any network is built (no unbounded allocation)."""
    import numpy as np
    from safetensors.numpy import load, save

    from engine.weights import check_config

    with pytest.raises(ConjureError, match=r"config.ch: 100000 outside 1..256"):
        check_config({"ch": 100000}, {"ch": (1, 256)}, "w")
    with pytest.raises(ConjureError, match=r"config.ch: expected an int"):
        check_config({"ch": "abc"}, {"ch": (1, 256)}, "w")
    with pytest.raises(ConjureError, match="must be a JSON object"):
        check_config([1], {"ch": (1, 256)}, "w")
    src = ROOT / "plugins" / "data" / "models" / "dungeon-vae"
    if not (src / "model.safetensors").exists():
        pytest.skip("dungeon-vae weights not shipped")
    import shutil

    d = tmp_path / "w"
    shutil.copytree(src, d)
    t = load((d / "model.safetensors").read_bytes())
    cfg = json.loads(bytes(t["__config__"].tolist()))
    t["__config__"] = np.frombuffer(json.dumps(dict(cfg, zdim=10**9)).encode(), dtype=np.uint8).copy()
    (d / "model.safetensors").write_bytes(save(t))
    eng = Engine(entry_points=False)
    with pytest.raises(ConjureError, match=r"config.zdim: 1000000000 outside"):
        eng.generate("level", "dungeon-vae", seed=1, params={"weights": str(d)})
