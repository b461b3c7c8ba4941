"""What ``conjure serve`` does, without the web framework: requests in, bytes out.

:class:`Service` turns a request document (the JSON body of ``POST /api/generate``) into the bytes of one
format, through the engine's :class:`~engine.runtime.Runtime` (its thread pool and LRU cache), and reads
assets from content packs. Everything here raises :class:`~engine.errors.ConjureError` with one-line
messages; :mod:`engine.serve.app` maps them to HTTP statuses. Nothing here imports a web library, so the
logic is tested without a server.

Content hashes are the packs' record hashes: the BLAKE2b-128 (hex) of the content's msgpack bytes
(``engine.serialize.dumps``). A generated result and the same content read from a pack have one hash, and a
later request's ``context`` refers to either by it.
"""
from __future__ import annotations

import hashlib
import io
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..content import Cast, Character, Content
from ..errors import ConjureError, InputError
from ..generator import Exporter
from ..packs import PackReader, open_pack, record_hash
from ..runtime import Runtime, decode
from ..seeds import parse_seed
from ..serialize import dumps, from_plain

#: Fields a generate request may have.
REQUEST_FIELDS = ("kind", "generator", "seed", "params", "format", "options", "context", "version", "tries")
HASH_RE = re.compile(r"^[0-9a-f]{32}$")
CONTEXT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
PACK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_TRIES = 100
#: Params never taken over HTTP: they name files on the server (a learned generator's ``weights``).
LOCAL_ONLY_PARAMS = ("weights",)
MAX_OPTIONS = 16
MAX_CONTEXT_ITEMS = 8
MAX_CAST_REFS = 64
#: Media types by file extension; anything not listed is text (exporters of text formats) or bytes.
MEDIA_TYPES = {".json": "application/json", ".png": "image/png", ".msgpack": "application/vnd.msgpack",
               ".mpk": "application/vnd.msgpack", ".md": "text/markdown; charset=utf-8",
               ".txt": "text/plain; charset=utf-8", ".ink": "text/plain; charset=utf-8",
               ".tmx": "application/xml", ".zip": "application/zip", ".ldtk": "application/json",
               ".tmj": "application/json"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class NotFound(LookupError):
    """No such pack or pack asset (HTTP 404). Only this is a 404: any other LookupError (a KeyError from a
    bug) stays an internal error."""


def content_hash(raw: bytes) -> str:
    """The content hash of msgpack bytes (a pack record's hash), as 32 hex digits."""
    return record_hash(raw).hex()


@dataclass
class Result:
    """One response body: the bytes, their media type, the content hash, an ETag and a file name."""

    body: bytes
    media_type: str
    content_hash: str
    etag: str
    filename: str
    headers: dict = field(default_factory=dict)


class _LRU:
    """A byte-bounded, item-bounded LRU map (thread-safe)."""

    def __init__(self, items: int, max_bytes: int):
        self.items = items
        self.max_bytes = max_bytes
        self._d: OrderedDict[Any, tuple[int, Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            hit = self._d.get(key)
            if hit is None:
                return None
            self._d.move_to_end(key)
            return hit[1]

    def put(self, key: Any, value: Any, size: int) -> None:
        if self.items <= 0 or size > self.max_bytes:
            return
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self._bytes -= old[0]
            self._d[key] = (size, value)
            self._bytes += size
            while len(self._d) > self.items or self._bytes > self.max_bytes:
                _, (s, _) = self._d.popitem(last=False)
                self._bytes -= s

    def __len__(self) -> int:
        return len(self._d)

    def stats(self) -> dict:
        with self._lock:
            return {"items": len(self._d), "bytes": self._bytes}


class Service:
    """The engine, a runtime, the packs being served, recent results by hash and rendered bytes.

    :param engine: an :class:`~engine.core.Engine` (a fresh one by default).
    :param packs: ``{name: path}`` of content packs to serve.
    :param workers: generation threads in the runtime.
    :param cache_items: runtime LRU entries (also the number of recent results kept for ``context``).
    """

    def __init__(self, engine: Any = None, packs: Mapping[str, str | Path] | None = None, workers: int = 2,
                 cache_items: int = 1024, results_bytes: int = 128 * 1024 * 1024,
                 rendered_bytes: int = 64 * 1024 * 1024):
        if engine is None:
            from ..core import Engine

            engine = Engine()
        self.engine = engine
        self.runtime = Runtime(engine, workers=workers, cache_items=cache_items)
        self.results = _LRU(cache_items, results_bytes)      # content hash -> msgpack bytes
        self.rendered = _LRU(cache_items, rendered_bytes)    # (hash, exporter, options) -> (bytes, media, ext)
        self.packs: dict[str, PackReader] = {}
        try:
            for name, path in (packs or {}).items():
                if not PACK_NAME_RE.match(name):
                    raise InputError(f"pack name {name!r}: use letters, digits, '.', '_' or '-' (up to 64)")
                if name in self.packs:
                    raise InputError(f"pack name {name!r} is given twice")
                self.packs[name] = open_pack(path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.runtime.close(wait=False)
        for r in self.packs.values():
            r.close()

    # ------------------------------------------------------------------ describing
    def formats_for(self, kind: str) -> list[dict]:
        out = []
        for e in self.engine.exporters():
            if kind in e.kinds:
                out.append({"id": e.id, "extensions": list(e.extensions), "single_file": _single_file(e),
                            "options": list(getattr(e, "options", None) or ())})
        return out

    def generators(self) -> list[dict]:
        rows = []
        for g in self.engine.generators():
            d = self.engine.describe(g.id)
            d["formats"] = [f["id"] for f in self.formats_for(g.kind)]
            d["default"] = self.engine.defaults.get(g.kind) == g.id
            d["local_only"] = [p["name"] for p in d["params"] if p["name"] in LOCAL_ONLY_PARAMS]
            rows.append(d)
        return rows

    def exporters(self) -> list[dict]:
        return [{"id": e.id, "kinds": list(e.kinds), "extensions": list(e.extensions),
                 "single_file": _single_file(e), "options": list(getattr(e, "options", None) or ()),
                 "reads": callable(getattr(e, "load", None)), "description": getattr(e, "description", "")}
                for e in self.engine.exporters()]

    def themes(self) -> list[dict]:
        """Tile themes for PNG previews and tilesets (``options: {"theme": NAME}``): :mod:`engine.themes`."""
        from ..themes import describe_all

        return [{k: v for k, v in t.items() if k != "path"} for t in describe_all()]

    # ------------------------------------------------------------------ requests
    def parse(self, doc: Any) -> dict:
        """Check a request document's shape and types (not yet the params against the schema)."""
        if not isinstance(doc, dict):
            raise InputError(f"request: expected a JSON object, got {type(doc).__name__}")
        unknown = sorted(k for k in doc if k not in REQUEST_FIELDS)
        if unknown:
            raise InputError(f"request: unknown field {unknown[0]!r} (known: {', '.join(REQUEST_FIELDS)})")
        out = dict(doc)
        for name in ("kind", "generator", "format", "version"):
            v = out.get(name)
            if v is not None and not isinstance(v, str):
                raise InputError(f"request field {name!r}: expected a string, got {type(v).__name__}")
        if out.get("kind") is None and out.get("generator") is None:
            raise InputError("request: give 'kind' or 'generator' (or both)")
        for name in ("params", "options", "context"):
            v = out.get(name)
            if v is not None and not isinstance(v, dict):
                raise InputError(f"request field {name!r}: expected an object, got {type(v).__name__}")
        if len(out.get("options") or {}) > MAX_OPTIONS:
            raise InputError(f"request field 'options': more than {MAX_OPTIONS} options")
        for k, v in (out.get("options") or {}).items():
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise InputError(f"request option {k!r}: expected a number or a string, got {type(v).__name__}")
        tries = out.get("tries")
        if tries is not None and (isinstance(tries, bool) or not isinstance(tries, int)
                                  or not 1 <= tries <= MAX_TRIES):
            raise InputError(f"request field 'tries': expected an int in 1..{MAX_TRIES}, got {tries!r}")
        seed = out.get("seed", 0)
        if isinstance(seed, float) and seed.is_integer():
            seed = int(seed)
        out["seed"] = seed  # checked by Engine.request
        return out

    def check(self, spec: dict) -> tuple[Any, dict]:
        """The checked engine request for a parsed document and its resolved context (all before any work)."""
        kind = spec.get("kind")
        if kind is None:
            kind = self.engine.generator(spec["generator"]).kind
        context = self.resolve_context(spec.get("context") or {})
        for name in LOCAL_ONLY_PARAMS:
            if name in (spec.get("params") or {}):
                raise InputError(f"parameter {name!r} names a file on the server and is not taken over HTTP "
                                 "(use the CLI or the Python API for your own weights)")
        req = self.engine.request(kind, spec.get("generator"), spec["seed"], spec.get("params"), context)
        want = spec.get("version")
        gen = self.engine.generator(req.generator)
        if want is not None and str(want) != str(gen.version):
            raise InputError(f"generator {gen.id!r} is version {gen.version} on this server; the request asks for "
                             f"version {want} (its content would differ)")
        return req, context

    def submit(self, req: Any, context: dict, tries: int | None = None, timeout: float | None = None):
        """Start (or find in the runtime's LRU cache) the content of a checked request: a Future, and
        whether it was a cache hit when asked. ``timeout`` is the request's time budget in the engine
        (its deadline, checked between tries and by generators that call ``check_deadline``)."""
        key = self.runtime.key(req, tries)
        hit = self.runtime.cached(key)
        fut = self.runtime.submit(req.kind, req.generator, req.seed, req.params, context, tries=tries,
                                  timeout=timeout)
        return fut, hit

    def render(self, content: Content, fmt: str | None, options: Mapping[str, Any] | None = None,
               stem: str = "content") -> Result:
        """Bytes of ``content`` in format ``fmt`` (an exporter id or an extension like ``ink.json``):
        the exporter's ``dumps`` for single-file formats, a zip of the files ``export`` writes otherwise."""
        raw = dumps(content)
        h = content_hash(raw)
        self.results.put(h, raw, len(raw))
        return self._render(h, raw, content, fmt, options, stem)

    def _render(self, h: str, raw: bytes, content: Content | None, fmt: str | None,
                options: Mapping[str, Any] | None, stem: str, kind: str | None = None) -> Result:
        options = dict(options or {})
        kind = kind or (content.KIND if content is not None else None)
        exp = self.exporter(fmt or "json", kind)
        self.engine._check_options(exp, options)
        opt_key = tuple(sorted((k, repr(v)) for k, v in options.items()))
        # a zip holds files named after the stem (``level-7.tmj``): the stem is part of its bytes, so of the
        # cache key and the ETag; a single-file body does not depend on it
        zipped = "" if (exp.id == "msgpack" and not options) or _single_file(exp) else stem
        tag = h if exp.id == "msgpack" and not options else f"{h}.{exp.id}" + (
            f".{hashlib.blake2b(repr((opt_key, zipped)).encode(), digest_size=4).hexdigest()}"
            if options or zipped else "")
        key = (h, exp.id, opt_key, zipped)
        hit = self.rendered.get(key)
        if hit is None:
            if exp.id == "msgpack" and not options:
                body, media, ext = raw, MEDIA_TYPES[".msgpack"], ".msgpack"
            else:
                if content is None:
                    content = decode(raw)
                body, media, ext = self._bytes(content, exp, options, stem)
            self.rendered.put(key, (body, media, ext), len(body))
        else:
            body, media, ext = hit
        return Result(body, media, h, f'"{tag}"', f"{stem}{ext}")

    def exporter(self, fmt: str, kind: str | None) -> Any:
        """The exporter for a format name: an exporter id, else a file extension (``ink.json``, ``.tmj``)."""
        if not isinstance(fmt, str) or not fmt or len(fmt) > 64:
            raise InputError(f"format: expected an exporter id or extension, got {fmt!r}")
        if fmt in {e.id for e in self.engine.exporters()}:
            return self.engine.exporter_for(None, fmt, kind)
        ext = fmt if fmt.startswith(".") else "." + fmt
        try:
            return self.engine.exporter_for("x" + ext, None, kind)
        except InputError:
            known = ", ".join(e.id for e in self.engine.exporters() if kind is None or kind in e.kinds)
            what = f" for {kind} content" if kind else ""
            raise InputError(f"unknown format {fmt!r}{what} (known: {known})") from None

    def _bytes(self, content: Content, exp: Any, options: dict, stem: str) -> tuple[bytes, str, str]:
        ext = exp.extensions[0] if exp.extensions else ""
        if _single_file(exp):  # what `conjure generate ... -o - --format ID` writes: the engine's own dumps
            return self.engine.dumps(content, exp.id, **options), _media(ext), ext
        # several files (a map and its tileset image, an atlas and its sheet): a zip of exactly what the CLI
        # writes for `-o STEM.EXT`, names sorted, fixed timestamps, so the same request gives the same zip
        with tempfile.TemporaryDirectory(prefix="conjure-serve-") as tmp:
            written = self.engine.export(content, Path(tmp) / f"{stem}{ext}", exp.id, **options)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
                for p in sorted(set(Path(w) for w in written), key=lambda p: p.name):
                    info = zipfile.ZipInfo(p.name, ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    z.writestr(info, p.read_bytes())
        return buf.getvalue(), MEDIA_TYPES[".zip"], f"{ext}.zip"

    # ------------------------------------------------------------------ context
    def resolve_context(self, ctx: Mapping[str, Any]) -> dict:
        """``{"level": HASH, "cast": [HASH, ...], "story": {"pack": P, "id": ID}}`` → content objects.

        A value is a content hash of an earlier result (or a pack record), a pack reference, an inline
        content document (``{"schema": ...}``, validated), or for ``cast`` a list of those (characters)."""
        if len(ctx) > MAX_CONTEXT_ITEMS:
            raise InputError(f"context: more than {MAX_CONTEXT_ITEMS} entries")
        out: dict[str, Any] = {}
        for name, ref in ctx.items():
            if not CONTEXT_NAME_RE.match(name):
                raise InputError(f"context: bad name {name!r} (lowercase letters, digits, '_')")
            where = f"context {name!r}"
            if isinstance(ref, list):
                if len(ref) > MAX_CAST_REFS:
                    raise InputError(f"{where}: more than {MAX_CAST_REFS} items")
                chars: list = []
                for i, r in enumerate(ref):
                    c = self.content_ref(r, f"{where}[{i}]")
                    if isinstance(c, Cast):
                        chars.extend(c.characters)
                    elif isinstance(c, Character):
                        chars.append(c)
                    else:
                        raise InputError(f"{where}[{i}]: a list holds characters, got a {c.KIND}")
                out[name] = Cast(chars)
                continue
            c = self.content_ref(ref, where)
            if name == "cast" and isinstance(c, Character):
                c = Cast([c])
            out[name] = c
        return out

    def content_ref(self, ref: Any, where: str) -> Content:
        if isinstance(ref, str):
            h = ref.strip().lower().strip('"')
            if not HASH_RE.match(h):
                raise InputError(f"{where}: expected a content hash (32 hex digits), got {ref!r}")
            raw = self.results.get(h)
            if raw is None:
                raise InputError(f"{where}: no recent result has hash {h} (generate it again, or read it from a "
                                 "pack, then refer to it)")
            return decode(raw)
        if isinstance(ref, dict) and "schema" in ref:
            content = from_plain(ref, where)
            raw = dumps(content)
            self.results.put(content_hash(raw), raw, len(raw))
            return content
        if isinstance(ref, dict) and set(ref) == {"pack", "id"}:
            name = ref["pack"]
            if not isinstance(name, str) or name not in self.packs:
                raise InputError(f"{where}: no pack {name!r} (packs: {', '.join(sorted(self.packs)) or 'none'})")
            reader = self.packs[name]
            if not isinstance(ref["id"], str):
                raise InputError(f"{where}: pack asset id must be a string")
            if ref["id"] not in reader:  # the reader's own message names the pack's file on the server
                raise InputError(f"{where}: pack {name!r} has no asset {ref['id']!r}")
            with _pack_errors(reader, name):
                i = reader.index_of(ref["id"])
                raw = reader.raw(i)
                content = reader._decode(i, raw)
            self.results.put(content_hash(raw), raw, len(raw))
            return content
        raise InputError(f"{where}: expected a content hash, {{\"pack\": NAME, \"id\": ASSET}} or a content "
                         "document")

    # ------------------------------------------------------------------ packs
    def pack(self, name: Any) -> PackReader:
        reader = self.packs.get(name) if isinstance(name, str) else None
        if reader is None:
            known = ", ".join(sorted(self.packs)) or "none are served"
            raise NotFound(f"no pack {name!r} (packs: {known})")
        return reader

    def pack_asset(self, name: str, asset_id: str, fmt: str | None = None,
                   options: Mapping[str, Any] | None = None) -> Result:
        """One asset of a served pack: its raw record for msgpack (the default), else rendered."""
        reader = self.pack(name)
        if asset_id not in reader:
            raise NotFound(f"pack {name!r} has no asset {asset_id!r}")
        with _pack_errors(reader, name):
            i = reader.index_of(asset_id)
            raw = reader.raw(i)
        h = reader.records[i][4].hex()
        self.results.put(h, raw, len(raw))
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", asset_id).strip("._") or "asset"
        kind = None
        if (fmt or "msgpack") != "msgpack" or options:
            with _pack_errors(reader, name):
                content = reader._decode(i, raw)
            return self._render(h, raw, content, fmt, options, stem)
        return self._render(h, raw, None, "msgpack", None, stem, kind)

    def pack_summary(self, name: str, offset: int = 0, limit: int = 1000) -> dict:
        reader = self.pack(name)
        s = reader.summary()
        s.pop("path", None)
        s["name"] = name
        s["ids"] = reader.ids[offset: offset + max(0, min(limit, 10_000))]
        s["offset"] = offset
        return s

    def stats(self) -> dict:
        return {"runtime": self.runtime.stats(), "results": self.results.stats(),
                "rendered": self.rendered.stats()}


@contextmanager
def _pack_errors(reader: PackReader, name: str):
    """A pack's errors name the pack as served (``pack 'dungeons'``), never its file path on the server."""
    try:
        yield
    except ConjureError as e:
        path = str(getattr(reader, "path", "") or "")
        if not path or path not in str(e):
            raise
        text = str(e).replace(path, f"pack {name!r}")
        raise (InputError(text) if isinstance(e, InputError) else ConjureError(text)) from None


def _single_file(exp: Any) -> bool:
    dumps_fn = getattr(type(exp), "dumps", None)
    return callable(getattr(exp, "dumps", None)) and dumps_fn is not Exporter.dumps


def _media(ext: str) -> str:
    for suffix, media in MEDIA_TYPES.items():
        if ext.endswith(suffix):
            return media
    return "application/octet-stream"


def query_seed(text: str) -> Any:
    """A seed from a URL query: digits are ints (as on the CLI), anything else a string seed."""
    return parse_seed(text)
