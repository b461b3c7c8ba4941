"""The bake itself: plan the chunks a pack still needs, run them on an executor, journal each frame, and
assemble the pack in asset order (:func:`bake`); :func:`regenerate` makes one asset alone."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import msgpack

from ..errors import ConjureError, GenerationError, InputError
from ..packs import PackWriter, codec_of
from ..progress import Progress
from ..serialize import file_errors
from .journal import Frame, Journal, decode_frame, journal_path
from .spec import Job, Spec, load_spec, plan_hash, resolve_spec
from .workers import _DaskExecutor, _process_executor, _raise_if_error, _SerialExecutor, bake_chunk

TARGET_CHUNK_S = 0.1


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
         on_chunk: Callable[[int, int], None] | None = None, timeout: float | None = None,
         check: bool = True) -> dict:
    """Bake ``spec`` into the pack ``out``; returns a summary dict.

    :param workers: local processes (``executor="process"``; 1 bakes in this process) or LocalCluster workers.
    :param executor: ``"process"`` or ``"dask"`` (``scheduler`` address, or a ready ``client``, else a
        LocalCluster).
    :param resume: continue from ``out``'s journal; ``fresh`` discards it.
    :param stop_after: stop after this many new chunks, leaving the journal (tests, manual splitting).
    :param on_chunk: called as ``on_chunk(done_assets, total_assets)`` after each journaled chunk.
    :param timeout: seconds per asset for jobs that set no ``timeout`` of their own (default: the engine's).
    :param check: spot-check determinism: a few assets baked now are made again in a worker (with the global
        random states scrambled) and must come out byte-identical, else the bake fails naming the generator.
    """
    from ..core import Engine

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
    _refuse_overwriting_inputs(spec, out)
    eng = engine or Engine()
    resolve_spec(eng, spec)
    if timeout is not None:
        from ..core import check_timeout

        timeout = check_timeout(timeout, "--timeout")
        for job in spec.jobs:
            job.timeout = job.timeout if job.timeout is not None else timeout
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
                                  "tries": job.tries, "codec": codec, "start": s, "count": min(per, hi - s),
                                  "timeout": job.timeout})
        done = sum(fr.count for fr in journal.frames)
        bar = Progress(total, "baked", done=done, unit="assets", every=2.0,
                       enabled=progress if progress is not None else True).start()
        new_chunks = 0
        stopped = False
        try:
            if tasks:
                new_chunks, stopped = _run_tasks(tasks, journal, bar, workers, executor, scheduler, client,
                                                 stop_after, on_chunk, total,
                                                 _check_tasks(tasks) if check else [], spec)
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


def _refuse_overwriting_inputs(spec: Spec, out: Path) -> None:
    """``-o`` must not name the spec, a context file or the journal: the bake would overwrite its input."""
    try:
        target = out.resolve()
    except OSError:
        return
    inputs = [("the spec", spec.source)] + [("a context file", p) for j in spec.jobs for p in j.context_paths]
    for what, p in inputs:
        try:
            if p and Path(p).exists() and Path(p).resolve() == target:
                raise InputError(f"-o {out} is {what} of this bake; it would be overwritten (name a .cpk file)")
        except OSError:
            continue


#: Assets per job made again at the end of a bake to spot-check determinism (``--no-check`` skips).
CHECK_PER_JOB = 2


def _check_tasks(tasks: list[dict]) -> list[dict]:
    """A few single-asset tasks to make again: per job, the last asset of its first chunk planned now and
    the first asset of its last (made by whichever workers took them, long after the first ones)."""
    by_job: dict[int, list[dict]] = {}
    for t in tasks:
        by_job.setdefault(t["job"], []).append(t)
    out = []
    for ts in by_job.values():
        picks = sorted({ts[0]["start"] + ts[0]["count"] - 1, ts[-1]["start"]})[:CHECK_PER_JOB]
        out += [dict(ts[0], start=i, count=1, check=True) for i in picks]
    return out


def _spot_check(ex, checks: list[dict], journal: Journal, spec: Spec) -> None:
    made = {}
    for fr in journal.frames:
        for k, rec in enumerate(fr.records):
            made.setdefault((fr.job, fr.start + k), rec[4])
    futures = [(t, ex.submit(bake_chunk, t)) for t in checks]
    for t, f in futures:
        frame = decode_frame(_raise_if_error(_result(f, journal, spec)))
        again = frame.records[0][4] if frame is not None and frame.records else None
        if again is not None and again != made.get((t["job"], t["start"])):
            job = spec.jobs[t["job"]]
            raise GenerationError(f"generator {job.generator!r} is not deterministic: asset "
                                  f"{job.asset_id(t['start'])} came out different when made again (it probably "
                                  "uses global random state, random or numpy.random, instead of request.rng()); "
                                  "the pack was not written (--no-check skips this check)")


def _result(f, journal: Journal, spec: Spec):
    """``f.result()``; a worker that died (kill -9, out of memory, a plugin's os._exit) is one line."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return f.result()
    except BrokenProcessPool:
        done = sum(fr.count for fr in journal.frames)
        raise GenerationError(f"a bake worker died (killed, out of memory, or a plugin ended the process); "
                              f"{done} assets are journaled in {journal.path}: run the same command with "
                              "--resume to continue") from None


def _run_tasks(tasks, journal, bar, workers, executor, scheduler, client, stop_after, on_chunk, total,
               checks=(), spec=None):
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
                frame = _raise_if_error(_result(f, journal, spec))
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
                        frame = _raise_if_error(_result(f, journal, spec))
                    except ConjureError:
                        continue
                    fr = journal.append(frame)
                    new_chunks += 1
                    bar.advance(fr.count)
                pending = set()
                break
        if checks and not stopped:
            _spot_check(ex, list(checks), journal, spec)
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
    from ..packs import FORMAT_VERSION, open_pack
    from ..resources import conjure_version

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
    from ..core import Engine

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
