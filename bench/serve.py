"""Load on `conjure serve` (issue 18): requests/s and p50/p99 latency for 50 concurrent clients on loopback.

    python bench/serve.py            # both figures
    python bench/run.py serve        # the same through the bench runner

Starts ``python -m engine.serve`` on 127.0.0.1 (a free port) in a subprocess with a pack of 64x64 dungeons,
then sends exactly 1,000 requests from 50 concurrent keep-alive connections (h11 on asyncio) for each figure:

- ``serve_dungeons``: ``POST /api/generate`` for 64x64 dungeons in msgpack; 500 distinct seeds, each asked
  twice in a shuffled order, so about half the requests are cache misses (generated) and half are hits.
- ``serve_pack_reads``: ``GET /api/packs/dungeons/ID`` for random assets of a 200-level pack.

Every response must be a 200 with the right bytes: the figure counts the answered ones and fails loudly when
any is lost. The baseline is the same work in-process on one thread (no HTTP). Only loopback addresses; the
request loops are bounded in count and time, and the server is stopped at the end. Client and server share
this machine's cores, so the figures are a floor for a server with a machine of its own.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLIENTS = 50
REQUESTS = 1000
PARAMS = {"width": 64, "height": 64}
PACK_LEVELS = 200
DEADLINE_S = 600  # the whole figure gives up after this long
_STATE: dict = {}


def _deps() -> str | None:
    for mod in ("starlette", "uvicorn", "h11"):
        try:
            __import__(mod)
        except ImportError:
            return f"{mod} is not installed (pip install -e '.[serve]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server() -> tuple[str, Path]:
    """A running server (started once per process) and its pack."""
    if "url" in _STATE:
        return _STATE["url"], _STATE["pack"]
    import urllib.request

    import engine
    from engine.packs import write_pack

    eng = engine.Engine(entry_points=False)
    pack = Path(tempfile.mkdtemp(prefix="conjure-bench-serve-")) / "dungeons.cpk"
    write_pack(pack, {f"d/{s}": eng.generate("level", "dungeon", 10_000 + s, PARAMS) for s in range(PACK_LEVELS)})
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "engine.serve", "--host", "127.0.0.1", "--port", str(port),
                             "--pack", str(pack), "--max-pending", "256"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    t = time.monotonic()
    while time.monotonic() - t < 60:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    else:
        proc.terminate()
        raise RuntimeError("server did not start within 60 s")
    import atexit

    def stop():
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    atexit.register(stop)
    _STATE.update(url=url, pack=pack, proc=proc, eng=eng)
    return url, pack


async def _connection(host: str, port: int, queue: asyncio.Queue, lat: list, bad: list, check) -> None:
    """One keep-alive HTTP/1.1 client (h11 over asyncio streams) taking jobs from ``queue`` until it is empty.

    h11 rather than httpx's AsyncClient: with 50 connections on 2 cores httpx's own overhead made the client,
    not the server, the bottleneck (about 7x fewer requests/s measured through it)."""
    import h11

    reader, writer = await asyncio.open_connection(host, port)
    conn = h11.Connection(h11.CLIENT)
    try:
        while True:
            try:
                i, (method, path, body) = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            data = json.dumps(body).encode() if body is not None else b""
            headers = [("Host", f"{host}:{port}"), ("Content-Length", str(len(data)))]
            if body is not None:
                headers.append(("Content-Type", "application/json"))
            t = time.perf_counter()
            out = conn.send(h11.Request(method=method, target=path, headers=headers))
            out += conn.send(h11.Data(data=data)) if data else b""
            out += conn.send(h11.EndOfMessage())
            writer.write(out)
            status, chunks = 0, []
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    got = await reader.read(65536)
                    if not got:
                        raise ConnectionError("the server closed the connection")
                    conn.receive_data(got)
                elif isinstance(ev, h11.Response):
                    status = ev.status_code
                elif isinstance(ev, h11.Data):
                    chunks.append(bytes(ev.data))
                elif isinstance(ev, h11.EndOfMessage):
                    break
            lat.append(time.perf_counter() - t)
            content = b"".join(chunks)
            if status != 200 or not check(i, content):
                bad.append(f"request {i}: HTTP {status} {content[:200]!r}")
            conn.start_next_cycle()
    finally:
        writer.close()


async def _load(url: str, jobs: list, check) -> dict:
    """Send ``jobs`` ((method, path, json body or None)) over CLIENTS concurrent connections; time each one."""
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    queue: asyncio.Queue = asyncio.Queue()
    for i, job in enumerate(jobs):
        queue.put_nowait((i, job))
    lat: list[float] = []
    bad: list[str] = []
    t0 = time.perf_counter()
    done = await asyncio.wait_for(asyncio.gather(*(_connection(host, int(port), queue, lat, bad, check)
                                                   for _ in range(CLIENTS)), return_exceptions=True), DEADLINE_S)
    wall = time.perf_counter() - t0
    bad += [f"connection: {type(e).__name__}: {e}" for e in done if isinstance(e, BaseException)]
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000  # noqa: E731
    answered = len(lat) - sum(1 for b in bad if b.startswith("request"))
    return {"requests": len(jobs), "answered": answered, "errors": bad[:5], "wall_s": wall,
            "rps": len(jobs) / wall, "p50_ms": q(0.5), "p99_ms": q(0.99), "mean_ms": statistics.fmean(lat) * 1000}


def _report(name: str, res: dict, base_rps: float, base: str) -> None:
    print(f"{name}: {res['rps']:.0f} req/s, p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, answered "
          f"{res['answered']}/{res['requests']} (baseline {base} {base_rps:.0f}/s) ratio ×{res['rps'] / base_rps:.2f}",
          flush=True)
    if res["answered"] != res["requests"]:
        raise AssertionError(f"{name}: {res['requests'] - res['answered']} requests not answered: {res['errors']}")


def serve_dungeons() -> dict:
    """50 clients, 1,000 requests for 64x64 dungeons (msgpack), half cache misses, half hits."""
    why = _deps()
    if why:
        print(f"serve dungeons: skipped ({why})")
        return {}
    import engine

    url, _ = _server()
    eng = _STATE["eng"]
    base_seed = int(time.time()) % 1_000_000 * 1000  # fresh seeds per run: the server's cache starts cold
    seeds = [base_seed + s for s in range(REQUESTS // 2)] * 2
    random.Random(1).shuffle(seeds)
    jobs = [("POST", "/api/generate", {"kind": "level", "generator": "dungeon", "seed": s, "params": PARAMS,
                                       "format": "msgpack"}) for s in seeds]
    want = {}
    sample = set(random.Random(2).sample(range(REQUESTS), 20))  # byte-check a sample against the engine

    def check(i, content):
        if i in sample:
            s = seeds[i]
            want.setdefault(s, engine.serialize.dumps(eng.generate("level", "dungeon", s, PARAMS)))
            return content == want[s]
        return b"conjure.level/1" in content[:32]  # the others: a level's msgpack (schema first)

    res = asyncio.run(_load(url, jobs, check))
    n = 60
    t = time.perf_counter()
    for s in range(n):
        engine.serialize.dumps(eng.generate("level", "dungeon", 7_000_000 + s, PARAMS))
    base = n / (time.perf_counter() - t)
    _report(f"serve 64x64 dungeons, {CLIENTS} clients, {REQUESTS} requests (half cache hits)", res, base,
            "in-process generate+serialize, 1 thread")
    return res


def serve_pack_reads() -> dict:
    """50 clients, 1,000 pack reads of random assets (raw msgpack records)."""
    why = _deps()
    if why:
        print(f"serve pack reads: skipped ({why})")
        return {}
    from engine.packs import open_pack

    url, pack = _server()
    rng = random.Random(3)
    ids = [f"d/{rng.randrange(PACK_LEVELS)}" for _ in range(REQUESTS)]
    with open_pack(pack) as reader:
        raws = {i: reader.raw(reader.index_of(i)) for i in set(ids)}
        t = time.perf_counter()
        for i in ids:
            reader.raw(reader.index_of(i))
        base = len(ids) / (time.perf_counter() - t)
    jobs = [("GET", f"/api/packs/dungeons/{i}", None) for i in ids]
    res = asyncio.run(_load(url, jobs, lambda k, content: content == raws[ids[k]]))
    _report(f"serve pack reads, {CLIENTS} clients, {REQUESTS} requests", res, base, "in-process PackReader.raw")
    return res


FIGURES = [serve_dungeons, serve_pack_reads]

if __name__ == "__main__":
    print(f"# conjure serve load: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for f in FIGURES:
        f()
