"""The bake spec: the TOML jobs file, checked (:func:`parse_spec`, :func:`load_spec`), resolved against an
engine (:func:`resolve_spec`), and the plan hash a resume must match (:func:`plan_hash`)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from ..errors import InputError
from ..packs import CODECS
from ..seeds import check_seed, derive

MAX_SPEC_BYTES = 1024 * 1024
MAX_COUNT = 100_000_000
JOB_KEYS = {"name", "kind", "generator", "count", "seed", "params", "context", "tries", "timeout"}
PACK_KEYS = {"compression", "chunk_size"}


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
    timeout: float | None = None  # seconds per asset (not in the manifest: it never changes the bytes)

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
        timeout = j.get("timeout")
        if timeout is not None:
            from ..core import check_timeout

            try:
                timeout = check_timeout(timeout, f"{where}.timeout")
            except InputError as e:
                raise _spec_error(source, str(e)) from None
        name = j.get("name") or (gen or kind)
        if not isinstance(name, str) or not name or "/" in name:
            raise _spec_error(source, f"{where}.name: expected a non-empty string without '/'")
        if name in names:
            raise _spec_error(source, f"{where}.name: {name!r} is used by another job (give each job a "
                                      "unique name)")
        names.add(name)
        paths = [str(((base or Path.cwd()) / c).resolve()) for c in ctx]
        jobs.append(Job(name, kind, gen or "", count, seed, dict(params), list(ctx), paths, tries,
                        timeout=timeout))
    return Spec(jobs, compression, chunk, source)


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and check a TOML bake spec."""
    import tomllib

    from ..serialize import read_bytes

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
    from ..serialize import read_bytes

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
    from ..packs import FORMAT_VERSION
    from ..resources import conjure_version

    doc = [FORMAT_VERSION, conjure_version(), spec.compression,
           [j.manifest(0) for j in spec.jobs]]
    return hashlib.blake2b(msgpack.packb(doc, use_bin_type=True), digest_size=16).hexdigest()
