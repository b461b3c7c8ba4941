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


# ----------------------------------------------------------------------------------- deadlines and tries
def _plugin(*generators, process=None):
    import engine

    class P:
        @engine.hookimpl
        def register_level_generators(self, register):
            for g in generators:
                register(g)

    if process is not None:
        P.process_level = engine.hookimpl(process)
    P.__name__ = P.__qualname__ = "P" + "".join(g.id.replace("-", "") for g in generators)
    return P()


def _flat_level():
    import numpy as np

    from engine import Entity, Level, TileDef, Tileset

    ts = Tileset("t", [TileDef(0, "floor", ".", (0, 0, 0)), TileDef(1, "wall", "#", (9, 9, 9), {"solid": True})])
    return Level({"tiles": np.zeros((4, 4), np.uint8)}, ts, [Entity("spawn", "spawn", 0, 0)])


class Spin:
    """Runs forever in pure Python (never checks its deadline): only the engine's alarm can stop it."""
    id, kind, version, description, params = "spin", "level", "1", "spins", []

    def generate(self, request):
        while True:
            pass


class Polite:
    """Runs forever but calls ``request.check_deadline()`` in its loop, as the plugin guide suggests."""
    id, kind, version, description, params = "polite", "level", "1", "checks its deadline", []

    def generate(self, request):
        while True:
            request.check_deadline()


class Never:
    """Always invalid: only tries or the time budget end it."""
    id, kind, version, description, params = "never", "level", "1", "never valid", []

    def generate(self, request):
        import time

        time.sleep(0.05)  # 1000 tries: 50 s of work, far past the budgets below
        return _flat_level()

    def validate(self, level, request):
        return ["never good enough"]


def test_timeout_interrupts_a_generator_in_the_main_thread():
    from engine import Engine, GenerationError
    from engine.errors import GenerationTimeout

    eng = Engine([_plugin(Spin())], load=[], entry_points=False, timeout=0.3)
    with pytest.raises(GenerationTimeout, match=r"plugin 'Pspin', generator 'spin' made no valid level within "
                                                r"its 0.3 s time budget"):
        eng.generate("level", "spin")
    assert issubclass(GenerationTimeout, GenerationError)  # exit 1 in the CLI
    import signal

    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL  # the handler is put back


def test_timeout_in_runtime_threads_is_cooperative_and_close_has_a_timeout():
    import threading

    from engine import Engine
    from engine.errors import GenerationTimeout

    gate = threading.Event()

    class Hang:
        id, kind, version, description, params = "hang", "level", "1", "waits on a gate", []

        def generate(self, request):
            gate.wait()
            return _flat_level()

    eng = Engine([_plugin(Polite(), Never(), Hang())], load=[], entry_points=False)
    with pytest.raises(GenerationTimeout, match="generator 'polite'"):
        eng.submit("level", "polite", timeout=0.2).result()
    with pytest.raises(GenerationTimeout, match="generator 'never'"):  # checked between tries
        eng.submit("level", "never", tries=1000, timeout=0.2).result()
    hung = [eng.submit("level", "hang", seed=s) for s in range(2)]
    assert eng.close(timeout=0.2) is False  # returns although two generate calls hang
    gate.set()  # let the threads go (close() cancelled the futures handed out)
    assert all(f.done() for f in hung)


def test_tries_are_capped_and_timeouts_checked():
    from engine import Engine, InputError

    eng = Engine([_plugin(Never())], load=[], entry_points=False)
    for bad in (0, 1001, 10**9, True, "5"):
        with pytest.raises(InputError, match=r"tries must lie in 1\.\.1000"):
            eng.generate("level", "never", tries=bad)
    for bad in (0, -1, float("nan"), float("inf"), "soon"):
        with pytest.raises(InputError, match="timeout must be a positive number of seconds"):
            eng.generate("level", "never", timeout=bad)


# ----------------------------------------------------------------------------------- third-party plugins
from .conftest import run_cli, run_cli_process  # noqa: E402

PLUGIN_HEAD = '''
import numpy as np
import engine
from engine import Entity, Level, TileDef, Tileset

TS = Tileset("t", [TileDef(0, "floor", ".", (0, 0, 0)), TileDef(1, "wall", "#", (9, 9, 9), {"solid": True})])

def flat(bits=0):
    tiles = ((bits >> np.arange(16)) & 1).astype(np.uint8).reshape(4, 4)
    tiles[1, 1] = 0
    return Level({"tiles": tiles}, TS, [Entity("spawn", "spawn", 1, 1)])
'''


def make_dist(tmp_path, name: str, body: str, version: str = "1.0") -> Path:
    """A third-party plugin distribution on a folder for PYTHONPATH: ``name.py`` + its dist-info with a
    ``conjure`` entry point. Returns the folder."""
    site = tmp_path / f"site-{name}"
    site.mkdir()
    (site / f"{name}.py").write_text(PLUGIN_HEAD + textwrap.dedent(body))
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[conjure]\n{name} = {name}\n")
    (info / "RECORD").write_text("")
    return site


def plugin_env(*sites: Path, **extra: str) -> dict:
    """Only these plugins (and the native formats) load: quick start-ups."""
    names = ",".join([s.name.removeprefix("site-") for s in sites] + ["formats"])
    return dict(PYTHONPATH=os.pathsep.join([str(ROOT), *map(str, sites)]), CONJURE_LOAD_PLUGINS=names, **extra)


NONDET = '''
import random

class Nondet:
    id, kind, version, description, params = "nondet", "level", "1", "uses global random", []

    def generate(self, request):
        return flat(random.getrandbits(16))

@engine.hookimpl
def register_level_generators(register):
    register(Nondet())
'''


def _spec(tmp_path, generator, count=8, extra=""):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[[job]]\nkind = "level"\ngenerator = "{generator}"\ncount = {count}\n{extra}')
    return spec


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bake_spot_check_catches_global_random(tmp_path, workers):
    site = make_dist(tmp_path, "nondet_plugin", NONDET)
    spec = _spec(tmp_path, "nondet", extra="[pack]\nchunk_size = 2\n")
    out = tmp_path / "p.cpk"
    r = run_cli_process("bake", spec, "-o", out, "-w", workers, "--quiet", env=plugin_env(site))
    err = r.stderr.decode()
    assert r.returncode == 1 and "generator 'nondet' is not deterministic" in err and "--no-check" in err, err
    assert not out.exists() and "Traceback" not in err
    r = run_cli_process("bake", spec, "-o", out, "-w", workers, "--quiet", "--no-check", "--resume",
                        env=plugin_env(site))
    assert r.returncode == 0 and out.exists(), r.stderr.decode()


def test_bake_output_equal_to_the_spec_is_refused(tmp_path):
    spec = _spec(tmp_path, "dungeon", count=1)
    before = spec.read_bytes()
    r = run_cli("bake", spec, "-o", spec, "--quiet")
    assert r.returncode == 2 and b"is the spec of this bake; it would be overwritten" in r.stderr
    assert spec.read_bytes() == before


def test_bake_job_timeout_is_checked_and_used(tmp_path):
    r = run_cli("bake", _spec(tmp_path, "dungeon", 1, "timeout = -3\n"), "-o", tmp_path / "x.cpk", "--quiet")
    assert r.returncode == 2 and b"job[0].timeout must be a positive number of seconds" in r.stderr
    spin = make_dist(tmp_path, "spin_plugin", '''
        class Spin:
            id, kind, version, description, params = "spin", "level", "1", "never returns", []

            def generate(self, request):
                while True:
                    pass

        @engine.hookimpl
        def register_level_generators(register):
            register(Spin())
    ''')
    r = run_cli_process("bake", _spec(tmp_path, "spin", 1, "timeout = 0.5\n"), "-o", tmp_path / "s.cpk",
                        "--quiet", "--chunk-size", "1", env=plugin_env(spin))
    err = r.stderr.decode()
    assert r.returncode == 1 and "generator 'spin' made no valid level within its 0.5 s time budget" in err, err
    r = run_cli_process("generate", "level", "-g", "spin", "--timeout", "0.5", env=plugin_env(spin))
    assert r.returncode == 1 and b"within its 0.5 s time budget" in r.stderr


def _descendants(pid: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d))
    out, todo = set(), [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.add(k)
            todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


STALL = '''
import os, time

class Stall:
    id, kind, version, description, params = "stall", "level", "1", "stalls or dies", []

    def generate(self, request):
        open(os.environ["STALL_MARK"] + str(os.getpid()), "w").close()
        if os.environ.get("STALL_EXIT"):
            os._exit(3)
        time.sleep(60)
        return flat()

@engine.hookimpl
def register_level_generators(register):
    register(Stall())
'''


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_killed_bake_leaves_no_orphans(tmp_path):
    import signal
    import time

    site = make_dist(tmp_path, "stall_plugin", STALL)
    spec = _spec(tmp_path, "stall", count=4, extra="[pack]\nchunk_size = 1\n")
    env = dict(os.environ, **plugin_env(site), STALL_MARK=str(tmp_path / "mark-"))
    p = subprocess.Popen([sys.executable, "-m", "engine", "bake", str(spec), "-o", str(tmp_path / "p.cpk"),
                          "-w", "2", "--quiet"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # until both workers are inside generate (at most ~60 s)
            if len(list(tmp_path.glob("mark-*"))) >= 2:
                break
            time.sleep(0.1)
        family = _descendants(p.pid)
        assert len(family) >= 2, family  # forkserver and workers (and the resource tracker)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    for _ in range(300):  # the workers notice within ~0.5 s; allow a loaded box a generous while
        if not any(_alive(q) for q in family):
            break
        time.sleep(0.1)
    left = [q for q in family if _alive(q)]
    for q in left:  # do not leak them even when the test fails
        os.kill(q, signal.SIGKILL)
    assert not left, f"still running after the bake was killed: {left}"


def test_bake_worker_death_is_one_line_naming_resume(tmp_path):
    site = make_dist(tmp_path, "stall_plugin", STALL)
    spec = _spec(tmp_path, "stall", count=4, extra="[pack]\nchunk_size = 1\n")
    r = run_cli_process("bake", spec, "-o", tmp_path / "p.cpk", "-w", "2", "--quiet",
                        env=plugin_env(site, STALL_MARK=str(tmp_path / "mark-"), STALL_EXIT="1"))
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "a bake worker died" in err and "--resume" in err


# ----------------------------------------------------------------------------------- tracebacks, exit codes
def _one_line(r, code):
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == code, (r.returncode, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_huge_and_non_utf8_seeds_are_input_errors():
    assert "5000-digit number is outside" in _one_line(run_cli("generate", "level", "-s", "9" * 5000), 2)
    bad = os.fsdecode(b"\xff\xfe")  # what Python makes of a non-UTF-8 argument
    assert "seed: not valid UTF-8 text" in _one_line(run_cli("generate", "level", "-s", bad), 2)
    from engine.seeds import parse_seed

    assert parse_seed("²") == "²" and parse_seed("+-5") == "+-5" and parse_seed("-5") == -5


def test_long_values_are_cut_in_every_message():
    err = _one_line(run_cli("generate", "level", "-p", "width=" + "9" * 5000), 2)
    assert len(err) < 400 and "characters cut" in err
    err = _one_line(run_cli("generate", "level", "-g", "y" * 5000), 2)
    assert len(err) < 600
    from engine.errors import ConjureError, PluginError

    assert "\n" not in str(ConjureError("a\nb")) and len(str(PluginError("x" * 10**5, "p"))) < 400


def test_info_on_odd_metadata_and_manifests(tmp_path, level):
    from engine import packs
    from engine.serialize import dumps

    import copy

    level = copy.deepcopy(level)
    level.metadata["params"] = [1, 2, 3]  # metadata is any JSON; info must not assume a map
    f = tmp_path / "odd.json"
    f.write_bytes(dumps(level, "json"))
    r = run_cli("info", f)
    assert r.returncode == 0, r.stderr
    p = tmp_path / "odd.cpk"
    w = packs.PackWriter(p)
    w.jobs = [["not", "a", "map"], {"name": "j", "params": "x"}]  # as a hand-made manifest could say
    w.add_content("a", level)
    w.close()
    r = run_cli("info", p)
    assert r.returncode == 0 and b"malformed entry (list, expected a map)" in r.stdout, r.stderr


def test_nul_in_pack_asset_id_is_an_input_error(tmp_path, level):
    from engine import packs

    p = tmp_path / "nul.cpk"
    packs.write_pack(p, {"a\0b": level})
    assert "cannot become a file name" in _one_line(run_cli("extract", p, "-o", tmp_path / "x"), 2)


def test_exporter_returning_str_to_stdout_is_a_plugin_error(tmp_path):
    from engine import Engine, Exporter, PluginError, hookimpl

    class Texty(Exporter):
        id, kinds, extensions = "texty", ("level",), (".texty",)

        def dumps(self, content, options):
            return "not bytes"

    class P:
        @hookimpl
        def register_exporters(self, register):
            register(Texty())

    eng = Engine([P()], load=["dungeon"], entry_points=False)
    lvl = eng.generate("level", seed=1, params={"width": 16, "height": 16})
    with pytest.raises(PluginError, match="exporter 'texty' dumps returned str, expected bytes"):
        eng.dumps(lvl, "texty")


def test_wrong_context_from_the_api_is_an_input_error():
    from engine import Engine, InputError

    eng = Engine(load=["classic_character"], entry_points=False)
    with pytest.raises(InputError, match=r"context\['level'\] must be a Level, got str"):
        eng.generate("character", context={"level": "x"})
    with pytest.raises(InputError, match="context must be a mapping"):
        eng.generate("character", context=["level"])


def test_debug_flag_prints_the_traceback(tmp_path):
    r = run_cli("generate", "level", "-p", "width=oops")
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    for args, env in ((("--debug", "generate", "level", "-p", "width=oops"), None),
                      (("generate", "level", "-p", "width=oops", "--debug"), None),
                      (("generate", "level", "-p", "width=oops"), {"CONJURE_DEBUG": "1"})):
        r = run_cli(*args, env=env)
        err = r.stderr.decode()
        assert r.returncode == 2 and "Traceback (most recent call last)" in err, err
        assert err.strip().splitlines()[-1].startswith("conjure: error: ")


def test_unexpected_errors_are_one_line_naming_debug(monkeypatch):
    import engine.cli as cli

    def boom(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(cli.COMMANDS, "list", cli.COMMANDS["list"]._replace(handler=boom))
    err = _one_line(run_cli("list"), 1)
    assert "unexpected ZeroDivisionError: division by zero (run with --debug" in err


# ----------------------------------------------------------------------------------- the content filter
@pytest.fixture
def filter_file(tmp_path, monkeypatch):
    from engine import textfilter

    def use(text):
        f = tmp_path / "words.txt"
        f.write_text(text)
        monkeypatch.setenv("CONJURE_FILTER_FILE", str(f))
        textfilter.default_filter.cache_clear()

    yield use
    textfilter.default_filter.cache_clear()


def test_filter_normalises_and_matches_stems():
    from engine.textfilter import ContentFilter, fold

    f = ContentFilter(["grob", "porn"])
    assert fold("ＧＲＯＢ") == "grob" and fold("gr\u03bfb") == "grob" and fold("g\u200brob") == "grob"
    for bad in ("grob", "Grobian", "the grobs", "GROBBING", "gr\u03bfb", "gr\u043eb", "gr0b", "p\u043ern", "ｇｒｏｂ",
                "gŕöb"):
        assert not f.text_ok(bad) and not f.name_ok(bad), bad
    for fine in ("grobble", "a grove", "pornament", "3 goblins"):
        assert f.text_ok(fine), fine
    assert not f.name_ok("Xgrobx") and f.name_ok("Gorb")  # names: by substring, as before


def test_every_story_field_is_filtered_whatever_made_it(filter_file):
    from engine import Engine, GenerationError

    eng = Engine(load=["grammar_story", "classic_character", "dungeon"], entry_points=False)
    story = eng.generate("story", seed=5)
    beat = story.quest.beats[0].text
    word = max((w for w in beat.replace(",", " ").replace(".", " ").split() if w.isalpha()), key=len).lower()
    filter_file(f"{word}\n")
    try:
        again = eng.generate("story", seed=5)
    except GenerationError as e:  # every try used the word: refused, naming the filter
        assert "blocked by the content filter" in str(e)
    else:
        from engine.textfilter import content_problems

        assert content_problems(again) == [] and word not in " ".join(b.text.lower() for b in again.quest.beats)


def test_context_names_are_filtered(filter_file):
    from engine import Engine, InputError

    eng = Engine(load=["grammar_story", "classic_character", "dungeon"], entry_points=False)
    from engine import Cast

    cast = Cast([eng.generate("character", seed=3)])
    filter_file(cast.characters[0].name.split()[0].lower() + "\n")
    with pytest.raises(InputError, match=r"context cast\.characters\[0\]\.name: blocked by the content filter"):
        eng.generate("story", seed=1, context={"cast": cast})


def test_filter_file_missing_or_not_regular_is_an_input_error(tmp_path):
    missing = tmp_path / "nope.txt"
    err = _one_line(run_cli("generate", "character", env={"CONJURE_FILTER_FILE": str(missing)}), 2)
    assert "CONJURE_FILTER_FILE" in err and "nope.txt: no such file" in err
    fifo = tmp_path / "words.fifo"
    os.mkfifo(fifo)  # no writer: an open() for reading would block forever
    err = _one_line(run_cli("generate", "character", env={"CONJURE_FILTER_FILE": str(fifo)}), 2)
    assert "not a regular file" in err


def test_non_regular_input_files_are_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "level.json"
    os.mkfifo(fifo)
    assert "not a regular file" in _one_line(run_cli("info", fifo), 2)
    assert "not a regular file" in _one_line(run_cli("generate", "character", "--context", fifo), 2)
    from engine import InputError
    from engine.serialize import read_bytes

    with pytest.raises(InputError, match="is a directory"):
        read_bytes(tmp_path)


# ----------------------------------------------------------------------------------- plugin isolation
def test_plugins_that_exit_hang_or_interrupt_at_import_are_named_not_fatal(tmp_path):
    sites = [make_dist(tmp_path, "exits_plugin", "import os\nos._exit(3)\n"),
             make_dist(tmp_path, "hangs_plugin", "while True:\n    pass\n"),
             make_dist(tmp_path, "interrupts_plugin", "raise KeyboardInterrupt\n"),
             make_dist(tmp_path, "fine_plugin", NONDET)]
    env = plugin_env(*sites, CONJURE_CACHE_DIR=str(tmp_path / "cache"), CONJURE_PROBE_TIMEOUT="3")
    for run in range(2):  # the second run answers from the cache (keyed by distribution version and file)
        r = run_cli_process("list", "plugins", "--json", env=env)
        assert r.returncode == 0, r.stderr.decode()
        infos = {p["name"]: p for p in json.loads(r.stdout)}
        assert infos["fine_plugin"]["status"] == "ok"
        assert "ended the process (exit code 3" in infos["exits_plugin"]["errors"][0]
        assert "did not finish within 3 s" in infos["hangs_plugin"]["errors"][0]
        assert "raised KeyboardInterrupt" in infos["interrupts_plugin"]["errors"][0]
        assert all(infos[n]["status"] == "broken" for n in ("exits_plugin", "hangs_plugin", "interrupts_plugin"))
    cache = json.loads((tmp_path / "cache" / "plugin-probes.json").read_text())
    assert len(cache) == 4 and sum(1 for v in cache.values() if v) == 3


def test_a_raising_process_hook_marks_its_plugin_broken_and_the_rest_go_on(tmp_path):
    site = make_dist(tmp_path, "hooky_plugin", '''
        @engine.hookimpl
        def process_level(level, request):
            raise RuntimeError("hook bug")
    ''')
    code = """
        import warnings
        from engine import Engine
        eng = Engine(load=["dungeon", "hooky_plugin"])
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            a = eng.generate("level", "dungeon", seed=4, params={"width": 16, "height": 16})
        b = Engine(load=["dungeon"]).generate("level", "dungeon", seed=4, params={"width": 16, "height": 16})
        from engine.serialize import dumps
        info = {p.name: p for p in eng.plugins()}["hooky_plugin"]
        print("SAME", dumps(a) == dumps(b), "STATUS", info.status, "|", info.errors[0], "|", str(w[0].message))
        eng.generate("level", "dungeon", seed=5, params={"width": 16, "height": 16})
        print("AGAIN OK")
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, **plugin_env(site)))
    assert r.returncode == 0, r.stderr
    assert "SAME True STATUS broken | process_level raised RuntimeError: hook bug" in r.stdout, r.stdout
    assert "plugin 'hooky_plugin' is broken and was unloaded" in r.stdout and "AGAIN OK" in r.stdout


def test_a_plugin_that_registers_nothing_is_flagged(tmp_path):
    site = make_dist(tmp_path, "forgot_plugin", '''
        def register_level_generators(register):  # no @engine.hookimpl
            register(None)
    ''')
    r = run_cli_process("list", "plugins", "--json", env=plugin_env(site))
    info = {p["name"]: p for p in json.loads(r.stdout)}["forgot_plugin"]
    assert info["status"] == "empty" and info["errors"] == ["registered nothing; forgot @engine.hookimpl?"]
    r = run_cli_process("list", env=plugin_env(site))
    assert b"plugin 'forgot_plugin' is broken: registered nothing; forgot @engine.hookimpl?" in r.stderr


def test_a_hook_argument_typo_is_one_line():
    from engine import Engine, hookimpl

    class Typo:
        @hookimpl
        def register_level_generators(self, regster):
            pass

    info = {p.name: p for p in Engine([Typo()], load=[], entry_points=False).plugins()}["Typo"]
    assert info.status == "broken" and "\n" not in info.errors[0]
    assert info.errors[0] == ("invalid plugin: hook register_level_generators(register) is implemented as "
                              "register_level_generators(regster): argument(s) {'regster'} are not in the hookspec "
                              "(a typo? argument names must match)")


# ----------------------------------------------------------------------------------- messages
def test_sheet_scale_error_names_sheet_scale_and_writes_nothing(tmp_path):
    err = _one_line(run_cli("generate", "character", "-o", tmp_path / "hero.png", "-O", "sheet_scale=0"), 2)
    assert "png option sheet_scale: expected an int in 1..16, got 0" in err
    assert list(tmp_path.iterdir()) == []


def test_image_errors_carry_no_object_addresses(tmp_path):
    from engine import InputError
    from plugins.tiled import load_map

    (tmp_path / "t.png").write_bytes(b"not a png at all")
    ts = [{"firstgid": 1, "name": "t", "tilecount": 1, "columns": 1, "tilewidth": 16, "tileheight": 16,
           "image": "t.png", "imagewidth": 16, "imageheight": 16}]
    path = tmj_map(tmp_path, 1, 1, [(None, struct.pack("<I", 1))], tilesets=ts)
    with pytest.raises(InputError) as e:
        load_map(path)
    assert "not an image Pillow can read" in str(e.value) and " at 0x" not in str(e.value)
    from engine.errors import ConjureError

    assert str(ConjureError("cannot identify image file <_io.BytesIO object at 0x7f0e2c3b1d50>")) == \
        "cannot identify image file <_io.BytesIO>"


# ----------------------------------------------------------------------------------- the modder's first hour
def test_engine_testing_imports_and_works_without_pytest():
    code = """
        import sys
        sys.modules["pytest"] = None  # as if pytest were not installed
        from engine.testing import check_generator, make_engine
        import engine.testing
        eng = make_engine(builtins=True)
        report = check_generator(eng, "dungeon", seeds=[1], params_cases=[{"width": 16, "height": 16}],
                                 batch=False)
        print("CASES", report.cases, "PYTEST", engine.testing.pytest)
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0 and "CASES 1 PYTEST None" in r.stdout, r.stderr[-2000:]


def test_check_generator_keeps_the_authors_frame():
    import traceback

    from engine.testing import ContractError, check_generator, make_engine

    class Buggy:
        id, kind, version, description, params = "buggy", "level", "1", "raises", []

        def generate(self, request):
            return self.helper_that_fails()

        def helper_that_fails(self):
            raise ValueError("oops in my code")

    eng = make_engine(_plugin(Buggy()))
    with pytest.raises(ContractError) as e:
        check_generator(eng, "buggy", seeds=[1], batch=False)
    text = "".join(traceback.format_exception(e.value))
    assert "helper_that_fails" in text and "oops in my code" in text


def test_numpy_ints_in_entities_are_accepted_or_named():
    import numpy as np

    from engine import Entity
    from engine.serialize import dumps, loads

    lvl = _flat_level()
    lvl.entities.append(Entity("key", "key", np.int64(2), np.uint8(3)))
    assert lvl.problems() == [] and type(lvl.entities[1].x) is int
    assert loads(dumps(lvl)).entities[1].y == 3
    lvl.entities[1].x = 2.0  # set after construction: named, not "2.0 outside 0..3"
    assert lvl.problems() == ["level.entities[1].x: 2.0 is a float, expected an int"]


def test_no_wall_clock_bounds_in_tests():
    """Speed is measured as ratios in bench/, never as a bound on seconds in a test (a loaded CI box is slow)."""
    import re

    bound = re.compile(r"assert[^\n]*(perf_counter|monotonic|time\.time)\(\)\s*-\s*\w+\s*<")
    offenders = [f"{p.name}:{text[:m.start()].count(chr(10)) + 1}" for p in sorted((ROOT / "tests").glob("*.py"))
                 for text in [p.read_text("utf-8")] for m in bound.finditer(text)]
    assert offenders == [], offenders


def test_weights_that_do_not_fit_are_bad_input_in_one_line():
    from engine import Engine, InputError

    class Loader:
        id, kind, version, description, params = "loader", "level", "1", "loads weights", []

        def generate(self, request):
            raise RuntimeError('Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: "w".\n'
                               '\tsize mismatch for b: copying a param with shape [3] from checkpoint')

    eng = Engine([_plugin(Loader())], load=[], entry_points=False)
    with pytest.raises(InputError) as e:
        eng.generate("level", "loader")
    assert str(e.value) == ("generator 'loader': its weights do not fit the model (Missing key(s) in state_dict: "
                            "\"w\".; size mismatch for b: copying a param with shape [3] from checkpoint)")
    assert e.value.exit_code == 2


def test_content_doc_matches_the_dataclasses():
    """docs/content.md documents every content dataclass: its fields, in order, with their annotations."""
    import dataclasses
    import re

    import engine.content as content

    text = (ROOT / "docs" / "content.md").read_text("utf-8")
    documented = {}
    for m in re.finditer(r"^### (\w+)\n\n\| field \| type \| meaning \|\n\|---\|---\|---\|\n((?:\|.*\n)+)", text, re.M):
        rows = [re.findall(r"`([^`]*)`", row)[:2] for row in m.group(2).splitlines()]
        documented[m.group(1)] = [(f, t.replace("\\|", "|")) for f, t in rows]
    classes = {n: o for n, o in vars(content).items() if isinstance(o, type) and dataclasses.is_dataclass(o)
               and o.__module__ == "engine.content"}
    assert sorted(documented) == sorted(classes)
    for name, cls in classes.items():
        assert documented[name] == [(f.name, f.type) for f in dataclasses.fields(cls)], name
    assert ", ".join(f"`{k}`" for k in content.BEAT_KINDS) in text
    for cls in (content.Level, content.Character, content.Cast, content.Story):
        assert f"`{cls.SCHEMA}`" in text


def test_json_tiles_as_lists_are_bounded_before_parsing(tmp_path):
    from engine.serialize import MAX_JSON_VALUES

    path = tmp_path / "big.json"
    with open(path, "wb") as f:  # a level-shaped document with 16 Mi tile values: ~32 MB of text
        f.write(b'{"schema": "conjure.level/1", "layers": [{"name": "tiles", "tiles": [[')
        f.write(b"0," * (2 * MAX_JSON_VALUES) + b"0]]}]}")
    mb, out = peak_mb("""
        import sys
        from engine import ConjureError
        from engine.serialize import loads, read_bytes
        try:
            loads(read_bytes(sys.argv[1]), "json", sys.argv[1])
        except ConjureError as e:
            print("ERR", e)
    """, str(path))
    assert "JSON values, over the 8,388,608-value limit" in out, out
    assert mb < PEAK_LIMIT_MB


def test_costed_generators_refuse_huge_parameter_products():
    from engine import Engine, InputError
    from engine.generator import Costed
    from engine.params import Param

    class Searchy:
        id, kind, version, description = "searchy", "level", "1", "searches"
        params = (Param("width", "int", 96, min=8, max=4000), Param("search", "int", 10, min=1, max=1000))

        def cost(self, params):
            return params["width"] / 96 * params["search"] / 10

        def generate(self, request):
            return _flat_level()

    assert isinstance(Searchy(), Costed)
    eng = Engine([_plugin(Searchy())], load=[], entry_points=False)
    eng.generate("level", "searchy", params={"width": 960, "search": 100})  # 100x: fine
    with pytest.raises(InputError, match=r"generator 'searchy': width=2000 search=1000 asks for 2,083x the work "
                                         r"of its defaults, over the 1,000x limit"):
        eng.generate("level", "searchy", params={"width": 2000, "search": 1000})
