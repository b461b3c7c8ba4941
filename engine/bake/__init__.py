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

The package, one concern a module (``from engine.bake import ...`` keeps working for every name below):

- :mod:`engine.bake.spec`: the TOML spec, checked and resolved; the plan hash.
- :mod:`engine.bake.journal`: the journal file and its frames (layout in that module).
- :mod:`engine.bake.workers`: the worker entry point and the executors (this process, processes, Dask).
- :mod:`engine.bake.baker`: the bake itself (plan chunks, run, journal, assemble) and :func:`regenerate`.
- :mod:`engine.bake.extract`: ``conjure info PACK`` lines and ``conjure extract``.

The command line (``conjure bake``, ``conjure extract``) lives in :mod:`engine.cli`; the progress bar in
:mod:`engine.progress`.
"""
from .baker import TARGET_CHUNK_S, bake, regenerate
from .extract import extract, info_lines
from .journal import (FRAME_HEAD, FRAME_MAGIC, FRAME_REC, JOURNAL_MAGIC, Frame, Journal, decode_frame,
                      encode_frame, journal_path)
from .spec import (JOB_KEYS, MAX_COUNT, MAX_SPEC_BYTES, PACK_KEYS, Job, Spec, load_spec, parse_spec, plan_hash,
                   resolve_spec)
from .workers import ERROR_MAGIC, ERRORS, bake_chunk, init_worker, make_records

__all__ = [
    "TARGET_CHUNK_S", "bake", "regenerate", "extract", "info_lines", "FRAME_HEAD", "FRAME_MAGIC", "FRAME_REC",
    "JOURNAL_MAGIC", "Frame", "Journal", "decode_frame", "encode_frame", "journal_path", "JOB_KEYS", "MAX_COUNT",
    "MAX_SPEC_BYTES", "PACK_KEYS", "Job", "Spec", "load_spec", "parse_spec", "plan_hash", "resolve_spec",
    "ERROR_MAGIC", "ERRORS", "bake_chunk", "init_worker", "make_records",
]
