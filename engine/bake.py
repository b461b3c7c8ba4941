"""``conjure bake SPEC.toml -o PACK``: generate many assets into a content pack, resumably, on local
processes or a Dask cluster.

The spec (TOML) lists jobs::

    [pack]
    compression = "zstd"        # or "none" (default)

    [[job]]
    name = "dungeons"           # asset ids are "dungeons/0", "dungeons/1", ...
    kind = "level"
    generator = "dungeon"       # default: the kind's default generator
    count = 2000
    seed = 7
    params = { width = 24, height = 24 }
    context = ["hero.msgpack"]  # content files the generator works for (paths relative to the spec)

Asset ``i`` of a job has the seed ``derive(job_seed, "asset", i)``, so any asset can be regenerated alone
(:func:`regenerate`) and the pack is byte-identical however the bake was split into chunks, processes or
machines, or interrupted and resumed.

Work goes out in chunks (about 100 ms each, or ``--chunk-size``); each worker process builds one
:class:`~engine.core.Engine` and calls ``Engine.generate_batch`` per chunk, and sends back one *frame* of
bytes it produced (never pickled objects): the chunk's records, already compressed, with their hashes.
The parent appends each frame to the journal ``PACK.journal`` and fsyncs it before counting the chunk as
done. ``--resume`` rereads the journal (dropping a torn last frame), bakes only the chunks still missing,
and assembles the pack from the journal in asset order, so a bake killed at any moment (SIGKILL included)
finishes with the same bytes as one that never stopped.

Journal layout: ``b"CJNL"``, u32 length, msgpack header (plan hash, created time, spec path), then frames:
``b"CJF1"``, u32 job, u64 start, u32 count, u64 payload length, 16-byte BLAKE2b over the preceding 28 bytes
and the payload; the payload is ``count`` x (u32 stored length, u32 raw length, u8 codec, 16-byte record
hash) followed by the stored records.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import msgpack

from .errors import ConjureError, GenerationError, InputError, PluginError
from .packs import (CODECS, HASH_SIZE, MAX_RECORD_BYTES, PackWriter, codec_of, compress, record_hash)
from .seeds import check_seed, derive
from .serialize import file_errors

MAX_SPEC_BYTES = 1024 * 1024
MAX_COUNT = 100_000_000
TARGET_CHUNK_S = 0.1
JOURNAL_MAGIC = b"CJNL"
FRAME_MAGIC = b"CJF1"
FRAME_HEAD = struct.Struct("<4sIQIQ16s")  # 44 bytes
FRAME_REC = struct.Struct("<IIB16s")  # 25 bytes
ERROR_MAGIC = b"CJER"
JOB_KEYS = {"name", "kind", "generator", "count", "seed", "params", "context", "tries"}
PACK_KEYS = {"compression", "chunk_size"}
ERRORS = {"InputError": InputError, "GenerationError": GenerationError, "PluginError": PluginError}


# --------------------------------------------------------------------------------------------- the spec
@dataclass
class Job:
    name: str
    kind: str
    generator: str
    count: int
    seed: int | str
    params: dict
    context: list[str] = field(default_factory=list)  # paths as written in the spec
    context_paths: list[str] = field(default_factory=list)  # resolved absolute paths
    tries: int | None = None
    version: str = ""
    context_hashes: list[str] = field(default_factory=list)

    def seed_of(self, index: int) -> int:
        return derive(self.seed, "asset", index)

    def asset_id(self, index: int) -> str:
        return f"{self.name}/{index}"

    def manifest(self, first: int) -> dict:
        return {"name": self.name, "kind": self.kind, "generator": self.generator,
                "generator_version": self.version, "seed": self.seed, "params": self.params,
                "count": self.count, "first": first, "tries": self.tries,
                "context": [{"path": p, "blake2b": h} for p, h in zip(self.context, self.context_hashes)],
                "asset_seed": "derive(seed, 'asset', index)"}


@dataclass
class Spec:
    jobs: list[Job]
    compression: str = "none"
    chunk_size: int | None = None
    source: str = "<spec>"


def _spec_error(source: str, msg: str) -> InputError:
    return InputError(f"{source}: {msg}")


def parse_spec(doc: dict, source: str = "<spec>", base: Path | None = None) -> Spec:
    """Check a decoded spec (a dict as TOML gives it) and return a :class:`Spec`."""
    if not isinstance(doc, dict):
        raise _spec_error(source, "expected a table at the top level")
    unknown = set(doc) - {"pack", "job", "jobs"}
    if unknown:
        raise _spec_error(source, f"unknown top-level key(s) {', '.join(sorted(unknown))} "
                                  "(known: pack, job)")
    if "job" in doc and "jobs" in doc:
        raise _spec_error(source, "use either [[job]] or [[jobs]], not both")
    jobs_doc = doc.get("job", doc.get("jobs"))
    if not isinstance(jobs_doc, list) or not jobs_doc:
        raise _spec_error(source, "no jobs: add at least one [[job]] table")
    pack = doc.get("pack", {})
    if not isinstance(pack, dict):
        raise _spec_error(source, "[pack] must be a table")
    bad = set(pack) - PACK_KEYS
    if bad:
        raise _spec_error(source, f"[pack]: unknown key(s) {', '.join(sorted(bad))} "
                                  f"(known: {', '.join(sorted(PACK_KEYS))})")
    compression = pack.get("compression", "none")
    if compression not in CODECS:
        raise _spec_error(source, f"[pack].compression: {compression!r} is not one of {', '.join(CODECS)}")
    chunk = pack.get("chunk_size")
    if chunk is not None and (not isinstance(chunk, int) or isinstance(chunk, bool) or not 1 <= chunk <= 100000):
        raise _spec_error(source, "[pack].chunk_size: expected an int in 1..100000")
    jobs: list[Job] = []
    names: set[str] = set()
    for n, j in enumerate(jobs_doc):
        where = f"job[{n}]"
        if not isinstance(j, dict):
            raise _spec_error(source, f"{where}: expected a table")
        bad = set(j) - JOB_KEYS
        if bad:
            raise _spec_error(source, f"{where}: unknown key(s) {', '.join(sorted(bad))} "
                                      f"(known: {', '.join(sorted(JOB_KEYS))})")
        kind = j.get("kind")
        if not isinstance(kind, str):
            raise _spec_error(source, f"{where}.kind: missing (level, character or story)")
        gen = j.get("generator")
        if gen is not None and not isinstance(gen, str):
            raise _spec_error(source, f"{where}.generator: expected a string")
        count = j.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
            raise _spec_error(source, f"{where}.count: expected an int in 1..{MAX_COUNT}")
        seed = j.get("seed", 0)
        try:
            check_seed(seed, f"{where}.seed")
        except InputError as e:
            raise _spec_error(source, str(e)) from None
        params = j.get("params", {})
        if not isinstance(params, dict):
            raise _spec_error(source, f"{where}.params: expected a table")
        ctx = j.get("context", [])
        if isinstance(ctx, str):
            ctx = [ctx]
        if not isinstance(ctx, list) or not all(isinstance(c, str) for c in ctx):
            raise _spec_error(source, f"{where}.context: expected a list of file paths")
        tries = j.get("tries")
        if tries is not None and (not isinstance(tries, int) or isinstance(tries, bool) or not 1 <= tries <= 1000):
            raise _spec_error(source, f"{where}.tries: expected an int in 1..1000")
        name = j.get("name") or (gen or kind)
        if not isinstance(name, str) or not name or "/" in name:
            raise _spec_error(source, f"{where}.name: expected a non-empty string without '/'")
        if name in names:
            raise _spec_error(source, f"{where}.name: {name!r} is used by another job (give each job a "
                                      "unique name)")
        names.add(name)
        paths = [str(((base or Path.cwd()) / c).resolve()) for c in ctx]
        jobs.append(Job(name, kind, gen or "", count, seed, dict(params), list(ctx), paths, tries))
    return Spec(jobs, compression, chunk, source)


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and check a TOML bake spec."""
    import tomllib

    from .serialize import read_bytes

    p = Path(path)
    data = read_bytes(p, MAX_SPEC_BYTES)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{p}: malformed TOML ({e})") from None
    return parse_spec(doc, str(p), p.resolve().parent)


def resolve_spec(engine: Any, spec: Spec) -> Spec:
    """Check every job against the engine: known generator, valid params (completed with defaults),
    readable context files. Fills in generator ids, versions and context hashes."""
    from .serialize import read_bytes

    for n, job in enumerate(spec.jobs):
        try:
            req = engine.request(job.kind, job.generator or None, job.seed, job.params)
        except InputError as e:
            raise InputError(f"{spec.source}: job {job.name!r}: {e}") from None
        gen = engine.generator(req.generator)
        job.generator = gen.id
        job.version = str(gen.version)
        job.params = dict(req.params)
        job.context_hashes = [hashlib.blake2b(read_bytes(p), digest_size=16).hexdigest()
                              for p in job.context_paths]
        if job.context_paths:
            engine.load_context(job.context_paths)  # fail early on unreadable context
    return spec


def plan_hash(spec: Spec) -> str:
    """What the pack's bytes depend on: resume refuses a journal made for a different plan."""
    from .packs import FORMAT_VERSION, conjure_version

    doc = [FORMAT_VERSION, conjure_version(), spec.compression,
           [j.manifest(0) for j in spec.jobs]]
    return hashlib.blake2b(msgpack.packb(doc, use_bin_type=True), digest_size=16).hexdigest()


# --------------------------------------------------------------------------------------------- frames
def encode_frame(job: int, start: int, records: list[tuple[bytes, int, int, bytes]]) -> bytes:
    """records: (stored bytes, raw length, codec, hash)."""
    table = b"".join(FRAME_REC.pack(len(s), r, c, h) for s, r, c, h in records)
    payload = table + b"".join(s for s, _, _, _ in records)
    head = FRAME_HEAD.pack(FRAME_MAGIC, job, start, len(records), len(payload), b"\0" * 16)[:28]
    digest = hashlib.blake2b(head, digest_size=16)
    digest.update(payload)
    return head + digest.digest() + payload


@dataclass
class Frame:
    job: int
    start: int
    count: int
    offset: int  # where the frame starts in its buffer/file
    size: int  # whole frame
    records: list[tuple[int, int, int, int, bytes]]  # (offset of stored bytes, stored len, raw len, codec, hash)


def decode_frame(buf: bytes | memoryview, pos: int = 0, limit: int | None = None) -> Frame | None:
    """Parse one frame at ``pos``; None when it is incomplete or corrupt (a torn write)."""
    end = len(buf) if limit is None else limit
    if end - pos < FRAME_HEAD.size:
        return None
    magic, job, start, count, plen, digest = FRAME_HEAD.unpack_from(buf, pos)
    if magic != FRAME_MAGIC or plen > end - pos - FRAME_HEAD.size or count * FRAME_REC.size > plen:
        return None
    body = pos + FRAME_HEAD.size
    h = hashlib.blake2b(bytes(buf[pos:pos + 28]), digest_size=16)
    h.update(buf[body:body + plen])
    if h.digest() != digest:
        return None
    recs = []
    data = body + count * FRAME_REC.size
    for k in range(count):
        slen, rlen, codec, rh = FRAME_REC.unpack_from(buf, body + k * FRAME_REC.size)
        recs.append((data, slen, rlen, codec, rh))
        data += slen
    if data != body + plen:
        return None
    return Frame(job, start, count, pos, FRAME_HEAD.size + plen, recs)


def _error_result(e: BaseException) -> bytes:
    kind = type(e).__name__ if type(e).__name__ in ERRORS else "GenerationError"
    msg = str(e) if isinstance(e, ConjureError) else f"{type(e).__name__}: {e}"
    return ERROR_MAGIC + msgpack.packb({"type": kind, "message": msg}, use_bin_type=True)


def _raise_if_error(result: Any) -> bytes:
    if not isinstance(result, (bytes, bytearray)):
        raise PluginError(f"bake worker returned {type(result).__name__}, expected bytes")
    if result[:4] == ERROR_MAGIC:
        try:
            info = msgpack.unpackb(result[4:], raw=False)
            cls, message = ERRORS.get(info["type"], GenerationError), str(info["message"])
        except Exception:
            cls, message = GenerationError, "bake worker failed (unreadable error report)"
        raise cls(message)
    return bytes(result)


# --------------------------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}
_WORKER_LOCK = threading.Lock()


def init_worker() -> None:
    """Process-pool initializer: one torch thread per process (set before torch is ever imported, and
    applied at once if torch is already loaded); never imports torch itself."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    _limit_torch()


def _limit_torch() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and not _WORKER.get("torch_limited"):
        try:
            torch.set_num_threads(1)
        except Exception:  # pragma: no cover
            pass
        _WORKER["torch_limited"] = True


def _worker_engine():
    with _WORKER_LOCK:
        eng = _WORKER.get("engine")
        if eng is None:
            from .core import Engine

            eng = _WORKER["engine"] = Engine()
            _WORKER["contexts"] = {}
        return eng


def _context(eng: Any, paths: list[str]) -> dict | None:
    if not paths:
        return None
    key = tuple(paths)
    with _WORKER_LOCK:
        ctx = _WORKER["contexts"].get(key)
    if ctx is None:
        ctx = eng.load_context(paths)
        with _WORKER_LOCK:
            _WORKER["contexts"][key] = ctx
    return ctx


def make_records(eng: Any, task: dict) -> list[tuple[bytes, int, int, bytes]]:
    gen = eng.generator(task["generator"], task["kind"])
    if str(gen.version) != task["version"]:
        raise InputError(f"generator {gen.id!r} is version {gen.version} on this worker, but the bake "
                         f"was planned with version {task['version']} (install the same plugins everywhere)")
    seeds = [derive(task["seed"], "asset", i) for i in range(task["start"], task["start"] + task["count"])]
    ctx = _context(eng, task["context"])
    contents = eng.generate_batch(task["kind"], gen.id, seeds, task["params"], ctx, tries=task["tries"])
    codec = task["codec"]
    out = []
    for c in contents:
        raw = msgpack.packb(c.to_dict(binary=True), use_bin_type=True)
        if len(raw) > MAX_RECORD_BYTES:
            raise GenerationError(f"an asset of job {task['job']} is over the {MAX_RECORD_BYTES}-byte limit")
        out.append((compress(raw, codec), len(raw), codec, record_hash(raw)))
    return out


def bake_chunk(task: dict) -> bytes:
    """Worker entry point: plain dict in, frame bytes out (or an error report, also bytes)."""
    try:
        _limit_torch()
        eng = _worker_engine()
        records = make_records(eng, task)
        _limit_torch()
        return encode_frame(task["job"], task["start"], records)
    except Exception as e:  # reported as bytes, re-raised by the parent as the same ConjureError kind
        return _error_result(e)


# --------------------------------------------------------------------------------------------- journal
class Journal:
    """Append-only file of finished chunks (frames), each written and fsynced before it counts."""

    def __init__(self, path: Path, plan: str, source: str, resume: bool, fresh: bool):
        self.path = path
        self.frames: list[Frame] = []
        self.dropped = 0
        if path.exists() and not resume and not fresh:
            raise InputError(f"{path}: an unfinished bake's journal is here; pass --resume to continue it "
                             "or --fresh to start over")
        if path.exists() and resume:
            self._load(plan)
        else:
            header = msgpack.packb({"plan": plan, "spec": source, "created": time.time(),
                                    "created_text": time.strftime("%Y-%m-%d %H:%M:%S %z")}, use_bin_type=True)
            tmp = path.with_name(path.name + ".new")
            with open(tmp, "wb") as f:
                f.write(JOURNAL_MAGIC + struct.pack("<I", len(header)) + header)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        self._f = open(path, "ab")
        self._fd = os.open(path, os.O_RDONLY)
        self._lock = threading.Lock()

    def _load(self, plan: str) -> None:
        size = self.path.stat().st_size
        if size < 8:
            raise InputError(f"{self.path}: not a bake journal (delete it or pass --fresh)")
        with open(self.path, "rb") as f:
            # memory-mapped: a million-asset journal is scanned frame by frame, never read into memory whole
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            pos = self._scan(data, plan)
        finally:
            data.close()
        if pos < size:  # a torn or corrupt tail: drop it, those chunks are baked again
            with open(self.path, "r+b") as f:
                f.truncate(pos)
                f.flush()
                os.fsync(f.fileno())
        self.dropped = size - pos

    def _scan(self, data, plan: str) -> int:
        """Check the header, collect the intact frames; return where the intact part ends."""
        if data[:4] != JOURNAL_MAGIC or len(data) < 8:
            raise InputError(f"{self.path}: not a bake journal (delete it or pass --fresh)")
        (hlen,) = struct.unpack_from("<I", data, 4)
        if hlen > 1 << 20 or 8 + hlen > len(data):
            raise InputError(f"{self.path}: corrupt journal header (pass --fresh to start over)")
        try:
            header = msgpack.unpackb(data[8:8 + hlen], raw=False)
        except Exception:
            raise InputError(f"{self.path}: corrupt journal header (pass --fresh to start over)") from None
        if not isinstance(header, dict) or header.get("plan") != plan:
            raise InputError(f"{self.path}: this journal belongs to a different spec, parameters or "
                             "Conjure version; pass --fresh to start over")
        pos = 8 + hlen
        while pos < len(data):
            fr = decode_frame(data, pos)
            if fr is None:
                break
            self.frames.append(fr)
            pos += fr.size
        return pos

    def append(self, frame_bytes: bytes) -> Frame:
        with self._lock:
            pos = self._f.tell()
            self._f.write(frame_bytes)
            self._f.flush()
            os.fsync(self._f.fileno())
        fr = decode_frame(frame_bytes)
        assert fr is not None
        fr.offset = pos
        fr.records = [(pos + o, s, r, c, h) for (o, s, r, c, h) in fr.records]
        self.frames.append(fr)
        return fr

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise InputError(f"{self.path}: truncated while reading a record")
        return data

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            os.close(self._fd)


# --------------------------------------------------------------------------------------------- progress
class Progress:
    """A rich bar on a terminal; plain lines (every few seconds) otherwise."""

    def __init__(self, total: int, done: int = 0, enabled: bool = True, stream=None, every: float = 2.0):
        self.total, self.done = total, done
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.every = every
        self.t0 = time.perf_counter()
        self.start_done = done
        self._last = 0.0
        self._bar = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = RichProgress(TextColumn("baking"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]} assets/s"), TimeElapsedColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(),
                                     console=Console(file=self.stream), transient=False)
            self._task = self._bar.add_task("bake", total=total, completed=done, rate="-")
            self._bar.start()

    def rate(self) -> float:
        dt = time.perf_counter() - self.t0
        return (self.done - self.start_done) / dt if dt > 0 else 0.0

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        r = self.rate()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=f"{r:,.0f}")
            return
        now = time.perf_counter()
        if now - self._last >= self.every or self.done >= self.total:
            self._last = now
            left = self.total - self.done
            eta = f"{left / r:.0f}s" if r > 0 else "?"
            print(f"baked {self.done}/{self.total} assets ({100 * self.done / max(1, self.total):.0f}%, "
                  f"{r:,.1f} assets/s, ETA {eta})", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# --------------------------------------------------------------------------------------------- executors
class _SerialExecutor:
    """Runs chunks in this process (``--workers 1``)."""

    def __init__(self):
        init_worker()

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f: Future = Future()
        try:
            f.set_result(fn(*args))
        except BaseException as e:  # pragma: no cover - bake_chunk reports errors as bytes
            f.set_exception(e)
        return f

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _process_executor(workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["engine.bake"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker)


class _DaskExecutor:
    """``Client(scheduler).get_executor()``, or a LocalCluster when no scheduler is given."""

    def __init__(self, workers: int, scheduler: str | None, client: Any = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise InputError("--executor dask needs the 'cluster' extra: pip install 'conjure[cluster]'") from None
        self.cluster = None
        self.own_client = client is None
        if client is not None:
            self.client = client
        elif scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except OSError as e:
                raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        else:
            self.cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        self.executor = self.client.get_executor(pure=False, retries=3)

    def submit(self, fn, *args):
        return self.executor.submit(fn, *args)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        try:
            self.executor.shutdown(wait=wait)
        finally:
            if self.own_client:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()


# --------------------------------------------------------------------------------------------- the bake
def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal")


def _missing(job: Job, frames: Iterable[Frame], n: int) -> list[tuple[int, int]]:
    done = bytearray(job.count)
    for fr in frames:
        if fr.job == n:
            done[fr.start:fr.start + fr.count] = b"\1" * fr.count
    gaps, i = [], 0
    while i < job.count:
        if done[i]:
            i += 1
            continue
        j = i
        while j < job.count and not done[j]:
            j += 1
        gaps.append((i, j))
        i = j
    return gaps


def _estimate_chunk(engine: Any, job: Job) -> int:
    """Assets per chunk for ~100 ms of work, from timing two assets here."""
    ctx = engine.load_context(job.context_paths) if job.context_paths else None
    seeds = [job.seed_of(i) for i in range(min(4, job.count))]
    engine.generate_batch(job.kind, job.generator, seeds[:1], job.params, ctx, tries=job.tries)  # warm up
    t = time.perf_counter()
    engine.generate_batch(job.kind, job.generator, seeds[1:] or seeds, job.params, ctx, tries=job.tries)
    per = (time.perf_counter() - t) / len(seeds[1:] or seeds)
    return max(1, min(1000, int(TARGET_CHUNK_S / max(per, 1e-5))))


def bake(spec: Spec | str | os.PathLike, out: str | os.PathLike, *, workers: int = 1, executor: str = "process",
         scheduler: str | None = None, client: Any = None, resume: bool = False, fresh: bool = False,
         chunk_size: int | None = None, compression: str | None = None, progress: bool | None = None,
         engine: Any = None, stop_after: int | None = None,
         on_chunk: Callable[[int, int], None] | None = None) -> dict:
    """Bake ``spec`` into the pack ``out``; returns a summary dict.

    :param workers: local processes (``executor="process"``; 1 bakes in this process) or LocalCluster workers.
    :param executor: ``"process"`` or ``"dask"`` (``scheduler`` address, or a ready ``client``, else a
        LocalCluster).
    :param resume: continue from ``out``'s journal; ``fresh`` discards it.
    :param stop_after: stop after this many new chunks, leaving the journal (tests, manual splitting).
    :param on_chunk: called as ``on_chunk(done_assets, total_assets)`` after each journaled chunk.
    """
    from .core import Engine

    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    if compression is not None:
        codec_of(compression)
        spec.compression = compression
    codec = codec_of(spec.compression)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if executor not in ("process", "dask"):
        raise InputError(f"unknown executor {executor!r} (known: process, dask)")
    out = Path(out)
    if not out.name or out.name in (".", "..") or out.is_dir():
        raise InputError(f"-o {out}: expected a pack file name (e.g. assets.cpk), not a folder")
    eng = engine or Engine()
    resolve_spec(eng, spec)
    plan = plan_hash(spec)
    jpath = journal_path(out)
    if resume and not jpath.exists() and out.is_file() and _pack_matches(spec, out):
        return {"path": str(out), "journal": None, "count": sum(j.count for j in spec.jobs),
                "done": sum(j.count for j in spec.jobs), "new_chunks": 0, "bytes": out.stat().st_size,
                "seconds": 0.0, "already_complete": True}
    with file_errors(out, "write"):
        out.parent.mkdir(parents=True, exist_ok=True)
        for stale in out.parent.glob(f".{out.name}.*.tmp"):  # a pack assembly killed before its rename
            try:
                stale.unlink()
            except OSError:
                pass
        journal = Journal(jpath, plan, spec.source, resume, fresh)
    t0 = time.perf_counter()
    total = sum(j.count for j in spec.jobs)
    try:
        tasks = []
        size = chunk_size or spec.chunk_size
        for n, job in enumerate(spec.jobs):
            gaps = _missing(job, journal.frames, n)
            if not gaps:
                continue
            per = size or _estimate_chunk(eng, job)
            for lo, hi in gaps:
                for s in range(lo, hi, per):
                    tasks.append({"job": n, "kind": job.kind, "generator": job.generator, "version": job.version,
                                  "seed": job.seed, "params": job.params, "context": job.context_paths,
                                  "tries": job.tries, "codec": codec, "start": s, "count": min(per, hi - s)})
        done = sum(fr.count for fr in journal.frames)
        bar = Progress(total, done, enabled=progress if progress is not None else True)
        new_chunks = 0
        stopped = False
        try:
            if tasks:
                new_chunks, stopped = _run_tasks(tasks, journal, bar, workers, executor, scheduler, client,
                                                 stop_after, on_chunk, total)
        finally:
            bar.close()
        if stopped:
            return {"path": None, "journal": str(jpath), "count": total, "done": bar.done,
                    "new_chunks": new_chunks, "seconds": time.perf_counter() - t0}
        _assemble(spec, journal, out)
    finally:
        journal.close()
    os.unlink(jpath)
    return {"path": str(out), "journal": None, "count": total, "done": total, "new_chunks": new_chunks,
            "bytes": out.stat().st_size, "seconds": time.perf_counter() - t0}


def _run_tasks(tasks, journal, bar, workers, executor, scheduler, client, stop_after, on_chunk, total):
    from concurrent.futures import FIRST_COMPLETED, wait

    if executor == "dask":
        ex: Any = _DaskExecutor(workers, scheduler, client)
    elif workers == 1:
        ex = _SerialExecutor()
    else:
        ex = _process_executor(workers)
    window = max(2, (workers if executor == "process" else max(workers, 2)) * 4)
    new_chunks = 0
    pending: set = set()
    it = iter(tasks)
    stopped = False
    try:
        while True:
            while len(pending) < window and not stopped:
                t = next(it, None)
                if t is None:
                    break
                pending.add(ex.submit(bake_chunk, t))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                frame = _raise_if_error(f.result())
                fr = journal.append(frame)
                new_chunks += 1
                bar.advance(fr.count)
                if on_chunk is not None:
                    on_chunk(bar.done, total)
                if stop_after is not None and new_chunks >= stop_after:
                    stopped = True
            if stopped:
                # finish what is in flight (it is journaled too), start nothing new
                for f in pending:
                    try:
                        frame = _raise_if_error(f.result())
                    except ConjureError:
                        continue
                    fr = journal.append(frame)
                    new_chunks += 1
                    bar.advance(fr.count)
                pending = set()
                break
    except BaseException:
        for f in pending:
            f.cancel()
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
    return new_chunks, stopped


def _jobs_manifest(spec: Spec) -> list:
    out, first = [], 0
    for job in spec.jobs:
        out.append(job.manifest(first))
        first += job.count
    return out


def _pack_matches(spec: Spec, out: Path) -> bool:
    """True when ``out`` is a finished pack of exactly this spec (``--resume`` after a completed bake)."""
    from .packs import FORMAT_VERSION, conjure_version, open_pack

    try:
        with open_pack(out) as r:
            m = r.manifest
            return (m.get("format_version") == FORMAT_VERSION and m.get("conjure_version") == conjure_version()
                    and r.compression == spec.compression
                    and msgpack.packb(r.jobs, use_bin_type=True) == msgpack.packb(_jobs_manifest(spec),
                                                                                   use_bin_type=True))
    except ConjureError:
        return False


def _assemble(spec: Spec, journal: Journal, out: Path) -> None:
    """Write the pack from the journal, in job and index order."""
    where: list[list[tuple[int, int, int, int, bytes] | None]] = [[None] * j.count for j in spec.jobs]
    for fr in journal.frames:
        if fr.job >= len(spec.jobs) or fr.start + fr.count > spec.jobs[fr.job].count:
            raise InputError(f"{journal.path}: a chunk does not fit the spec (pass --fresh to start over)")
        slots = where[fr.job]
        for k, rec in enumerate(fr.records):
            if slots[fr.start + k] is None:
                slots[fr.start + k] = rec
    w = PackWriter(out, _jobs_manifest(spec), spec.compression)
    try:
        for n, job in enumerate(spec.jobs):
            for i, rec in enumerate(where[n]):
                if rec is None:
                    raise InputError(f"{journal.path}: asset {job.asset_id(i)} is missing from the journal")
                off, slen, rlen, codec, digest = rec
                w.add(job.asset_id(i), n, i, job.seed_of(i), journal.read(off, slen), rlen, digest, codec)
        w.close()
    except BaseException:
        w.abort()
        raise


def regenerate(spec: Spec | str | os.PathLike, asset_id: str, engine: Any = None):
    """Generate one asset of a spec alone (same bytes as its record in the pack)."""
    from .core import Engine

    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    eng = engine or Engine()
    resolve_spec(eng, spec)
    name, _, idx = asset_id.rpartition("/")
    for job in spec.jobs:
        if job.name == name and idx.isdigit() and int(idx) < job.count:
            ctx = eng.load_context(job.context_paths) if job.context_paths else None
            return eng.generate(job.kind, job.generator, job.seed_of(int(idx)), job.params, ctx, tries=job.tries)
    raise InputError(f"no asset {asset_id!r} in {spec.source}")


# --------------------------------------------------------------------------------------------- CLI
def add_arguments(p) -> None:
    p.add_argument("spec", help="bake spec (TOML): [[job]] tables with kind, generator, count, seed, params")
    p.add_argument("-o", "--output", required=True, help="pack to write (.cpk)")
    p.add_argument("-w", "--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--executor", choices=("process", "dask"), default="process",
                   help="process: local processes; dask: a Dask cluster (extra 'cluster')")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://HOST:8786 (default: a LocalCluster)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted bake from its journal")
    p.add_argument("--fresh", action="store_true", help="discard an existing journal and start over")
    p.add_argument("--chunk-size", type=int, default=None, help="assets per chunk (default: ~100 ms of work)")
    p.add_argument("--compression", choices=tuple(CODECS), default=None, help="override [pack].compression")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    if args.chunk_size is not None and args.chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    if args.scheduler and args.executor != "dask":
        raise InputError("--scheduler needs --executor dask")
    res = bake(args.spec, args.output, workers=args.workers, executor=args.executor, scheduler=args.scheduler,
               resume=args.resume, fresh=args.fresh, chunk_size=args.chunk_size, compression=args.compression,
               progress=not args.quiet)
    if res.get("already_complete"):
        print(f"{res['path']}: already complete for this spec ({res['count']} assets); nothing to resume")
        return 0
    rate = res["count"] / res["seconds"] if res["seconds"] > 0 else 0.0
    print(f"wrote {res['path']}: {res['count']} assets, {res['bytes']:,} bytes "
          f"({res['new_chunks']} chunks baked now, {res['seconds']:.1f}s, {rate:,.0f} assets/s)")
    return 0


# --------------------------------------------------------------------------------------------- info/extract
def info_lines(path: str | os.PathLike) -> list[str]:
    from .packs import open_pack

    with open_pack(path) as r:
        s = r.summary()
    lines = [f"{path}: Conjure pack v{s['format_version']} (written by Conjure {s['conjure_version']})",
             f"  assets: {s['count']}  size: {s['bytes']:,} bytes  raw records: {s['raw_bytes']:,} bytes  "
             f"compression: {s['compression']}"]
    for j in s["jobs"]:
        params = " ".join(f"{k}={v}" for k, v in (j.get("params") or {}).items())
        lines.append(f"  job {j.get('name')}: {j.get('count')} x {j.get('kind')} by {j.get('generator')} "
                     f"v{j.get('generator_version')}  seed {j.get('seed')!r}  {params}")
    return lines


def add_extract_arguments(p) -> None:
    p.add_argument("pack", help="a .cpk content pack")
    p.add_argument("-o", "--out", required=True, help="folder to write into")
    p.add_argument("--format", default="msgpack", help="exporter id (tmj, png, json, msgpack, ...)")
    p.add_argument("--ids", nargs="+", default=None, metavar="ID", help="asset ids (default: all)")
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE", help="exporter option")


def extract(pack: str | os.PathLike, out: str | os.PathLike, fmt: str = "msgpack", ids: list[str] | None = None,
            engine: Any = None, options: dict | None = None) -> list[Path]:
    """Write assets of a pack through the engine's exporters: ``OUT/<job>/<index><ext>``."""
    from .core import Engine
    from .packs import open_pack

    eng = engine or Engine()
    exp = eng.exporter(fmt)
    ext = exp.extensions[0] if exp.extensions else f".{fmt}"
    written: list[Path] = []
    with open_pack(pack) as r:
        todo = [r.index_of(i) for i in ids] if ids else range(len(r))
        for i in todo:
            aid = r.records[i][0]
            parts = [p for p in aid.split("/") if p not in ("", ".", "..")]
            target = Path(out).joinpath(*parts[:-1], (parts[-1] if parts else str(i)) + ext)
            written += eng.export(r[i], target, fmt, **(options or {}))
    return written


def run_extract(args) -> int:
    from .params import parse_assignments

    opts = {}
    for k, v in parse_assignments(args.option).items():
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                pass
        opts[k] = v
    paths = extract(args.pack, args.out, args.format, args.ids, options=opts)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0
