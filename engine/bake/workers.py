"""Where chunks are baked: the worker entry point :func:`bake_chunk` (plain dict in, frame bytes out, never
pickled objects) and the executors that run it (this process, local processes, a Dask cluster)."""
from __future__ import annotations

import os
import sys
import threading
from typing import Any

import msgpack

from ..errors import ConjureError, GenerationError, InputError, PluginError
from ..packs import MAX_RECORD_BYTES, compress, record_hash
from ..seeds import derive
from .journal import encode_frame

ERROR_MAGIC = b"CJER"
ERRORS = {"InputError": InputError, "GenerationError": GenerationError, "PluginError": PluginError}


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


_WORKER: dict[str, Any] = {}
_WORKER_LOCK = threading.Lock()


def init_worker(parent_pid: int | None = None) -> None:
    """Process-pool initializer: one torch thread per process (set before torch is ever imported, and
    applied at once if torch is already loaded); never imports torch itself. With ``parent_pid`` (the bake's
    process), a watchdog thread ends this worker when that process is gone (``kill -9`` of a bake must not
    leave workers behind)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    _limit_torch()
    if parent_pid is not None and parent_pid != os.getpid():
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="conjure-orphan-watch",
                         daemon=True).start()


#: How often a bake worker checks that the bake that started it is still alive (seconds).
ORPHAN_POLL_S = 0.5


def _watch_parent(pid: int) -> None:
    import time

    while True:
        time.sleep(ORPHAN_POLL_S)
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            os._exit(1)  # the bake is gone: nobody will read our results
        except PermissionError:  # pragma: no cover - exists, owned by someone else (pid reused)
            os._exit(1)


def _scramble_global_random() -> None:
    """Before a spot-check asset: put the global random states somewhere new, so a generator that uses
    them instead of ``request.rng()`` makes different bytes and is caught."""
    import random

    import numpy as np

    random.seed(os.urandom(16))
    np.random.seed(int.from_bytes(os.urandom(4), "little"))


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
            from ..core import Engine

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
    if task.get("check"):
        _scramble_global_random()
    contents = eng.generate_batch(task["kind"], gen.id, seeds, task["params"], ctx, tries=task["tries"],
                                  timeout=task.get("timeout"))
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
        ctx.set_forkserver_preload(["engine.bake.workers"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker,
                               initargs=(os.getpid(),))


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
