"""The ASGI app of ``conjure serve``: Starlette routes over :class:`~engine.serve.service.Service`.

Imported only when serving (``starlette`` is the optional ``serve`` extra). See ``docs/serve.md``.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..core import check_timeout
from ..errors import ConjureError, GenerationError, GenerationTimeout, InputError
from ..resources import conjure_version
from .service import NotFound, Service, query_seed

log = logging.getLogger("conjure.serve")
STATIC = Path(__file__).with_name("static")  # the playground: index.html, playground.js, playground.css
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_PENDING = 64
CACHE_CONTROL = "public, max-age=3600"
STEM_RE = re.compile(r"[^A-Za-z0-9._-]+")


class Busy(Exception):
    """Too much work queued already, or the time budget ran out (HTTP 503)."""


def status_of(e: BaseException) -> int:
    if isinstance(e, InputError):
        return 400
    if isinstance(e, NotFound):  # only a missing pack or asset: another LookupError is a bug (500)
        return 404
    if isinstance(e, (Busy, GenerationTimeout)):  # the time budget (the engine's deadline) or a full queue
        return 503
    if isinstance(e, GenerationError):
        return 422
    return 500


def one_line(e: BaseException) -> str:
    if isinstance(e, (ConjureError, NotFound, Busy)):
        text = str(e.args[0]) if isinstance(e, NotFound) and e.args else str(e)
    else:
        text = f"internal error: {type(e).__name__}: {e}"
    return " ".join(text.split())[:2000] or type(e).__name__


def error_response(e: BaseException, status: int | None = None) -> JSONResponse:
    status = status or status_of(e)
    headers = {"Cache-Control": "no-store"}
    if status == 503:
        headers["Retry-After"] = "1"
    return JSONResponse({"error": one_line(e), "status": status, "type": type(e).__name__}, status,
                        headers=headers)


def check_limits(max_body: Any, timeout: Any, max_pending: Any) -> float:
    """The serve limits, each named by its flag in the error: ``--timeout`` a positive finite number of seconds
    (nan and inf are not budgets), ``--max-body`` and ``--max-pending`` positive integers. Returns the timeout."""
    for flag, value in (("--max-body", max_body), ("--max-pending", max_pending)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{flag} must be a positive integer, got {str(value)[:40]!r}")
    return check_timeout(timeout, "--timeout")


class ServeApp:
    """Holds the service, the limits and the worker pool used for rendering; builds the Starlette app."""

    def __init__(self, service: Service, max_body: int = DEFAULT_MAX_BODY, timeout: float = DEFAULT_TIMEOUT,
                 max_pending: int = DEFAULT_MAX_PENDING, root_path: str = "", cors_origins: tuple = ()):
        timeout = check_limits(max_body, timeout, max_pending)
        self.service = service
        self.max_body = max_body
        self.timeout = timeout
        self.max_pending = max_pending
        self.pending = 0
        self.served = 0
        self.started = time.time()
        self._render_pool = ThreadPoolExecutor(max_workers=service.runtime.workers,
                                               thread_name_prefix="conjure-render")
        routes = [
            Route("/", self.index),
            Route("/api/health", self.health),
            Route("/api/version", self.version),
            Route("/api/generators", self.generators),
            Route("/api/exporters", self.exporters),
            Route("/api/themes", self.themes),
            Route("/api/generate", self.generate, methods=["GET", "POST"]),
            Route("/api/packs", self.packs),
            Route("/api/packs/{pack}", self.pack_summary),
            Route("/api/packs/{pack}/{asset:path}", self.pack_asset),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ]
        handlers = {HTTPException: self._http_error, Exception: self._internal_error}
        middleware = []
        if cors_origins:  # web games on other origins may call the API (their pages' origins, never "*" by default)
            from starlette.middleware import Middleware
            from starlette.middleware.cors import CORSMiddleware

            middleware.append(Middleware(CORSMiddleware, allow_origins=list(cors_origins),
                                         allow_methods=["GET", "POST"], allow_headers=["Content-Type", "If-None-Match"],
                                         expose_headers=["ETag", "X-Content-Hash", "X-Cache", "X-Generator",
                                                         "X-Generator-Version", "Content-Disposition"]))
        self.app = Starlette(routes=routes, exception_handlers=handlers, lifespan=self._lifespan,
                             middleware=middleware)
        self.app.state.conjure = self
        self.root_path = root_path

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette):
        yield
        self.close()

    def close(self) -> None:
        self._render_pool.shutdown(wait=False, cancel_futures=True)
        self.service.close()

    # ------------------------------------------------------------------ errors
    async def _http_error(self, request: Request, exc: HTTPException) -> JSONResponse:
        msg = {404: f"no such path {request.url.path!r} (see /api/generators, /api/packs, /api/health)",
               405: f"method {request.method} not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return JSONResponse({"error": msg, "status": exc.status_code, "type": "HTTPError"}, exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def _internal_error(self, request: Request, exc: Exception) -> JSONResponse:
        log.error("conjure serve: %s %s: %s", request.method, request.url.path, one_line(exc))
        return error_response(exc, 500)

    # ------------------------------------------------------------------ helpers
    async def _body(self, request: Request) -> Any:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise InputError("request: bad Content-Length header")
            if int(length) > self.max_body:
                raise _TooLarge(f"request body of {length} bytes is over the {self.max_body}-byte limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge(f"request body is over the {self.max_body}-byte limit")
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data.strip():
            raise InputError("request: empty body (send a JSON object)")
        try:
            return json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError("request: body is not UTF-8 JSON") from None
        except RecursionError:
            raise InputError("request: JSON nested too deeply") from None
        except json.JSONDecodeError as e:
            raise InputError(f"request: malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        except ValueError as e:
            raise InputError(f"request: malformed JSON ({e})") from None

    @staticmethod
    def _etag_match(request: Request, etag: str) -> bool:
        inm = request.headers.get("if-none-match")
        if not inm:
            return False
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return etag in tags or "*" in tags

    def _result_response(self, request: Request, result, extra: dict | None = None) -> Response:
        headers = {"ETag": result.etag, "Cache-Control": CACHE_CONTROL,
                   "X-Content-Hash": result.content_hash,
                   "Content-Disposition": f'inline; filename="{result.filename}"', **(extra or {})}
        if self._etag_match(request, result.etag):
            return Response(status_code=304, headers=headers)
        return Response(result.body, media_type=result.media_type, headers=headers)

    async def _in_pool(self, fn, *args, timeout: float):
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._render_pool, fn, *args), timeout)
        except asyncio.TimeoutError:
            raise Busy(f"the request ran past its time budget of {self.timeout:g} s") from None

    # ------------------------------------------------------------------ routes
    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "pending": self.pending, "max_pending": self.max_pending,
                             "served": self.served, "uptime_s": round(time.time() - self.started, 1),
                             **self.service.stats()}, headers={"Cache-Control": "no-store"})

    async def version(self, request: Request) -> Response:
        import platform

        return JSONResponse({"conjure": conjure_version(), "python": platform.python_version(),
                             "generators": {g.id: str(g.version) for g in self.service.engine.generators()},
                             "plugins": {i.name: i.version for i in self.service.engine.plugins()}},
                            headers={"Cache-Control": "no-cache"})

    async def generators(self, request: Request) -> Response:
        return JSONResponse(self.service.generators(), headers={"Cache-Control": "no-cache"})

    async def exporters(self, request: Request) -> Response:
        return JSONResponse(self.service.exporters(), headers={"Cache-Control": "no-cache"})

    async def themes(self, request: Request) -> Response:
        return JSONResponse(self.service.themes(), headers={"Cache-Control": "no-cache"})

    async def packs(self, request: Request) -> Response:
        rows = []
        for name, r in sorted(self.service.packs.items()):
            s = r.summary()
            rows.append({"name": name, "count": s["count"], "bytes": s["bytes"], "compression": s["compression"],
                         "jobs": s["jobs"]})
        return JSONResponse(rows, headers={"Cache-Control": "no-cache"})

    async def pack_summary(self, request: Request) -> Response:
        try:
            offset = _int_query(request, "offset", 0)
            limit = _int_query(request, "limit", 1000)
            return JSONResponse(self.service.pack_summary(request.path_params["pack"], offset, limit),
                                headers={"Cache-Control": "no-cache"})
        except Exception as e:
            return error_response(e)

    async def pack_asset(self, request: Request) -> Response:
        try:
            fmt = request.query_params.get("format")
            options = _json_query(request, "options")
            pack, asset = request.path_params["pack"], request.path_params["asset"]
            if fmt in (None, "msgpack") and not options:  # the raw record, straight from the pack
                result = self.service.pack_asset(pack, asset)
            else:
                result = await self._in_pool(self.service.pack_asset, pack, asset, fmt, options,
                                             timeout=self.timeout)
            self.served += 1
            return self._result_response(request, result)
        except Exception as e:
            return self._fail(request, e)

    async def generate(self, request: Request) -> Response:
        if self.pending >= self.max_pending:
            return error_response(Busy(f"server busy: {self.pending} requests in progress (limit "
                                       f"{self.max_pending}); retry shortly"))
        self.pending += 1
        start = time.monotonic()
        try:
            doc = await self._body(request) if request.method == "POST" else _query_doc(request)
            svc = self.service
            spec = svc.parse(doc)
            req, context = svc.check(spec)  # params checked against the schema before any work
            fmt = spec.get("format") or "json"
            # an unknown format or option is refused before any work too
            svc.engine._check_options(svc.exporter(fmt, req.kind), spec.get("options") or {})
            budget = max(0.001, self.timeout - (time.monotonic() - start))  # the engine's deadline for this request
            fut, hit = svc.submit(req, context, spec.get("tries"), timeout=budget)
            try:
                content = await asyncio.wait_for(asyncio.wrap_future(fut), self.timeout)
            except asyncio.TimeoutError:
                raise Busy(f"generation ran past the time budget of {self.timeout:g} s (it finishes in the "
                           "background and is cached; retry later)") from None
            left = max(0.1, self.timeout - (time.monotonic() - start))
            stem = STEM_RE.sub("_", f"{req.generator}-{req.seed}").strip("._")[:80] or "content"
            result = await self._in_pool(svc.render, content, fmt, spec.get("options"), stem, timeout=left)
            self.served += 1
            return self._result_response(request, result, {
                "X-Cache": "hit" if hit else "miss", "X-Generator": req.generator,
                "X-Generator-Version": str(svc.engine.generator(req.generator).version)})
        except Exception as e:
            return self._fail(request, e)
        finally:
            self.pending -= 1

    def _fail(self, request: Request, e: BaseException) -> Response:
        if isinstance(e, _TooLarge):
            return JSONResponse({"error": str(e), "status": 413, "type": "InputError"}, 413)
        status = status_of(e)
        if status == 500:
            log.error("conjure serve: %s %s: %s", request.method, request.url.path, one_line(e))
        return error_response(e, status)


class _TooLarge(InputError):
    pass


def _int_query(request: Request, name: str, default: int) -> int:
    v = request.query_params.get(name)
    if v is None:
        return default
    if not v.isdigit() or len(v) > 9:
        raise InputError(f"query parameter {name!r}: expected a non-negative int, got {v!r}")
    return int(v)


def _json_query(request: Request, name: str) -> dict | None:
    v = request.query_params.get(name)
    if v is None or v == "":
        return None
    try:
        out = json.loads(v)
    except (ValueError, RecursionError):
        raise InputError(f"query parameter {name!r}: expected a JSON object") from None
    if not isinstance(out, dict):
        raise InputError(f"query parameter {name!r}: expected a JSON object, got {type(out).__name__}")
    return out


def _query_doc(request: Request) -> dict:
    """``GET /api/generate?kind=..&generator=..&seed=..&format=..&params={json}&options={json}&context={json}``
    (and ``version``, ``tries``): the POST body as a query, for links, ``<img src>`` and HTTP caches."""
    q = request.query_params
    doc: dict[str, Any] = {}
    allowed = ("kind", "generator", "seed", "format", "params", "options", "context", "version", "tries")
    unknown = sorted(k for k in q.keys() if k not in allowed)
    if unknown:
        raise InputError(f"query: unknown parameter {unknown[0]!r} (known: {', '.join(allowed)})")
    for k in ("kind", "generator", "format", "version"):
        if k in q:
            doc[k] = q[k]
    if "seed" in q:
        doc["seed"] = query_seed(q["seed"])
    if "tries" in q:
        doc["tries"] = _int_query(request, "tries", 0)
    for k in ("params", "options", "context"):
        v = _json_query(request, k)
        if v is not None:
            doc[k] = v
    return doc


def create_app(service: Service | None = None, *, packs: dict | None = None, workers: int = 2,
               max_body: int = DEFAULT_MAX_BODY, timeout: float = DEFAULT_TIMEOUT,
               max_pending: int = DEFAULT_MAX_PENDING, cors_origins: tuple = ()) -> Starlette:
    """The Starlette app (``app.state.conjure`` is the :class:`ServeApp`)."""
    if service is None:
        service = Service(packs=packs, workers=workers)
    return ServeApp(service, max_body=max_body, timeout=timeout, max_pending=max_pending,
                    cors_origins=cors_origins).app
