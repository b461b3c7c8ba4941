"""The ``conjure`` command line.

Exit codes: 0 success, 2 bad usage or bad input (unknown generator, bad parameter, unreadable file), 1 when
generation fails or a plugin breaks. Errors are one line on stderr naming the cause.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from .content import Cast, Character, Content, Level, Story, KINDS
from .errors import ConjureError, InputError
from .params import parse_assignments
from .seeds import parse_seed


def summary(content: Content) -> list[str]:
    """A few human lines about a piece of content (``conjure info``, ``conjure generate`` without -o)."""
    meta = content.metadata
    lines = [f"schema: {content.SCHEMA}"]
    if "generator" in meta:
        lines.append(f"generator: {meta['generator']} v{meta.get('generator_version', '?')}  seed: "
                     f"{meta.get('seed')!r}  tries: {meta.get('tries')}")
        if isinstance(meta.get("params"), dict) and meta["params"]:  # metadata is the file's, any JSON value
            lines.append("params: " + " ".join(f"{k}={v}" for k, v in meta["params"].items()))
    if isinstance(content, Level):
        lines.append(f"size: {content.width}x{content.height}  layers: {', '.join(content.layers)}  "
                     f"tileset: {content.tileset.name} ({len(content.tileset.tiles)} tiles)")
        counts: dict[str, int] = {}
        for e in content.entities:
            counts[e.kind] = counts.get(e.kind, 0) + 1
        lines.append("entities: " + (", ".join(f"{k} x{v}" for k, v in counts.items()) or "none"))
        if content.regions:
            lines.append("regions: " + ", ".join(f"{r.id} ({r.name})" for r in content.regions[:6])
                         + (" ..." if len(content.regions) > 6 else ""))
    elif isinstance(content, Character):
        lines.append(f"{content.name}, {content.role} ({content.style or 'no style'})")
        lines.append("attributes: " + " ".join(f"{k}={v}" for k, v in content.attributes.items()))
        if content.sprite:
            h, w = content.sprite.size
            lines.append(f"sprite: {w}x{h}, frames {', '.join(content.sprite.frames)}")
    elif isinstance(content, Cast):
        lines.append(f"cast of {len(content.characters)}: " +
                     ", ".join(f"{c.name} ({c.role})" for c in content.characters[:8]) +
                     (" ..." if len(content.characters) > 8 else ""))
    elif isinstance(content, Story):
        lines.append(f"title: {content.title}  quest: {content.quest.kind}")
        for i, b in enumerate(content.quest.beats, 1):
            lines.append(f"  {i}. {b.text}")
        lines.append(f"dialogue: {len(content.nodes)} nodes, {sum(1 for n in content.nodes if not n.choices)} endings")
    return lines


def _parser() -> argparse.ArgumentParser:
    """The whole ``conjure`` parser, built from :data:`COMMANDS` (the one table of commands)."""
    ap = argparse.ArgumentParser(prog="conjure", description="Generate game content with plugins.")
    ap.add_argument("--debug", action="store_true",
                    help="print the full traceback of any error (also CONJURE_DEBUG=1); anywhere on the line")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.arguments(sub.add_parser(name, help=command.help))
    return ap


def _engine():
    from .core import Engine

    eng = Engine()
    for info in eng.plugins():  # one line per broken plugin, so nobody wonders where a generator went
        if info.status in ("broken", "empty"):
            print(f"conjure: warning: plugin {info.name!r} is broken: {info.errors[0] if info.errors else '?'} "
                  "(see `conjure list plugins`)", file=sys.stderr)
    return eng


def _list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", nargs="?", default="generators",
                   choices=("generators", "exporters", "plugins", "themes"))
    p.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_list(args) -> int:
    eng = _engine()
    if args.what == "generators":
        rows = [eng.describe(g.id) for g in eng.generators()]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        _table(["id", "kind", "version", "plugin", "params"],
               [[r["id"], r["kind"], r["version"], r["plugin"],
                 " ".join(f"{p['name']}={p['default']}" for p in r["params"])] for r in rows])
    elif args.what == "exporters":
        rows = [{"id": e.id, "kinds": list(e.kinds), "extensions": list(e.extensions),
                 "load": callable(getattr(e, "load", None)), "description": getattr(e, "description", "")}
                for e in eng.exporters()]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        _table(["id", "kinds", "extensions", "reads", "description"],
               [[r["id"], ",".join(r["kinds"]), " ".join(r["extensions"]), "yes" if r["load"] else "",
                 r["description"]] for r in rows])
    elif args.what == "themes":  # tile art for PNG previews (-O theme=NAME); engine/themes.py
        from .themes import describe_all

        rows = describe_all()
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        _table(["name", "tile size", "source", "license", "tiles / entities"],
               [[r["name"], r["tile_size"], r["source"], r["license"],
                 f"{len(r['tiles'])} tiles, {len(r['entities'])} entities"] for r in rows])
    else:
        rows = [i.to_dict() for i in eng.plugins()]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        _table(["name", "version", "source", "status", "registered / errors"],
               [[r["name"], r["version"], r["source"], r["status"], "; ".join(r["registered"] + r["errors"])]
                for r in rows])
    return 0


def _table(header: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(*header, show_lines=False)
    for r in rows:
        t.add_row(*(str(c) for c in r))
    Console(width=160).print(t)


def _number(text: str):
    """Exporter option values: ints and floats from the CLI become numbers, anything else stays text."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=KINDS)
    p.add_argument("-g", "--generator", help="generator id (default: the kind's default)")
    p.add_argument("-s", "--seed", default="0", help="an int or a string (default 0)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="a generator parameter")
    p.add_argument("-o", "--output", help="file to write (format from the extension); '-' for stdout")
    p.add_argument("--format", help="exporter id, overriding the extension (see `conjure list exporters`)")
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an exporter option, e.g. -O tile_size=16 (ints and floats are converted)")
    p.add_argument("--context", action="append", default=[], metavar="PATH",
                   help="content to generate for (a level, a cast, a story); repeatable")
    p.add_argument("--tries", type=int, default=None, help="attempts before giving up on invalid content")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds the request may take, all tries together (default 120)")


def cmd_generate(args) -> int:
    eng = _engine()
    params = parse_assignments(args.param)
    seed = parse_seed(args.seed)
    context = eng.load_context(args.context) if args.context else None
    content = eng.generate(args.kind, args.generator, seed, params, context, tries=args.tries,
                           timeout=args.timeout)
    options = {k: _number(v) for k, v in parse_assignments(args.option).items()}
    if args.output == "-":
        fmt = args.format or "json"
        sys.stdout.buffer.write(eng.dumps(content, fmt, **options))
        sys.stdout.flush()
    elif args.output:
        for path in eng.export(content, args.output, args.format, **options):
            print(f"wrote {path}")
    else:
        print("\n".join(summary(content)))
    return 0


def _info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path")
    p.add_argument("--format", help="importer id, overriding the extension")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verify", action="store_true", help="packs: also read every record and check its hash")


def cmd_info(args) -> int:
    from .packs import is_pack

    if is_pack(args.path) and not args.format:
        from .bake import info_lines
        from .packs import open_pack

        if args.json:
            with open_pack(args.path) as r:
                print(json.dumps(r.summary(), indent=2, default=repr))
        else:
            print("\n".join(info_lines(args.path)))
        if args.verify:  # the header, index and manifest are always checked; this reads every record too
            with open_pack(args.path) as r:
                print(f"verified {r.check()} records", file=sys.stderr if args.json else sys.stdout)
        return 0
    eng = _engine()
    content = eng.load(args.path, args.format)
    if args.json:
        d = content.to_dict(binary=False)
        print(json.dumps({"schema": d["schema"], "metadata": d.get("metadata", {}),
                          "summary": summary(content)}, indent=2))
    else:
        print(f"{args.path}:")
        print("\n".join("  " + ln for ln in summary(content)))
    return 0


def _train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("generator")
    p.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="training files or folders (VGLC text, Tiled maps, packs, text...); repeatable")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("-s", "--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for the weights and model card (default trained/GENERATOR)")
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a training option of the generator (e.g. -O tiny=1); numbers are converted")
    p.add_argument("--legend", default=None, metavar="FILE", help="legend for VGLC text levels (char -> tags)")
    p.add_argument("--mapping", default=None, metavar="FILE", help="tags overriding the legend's (docs/learned-levels.md)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="where to train (default cpu)")
    p.add_argument("--verbose", action="store_true", help="list every skipped data file with its reason")


def cmd_train(args) -> int:
    from .training import train

    options = {k: _number(v) for k, v in parse_assignments(args.option).items()}
    card = train(_engine(), args.generator, args.data, epochs=args.epochs, seed=args.seed, out=args.out,
                 show_progress=True, legend=args.legend, mapping=args.mapping, verbose=args.verbose,
                 device=args.device, **options)
    print(f"trained {card['generator']} in {card['seconds']} s; metrics: {json.dumps(card['metrics'])}")
    for w in card["weights"]:
        print(f"wrote {args.out or 'trained/' + args.generator}/{w['file']} ({w['bytes']} bytes)")
    print(f"model card: {card['command']}")
    return 0


def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("generator")
    p.add_argument("--count", type=int, default=100, help="samples to generate")
    p.add_argument("-s", "--seed", default="0", help="first seed (sample i uses derive(seed, i))")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--report", default=None, metavar="DIR", help="write report.md and PNGs here")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--data", action="append", default=None, metavar="PATH",
                   help="evaluate against this corpus (default: the one the generator's weights were trained on)")
    p.add_argument("--legend", default=None, metavar="FILE", help="legend for --data's VGLC text levels")
    p.add_argument("--controls", type=int, default=0, metavar="N",
                   help="level generators with controls: ask every bucket of every control N times, report landing")


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    metrics = evaluate(_engine(), args.generator, count=args.count, seed=parse_seed(args.seed),
                       params=parse_assignments(args.param), report=args.report, data=args.data,
                       legend=args.legend, controls=args.controls)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        for k, v in metrics.items():
            if not isinstance(v, (dict, list)):
                print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
        rows = metrics.get("targets") or []
        if rows:
            print(f"targets: {sum(r['met'] is True for r in rows)} of {len(rows)} met")
            for r in rows:
                verdict = "met" if r["met"] else ("n/a" if r["met"] is None else "MISSED")
                print(f"  {r['name']}: {r['value']} (target {r['target']}): {verdict}")
        if args.report:
            print(f"report: {Path(args.report) / 'report.md'}")
    return 0


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    p.add_argument("-s", "--seed", default="7")


def cmd_demo(args) -> int:
    """The main job on built-in defaults: a level, its cast, a story about both, each with a preview."""
    eng = _engine()
    out = Path(args.out)
    seed = parse_seed(args.seed)
    level = eng.generate("level", seed=seed)
    cast = eng.generate("character", seed=seed, context={"level": level})
    story = eng.generate("story", seed=seed, context={"level": level, "cast": cast})
    hero = eng.generate("character", seed=seed, params={"role": "ranger"})
    written: list[Path] = []
    for name, content in (("level", level), ("cast", cast), ("hero", hero), ("story", story)):
        for ext in (".msgpack", ".json", ".png"):
            written += eng.export(content, out / f"{name}{ext}")
    for name, content in (("level", level), ("cast", cast), ("story", story)):
        print(f"{name}: " + " | ".join(summary(content)[1:3]))
    print(f"wrote {len(written)} files:")
    for p in written:
        print(f"  {p}")
    return 0


def _plugins_arguments(p: argparse.ArgumentParser) -> None:
    psub = p.add_subparsers(dest="plugins_command", required=True, metavar="SUBCOMMAND")
    q = psub.add_parser("new", help="write a working plugin package conjure-NAME/ to start from")
    q.add_argument("name", help="plugin name: lowercase letters, digits, dashes (e.g. caves)")
    q.add_argument("--kind", default="level", choices=("level", "character", "story"),
                   help="the kind of generator to start with (default: level)")
    q.add_argument("--dir", default=".", metavar="PATH", help="folder to create conjure-NAME/ in (default: .)")


def cmd_plugins(args) -> int:
    """``conjure plugins new NAME``: scaffold a plugin package (see engine/scaffold.py)."""
    from .scaffold import create

    root = create(args.name, args.kind, args.dir)
    print(f"wrote {root}/ (a {args.kind} generator {args.name!r}); next:")
    print(f"  pip install -e {root}")
    print(f"  conjure generate {args.kind} -g {args.name}")
    print(f"  python -m pytest {root}")
    return 0


def _bake_arguments(p: argparse.ArgumentParser) -> None:
    from .packs import CODECS

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
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per asset for jobs without their own timeout (default 120)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the determinism spot check (a few assets made again must match byte for byte)")


def cmd_bake(args) -> int:
    """``conjure bake SPEC -o PACK``: the logic lives in :mod:`engine.bake`."""
    from .bake import bake

    if args.chunk_size is not None and args.chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    if args.scheduler and args.executor != "dask":
        raise InputError("--scheduler needs --executor dask")
    res = bake(args.spec, args.output, workers=args.workers, executor=args.executor, scheduler=args.scheduler,
               resume=args.resume, fresh=args.fresh, chunk_size=args.chunk_size, compression=args.compression,
               progress=not args.quiet, timeout=args.timeout, check=not args.no_check)
    if res.get("already_complete"):
        print(f"{res['path']}: already complete for this spec ({res['count']} assets); nothing to resume")
        return 0
    rate = res["count"] / res["seconds"] if res["seconds"] > 0 else 0.0
    print(f"wrote {res['path']}: {res['count']} assets, {res['bytes']:,} bytes "
          f"({res['new_chunks']} chunks baked now, {res['seconds']:.1f}s, {rate:,.0f} assets/s)")
    return 0


def _extract_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pack", help="a .cpk content pack")
    p.add_argument("-o", "--out", required=True, help="folder to write into")
    p.add_argument("--format", default="msgpack", help="exporter id (tmj, png, json, msgpack, ...)")
    p.add_argument("--ids", nargs="+", default=None, metavar="ID", help="asset ids (default: all)")
    p.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE", help="exporter option")


def cmd_extract(args) -> int:
    from .bake import extract

    options = {k: _number(v) for k, v in parse_assignments(args.option).items()}
    paths = extract(args.pack, args.out, args.format, args.ids, options=options)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    from .serve import add_arguments  # light: the web stack is imported only by cmd_serve

    add_arguments(p)


def cmd_serve(args) -> int:
    from .serve import run  # starlette + uvicorn: the optional 'serve' extra

    return run(args)


class Command(NamedTuple):
    """A row of :data:`COMMANDS`."""

    handler: Callable[[argparse.Namespace], int]  #: runs the command, returns the exit code
    help: str  #: the line ``conjure --help`` shows
    arguments: Callable[[argparse.ArgumentParser], None]  #: adds the command's arguments to its subparser


#: Every ``conjure`` command, in ``--help`` order: the parser and :func:`main` are built from this table alone.
#: A new command is its ``_NAME_arguments`` and ``cmd_NAME`` functions above and one row here.
COMMANDS: dict[str, Command] = {
    "list": Command(cmd_list, "list generators, exporters or plugins", _list_arguments),
    "generate": Command(cmd_generate, "generate a level, character or story", _generate_arguments),
    "info": Command(cmd_info, "describe a content file", _info_arguments),
    "train": Command(cmd_train, "train a learned generator on your data", _train_arguments),
    "evaluate": Command(cmd_evaluate, "measure a generator's output quality and write a report", _evaluate_arguments),
    "demo": Command(cmd_demo, "generate a level, a cast and a story with previews into a folder", _demo_arguments),
    "bake": Command(cmd_bake, "bake many assets from a TOML spec into a content pack", _bake_arguments),
    "extract": Command(cmd_extract, "write a content pack's assets to files", _extract_arguments),
    "plugins": Command(cmd_plugins, "tools for plugin authors (conjure plugins new NAME)", _plugins_arguments),
    "serve": Command(cmd_serve, "serve generators, packs and the web playground over HTTP (localhost)",
                     _serve_arguments),
}


DEBUG_HINT = "run with --debug or CONJURE_DEBUG=1 for the traceback"


def main(argv: Sequence[str] | None = None) -> int:
    import os
    import traceback

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("CONJURE_DEBUG", "") not in ("", "0")
    if "--debug" in argv:  # anywhere on the line: full tracebacks for every error
        argv.remove("--debug")
        debug = True
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command].handler(args)
    except ConjureError as e:
        if debug:
            traceback.print_exc()
        print(f"conjure: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # e.g. `conjure generate ... -o - | head`
        return 0
    except OSError as e:  # a path problem nothing above turned into an InputError: still one line, exit 2
        if debug:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(f"conjure: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug (ours or a plugin's) nothing above named: one line, exit 1
        if debug:
            traceback.print_exc()
        from .errors import cut

        print(f"conjure: error: unexpected {type(e).__name__}: {cut(str(e).splitlines()[0] if str(e) else '')} "
              f"({DEBUG_HINT})", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
