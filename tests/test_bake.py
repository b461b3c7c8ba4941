"""``conjure bake``: same bytes however a bake is split, parallelised, killed and resumed, or distributed."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from engine import InputError, serialize
from engine.bake import bake, journal_path, load_spec, regenerate
from engine.packs import open_pack

from .conftest import ROOT, run_cli

SPEC = """
[pack]
compression = "{compression}"

[[job]]
name = "dun"
kind = "level"
generator = "dungeon"
count = {count}
seed = 11
params = {{ width = 24, height = 24, rooms = 4 }}

[[job]]
name = "tales"
kind = "story"
count = 6
seed = "tales"
context = ["ctx/level.msgpack"]
"""


def write_spec(folder, count=200, compression="zstd", name="spec.toml"):
    from engine import Engine

    (folder / "ctx").mkdir(exist_ok=True)
    lvl = Engine(entry_points=False).generate("level", "dungeon", 5, {"width": 24, "height": 24, "rooms": 4})
    (folder / "ctx" / "level.msgpack").write_bytes(serialize.dumps(lvl))
    p = folder / name
    p.write_text(SPEC.format(count=count, compression=compression))
    return p


@pytest.fixture(scope="module")
def baked(tmp_path_factory, eng):
    """The reference: one uninterrupted in-process bake (1 worker)."""
    d = tmp_path_factory.mktemp("bake")
    spec = write_spec(d)
    out = d / "ref.cpk"
    res = bake(spec, out, workers=1, progress=False, engine=eng)
    assert res["count"] == 206 and not journal_path(out).exists()
    return spec, out, out.read_bytes()


def test_pack_contents_and_regenerate_alone(baked, eng):
    spec, out, _ = baked
    with open_pack(out) as r:
        assert len(r) == 206
        assert r.ids[:2] == ["dun/0", "dun/1"] and r.ids[-1] == "tales/5"
        jobs = r.manifest["jobs"]
        assert [j["generator"] for j in jobs] == ["dungeon", "grammar-story"]
        assert jobs[0]["generator_version"] == eng.generator("dungeon").version and jobs[0]["params"]["width"] == 24
        assert jobs[1]["context"][0]["path"] == "ctx/level.msgpack"
        assert r.compression == "zstd"
        # any asset regenerates alone, byte for byte
        for aid in ("dun/0", "dun/123", "tales/4"):
            assert serialize.dumps(regenerate(spec, aid, engine=eng)) == r.raw(r.index_of(aid))
        story = r.get("tales/2")
        assert story.KIND == "story"


def test_two_workers_same_bytes(baked, tmp_path):
    spec, _, ref = baked
    out = tmp_path / "w2.cpk"
    bake(spec, out, workers=2, progress=False, chunk_size=9)
    assert out.read_bytes() == ref


def test_split_bake_same_bytes(baked, tmp_path, eng):
    """A bake stopped part way (chunks of 7) and finished with other chunks and workers gives the same bytes."""
    spec, _, ref = baked
    out = tmp_path / "split.cpk"
    res = bake(spec, out, workers=1, progress=False, chunk_size=7, stop_after=5, engine=eng)
    assert res["path"] is None and journal_path(out).exists() and not out.exists()
    assert 35 <= res["done"] < 206
    with pytest.raises(InputError, match="--resume"):
        bake(spec, out, workers=1, progress=False, engine=eng)  # a journal is there: refuse to clobber it
    res = bake(spec, out, workers=1, progress=False, chunk_size=13, resume=True, stop_after=3, engine=eng)
    assert res["path"] is None
    res = bake(spec, out, workers=2, progress=False, chunk_size=40, resume=True, engine=eng)
    assert res["path"] == str(out) and not journal_path(out).exists()
    assert out.read_bytes() == ref


def test_resume_refuses_a_different_spec(baked, tmp_path, eng):
    spec, _, _ = baked
    out = tmp_path / "x.cpk"
    bake(spec, out, workers=1, progress=False, chunk_size=10, stop_after=1, engine=eng)
    other = write_spec(tmp_path, count=201, name="other.toml")
    with pytest.raises(InputError, match="different spec"):
        bake(other, out, workers=1, progress=False, resume=True, engine=eng)
    res = bake(other, out, workers=1, progress=False, fresh=True, chunk_size=50, stop_after=1, engine=eng)
    assert res["path"] is None


def test_torn_journal_tail_is_dropped(baked, tmp_path, eng):
    spec, _, ref = baked
    out = tmp_path / "torn.cpk"
    bake(spec, out, workers=1, progress=False, chunk_size=20, stop_after=3, engine=eng)
    j = journal_path(out)
    data = j.read_bytes()
    j.write_bytes(data[:-100] + b"\xff" * 50)  # a half-written last frame
    bake(spec, out, workers=1, progress=False, chunk_size=20, resume=True, engine=eng)
    assert out.read_bytes() == ref


def test_sigkill_then_resume_same_bytes(baked, tmp_path):
    spec, _, ref = baked
    out = tmp_path / "killed.cpk"
    j = journal_path(out)
    args = [sys.executable, "-m", "engine", "bake", str(spec), "-o", str(out), "--workers", "2",
            "--chunk-size", "4"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if j.exists() and j.stat().st_size > 40_000:  # a good number of chunks journaled
                break
            time.sleep(0.02)
        assert proc.poll() is None, "bake finished before it could be killed; make it bigger"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert j.exists() and not out.exists()
    r = run_cli("bake", spec, "-o", out, "--workers", "2")
    assert r.returncode == 2 and b"--resume" in r.stderr
    r = run_cli("bake", spec, "-o", out, "--workers", "2", "--resume")
    assert r.returncode == 0, r.stderr
    assert b"baked" in r.stderr  # plain progress lines when not a terminal
    assert out.read_bytes() == ref
    assert not j.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_errors(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[[job]]\nkind = "level"\ngenerator = "nope"\ncount = 3\n')
    r = run_cli("bake", p, "-o", tmp_path / "x.cpk")
    assert r.returncode == 2 and b"unknown level generator 'nope'" in r.stderr
    p.write_text('[[job]]\nkind = "level"\ncount = 3\nparams = { width = 5 }\n')
    r = run_cli("bake", p, "-o", tmp_path / "x.cpk")
    assert r.returncode == 2 and b"width" in r.stderr
    p.write_text('[[job]]\nkind = "level"\ncount = 3\ncolour = 1\n')
    r = run_cli("bake", p, "-o", tmp_path / "x.cpk")
    assert r.returncode == 2 and b"colour" in r.stderr
    p.write_text("[[job]\n")
    r = run_cli("bake", p, "-o", tmp_path / "x.cpk")
    assert r.returncode == 2 and b"malformed TOML" in r.stderr
    r = run_cli("bake", tmp_path / "missing.toml", "-o", tmp_path / "x.cpk")
    assert r.returncode == 2 and b"no such file" in r.stderr
    with pytest.raises(InputError, match="unique name"):
        p.write_text('[[job]]\nkind = "level"\ncount = 1\n[[job]]\nkind = "level"\ncount = 1\n')
        load_spec(p)


def _quietly(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception:  # the worker dies while answering
        pass


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_dask_same_bytes_even_when_a_worker_dies(baked, tmp_path, dask_cluster):
    spec, _, ref = baked
    cluster, client = dask_cluster
    out = tmp_path / "dask.cpk"
    bake(spec, out, executor="dask", client=client, progress=False, chunk_size=10)
    assert out.read_bytes() == ref

    killed = []

    def kill_one(done, total):
        if not killed and done >= 30:
            addr = sorted(client.scheduler_info()["workers"])[0]
            killed.append(addr)
            threading.Thread(target=_quietly, args=(client.run, os._exit, 1), kwargs={"workers": [addr]},
                             daemon=True).start()

    out2 = tmp_path / "dask2.cpk"
    bake(spec, out2, executor="dask", scheduler=None, client=client, progress=False, chunk_size=3,
         on_chunk=kill_one)
    assert killed
    assert out2.read_bytes() == ref
    deadline = time.time() + 30
    while killed[0] in client.scheduler_info()["workers"] and time.time() < deadline:
        time.sleep(0.1)
    assert killed[0] not in client.scheduler_info()["workers"]  # it really died (its nanny starts another)


def test_dask_scheduler_address(baked, tmp_path, dask_cluster):
    spec, _, ref = baked
    cluster, _ = dask_cluster
    out = tmp_path / "sched.cpk"
    bake(spec, out, executor="dask", scheduler=cluster.scheduler_address, progress=False, chunk_size=25)
    assert out.read_bytes() == ref


@pytest.mark.slow
def test_2000_levels_killed_halfway(tmp_path):
    """The issue's must-show: 2,000 dungeon levels, SIGKILL at about half, --resume, same bytes."""
    spec = write_spec(tmp_path, count=2000)
    ref = tmp_path / "ref.cpk"
    r = run_cli("bake", spec, "-o", ref, "--workers", "2")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "killed.cpk"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "bake", str(spec), "-o", str(out), "--workers", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    half = ref.stat().st_size // 2
    while proc.poll() is None and not (journal_path(out).exists() and journal_path(out).stat().st_size > half):
        time.sleep(0.05)
    assert proc.poll() is None, "the bake ended before it was killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    r = run_cli("bake", spec, "-o", out, "--workers", "2", "--resume")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == ref.read_bytes()
    with open_pack(out) as pk:
        assert serialize.dumps(pk[1234]) == serialize.dumps(regenerate(spec, "dun/1234"))


def test_every_name_of_the_old_engine_bake_module_still_imports():
    """engine/bake.py became the package engine/bake/: what plugin authors and scripts imported still imports."""
    import engine.bake as b

    for name in ("bake", "regenerate", "load_spec", "parse_spec", "resolve_spec", "plan_hash", "Spec", "Job",
                 "journal_path", "Journal", "Frame", "encode_frame", "decode_frame", "bake_chunk", "init_worker",
                 "make_records", "extract", "info_lines", "MAX_SPEC_BYTES", "MAX_COUNT", "TARGET_CHUNK_S",
                 "JOURNAL_MAGIC", "FRAME_MAGIC", "FRAME_HEAD", "FRAME_REC", "ERROR_MAGIC", "ERRORS", "JOB_KEYS",
                 "PACK_KEYS"):
        assert hasattr(b, name), name
    assert set(b.__all__) <= set(dir(b))


def test_one_progress_display_counts_a_resumed_bake():
    import io

    from engine.progress import Progress

    stream = io.StringIO()
    p = Progress(10, "baked", done=4, unit="assets", stream=stream, every=0.0).start()
    for _ in range(6):
        p.advance(1)
    p.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6 and lines[0].startswith("baked: 5/10 assets (50%, ")
    assert lines[-1].startswith("baked: 10/10 assets (100%, ") and "ETA 0s" in lines[-1]
    quiet = io.StringIO()
    with Progress(3, "training", enabled=False, stream=quiet) as q:
        q.advance(3, loss=0.5)
    assert q.done == 3 and quiet.getvalue() == ""
