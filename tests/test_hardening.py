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
    prog = textwrap.dedent(code) + textwrap.dedent("""
        import resource as _r
        print("PEAK", _r.getrusage(_r.RUSAGE_SELF).ru_maxrss)
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
