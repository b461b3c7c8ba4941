"""Issue 16, hardening round 2: one regression test per finding, a guard per class where there is a class.

Memory bombs are run in a child process and their peak resident memory (``ru_maxrss``) is asserted under
100 MB; the figures are printed (``pytest -s``) so the closing note can quote them.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PEAK_LIMIT_MB = 100


def zstd_frame_bomb(size: int) -> bytes:
    """A valid zstd frame whose header declares ``size`` bytes, made of RLE blocks: ~32 bytes per MiB."""
    out = bytearray(b"\x28\xb5\x2f\xfd\xe0") + struct.pack("<Q", size)  # single segment, 8-byte content size
    n = size
    while n:
        b = min(128 * 1024, n)
        n -= b
        out += ((1 if n == 0 else 0) | (1 << 1) | (b << 3)).to_bytes(3, "little") + b"\0"  # RLE block of 0s
    return bytes(out)


def peak_mb(code: str, *args: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter (cwd = repo root); return its peak RSS in MB and its stdout."""
    # VmHWM is this process image's own high-water mark; ru_maxrss would also count the pytest process the
    # child was forked from (Linux carries the larger of the two across exec)
    prog = textwrap.dedent(code) + textwrap.dedent("""
        import resource as _r
        try:
            _hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")][0].split()[1]
        except (OSError, IndexError):
            _hwm = _r.getrusage(_r.RUSAGE_SELF).ru_maxrss
        print("PEAK", _hwm)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", prog, *args], cwd=ROOT, capture_output=True, text=True,
                       env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("PEAK ")][-1]
    mb = int(line.split()[1]) / 1024
    print(f"\npeak RSS {mb:.1f} MB")
    return mb, p.stdout


# ----------------------------------------------------------------------------------- severe 1: zstd frames
def test_zstd_frame_declaring_a_huge_size_is_refused_before_decompressing(tmp_path):
    bomb_pack = tmp_path / "bomb.cpk"
    mb, out = peak_mb("""
        import sys
        from engine import Engine, ConjureError, packs
        real = packs.compress
        packs.compress = lambda raw, codec: BOMB  # every record: a 65 KB frame that declares 2 GiB
        BOMB = __import__("tests.test_hardening", fromlist=["x"]).zstd_frame_bomb(2 << 30)
        eng = Engine(load=["dungeon"], entry_points=False)
        lvl = eng.generate("level", "dungeon", seed=1, params={"width": 16, "height": 16})
        packs.write_pack(sys.argv[1], {"a": lvl}, compression="zstd")
        packs.compress = real
        for read in (lambda r: r.get("a"), lambda r: r.check(), lambda r: r.raw(0)):
            try:
                with packs.open_pack(sys.argv[1]) as r:
                    read(r)
            except ConjureError as e:
                print("ERR", e)
    """, str(bomb_pack))
    errs = [ln for ln in out.splitlines() if ln.startswith("ERR")]
    assert len(errs) == 3 and all("declares 2147483648 bytes" in e and "record 0" in e for e in errs), out
    assert mb < PEAK_LIMIT_MB


def test_zstd_frame_without_declared_size_is_still_capped():
    from engine import packs
    import zstandard

    frame = zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 100_000)
    with pytest.raises(Exception):
        packs.decompress(frame, packs.CODEC_ZSTD, 10)
    assert packs.decompress(frame, packs.CODEC_ZSTD, 100_000) == b"x" * 100_000


# ----------------------------------------------------------------------------------- severe 2-4: Tiled maps
def tmj_map(tmp_path, width, height, layers, tilesets=None, name="map.tmj"):
    """A user's TMJ map (no conjure:schema) with base64 ``layers`` (each: (compression, bytes))."""
    import base64

    from PIL import Image

    if tilesets is None:
        Image.new("RGBA", (16, 16), (200, 10, 10, 255)).save(tmp_path / "t.png")
        tilesets = [{"firstgid": 1, "name": "t", "tilecount": 1, "columns": 1, "tilewidth": 16,
                     "tileheight": 16, "image": "t.png", "imagewidth": 16, "imageheight": 16}]
    doc = {"type": "map", "orientation": "orthogonal", "width": width, "height": height, "tilewidth": 16,
           "tileheight": 16, "infinite": False, "tilesets": tilesets,
           "layers": [{"type": "tilelayer", "name": f"L{i}", "width": width, "height": height,
                       "encoding": "base64", "compression": comp, "data": base64.b64encode(blob).decode()}
                      for i, (comp, blob) in enumerate(layers)]}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


LOAD_MAP = """
    import sys
    from engine import ConjureError
    from plugins.tiled import load_map
    try:
        lvl = load_map(sys.argv[1])
        print("OK", {k: v.shape for k, v in lvl.layers.items()})
    except ConjureError as e:
        print("ERR", e)
"""


def test_compressed_layer_bomb_is_refused_from_declared_sizes(tmp_path):
    side = 16384  # the allowed side; 4 zstd layers of 1 GiB each in a ~176 KB file
    bomb = zstd_frame_bomb(side * side * 4)
    path = tmj_map(tmp_path, side, side, [("zstd", bomb)] * 4)
    assert path.stat().st_size < 200_000
    mb, out = peak_mb(LOAD_MAP, str(path))
    assert "ERR" in out and "over the 16777216-cell limit per map" in out, out
    assert mb < PEAK_LIMIT_MB


def test_compressed_layer_within_budget_decodes_to_uint32_and_stays_small(tmp_path):
    side = 2048  # 4 Mi cells: decoded as uint32 (16 MB), not int64 copies
    for comp in ("zstd", "zlib", "gzip"):
        import gzip
        import zlib

        raw = struct.pack("<I", 1) * (side * side)
        blob = {"zstd": lambda: __import__("zstandard").ZstdCompressor().compress(raw), "zlib": lambda: zlib.compress(raw),
                "gzip": lambda: gzip.compress(raw)}[comp]()
        path = tmj_map(tmp_path, side, side, [(comp, blob)], name=f"{comp}.tmj")
        mb, out = peak_mb(LOAD_MAP, str(path))
        assert f"OK {{'L0': ({side}, {side})}}" in out, out
        assert mb < PEAK_LIMIT_MB, (comp, mb)


def test_map_without_tileset_is_refused_before_decoding(tmp_path):
    side = 4096
    path = tmj_map(tmp_path, side, side, [("zstd", zstd_frame_bomb(side * side * 4))], tilesets=[])
    from engine import InputError
    from plugins.tiled import load_map

    with pytest.raises(InputError, match="the map has no tileset"):
        load_map(path)


def test_png_pixel_bomb_is_refused_from_the_header(tmp_path):
    from PIL import Image

    Image.new("1", (8192, 8192)).save(tmp_path / "big.png")  # ~65 KB on disk, 268 MB as RGBA
    assert (tmp_path / "big.png").stat().st_size < 100_000
    ts = [{"firstgid": 1, "name": "big", "tilecount": 1, "columns": 1, "tilewidth": 8192, "tileheight": 8192,
           "image": "big.png", "imagewidth": 8192, "imageheight": 8192}]
    path = tmj_map(tmp_path, 1, 1, [(None, struct.pack("<I", 1))], tilesets=ts)
    mb, out = peak_mb(LOAD_MAP, str(path))
    assert "ERR" in out and "over 16777216 pixels" in out, out
    assert mb < PEAK_LIMIT_MB


def test_tilesets_sharing_an_image_decode_it_once(tmp_path):
    from PIL import Image

    Image.new("RGB", (3000, 3000), (10, 200, 30)).save(tmp_path / "shared.png")  # 9 Mi pixels
    ts = [{"firstgid": 1 + 9 * k, "name": f"s{k}", "tilecount": 9, "columns": 3, "tilewidth": 1000,
           "tileheight": 1000, "image": "shared.png", "imagewidth": 3000, "imageheight": 3000} for k in range(2)]
    path = tmj_map(tmp_path, 2, 1, [(None, struct.pack("<II", 1, 10))], tilesets=ts)
    from plugins.tiled import load_map

    lvl = load_map(path)  # two copies would be 18 Mi pixels, over the per-map budget
    assert tuple(lvl.tileset[1].color) == (10, 200, 30) and tuple(lvl.tileset[10].color) == (10, 200, 30)


def test_dtd_in_utf16_tmx_is_refused_by_the_parser(tmp_path):
    from engine import InputError
    from plugins.tiled import load_map

    laughs = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE map [<!ENTITY a "aaaaaaaaaa">'
              + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefg", "bcdefgh"))
              + ']><map version="1.10" orientation="orthogonal" width="1" height="1" tilewidth="16" '
              'tileheight="16"><properties><property name="p" value="&h;"/></properties></map>')
    for enc, data in (("utf-16", laughs.encode("utf-16")),  # BOM + little endian
                      ("utf-16-be", b"\xfe\xff" + laughs.encode("utf-16-be"))):
        path = tmp_path / f"laughs-{enc}.tmx"
        path.write_bytes(data)
        with pytest.raises(InputError, match="DOCTYPE/ENTITY declarations are not allowed"):
            load_map(path)
    mb, out = peak_mb(LOAD_MAP, str(tmp_path / "laughs-utf-16.tmx"))
    assert "ERR" in out and mb < PEAK_LIMIT_MB


# ----------------------------------------------------------------------------------- severe 5: -o targets
@pytest.fixture(scope="module")
def level():
    from engine import Engine

    eng = Engine(load=["dungeon", "formats"], entry_points=False)
    return eng.generate("level", "dungeon", seed=1, params={"width": 16, "height": 16})


def test_output_onto_a_fifo_is_written_in_place(tmp_path, level):
    import stat
    import threading

    from engine.serialize import atomic_write, dumps

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    atomic_write(fifo, dumps(level, "json"))
    reader.join()
    assert got == [dumps(level, "json")]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not replaced by a regular file


def test_output_onto_a_character_device_keeps_the_node(tmp_path, level):
    import stat

    from engine.serialize import atomic_write

    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    except (PermissionError, OSError):
        pytest.skip("cannot make a device node here")
    atomic_write(node, b"x" * 1000)
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert os.listdir(tmp_path) == ["null"]  # no temporary file left either


def test_output_onto_a_socket_or_block_device_is_refused(tmp_path, level):
    import socket

    from engine import InputError
    from engine.packs import PackWriter
    from engine.serialize import atomic_write

    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    try:
        with pytest.raises(InputError, match=r"s\.sock: is a socket; refusing to write there"):
            atomic_write(sock_path, b"x")
    finally:
        s.close()
    os.mkfifo(tmp_path / "p.fifo")
    with pytest.raises(InputError, match=r"p\.fifo: is not a regular file; a pack is written to a file"):
        PackWriter(tmp_path / "p.fifo")


def test_output_onto_a_symlink_replaces_the_link_not_its_target(tmp_path):
    from engine.serialize import atomic_write

    target = tmp_path / "target.txt"
    target.write_bytes(b"keep")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write(link, b"new")
    assert not link.is_symlink() and link.read_bytes() == b"new" and target.read_bytes() == b"keep"


def test_disk_full_names_the_file(tmp_path, monkeypatch):
    import errno

    from engine import InputError
    from engine.serialize import atomic_write

    if os.path.exists("/dev/full"):  # a character device: written in place, ENOSPC on write
        with pytest.raises(InputError, match=r"^/dev/full: cannot write \(No space left on device\)$"):
            atomic_write("/dev/full", b"x" * 100)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "level.json"
    out.write_bytes(b"earlier")
    with pytest.raises(InputError, match=r"level\.json: cannot write \(No space left on device\)"):
        atomic_write(out, b"new")
    assert out.read_bytes() == b"earlier" and os.listdir(tmp_path) == ["level.json"]
