"""Content packs (.cpk): round trip, random access, compression, and every kind of corruption."""
import hashlib
import json
import struct

import msgpack
import pytest

import engine
from engine import InputError, serialize
from engine.packs import (ENTRY, ENTRY_SIZE, HEADER, HEADER_SIZE, MAGIC, PackReader, PackWriter, open_pack,
                          record_hash, write_pack)

from .conftest import run_cli


@pytest.fixture(scope="module")
def levels(eng):
    return [eng.generate("level", "dungeon", s, {"width": 24, "height": 24, "rooms": 4}) for s in range(6)]


@pytest.fixture(scope="module", params=["none", "zstd"])
def pack(request, levels, tmp_path_factory):
    p = tmp_path_factory.mktemp("packs") / f"six-{request.param}.cpk"
    write_pack(p, {f"lv/{i}": c for i, c in enumerate(levels)}, compression=request.param)
    return p


def test_round_trip_and_random_access(pack, levels):
    with open_pack(pack) as r:
        assert len(r) == len(levels)
        assert r.ids == [f"lv/{i}" for i in range(6)]
        for i in (3, 0, 5, -1):
            assert serialize.dumps(r[i]) == serialize.dumps(levels[i])
        assert serialize.dumps(r.get("lv/4")) == serialize.dumps(levels[4])
        assert r.raw(2) == serialize.dumps(levels[2])  # records are the native msgpack bytes
        assert "lv/1" in r and "nope" not in r
        assert [serialize.dumps(c) for c in r] == [serialize.dumps(c) for c in levels]
        assert [serialize.dumps(c) for c in r.read_all()] == [serialize.dumps(c) for c in levels]
        assert r.read_all(2, 4, plain=True)[0]["schema"] == "conjure.level/1"
        assert r.info(1)["hash"] == record_hash(serialize.dumps(levels[1])).hex()
        assert r.check() == 6
        with pytest.raises(InputError, match="no asset 'nope'"):
            r.get("nope")
        with pytest.raises(InputError, match="out of range"):
            r[6]


def test_compression_changes_bytes_not_content(levels, tmp_path):
    a, b = tmp_path / "a.cpk", tmp_path / "b.cpk"
    write_pack(a, levels, "none")
    write_pack(b, levels, "zstd")
    assert b.stat().st_size < a.stat().st_size
    with open_pack(a) as ra, open_pack(b) as rb:
        assert ra.compression == "none" and rb.compression == "zstd"
        assert [ra.raw(i) for i in range(len(ra))] == [rb.raw(i) for i in range(len(rb))]
    # deterministic: the same content gives the same pack bytes
    write_pack(tmp_path / "b2.cpk", levels, "zstd")
    assert (tmp_path / "b2.cpk").read_bytes() == b.read_bytes()


def test_engine_open_pack(pack, levels):
    r = engine.Engine(entry_points=False, load=[]).open_pack(pack)
    try:
        assert serialize.dumps(r.get("lv/2")) == serialize.dumps(levels[2])
    finally:
        r.close()


def test_writer_refuses_duplicates_and_unknown_compression(tmp_path, levels):
    with pytest.raises(InputError, match="compression"):
        PackWriter(tmp_path / "x.cpk", [], "lzma")
    w = PackWriter(tmp_path / "x.cpk", [], None)
    w.add_content("a", levels[0])
    with pytest.raises(InputError, match="duplicate asset id"):
        w.add_content("a", levels[1])
    w.abort()
    assert not (tmp_path / "x.cpk").exists()
    assert not list(tmp_path.iterdir())  # no temporary file left behind


def test_atomic_write_keeps_old_pack_on_failure(tmp_path, levels):
    p = tmp_path / "p.cpk"
    write_pack(p, levels[:2])
    before = p.read_bytes()
    with pytest.raises(RuntimeError):
        with PackWriter(p, [], None) as w:
            w.add_content("x", levels[3])
            raise RuntimeError("boom")
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["p.cpk"]


# ----------------------------------------------------------------------------------------- corruption
def _read_everything(path):
    with PackReader(path) as r:
        for i in range(len(r)):
            r[i]
        r.read_all()


def _layout(data):
    _, _, _, _, n, index_off, manifest_off, manifest_len, _ = HEADER.unpack_from(data, 0)
    return n, index_off, manifest_off, manifest_len


def test_truncated_anywhere_is_a_clear_error(pack, tmp_path):
    data = pack.read_bytes()
    cuts = sorted(set(list(range(0, 80)) + list(range(0, len(data), max(1, len(data) // 97))) +
                      [len(data) - k for k in range(1, 40)]))
    for cut in cuts:
        p = tmp_path / "cut.cpk"
        p.write_bytes(data[:cut])
        with pytest.raises(InputError) as e:
            _read_everything(p)
        assert str(p) in str(e.value)


@pytest.mark.parametrize("region", ["header", "index", "manifest"])
def test_flipped_byte_in_header_index_or_manifest(pack, tmp_path, region):
    data = pack.read_bytes()
    n, index_off, manifest_off, manifest_len = _layout(data)
    span = {"header": range(0, HEADER_SIZE), "index": range(index_off, manifest_off),
            "manifest": range(manifest_off, len(data))}[region]
    positions = list(span) if len(span) <= 200 else list(span)[:: max(1, len(span) // 150)]
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        p = tmp_path / "bad.cpk"
        p.write_bytes(bytes(bad))
        with pytest.raises(InputError):
            _read_everything(p)


def test_flipped_byte_in_a_record_names_the_record(pack, tmp_path):
    data = pack.read_bytes()
    n, index_off, _, _ = _layout(data)
    entries = [ENTRY.unpack_from(data, index_off + k * ENTRY_SIZE) for k in range(n)]
    for k, (off, slen, _, _) in enumerate(entries):
        for pos in (off, off + slen // 2, off + slen - 1):
            bad = bytearray(data)
            bad[pos] ^= 0x01
            p = tmp_path / "bad.cpk"
            p.write_bytes(bytes(bad))
            with PackReader(p) as r:  # header, index and manifest are intact: it opens
                other = (k + 1) % n
                r[other]  # the other records still read
                with pytest.raises(InputError, match=rf"record {k} \('lv/{k}'\)"):
                    r[k]
                with pytest.raises(InputError, match=rf"record {k} "):
                    r.read_all()


def _resign(data: bytes) -> bytes:
    """Recompute the header checksum (to test the checks behind it with crafted packs)."""
    n, index_off, manifest_off, manifest_len = _layout(data)
    head = data[:48]
    h = hashlib.blake2b(head, digest_size=16)
    h.update(data[index_off:manifest_off])
    h.update(data[manifest_off:manifest_off + manifest_len])
    return head + h.digest() + data[HEADER_SIZE:]


def _with_header(data, **changes):
    fields = dict(zip(("magic", "ver", "hsize", "flags", "n", "index_off", "manifest_off", "manifest_len",
                       "check"), HEADER.unpack_from(data, 0)))
    fields.update(changes)
    return HEADER.pack(*fields.values()) + data[HEADER_SIZE:]


def test_crafted_lengths_never_allocate_without_bound(pack, tmp_path):
    data = pack.read_bytes()
    n, index_off, manifest_off, manifest_len = _layout(data)
    p = tmp_path / "crafted.cpk"
    cases = [
        _with_header(data, n=2**62),
        _with_header(data, n=10**9),
        _with_header(data, manifest_len=2**63),
        _with_header(data, index_off=2**63),
        _with_header(data, ver=99),
        _with_header(data, magic=b"NOTAPACK"),
    ]
    # an index entry claiming a 4 GB record, correctly signed
    bad = bytearray(data)
    off, slen, rlen, codec = ENTRY.unpack_from(data, index_off)
    bad[index_off:index_off + ENTRY_SIZE] = ENTRY.pack(off, 2**32 - 1, 2**32 - 1, codec)
    cases.append(_resign(bytes(bad)))
    bad = bytearray(data)
    bad[index_off + 16] = 9  # unknown codec
    cases.append(_resign(bytes(bad)))
    # a manifest that is valid msgpack but not a manifest
    m = msgpack.packb({"format": "conjure.pack", "format_version": 1, "records": [], "jobs": []})
    cases.append(_resign(_with_header(data[:manifest_off] + m, manifest_len=len(m))))
    m = msgpack.packb([1] * 10)
    cases.append(_resign(_with_header(data[:manifest_off] + m, manifest_len=len(m))))
    for case in cases:
        p.write_bytes(case)
        with pytest.raises(InputError):
            _read_everything(p)


def test_record_that_is_not_content(tmp_path):
    """A correctly hashed record holding something that is not content is an error naming it."""
    p = tmp_path / "odd.cpk"
    raw = msgpack.packb({"schema": "conjure.level/1", "width": -3})
    with PackWriter(p, [], None) as w:
        w.add("only", 0, 0, 0, raw, len(raw), record_hash(raw))
    with PackReader(p) as r, pytest.raises(InputError, match=r"record 0 \('only'\)"):
        r[0]


def test_not_a_pack(tmp_path):
    p = tmp_path / "x.cpk"
    p.write_bytes(b"hello")
    with pytest.raises(InputError, match="not a Conjure pack"):
        open_pack(p)
    with pytest.raises(InputError, match="no such file"):
        open_pack(tmp_path / "missing.cpk")
    p.write_bytes(MAGIC + b"\0" * 100)
    with pytest.raises(InputError):
        open_pack(p)


def test_cli_info_and_extract(pack, tmp_path):
    r = run_cli("info", pack)
    assert r.returncode == 0, r.stderr
    assert b"assets: 6" in r.stdout and b"compression" in r.stdout
    r = run_cli("info", pack, "--json")
    assert json.loads(r.stdout)["count"] == 6
    r = run_cli("extract", pack, "-o", tmp_path / "out", "--format", "json", "--ids", "lv/1", "lv/3")
    assert r.returncode == 0, r.stderr
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.json"))
    assert files == ["lv/1.json", "lv/3.json"]
    with open_pack(pack) as pk:
        assert engine.Engine(entry_points=False).load(tmp_path / "out/lv/3.json") == pk.get("lv/3")
    r = run_cli("extract", pack, "-o", tmp_path / "png", "--format", "png", "--ids", "lv/0")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "png/lv/0.png").exists()
    bad = tmp_path / "bad.cpk"
    bad.write_bytes(pack.read_bytes()[:-7])
    r = run_cli("info", bad)
    assert r.returncode == 2 and b"truncated" in r.stderr
    r = run_cli("extract", pack, "-o", tmp_path / "o2", "--ids", "nope")
    assert r.returncode == 2 and b"no asset 'nope'" in r.stderr


def test_validate_option_runs_the_schema_checks(tmp_path, levels):
    """A record with the right hash and types but content that breaks the schema: from_dict accepts it,
    ``validate=True`` names the record."""
    d = levels[0].to_dict(binary=True)
    d["entities"][0]["x"] = 999  # outside the map
    raw = msgpack.packb(d, use_bin_type=True)
    p = tmp_path / "semantic.cpk"
    with PackWriter(p, [], None) as w:
        w.add("odd", 0, 0, 0, raw, len(raw), record_hash(raw))
    with open_pack(p) as r:
        assert r[0].entities[0].x == 999
    with open_pack(p, validate=True) as r, pytest.raises(InputError, match=r"record 0 \('odd'\).*999"):
        r[0]
    with open_pack(p, validate=True) as r, pytest.raises(InputError, match=r"record 0 \('odd'\)"):
        r.read_all()


# ------------------------------------------------------------------------- fast reads (issue 18): mmap, typed decode
def _checked(raw):
    """The reference path: msgpack with the reader's limits, then Level.from_dict's checks."""
    obj = msgpack.unpackb(raw, raw=False, strict_map_key=True, ext_hook=serialize.refuse_ext)
    return engine.Level.from_dict(obj)


@pytest.mark.parametrize("gen, params", [("dungeon", {}), ("platformer", {"width": 60}), ("terrain", {"width": 32})])
def test_fast_level_decode_is_from_dict(eng, gen, params):
    from engine.packs import fast_level

    for seed in range(4):
        raw = serialize.dumps(eng.generate("level", gen, seed, params))
        fast = fast_level(raw)
        assert fast is not None and serialize.dumps(fast) == raw == serialize.dumps(_checked(raw))
        assert fast.tiles.flags.writeable and fast.tileset["wall" if gen == "dungeon" else fast.tileset.tiles[0].name]


def _mutations():
    def at(path, value):
        def f(d):
            *head, last = path
            for k in head:
                d = d[k]
            d[last] = value
        return f

    def dup_layer(d):
        d["layers"].append(dict(d["layers"][0]))

    def drop(key):
        return lambda d: d.pop(key)

    return {
        "width bool": at(["width"], True), "width 0": at(["width"], 0), "height str": at(["height"], "32"),
        "entity x float": at(["entities", 0, "x"], 1.5), "entity x bool": at(["entities", 0, "x"], True),
        "entity id int": at(["entities", 0, "id"], 3), "entity props list": at(["entities", 0, "properties"], []),
        "entity props int key": at(["entities", 0, "properties"], {"a": {1: 2}}),
        "entity props bytes key": at(["entities", 0, "properties"], {b"k": 1}),
        "color 256": at(["tileset", "tiles", 0, "color"], [1, 2, 256]),
        "color short": at(["tileset", "tiles", 0, "color"], [1, 2]),
        "color bool": at(["tileset", "tiles", 0, "color"], [1, 2, True]),
        "tile id str": at(["tileset", "tiles", 0, "id"], "0"),
        "tiles short": at(["layers", 0, "tiles"], b"\0" * 5), "tiles rows": None,  # rows: set below
        "duplicate layer": dup_layer, "regions None": at(["regions"], None), "no regions": drop("regions"),
        "no metadata": drop("metadata"), "metadata list": at(["metadata"], [1]), "no entities": drop("entities"),
        "schema 2": at(["schema"], "conjure.level/2"), "schema 1.4": at(["schema"], "conjure.level/1.4"),
        "region w str": at(["regions", 0, "w"], "4"), "nested deep": at(["metadata", "deep"], [[[[[{"x": 1}]]]]]),
        "entity props nested": at(["entities", 0, "properties"], {"a": [{"b": [1]}], "c": {"d": 1}}),
        "entity props bytes": at(["entities", 0, "properties"], {"blob": b"\x00\x01"}),
        "metadata int key": at(["metadata", "params"], {"x": [{3: 1}]}),
    }


@pytest.mark.parametrize("name", sorted(_mutations()))
def test_fast_path_accepts_and_refuses_what_the_checked_path_does(eng, tmp_path, monkeypatch, name):
    """A record read with the fast path (falling back) and with it turned off: the same content, or the
    same one-line error, from r[i] and from read_all."""
    from engine import packs

    level = eng.generate("level", "dungeon", 1, {"width": 20, "height": 16})
    d = level.to_dict(binary=True)
    if name == "tiles rows":
        d["layers"][0]["tiles"] = level.tiles.tolist()
    else:
        _mutations()[name](d)
    raw = msgpack.packb(d, use_bin_type=True)
    p = tmp_path / "one.cpk"
    with PackWriter(p) as w:
        w.add("only", 0, 0, 0, raw, len(raw), record_hash(raw))

    def outcome():
        with open_pack(p) as r:
            try:
                one = serialize.dumps(r[0])
            except InputError as e:
                one = f"{type(e).__name__}: {e}"
            try:
                bulk = [serialize.dumps(c) for c in r.read_all()]
            except InputError as e:
                bulk = f"{type(e).__name__}: {e}"
        return one, bulk

    got = outcome()
    monkeypatch.setattr(packs, "fast_level", lambda raw: None)
    assert got == outcome()
    if name in ("no regions", "no metadata", "tiles rows", "schema 1.4", "nested deep", "entity props nested",
                "entity props bytes"):
        assert isinstance(got[0], bytes)  # valid variants are read, not refused
    elif name != "entity props bytes key":
        assert isinstance(got[0], str) and "\n" not in got[0], got[0]


def test_mmap_and_pread_read_the_same(pack, levels):
    with open_pack(pack) as a, open_pack(pack, mmap=False) as b:
        assert a._mm is not None and b._mm is None
        assert [a.raw(i) for i in range(len(a))] == [b.raw(i) for i in range(len(b))]
        assert [serialize.dumps(c) for c in a.read_all()] == [serialize.dumps(c) for c in b.read_all()]
        assert [serialize.dumps(a[i]) for i in range(len(a))] == [serialize.dumps(c) for c in levels]
    for r in (a, b):  # closed: one-line errors, never a crash on an unmapped file
        with pytest.raises(InputError, match="closed"):
            r.raw(0)
