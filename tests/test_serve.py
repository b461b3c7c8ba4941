"""`conjure serve`: the JSON API against the engine and the CLI (same bytes), caching, limits, errors, packs."""
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile

import msgpack
import pytest

import engine
from engine import Generator, Level, Param, hookimpl
from engine.cli import main as cli_main
from engine.packs import open_pack, write_pack

from .conftest import ROOT, run_py

pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
pytest.importorskip("httpx", reason="httpx (the test client) is not installed")
from starlette.testclient import TestClient  # noqa: E402

from engine.serve import create_app  # noqa: E402
from engine.serve.service import Service  # noqa: E402

GATE = threading.Event()


class Stuck(Generator):
    """Waits for GATE (time budget tests)."""
    id, kind, version = "stuck", "level", "1"
    params = ()

    def generate(self, request):
        GATE.wait(10)
        return _tiny()


class Hopeless(Generator):
    """Never valid (422)."""
    id, kind, version = "hopeless", "level", "1"
    params = (Param("n", "int", 1, min=1, max=3),)

    def generate(self, request):
        return _tiny()

    def validate(self, content, request):
        return ["never good enough"]


class Slow(Generator):
    """Invalid on every try, each try slow: the engine's deadline stops it between tries (503)."""
    id, kind, version = "slow", "level", "1"
    params = ()

    def generate(self, request):
        time.sleep(0.2)
        return _tiny()

    def validate(self, content, request):
        return ["not yet"]


class Broken(Generator):
    """Raises (a plugin bug: 500)."""
    id, kind, version = "broken", "level", "1"
    params = ()

    def generate(self, request):
        raise ZeroDivisionError("oops")


def _tiny():
    import numpy as np

    from engine.content import TileDef, Tileset

    ts = Tileset("t", [TileDef(0, "floor", ".", (0, 0, 0), {})])
    return Level(2, 2, {"tiles": np.zeros((2, 2), np.uint8)}, ts)


class TestPlugin:
    @hookimpl
    def register_level_generators(self, register):
        register(Stuck())
        register(Hopeless())
        register(Broken())
        register(Slow())


@pytest.fixture(scope="module")
def levels(eng):
    return [eng.generate("level", "dungeon", s, {"width": 24, "height": 24, "rooms": 4}) for s in range(3)]


@pytest.fixture(scope="module")
def pack_path(levels, tmp_path_factory):
    p = tmp_path_factory.mktemp("serve") / "dungeons.cpk"
    write_pack(p, {f"lv/{i}": c for i, c in enumerate(levels)}, compression="zstd")
    return p


@pytest.fixture(scope="module")
def client(pack_path):
    eng = engine.Engine(plugins=[TestPlugin()], entry_points=False)
    app = create_app(Service(eng, packs={"dungeons": pack_path}), timeout=0.5, max_body=64 * 1024)
    with TestClient(app) as c:
        yield c
    GATE.set()


def post(client, **doc):
    return client.post("/api/generate", json=doc)


def cli_bytes(tmp_path, name, *args):
    out = tmp_path / name
    assert cli_main(["generate", *args, "-o", str(out)]) == 0
    return out


# ---------------------------------------------------------------------------------------------- API
def test_generators_health_version(client, eng):
    gens = {g["id"]: g for g in client.get("/api/generators").json()}
    d = gens["dungeon"]
    assert d["kind"] == "level" and d["default"] and "json" in d["formats"] and "tmj" in d["formats"]
    assert d["params"] == json.loads(json.dumps(eng.describe("dungeon")["params"]))  # the schema, as JSON
    assert "blend" in {p["name"] for p in gens["dungeon-vae"]["params"]}
    assert client.get("/api/health").json()["status"] == "ok"
    assert {"name": "kenney", "license": "CC0-1.0"}.items() <= client.get("/api/themes").json()[0].items()
    v = client.get("/api/version").json()
    assert v["generators"]["dungeon"] == str(d["version"]) and v["conjure"]


def test_same_bytes_as_the_cli(client, tmp_path, capsys):
    args = ["level", "-g", "dungeon", "-s", "7", "-p", "width=40", "-p", "rooms=5"]
    for fmt in ("json", "msgpack", "png"):
        r = post(client, kind="level", generator="dungeon", seed=7, params={"width": 40, "rooms": 5}, format=fmt)
        assert r.status_code == 200, r.text
        assert r.content == cli_bytes(tmp_path, f"a.{fmt}", *args).read_bytes()
    # a story to Ink JSON: its single file, byte for byte
    r = post(client, kind="story", seed="tale", format="ink.json")
    assert r.content == cli_bytes(tmp_path, "s.ink.json", "story", "-s", "tale").read_bytes()
    assert r.headers["content-type"] == "application/json"
    # LDtk (engineer F's exporter): the single-file project `-o - --format ldtk` writes
    r = post(client, kind="level", seed=7, params={"width": 40, "rooms": 5}, format="ldtk")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert json.loads(r.content)["jsonVersion"] and "levels" in json.loads(r.content)
    # a format that writes several files comes as a zip of exactly what the CLI writes
    r = post(client, kind="level", seed=7, params={"width": 40, "rooms": 5}, format="tmj", options={"tile_size": 8})
    assert r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    out = tmp_path / "zip"
    assert cli_main(["generate", *args, "-o", str(out / "dungeon-7.tmj"), "-O", "tile_size=8"]) == 0
    assert sorted(z.namelist()) == sorted(p.name for p in out.iterdir())
    for name in z.namelist():
        assert z.read(name) == (out / name).read_bytes()
    # and the zip itself is the same for the same request
    assert post(client, kind="level", seed=7, params={"width": 40, "rooms": 5}, format="tmj",
                options={"tile_size": 8}).content == r.content
    capsys.readouterr()


def test_etag_cache_and_hits(client, eng):
    doc = dict(kind="level", generator="dungeon", seed=99, params={"width": 64, "height": 64})
    first = post(client, **doc, format="msgpack")
    assert first.status_code == 200 and first.headers["x-cache"] == "miss"
    level = eng.generate("level", "dungeon", 99, {"width": 64, "height": 64})
    raw = engine.serialize.dumps(level)
    h = engine.packs.record_hash(raw).hex()
    assert first.content == raw and first.headers["x-content-hash"] == h and first.headers["etag"] == f'"{h}"'
    assert "max-age" in first.headers["cache-control"]
    hits = client.get("/api/health").json()["runtime"]["hits"]
    again = post(client, **doc, format="msgpack")
    assert again.headers["x-cache"] == "hit" and again.content == raw
    assert client.get("/api/health").json()["runtime"]["hits"] == hits + 1
    as_json = post(client, **doc)  # another format of the same content: same hash, another ETag
    assert as_json.headers["x-content-hash"] == h and as_json.headers["etag"] != first.headers["etag"]
    r = client.post("/api/generate", json={**doc, "format": "msgpack"}, headers={"If-None-Match": f'"{h}"'})
    assert r.status_code == 304 and r.content == b""
    # GET form (for <img src> and share links): query params, seed digits as an int like the CLI
    q = client.get("/api/generate", params={"kind": "level", "seed": "99", "format": "msgpack",
                                            "params": json.dumps({"width": 64, "height": 64})})
    assert q.content == raw


def test_context_by_content_hash(client, eng):
    lv = post(client, kind="level", seed=3, params={"width": 32, "height": 32, "rooms": 4}, format="msgpack")
    h = lv.headers["x-content-hash"]
    cast = post(client, kind="character", seed=3, context={"level": h}, format="msgpack")
    assert cast.status_code == 200, cast.text
    level = engine.serialize.loads(lv.content)
    want = eng.generate("character", None, 3, context={"level": level})
    assert cast.content == engine.serialize.dumps(want)
    story = post(client, kind="story", seed=3, context={"level": h, "cast": cast.headers["x-content-hash"]})
    assert story.status_code == 200
    # an inline document and a pack asset work as context too
    inline = post(client, kind="character", seed=3, context={"level": json.loads(level_json(level))},
                  format="msgpack")
    assert inline.content == cast.content
    r = post(client, kind="character", seed=3, context={"level": {"pack": "dungeons", "id": "lv/1"}})
    assert r.status_code == 200
    bad = post(client, kind="character", seed=3, context={"level": "0" * 32})
    assert bad.status_code == 400 and "no recent result has hash" in bad.json()["error"]


def level_json(level):
    return engine.serialize.dumps(level, "json")


@pytest.mark.parametrize("doc, status, words", [
    ({"kind": "level", "params": {"width": "abc"}}, 400, "parameter 'width': expected int, got 'abc'"),
    ({"kind": "level", "params": {"widht": 3}}, 400, "unknown parameter 'widht'"),
    ({"kind": "level", "generator": "nope"}, 400, "unknown level generator 'nope'"),
    ({"kind": "lvl"}, 400, "unknown kind 'lvl'"),
    ({"kind": "level", "seed": 1.5}, 400, "seed: expected an int or a string"),
    ({"kind": "level", "format": "docx"}, 400, "unknown format 'docx'"),
    ({"kind": "level", "frmat": "json"}, 400, "unknown field 'frmat'"),
    ({"kind": "level", "options": {"tilesize": 3}, "format": "png"}, 400, "has no option 'tilesize'"),
    ({"kind": "level", "version": "999"}, 400, "the request asks for version 999"),
    ({"kind": "level", "tries": 0}, 400, "'tries': expected an int in 1..100"),
    ([1, 2], 400, "expected a JSON object, got list"),
    ({"kind": "level", "generator": "hopeless"}, 422, "made no valid level in 20 tries"),
    ({"kind": "level", "generator": "broken"}, 500, "generate raised ZeroDivisionError: oops"),
])
def test_errors_are_one_line_json(client, doc, status, words):
    r = client.post("/api/generate", json=doc)
    assert r.status_code == status, r.text
    body = r.json()
    assert words in body["error"] and "\n" not in body["error"] and "Traceback" not in r.text
    assert body["status"] == status


def test_transport_errors(client):
    r = client.post("/api/generate", content=b'{"kind": "level",')
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    r = client.post("/api/generate", content=b"x" * (64 * 1024 + 1))
    assert r.status_code == 413 and "over the 65536-byte limit" in r.json()["error"]
    assert client.get("/api/nothing").status_code == 404
    r = client.delete("/api/generate")
    assert r.status_code == 405 and "not allowed" in r.json()["error"]


def test_time_budget_and_bounded_work(client):
    GATE.clear()
    try:
        r = post(client, kind="level", generator="stuck")
        assert r.status_code == 503 and "time budget of 0.5 s" in r.json()["error"] and r.headers["retry-after"]
    finally:
        GATE.set()
    r = post(client, kind="level", generator="slow", tries=100)
    assert r.status_code == 503 and "time budget" in r.json()["error"]
    # the budget is also the engine's deadline: the work itself stops between tries, not after 100 of them
    svc = client.app.state.conjure.service
    req, ctx = svc.check(svc.parse({"kind": "level", "generator": "slow"}))
    fut, _ = svc.submit(req, ctx, tries=100, timeout=0.3)
    with pytest.raises(engine.errors.GenerationTimeout, match="time budget"):
        fut.result(30)
    serve = client.app.state.conjure
    serve.pending = serve.max_pending  # as if that many requests were in progress
    try:
        r = post(client, kind="level")
        assert r.status_code == 503 and "server busy" in r.json()["error"]
    finally:
        serve.pending = 0
    assert post(client, kind="level").status_code == 200


def test_pack_reads(client, pack_path, levels):
    with open_pack(pack_path) as reader:
        raw, info = reader.raw(1), reader.info(1)
    r = client.get("/api/packs/dungeons/lv/1")
    assert r.status_code == 200 and r.content == raw and r.headers["etag"] == f'"{info["hash"]}"'
    assert r.headers["content-type"] == "application/vnd.msgpack"
    assert client.get("/api/packs/dungeons/lv/1", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    j = client.get("/api/packs/dungeons/lv/1?format=json")
    assert j.content == engine.serialize.dumps(levels[1], "json")
    png = client.get("/api/packs/dungeons/lv/1", params={"format": "png", "options": '{"tile_size": 4}'})
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/api/packs").json()[0]["name"] == "dungeons"
    assert client.get("/api/packs/dungeons").json()["ids"] == ["lv/0", "lv/1", "lv/2"]
    miss = client.get("/api/packs/dungeons/lv/9")
    assert miss.status_code == 404 and "no asset 'lv/9'" in miss.json()["error"]
    assert client.get("/api/packs/other/lv/1").status_code == 404


def test_cors_only_for_named_origins(eng):
    app = create_app(Service(eng), cors_origins=("http://localhost:5173",))
    with TestClient(app) as c:
        r = c.get("/api/health", headers={"Origin": "http://localhost:5173"})
        assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "etag" in r.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-origin" not in c.get("/api/health", headers={"Origin": "http://evil"}).headers
    with TestClient(create_app(Service(eng))) as c:  # none by default
        assert "access-control-allow-origin" not in c.get("/api/health", headers={"Origin": "http://x"}).headers


def test_import_engine_does_not_import_web_stack():
    r = run_py("import sys, engine; engine.Engine(); "
               "print(any(m in sys.modules for m in ('starlette', 'uvicorn', 'engine.serve')))")
    assert r.stdout.strip() == "False", r.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_conjure_serve_runs_uvicorn(pack_path):
    """The real command: uvicorn on loopback, a request over TCP, then a clean stop."""
    import httpx

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", str(port), "--pack", str(pack_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):  # up to ~30 s for start-up on a loaded machine
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(f"{url}/api/generate", json={"kind": "level", "seed": 1, "format": "msgpack"}, timeout=60)
        assert r.status_code == 200 and msgpack.unpackb(r.content)["schema"] == "conjure.level/1"
        assert httpx.get(f"{url}/api/packs/dungeons/lv/0", timeout=10).status_code == 200
        assert "server" not in r.headers
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()
    assert f"http://127.0.0.1:{port}/".encode() in out


def test_serve_cli_errors(tmp_path):
    """Bad input to `conjure serve` is one line and exit 2, before anything listens."""
    with socket.socket() as s:  # a port that is taken
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", str(taken)], cwd=ROOT,
                           capture_output=True, timeout=120)
    assert r.returncode == 2 and r.stderr.decode().strip() == (
        f"conjure: error: cannot listen on 127.0.0.1:{taken} (Address already in use)")
    r = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", str(_free_port()), "--pack",
                        str(tmp_path / "no.cpk")], cwd=ROOT, capture_output=True, timeout=120)
    assert r.returncode == 2 and r.stderr.decode().count("\n") == 1 and "no.cpk: no such file" in r.stderr.decode()


@pytest.mark.parametrize("argv, words", [
    (["--timeout", "nan"], "--timeout must be a positive number of seconds, got 'nan'"),
    (["--timeout", "inf"], "--timeout must be a positive number of seconds, got 'inf'"),
    (["--timeout", "-1"], "--timeout must be a positive number of seconds"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds"),
    (["--max-body", "0"], "--max-body must be a positive integer, got '0'"),
    (["--max-pending", "-3"], "--max-pending must be a positive integer, got '-3'"),
    (["--port", "0"], "--port: 0 is not a port (1..65535)"),  # any free port: the printed URL would be wrong
])
def test_serve_limits_are_checked_and_named(argv, words, capsys):
    """nan/inf timeouts are not budgets; each bad limit is one line naming its flag, exit 2, before listening."""
    from engine.serve.__main__ import main as serve_main

    assert serve_main(["--port", str(_free_port()), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_app_limits_are_checked(eng):
    for kwargs, flag in (({"timeout": float("nan")}, "--timeout"), ({"timeout": float("inf")}, "--timeout"),
                         ({"max_body": 0}, "--max-body"), ({"max_pending": 0}, "--max-pending")):
        with pytest.raises(engine.InputError, match=flag):
            create_app(Service(eng), **kwargs)


def test_export_options_are_checked_before_any_work(client):
    """A bad export option is a 400 at once: the generator (stuck until GATE opens) is never started."""
    svc = client.app.state.conjure.service
    before = svc.runtime.stats()
    GATE.clear()
    try:
        r = post(client, kind="level", generator="stuck", format="png", options={"tilesize": 3})
        assert r.status_code == 400 and "has no option 'tilesize'" in r.json()["error"]
    finally:
        GATE.set()
    assert svc.runtime.stats() == before  # nothing submitted, nothing cached


def test_single_file_bodies_are_the_engines_dumps(client, levels, monkeypatch):
    svc = client.app.state.conjure.service
    calls = []
    real = svc.engine.dumps
    monkeypatch.setattr(svc.engine, "dumps", lambda c, f, **o: calls.append((f, o)) or real(c, f, **o))
    body = svc.render(levels[2], "ldtk", {"layers": "intgrid"}, "x").body
    assert calls == [("ldtk", {"layers": "intgrid"})] and body == real(levels[2], "ldtk", layers="intgrid")


def test_zip_bodies_are_cached_per_file_stem(client, levels):
    """A zip holds files named after the stem: the same content under another stem is another zip (and ETag)."""
    svc = client.app.state.conjure.service
    a, b = svc.render(levels[0], "tmj", None, "alpha"), svc.render(levels[0], "tmj", None, "beta")
    names = [zipfile.ZipFile(io.BytesIO(r.body)).namelist() for r in (a, b)]
    assert any(n == "alpha.tmj" for n in names[0]) and any(n == "beta.tmj" for n in names[1])
    assert a.etag != b.etag and a.content_hash == b.content_hash
    assert svc.render(levels[0], "tmj", None, "alpha").body == a.body
    j1, j2 = svc.render(levels[0], "json", None, "alpha"), svc.render(levels[0], "json", None, "beta")
    assert j1.body == j2.body and j1.etag == j2.etag  # a single file does not depend on the stem


def test_pack_references_never_show_the_servers_path(client, pack_path):
    for ref, words in (({"pack": "dungeons", "id": "lv/9"}, "pack 'dungeons' has no asset 'lv/9'"),
                       ({"pack": "other", "id": "lv/1"}, "no pack 'other'")):
        r = post(client, kind="character", seed=3, context={"level": ref})
        assert r.status_code == 400 and words in r.json()["error"], r.text
        assert str(pack_path) not in r.text and pack_path.parent.name not in r.text
    r = client.get("/api/packs/dungeons/lv/9")
    assert r.status_code == 404 and str(pack_path.parent) not in r.text


def test_only_not_found_is_404():
    from engine.serve.app import status_of
    from engine.serve.service import NotFound

    assert status_of(NotFound("no pack 'x'")) == 404
    assert status_of(KeyError("a bug")) == 500 and status_of(IndexError("a bug")) == 500
