"""``conjure serve``: content over HTTP for games in any language, and a web playground.

An ASGI app (Starlette) run by uvicorn, both from the optional ``serve`` extra
(``pip install 'conjure[serve]'``); ``import engine`` never imports them. The framework-free logic is in
:mod:`engine.serve.service`, the routes in :mod:`engine.serve.app`; ``docs/serve.md`` is the guide.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _need_web() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise InputError(f"conjure serve needs the 'serve' extra ({e.name} is missing): "
                         "pip install 'conjure[serve]'") from None


def create_app(service: Any = None, **kwargs: Any):
    """The Starlette app; see :func:`engine.serve.app.create_app`."""
    _need_web()
    from .app import create_app as make

    return make(service, **kwargs)


def pack_names(specs: list[str]) -> dict[str, Path]:
    """``--pack PATH`` (named by the file's stem) or ``--pack NAME=PATH`` → ``{name: path}``."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", name):
            name, path = Path(spec).name.removesuffix(".cpk"), spec
        if name in out:
            raise InputError(f"--pack {spec}: a pack named {name!r} is already served (use NAME=PATH)")
        out[name] = Path(path)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine "
                   "only; put a reverse proxy in front to publish it)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--pack", action="append", default=[], metavar="[NAME=]PATH",
                   help="serve a content pack at /api/packs/NAME/ASSET_ID (NAME defaults to the file stem)")
    p.add_argument("--workers", type=int, default=2, help="generation threads (default 2)")
    p.add_argument("--timeout", type=float, default=30.0, help="time budget per request in seconds (default 30)")
    p.add_argument("--max-pending", type=int, default=64,
                   help="requests in progress at once before the server answers 503 (default 64)")
    p.add_argument("--max-body", type=int, default=1024 * 1024, help="largest request body in bytes (default 1 MiB)")
    p.add_argument("--root-path", default="", help="the path prefix a reverse proxy serves this under (e.g. /conjure)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="let web pages from ORIGIN (e.g. http://localhost:5173) call the API; repeatable")
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                   help="proxies trusted for X-Forwarded-* headers (default 127.0.0.1)")


def _check_bind(host: str, port: int) -> None:
    """Fail early, in one line, when the address cannot be listened on (uvicorn would exit with a log line)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InputError(f"--host {host}: cannot resolve ({e.strerror})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise InputError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None


def run(args: argparse.Namespace) -> int:
    """``conjure serve``: build the app and run uvicorn until interrupted."""
    _need_web()
    import uvicorn

    from ..core import Engine
    from .app import ServeApp, check_limits
    from .service import Service

    if not 1 <= args.port <= 65535:  # 0 (any free port) is refused: the URL printed below would be wrong
        raise InputError(f"--port: {args.port} is not a port (1..65535)")
    check_limits(args.max_body, args.timeout, args.max_pending)
    if args.workers < 1:
        raise InputError(f"--workers: must be at least 1, got {args.workers}")
    _check_bind(args.host, args.port)
    eng = Engine()
    for info in eng.plugins():
        if info.status == "broken":
            print(f"conjure: warning: plugin {info.name!r} is broken: {info.errors[0] if info.errors else '?'}",
                  file=sys.stderr)
    service = Service(eng, packs=pack_names(args.pack), workers=args.workers)
    app = ServeApp(service, max_body=args.max_body, timeout=args.timeout, max_pending=args.max_pending,
                   cors_origins=tuple(args.cors_origin)).app
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"conjure serve: http://{host}:{args.port}/ (API under /api; packs: "
          f"{', '.join(service.packs) or 'none'}); Ctrl-C stops", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, root_path=args.root_path, proxy_headers=True,
                forwarded_allow_ips=args.forwarded_allow_ips, log_level="warning", access_log=False,
                server_header=False, timeout_keep_alive=5, timeout_graceful_shutdown=5)
    return 0
