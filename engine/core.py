"""The Engine: the one object games, tools and the CLI talk to."""
from __future__ import annotations

import math
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Mapping

from .content import Cast, Character, Content, Level, Story, KINDS
from .errors import ConjureError, GenerationError, GenerationTimeout, InputError, PluginError
from .generator import Request, describe_generator
from .params import resolve
from .plugins import PluginHost, PluginInfo
from .seeds import Seed, check_seed

#: The generator each kind uses when none is named.
DEFAULT_GENERATORS = {"level": "dungeon", "character": "classic-character", "story": "grammar-story"}
#: The level generator :meth:`Engine.world` streams when none is named (any :class:`~engine.generator.Chunked`
#: generator can be named instead).
DEFAULT_WORLD_GENERATOR = "terrain"
#: What a generator of each kind may return.
RESULT_TYPES: dict[str, tuple[type, ...]] = {"level": (Level,), "character": (Character, Cast), "story": (Story,)}
DEFAULT_TRIES = 20
#: Most tries one request may ask for (an impossible request stops after these, not after hours).
MAX_TRIES = 1000
#: The most work one request may ask for, in multiples of its generator's default request (generators that
#: implement :class:`~engine.generator.Costed`: ``cost(params)``); past it, an InputError before any work.
MAX_COST = 1000.0
#: Seconds one request may take, all tries together (``Engine(timeout=...)``, ``--timeout``); None: no limit.
DEFAULT_TIMEOUT = 120.0


def check_timeout(timeout: object, where: str = "timeout") -> float | None:
    """``timeout`` as positive finite seconds (or None); InputError otherwise."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise InputError(f"{where} must be a positive number of seconds, got {str(timeout)[:40]!r}")
    return float(timeout)


#: What each context key holds (``Engine.load_context`` builds these from files).
CONTEXT_TYPES: dict[str, tuple[type, ...]] = {"level": (Level,), "cast": (Cast,), "story": (Story,)}


def check_context(context: Any) -> dict:
    """A generation context as a dict; the known keys must hold content objects, else InputError (a
    generator must never be the first to find out that ``context["level"]`` is a string)."""
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise InputError(f"context must be a mapping of {', '.join(CONTEXT_TYPES)}, got {type(context).__name__}")
    out = {}
    for key, value in context.items():
        types = CONTEXT_TYPES.get(key)
        if types is not None and not isinstance(value, types):  # other keys: a plugin's own business
            raise InputError(f"context[{key!r}] must be a {types[0].__name__}, got {type(value).__name__}")
        out[key] = value
    return out


class _Checked:
    """A batch item already prepared (metadata, hooks) and checked, with the problems found."""

    __slots__ = ("content", "problems")

    def __init__(self, content: Content, problems: list[str]):
        self.content, self.problems = content, problems


class _Alarm(BaseException):
    """Raised by the SIGALRM handler inside a generator (a BaseException, so a plugin's ``except Exception``
    cannot swallow it); :meth:`Engine._finish` turns it into a GenerationTimeout."""


_alarm_state = threading.local()


@contextmanager
def _hard_deadline(seconds: float | None):
    """In the main thread (the CLI, a script), interrupt a generator that runs past the budget with SIGALRM;
    elsewhere (runtime and server threads) the budget is checked between tries and by ``check_deadline``."""
    if (seconds is None or threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer") or getattr(_alarm_state, "armed", False)
            or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, signal.SIG_IGN, None)):
        yield
        return

    def ring(signum, frame):
        raise _Alarm()

    old = signal.signal(signal.SIGALRM, ring)
    _alarm_state.armed = True
    try:
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        _alarm_state.armed = False


class Engine:
    """Loads plugins into a fresh plugin manager and generates, validates, exports and loads content.

    :param plugins: extra plugin objects (modules, classes, instances) to register, e.g. in tests.
    :param load: allowlist of plugin names (default: ``CONJURE_LOAD_PLUGINS`` or all); ``[]`` loads none.
    :param block: blocklist of plugin names (default: ``CONJURE_BLOCK_PLUGINS``).
    :param entry_points: also load third-party plugins from the ``conjure`` entry-point group.
    :param tries: how many attempts a request gets before the engine gives up on invalid content.
    :param strict: a start-up error when two plugins register the same id (by default the plugin loaded
        first keeps it and the later one is shown as broken, naming both).
    :param timeout: seconds one request may take, all tries together (default :data:`DEFAULT_TIMEOUT`;
        ``None``: no limit); past it, :class:`~engine.errors.GenerationTimeout`.
    """

    def __init__(self, plugins: Iterable[Any] = (), *, load: Iterable[str] | None = None,
                 block: Iterable[str] | None = None, entry_points: bool = True, tries: int = DEFAULT_TRIES,
                 env: Mapping[str, str] | None = None, strict: bool = False,
                 timeout: float | None = DEFAULT_TIMEOUT):
        self.host = PluginHost(plugins, load=load, block=block, entry_points=entry_points, env=env, strict=strict)
        self._generators = self.host.generators()
        self._exporters = self.host.exporters()
        self.host.flag_empty()
        self.tries = tries
        self.timeout = check_timeout(timeout)
        self.defaults = dict(DEFAULT_GENERATORS)
        self.world_default = DEFAULT_WORLD_GENERATOR
        self._runtime: Any = None  # the runtime service (engine.runtime.Runtime), made by runtime() on first use
        self._runtime_lock = threading.Lock()

    # ------------------------------------------------------------------ registries
    def generators(self, kind: str | None = None) -> list[Any]:
        """Registered generators (of one kind), sorted by id."""
        if kind is not None:
            self._check_kind(kind)
        return [g for _, (_, g) in sorted(self._generators.items()) if kind is None or g.kind == kind]

    def generator(self, gen_id: str, kind: str | None = None) -> Any:
        """The generator with this id; InputError naming the known ones when there is none."""
        entry = self._generators.get(gen_id)
        if entry is None or (kind is not None and entry[1].kind != kind):
            known = ", ".join(g.id for g in self.generators(kind)) or "none"
            what = f"{kind} generator" if kind else "generator"
            raise InputError(f"unknown {what} {gen_id!r} (known: {known})")
        return entry[1]

    def plugin_of(self, gen_id: str) -> str:
        return self._generators[gen_id][0]

    def exporters(self) -> list[Any]:
        return [e for _, (_, e) in sorted(self._exporters.items())]

    def plugins(self) -> list[PluginInfo]:
        return sorted(self.host.infos.values(), key=lambda i: (i.source != "built-in", i.name))

    def describe(self, gen_id: str) -> dict:
        d = describe_generator(self.generator(gen_id))
        d["plugin"] = self.plugin_of(gen_id)
        return d

    # ------------------------------------------------------------------ generation
    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")

    def request(self, kind: str, generator: str | None = None, seed: Seed = 0,
                params: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None) -> Request:
        """Build a checked request: known kind and generator, valid seed, params coerced and complete."""
        self._check_kind(kind)
        gen_id = generator or self.defaults[kind]
        gen = self.generator(gen_id, kind)
        check_seed(seed)
        checked = resolve(gen.params, params, gen.id)
        cost = getattr(gen, "cost", None)
        if callable(cost):
            try:
                units = float(cost(dict(checked)))
            except Exception as e:
                raise PluginError(f"cost raised {type(e).__name__}: {e}", self.plugin_of(gen.id), gen.id) from e
            if not units <= MAX_COST:  # NaN included
                shown = " ".join(f"{k}={v}" for k, v in checked.items() if params and k in params)
                raise InputError(f"generator {gen.id!r}: {shown or 'this request'} asks for {units:,.0f}x the "
                                 f"work of its defaults, over the {MAX_COST:,.0f}x limit (lower the sizes or "
                                 "budgets)")
        ctx = check_context(context)
        if ctx:
            from .textfilter import context_problems

            blocked = context_problems(ctx)
            if blocked:  # names from context files reach the output: they pass the same filter
                raise InputError(f"{blocked[0]} (names and lines in context files are filtered too)")
        return Request(kind, gen.id, seed, checked, ctx)

    def generate(self, kind: str, generator: str | None = None, seed: Seed = 0,
                 params: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None,
                 tries: int | None = None, timeout: float | None = None) -> Content:
        """Generate one valid piece of content; resample until it validates or ``tries`` run out, within
        ``timeout`` seconds (default: the engine's :attr:`timeout`)."""
        return self.generate_request(self.request(kind, generator, seed, params, context), tries, timeout)

    def generate_request(self, request: Request, tries: int | None = None,
                         timeout: float | None = None) -> Content:
        """Generate one valid piece of content for a request made by :meth:`request` (checked params):
        resample until it validates or ``tries`` (default: the engine's) run out. The time budget is the
        request's own :attr:`~engine.generator.Request.deadline` when it has one, else ``timeout`` seconds
        from now (default: the engine's). The runtime service and anything else that builds requests ahead
        of generating them call this."""
        return self._finish(request, None, tries, timeout)

    def generate_batch(self, kind: str, generator: str | None = None, seeds: Iterable[Seed] = (),
                       params: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None,
                       tries: int | None = None, timeout: float | None = None) -> list[Content]:
        """Generate one item per seed with the generator's ``generate_batch`` (one pass for learned ones);
        items that fail validation are resampled one by one. Same results as calling ``generate`` per seed."""
        reqs = [self.request(kind, generator, s, params, context) for s in seeds]
        if not reqs:
            return []
        gen = self.generator(reqs[0].generator)
        plugin = self.plugin_of(gen.id)
        batch = getattr(gen, "generate_batch", None)
        if batch is None:
            firsts: list[Any] = [None] * len(reqs)
        else:
            try:
                firsts = list(batch(reqs))
            except ConjureError:
                raise
            except Exception as e:
                raise PluginError(f"generate_batch raised {type(e).__name__}: {e}", plugin, gen.id) from e
            if len(firsts) != len(reqs):
                raise PluginError(f"generate_batch returned {len(firsts)} items for {len(reqs)} requests",
                                  plugin, gen.id)
            if callable(getattr(gen, "validate_batch", None)):  # BatchValidator: first tries checked at once
                firsts = [self._prepare(f, r, 0, gen, plugin) for r, f in zip(reqs, firsts)]
                found = self.problems_batch(firsts, reqs)
                return [self._finish(r, _Checked(f, p), tries, timeout) for r, f, p in zip(reqs, firsts, found)]
        return [self._finish(r, f, tries, timeout) for r, f in zip(reqs, firsts)]

    def _finish(self, req: Request, first: Any, tries: int | None, timeout: float | None = None) -> Content:
        gen = self.generator(req.generator)
        plugin = self.plugin_of(gen.id)
        tries = self.tries if tries is None else tries
        if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= MAX_TRIES:
            raise InputError(f"tries must lie in 1..{MAX_TRIES}, got {str(tries)[:40]}")
        budget = check_timeout(timeout) if timeout is not None else self.timeout
        if req.deadline is None and budget is not None:
            req = req.with_timeout(budget)
        try:
            with _hard_deadline(req.time_left()):
                return self._attempts(req, first, tries, gen, plugin)
        except (_Alarm, GenerationTimeout):
            spent = f"{budget:g} s " if budget is not None else ""
            raise GenerationTimeout(f"plugin {plugin!r}, generator {gen.id!r} made no valid {req.kind} within its "
                                    f"{spent}time budget (seed {req.seed!r}; a larger --timeout or timeout= "
                                    "gives it longer)") from None

    def _attempts(self, req: Request, first: Any, tries: int, gen: Any, plugin: str) -> Content:
        problems: list[str] = []
        for attempt in range(tries):
            req.check_deadline()
            if attempt:
                req = req.retry()
            if attempt == 0 and isinstance(first, _Checked):  # prepared and checked with the batch
                content, problems = first.content, first.problems
            else:
                content = first if attempt == 0 and first is not None else self._generate_once(gen, req, plugin)
                content = self._prepare(content, req, attempt, gen, plugin)
                problems = self.problems(content, req)
            if not problems:
                return content
        raise GenerationError(f"plugin {plugin!r}, generator {gen.id!r} made no valid {req.kind} in {tries} tries "
                              f"(seed {req.seed!r}): {problems[0]}")

    def _prepare(self, content: Any, req: Request, attempt: int, gen: Any, plugin: str) -> Content:
        """A generated item checked for its type, stamped with its metadata and post-processed by the hooks."""
        while True:
            if not isinstance(content, RESULT_TYPES[req.kind]):
                want = " or ".join(t.__name__ for t in RESULT_TYPES[req.kind])
                raise PluginError(f"generate returned {type(content).__name__}, expected {want}", plugin, gen.id)
            content.metadata.update({"generator": gen.id, "generator_version": gen.version,
                                     "seed": req.seed, "params": dict(req.params), "tries": attempt + 1})
            if not self.host.process(req.kind, content, req):
                return content
            content = self._generate_once(gen, req, plugin)  # a hook raised: its plugin is out; again

    @staticmethod
    def _generate_once(gen: Any, req: Request, plugin: str) -> Any:
        try:
            return gen.generate(req)
        except ConjureError:
            raise
        except Exception as e:
            text = str(e)
            if isinstance(e, RuntimeError) and "Error(s) in loading state_dict" in text:
                # torch's load_state_dict: the weights the user gave (or a stale file), not the plugin
                lines = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
                given = req.params.get("weights") if isinstance(req.params, dict) else None
                what = f"weights {given}" if given else "its weights"
                raise InputError(f"generator {gen.id!r}: {what} do not fit the model "
                                 f"({'; '.join(lines[:2]) or text.splitlines()[0]})") from e
            raise PluginError(f"generate raised {type(e).__name__}: {e}", plugin, gen.id) from e

    def problems(self, content: Content, request: Request | None = None) -> list[str]:
        """Every problem found: the content's schema checks, then its generator's validators."""
        try:
            out = content.problems()
        except Exception as e:  # malformed objects from plugins (e.g. wrong attribute types)
            return [f"content could not be checked: {type(e).__name__}: {e}"]
        if not out:  # every text field of every character and story, whatever produced it
            from .textfilter import content_problems

            out = content_problems(content)
        if out or request is None:
            return out
        gen = self.generator(request.generator)
        validate = getattr(gen, "validate", None)
        if validate is None:
            return []
        try:
            return list(validate(content, request))
        except Exception as e:
            raise PluginError(f"validate raised {type(e).__name__}: {e}", self.plugin_of(gen.id), gen.id) from e

    def problems_batch(self, contents: list[Content], requests: list[Request]) -> list[list[str]]:
        """:meth:`problems` for many items of one generator: the schema and text checks per item, then one
        ``validate_batch`` call (the :class:`~engine.generator.BatchValidator` protocol) for the items that
        passed them, else ``validate`` per item. The same lists as :meth:`problems` item by item."""
        out: list[list[str]] = []
        todo: list[int] = []
        for k, c in enumerate(contents):
            found = self.problems(c, None)
            out.append(found)
            if not found:
                todo.append(k)
        if not todo:
            return out
        gen = self.generator(requests[0].generator)
        many = getattr(gen, "validate_batch", None)
        if not callable(many):
            for k in todo:
                out[k] = self.problems(contents[k], requests[k])
            return out
        try:
            got = [list(p) for p in many([contents[k] for k in todo], [requests[k] for k in todo])]
        except Exception as e:
            raise PluginError(f"validate_batch raised {type(e).__name__}: {e}", self.plugin_of(gen.id), gen.id) from e
        if len(got) != len(todo):
            raise PluginError(f"validate_batch returned {len(got)} lists for {len(todo)} items",
                              self.plugin_of(gen.id), gen.id)
        for k, p in zip(todo, got):
            out[k] = p
        return out

    # ------------------------------------------------------------------ files
    def exporter(self, fmt: str) -> Any:
        entry = self._exporters.get(fmt)
        if entry is None:
            known = ", ".join(sorted(self._exporters)) or "none"
            raise InputError(f"unknown format {fmt!r} (known: {known})")
        return entry[1]

    def exporter_for(self, path: str | os.PathLike | None, fmt: str | None = None, kind: str | None = None,
                     need: str = "export") -> Any:
        """Pick an exporter by ``--format`` id, else by the longest matching file extension."""
        if fmt:
            exp = self.exporter(fmt)
        else:
            name = Path(path).name.lower() if path is not None else ""
            best, best_len = None, 0
            for e in self.exporters():
                if kind is not None and kind not in e.kinds:
                    continue
                if need == "load" and not callable(getattr(e, "load", None)):
                    continue
                for ext in e.extensions:
                    if name.endswith(ext.lower()) and len(ext) > best_len:
                        best, best_len = e, len(ext)
            if best is None:
                exts = sorted({x for e in self.exporters() if kind is None or kind in e.kinds
                               for x in e.extensions if need != "load" or callable(getattr(e, "load", None))})
                what = f"{kind} " if kind else ""
                verb = "read" if need == "load" else "write"
                known = f"known extensions: {', '.join(exts)}" if exts else "no formats are loaded"
                raise InputError(f"{path}: no format can {verb} {what}files named like this "
                                 f"({known}; or pass a format)")
            exp = best
        if kind is not None and kind not in exp.kinds:
            raise InputError(f"format {exp.id!r} does not take {kind} content (it takes {', '.join(exp.kinds)})")
        if need == "load" and not callable(getattr(exp, "load", None)):
            raise InputError(f"format {exp.id!r} can be written but not read")
        return exp

    def export(self, content: Content, path: str | os.PathLike, format: str | None = None,
               **options: Any) -> list[Path]:
        """Write content to ``path`` through the exporter chosen by ``format`` or the extension.

        Returns the files written (an exporter may write several, e.g. a map and its tileset image).
        """
        exp = self.exporter_for(path, format, content.KIND)
        self._check_options(exp, options)
        try:
            return list(exp.export(content, Path(path), options))
        except ConjureError:
            raise
        except OSError as e:  # the destination, not the plugin: a missing folder, a file in the way, no space
            detail = e.strerror or type(e).__name__
            if e.filename and not Path(str(e.filename)).name.startswith("."):  # name the culprit, not a temp file
                detail = f"{e.filename}: {detail}"
            raise InputError(f"{path}: cannot write ({detail})") from None
        except Exception as e:
            raise PluginError(f"exporter {exp.id!r} raised {type(e).__name__}: {e}", self._exporters[exp.id][0]) from e

    @staticmethod
    def _check_options(exp: Any, options: Mapping[str, Any]) -> None:
        known = getattr(exp, "options", None)
        if known is None:
            return
        unknown = sorted(k for k in options if k not in known)
        if unknown:
            listed = ", ".join(known) or "none"
            raise InputError(f"format {exp.id!r} has no option {unknown[0]!r} (its options: {listed})")

    def dumps(self, content: Content, format: str, **options: Any) -> bytes:
        """Serialize to bytes through a single-file exporter (used for ``-o -``)."""
        exp = self.exporter_for(None, format, content.KIND)
        self._check_options(exp, options)
        from .generator import Exporter

        if not callable(getattr(exp, "dumps", None)) or getattr(type(exp), "dumps", None) is Exporter.dumps:
            raise InputError(f"format {exp.id!r} writes several files and cannot go to stdout")
        plugin = self._exporters[exp.id][0]
        try:
            data = exp.dumps(content, options)
        except ConjureError:
            raise
        except Exception as e:
            raise PluginError(f"exporter {exp.id!r} dumps raised {type(e).__name__}: {e}", plugin) from e
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise PluginError(f"exporter {exp.id!r} dumps returned {type(data).__name__}, expected bytes", plugin)
        return bytes(data)

    def load(self, path: str | os.PathLike, format: str | None = None) -> Content:
        """Read content from a file through the importer chosen by ``format`` or the extension."""
        exp = self.exporter_for(path, format, None, need="load")
        try:
            content = exp.load(Path(path))
        except ConjureError:
            raise
        except Exception as e:
            raise InputError(f"{path}: cannot be read as {exp.id}: {type(e).__name__}: {e}") from e
        if not isinstance(content, Content):
            raise PluginError(f"importer {exp.id!r} returned {type(content).__name__}", self._exporters[exp.id][0])
        return content

    def load_context(self, paths: Iterable[str | os.PathLike]) -> dict:
        """Build a generation context from files: a level, a cast (characters gather into one), a story."""
        ctx: dict[str, Any] = {}
        for p in paths:
            c = self.load(p)
            if isinstance(c, Level):
                ctx["level"] = c
            elif isinstance(c, Cast):
                ctx.setdefault("cast", Cast([])).characters.extend(c.characters)
            elif isinstance(c, Character):
                ctx.setdefault("cast", Cast([])).characters.append(c)
            elif isinstance(c, Story):
                ctx["story"] = c
        return ctx

    # ------------------------------------------------------------------ runtime service and packs
    def runtime(self, workers: int | None = None, cache_items: int | None = None):
        """The background generation service (:class:`engine.runtime.Runtime`) this engine owns, made on first
        use (thread-safe; ``workers`` and ``cache_items`` count only then) and again after :meth:`close`."""
        rt = self._runtime
        if rt is not None and not rt.closed:
            return rt
        from .runtime import DEFAULT_CACHE_ITEMS, DEFAULT_WORKERS, Runtime

        with self._runtime_lock:
            if self._runtime is None or self._runtime.closed:
                self._runtime = Runtime(self, workers or DEFAULT_WORKERS,
                                        DEFAULT_CACHE_ITEMS if cache_items is None else cache_items)
            return self._runtime

    def submit(self, kind: str, generator: str | None = None, seed: Seed = 0,
               params: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None,
               tries: int | None = None, timeout: float | None = None):
        """Generate in a background thread: returns a ``concurrent.futures.Future`` of the content, cached
        by (generator, version, seed, params, context). Bad requests raise here, at once. ``timeout``: the
        request's time budget in seconds from now (default: the engine's :attr:`timeout`)."""
        return self.runtime().submit(kind, generator, seed, params, context, tries, timeout=timeout)

    def world(self, seed: Seed, chunk_size: int = 64, params: Mapping[str, Any] | None = None,
              generator: str | None = None, prefetch: int = 1):
        """A streaming world of seamless chunks (:class:`engine.runtime.World`) of a
        :class:`~engine.generator.Chunked` level generator (default :attr:`world_default`, ``terrain``)."""
        return self.runtime().world(seed, chunk_size, params, generator, prefetch)

    def open_pack(self, path: str | os.PathLike, verify: bool = True, validate: bool = False):
        """Random access to a content pack (:class:`engine.packs.PackReader`)."""
        from .packs import open_pack

        return open_pack(path, verify=verify, validate=validate)

    def close(self, timeout: float | None = None) -> bool:
        """Stop the runtime's threads (if it was started): queued work is cancelled; running work is waited
        for, at most ``timeout`` seconds when given. True when every runtime thread has stopped."""
        with self._runtime_lock:
            rt, self._runtime = self._runtime, None
        if rt is not None:
            return rt.close(timeout=timeout)
        return True
