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
