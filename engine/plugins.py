"""Plugin loading and the typed façade over pluggy.

Built-in plugins are the modules in :data:`DEFAULT_PLUGINS`; third-party plugins are entry points of the
group ``conjure``. Both are registered with the same ``pm.register``. Environment:

- ``CONJURE_LOAD_PLUGINS``: comma-separated allowlist of plugin names (built-ins match ``plugins.dungeon``
  or ``dungeon``); an empty string loads none. Unset loads all.
- ``CONJURE_BLOCK_PLUGINS``: comma-separated blocklist, applied after the allowlist.
- ``CONJURE_TRACE_PLUGINS=1``: print every hook call and result to stderr.

Engine code calls hooks only through :class:`PluginHost`. A plugin that fails to import, raises in a
registration hook or registers something malformed is recorded as broken (``conjure list plugins`` shows
why) and the others keep working; a duplicate generator or exporter id is a startup error naming both.
"""
from __future__ import annotations

import importlib
import re
import importlib.metadata
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import pluggy

from . import hookspecs
from .content import KINDS
from .errors import PluginError
from .generator import ID_RE
from .params import check_schema
from .resources import conjure_version

DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.formats",
    "plugins.terrain",
    "plugins.dungeon",
    "plugins.platformer",
    "plugins.dungeon_vae",
    "plugins.platformer_gan",
    "plugins.level_lm",
    "plugins.classic_character",
    "plugins.character_ml",
    "plugins.atlas",
    "plugins.grammar_story",
    "plugins.story_lm",
    "plugins.ink",
    "plugins.tiled",
    "plugins.vglc",
    "plugins.ldtk",
)

ENTRY_POINT_GROUP = "conjure"
GENERATOR_HOOKS = {
    "level": "register_level_generators",
    "character": "register_character_generators",
    "story": "register_story_generators",
}
PROCESS_HOOKS = {"level": "process_level", "character": "process_character", "story": "process_story"}


@dataclass
class PluginInfo:
    """What ``conjure list plugins`` shows for one plugin."""

    name: str
    source: str  # "built-in", "distribution <name>", or "object"
    version: str = ""
    status: str = "ok"  # ok | broken | blocked | empty (loaded, but registered nothing and has no hooks)
    errors: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "version": self.version, "status": self.status,
                "errors": list(self.errors), "registered": list(self.registered)}


def _env_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _matches(name: str, patterns: Iterable[str]) -> bool:
    short = name.rsplit(".", 1)[-1]
    return any(p in (name, short) for p in patterns)


#: Seconds a third-party plugin may take to import in the probe (``CONJURE_PROBE_TIMEOUT``).
PROBE_TIMEOUT = 30.0
_PROBE = r"""
import importlib, sys
try:
    importlib.import_module(sys.argv[1])
except BaseException as e:
    print("CONJURE-PROBE-RAISED", type(e).__name__, flush=True)
    sys.exit(0)
print("CONJURE-PROBE-OK", flush=True)
"""


def _probe_cache(env: Mapping[str, str]) -> "Path | None":
    from pathlib import Path

    base = env.get("CONJURE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "conjure")
    return Path(base) / "plugin-probes.json"


def probe_entry_point(ep: Any, env: Mapping[str, str]) -> str | None:
    """Import a third-party plugin's module once in a child process (cached per distribution version and
    module file): returns why it must not be imported here (it ended the process, hung, or raised
    KeyboardInterrupt), or None when importing it here is safe. A plain exception at import is left to the
    in-process import, which reports it as usual. ``CONJURE_PROBE=0`` turns the probe off."""
    import importlib.util
    import json
    import subprocess

    if env.get("CONJURE_PROBE", "1") == "0":
        return None
    module = ep.value.split(":", 1)[0].strip()
    try:
        spec = importlib.util.find_spec(module.split(".", 1)[0])  # a top-level lookup imports nothing
        origin = spec.origin if spec is not None else None
        stamp = os.stat(origin).st_mtime_ns if origin and os.path.exists(origin) else 0
    except (ImportError, ValueError, OSError):
        origin, stamp = None, 0
    key = f"{ep.dist.name}=={ep.dist.version} {ep.value} {origin} {stamp} {sys.executable}"
    cache = _probe_cache(env)
    try:
        known = json.loads(cache.read_text("utf-8")) if cache is not None and cache.is_file() else {}
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key] or None
    try:
        timeout = float(env.get("CONJURE_PROBE_TIMEOUT", PROBE_TIMEOUT))
    except ValueError:
        timeout = PROBE_TIMEOUT
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True,
                           timeout=timeout, env=dict(env), stdin=subprocess.DEVNULL)
        out = r.stdout.splitlines()
        if "CONJURE-PROBE-OK" in out or any(ln.startswith("CONJURE-PROBE-RAISED") and "KeyboardInterrupt" not in ln
                                            and "SystemExit" not in ln for ln in out):
            verdict = ""  # safe to import here (an ordinary exception is caught and reported in-process)
        elif any("KeyboardInterrupt" in ln for ln in out):
            verdict = f"failed to load: importing {module} raised KeyboardInterrupt (found in a separate process)"
        elif any("SystemExit" in ln for ln in out):
            verdict = ""  # SystemExit is caught in-process too
        else:
            how = f"killed by signal {-r.returncode}" if r.returncode < 0 else f"exit code {r.returncode}"
            verdict = (f"failed to load: importing {module} ended the process ({how}; found in a separate "
                       "process, so nothing else was taken down)")
    except subprocess.TimeoutExpired:
        verdict = (f"failed to load: importing {module} did not finish within {timeout:g} s (found in a separate "
                   "process; CONJURE_PROBE_TIMEOUT sets the limit)")
    except OSError:
        return None
    if cache is not None:
        known[key] = verdict
        try:
            from .serialize import atomic_write

            atomic_write(cache, json.dumps(known, indent=1, sort_keys=True).encode())
        except Exception:  # an unwritable cache only costs the probe again next time
            pass
    return verdict or None


class PluginHost:
    """A fresh pluggy manager with Conjure's hookspecs, the loaded plugins and their registries."""

    def __init__(self, plugins: Iterable[Any] = (), *, load: Iterable[str] | None = None,
                 block: Iterable[str] | None = None, entry_points: bool = True,
                 env: Mapping[str, str] | None = None, strict: bool = False):
        env = os.environ if env is None else env
        self.strict = strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        allow = list(load) if load is not None else _env_list(env.get("CONJURE_LOAD_PLUGINS"))
        deny = list(block) if block is not None else (_env_list(env.get("CONJURE_BLOCK_PLUGINS")) or [])
        if env.get("CONJURE_TRACE_PLUGINS", "") not in ("", "0"):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()

        def wanted(name: str) -> bool:
            if allow is not None and not _matches(name, allow):
                return False
            if _matches(name, deny):
                self.infos[name] = PluginInfo(name, "", status="blocked")
                return False
            return True

        version = conjure_version()
        for modname in DEFAULT_PLUGINS:
            if wanted(modname):
                self._add(modname, "built-in", version, lambda m=modname: importlib.import_module(m))
        if entry_points:
            for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                if wanted(ep.name) and ep.name not in self.infos:
                    dist = ep.dist
                    src = f"distribution {dist.name}" if dist else "entry point"
                    verdict = probe_entry_point(ep, env) if dist is not None else None
                    if verdict:  # importing it would end or hang this process: never imported here
                        self.infos[ep.name] = PluginInfo(ep.name, src, dist.version, status="broken",
                                                         errors=[verdict])
                        continue
                    self._add(ep.name, src, dist.version if dist else "", ep.load)
        for obj in plugins:
            name = getattr(obj, "__name__", None) or type(obj).__name__
            if name in self.infos:
                name = f"{name}-{id(obj):x}"
            self._add(name, "object", "", lambda o=obj: o)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as e:  # pragma: no cover - _add checks each plugin already
            raise PluginError(str(e)) from None
        self._callers: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------------ loading
    def _add(self, name: str, source: str, version: str, load: Callable[[], Any]) -> None:
        info = self.infos[name] = PluginInfo(name, source, version)
        try:
            obj = load()
        except (Exception, SystemExit) as e:  # a plugin that fails to import (or exits) must not take us down
            info.status = "broken"
            info.errors.append(f"failed to load: {type(e).__name__}: {e}")
            return
        try:
            self.pm.register(obj, name=name)
        except (pluggy.PluginValidationError, ValueError) as e:
            info.status = "broken"
            info.errors.append(f"invalid plugin: {_one_line_validation(e)}")
            return
        # unknown hook names (typos like ``register_level_generator``) are errors, named per plugin
        for hookcaller in self.pm.get_hookcallers(obj) or []:
            optional = all(i.opts.get("optionalhook") for i in hookcaller.get_hookimpls() if i.plugin is obj)
            if not hookcaller.has_spec() and not optional:
                self.pm.unregister(obj)
                info.status = "broken"
                info.errors.append(f"implements unknown hook {hookcaller.name!r}")
                return

    def plugin_names(self, hook: str) -> list[str]:
        """Names of loaded plugins that implement ``hook``, in call order."""
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        return [i.plugin_name for i in reversed(impls)]

    def _caller(self, hook: str, plugin_name: str):
        key = (hook, plugin_name)
        caller = self._callers.get(key)
        if caller is None:
            keep = self.pm.get_plugin(plugin_name)
            others = [p for p in self.pm.get_plugins() if p is not keep]
            caller = self._callers[key] = self.pm.subset_hook_caller(hook, others)
        return caller

    def call_each(self, hook: str, **kwargs: Any):
        """Call ``hook`` plugin by plugin, yielding ``(plugin_name, result_or_exception)``."""
        for name in self.plugin_names(hook):
            try:
                yield name, self._caller(hook, name)(**kwargs)
            except Exception as e:  # isolate one plugin's failure
                yield name, e

    def broken(self, name: str, message: str) -> None:
        info = self.infos[name]
        info.status = "broken"
        info.errors.append(message)

    # ------------------------------------------------------------------ registries
    def collect(self, hook: str, check: Callable[[Any], None]) -> list[tuple[str, Any]]:
        """Run a registration hook per plugin, in registration order (built-ins first); return
        (plugin, object) pairs that pass ``check``."""
        out: list[tuple[str, Any]] = []
        for name in reversed(self.plugin_names(hook)):
            got: list[Any] = []
            try:
                self._caller(hook, name)(register=got.append)
            except Exception as e:
                self.broken(name, f"{hook} raised {type(e).__name__}: {e}")
                continue
            for obj in got:
                try:
                    check(obj)
                except Exception as e:  # incl. properties that raise: the plugin, not the engine, is broken
                    try:
                        label = repr(getattr(obj, "id", None))
                    except Exception:
                        label = type(obj).__name__
                    self.broken(name, f"{hook}: malformed registration {label}: {e}")
                    continue
                out.append((name, obj))
        return out

    def _duplicate(self, what: str, oid: str, first: str, plugin: str, generator: str | None = None) -> None:
        """Two plugins registered one id. The first registered (built-ins load first) keeps it; the later
        plugin is marked broken, naming both — or, with ``strict``, start-up fails naming both."""
        message = f"{what} id {oid!r} is registered by both plugin {first!r} and plugin {plugin!r}"
        if self.strict:
            raise PluginError(message, plugin=plugin, generator=generator)
        self.broken(plugin, f"{message}; plugin {plugin!r}'s {what} was skipped")

    def generators(self) -> dict[str, tuple[str, Any]]:
        """id -> (plugin name, generator) for every kind (see :meth:`_duplicate` for clashing ids)."""
        reg: dict[str, tuple[str, Any]] = {}
        for kind, hook in GENERATOR_HOOKS.items():
            for plugin, gen in self.collect(hook, lambda g, k=kind: check_generator(g, k)):
                if gen.id in reg:
                    self._duplicate("generator", gen.id, reg[gen.id][0], plugin, gen.id)
                    continue
                reg[gen.id] = (plugin, gen)
                self.infos[plugin].registered.append(f"{kind} generator {gen.id}")
        return reg

    def exporters(self) -> dict[str, tuple[str, Any]]:
        reg: dict[str, tuple[str, Any]] = {}
        for plugin, exp in self.collect("register_exporters", check_exporter):
            if exp.id in reg:
                self._duplicate("exporter", exp.id, reg[exp.id][0], plugin)
                continue
            reg[exp.id] = (plugin, exp)
            self.infos[plugin].registered.append(f"exporter {exp.id}")
        return reg

    def process(self, kind: str, content: Any, request: Any) -> list[str]:
        """Run the post-processing hook for ``kind``. An installed plugin (built-in or from a distribution)
        whose hook raises is marked broken (with a warning naming it) and unregistered, so it cannot break
        every generator; returns the names of the plugins broken now (the engine then makes that attempt again
        without them: the content may have been half-processed). A plugin object passed to ``Engine(plugins=)``
        is the caller's own code: its failure is raised as a PluginError naming it."""
        hook = PROCESS_HOOKS[kind]  # its content argument is named after the kind: process_level(level, request)
        failed = []
        for name, result in self.call_each(hook, **{kind: content, "request": request}):
            if isinstance(result, Exception):
                message = f"{hook} raised {type(result).__name__}: {result}"
                if self.infos[name].source == "object":
                    raise PluginError(message, plugin=name, generator=request.generator) from result
                self.broken(name, message)
                failed.append(name)
                import warnings

                warnings.warn(f"plugin {name!r} is broken and was unloaded: {message} (generating "
                              f"{request.kind} with {request.generator!r})", RuntimeWarning, stacklevel=2)
        for name in failed:
            plugin = self.pm.get_plugin(name)
            if plugin is not None:
                self.pm.unregister(plugin)
            self._callers.clear()
        return failed

    def flag_empty(self) -> None:
        """Mark plugins that loaded but registered nothing and implement no hook: almost always a module
        whose functions lack ``@engine.hookimpl``."""
        for name, info in self.infos.items():
            if info.status != "ok" or info.registered or info.source == "object":
                continue
            plugin = self.pm.get_plugin(name)
            if plugin is not None and not self.pm.get_hookcallers(plugin):
                info.status = "empty"
                info.errors.append("registered nothing; forgot @engine.hookimpl?")


def _one_line_validation(e: Exception) -> str:
    """pluggy's three-line validation message as one line: which hook, what the spec takes, what was asked."""
    text = str(e)
    m = re.search(r"for hook '(\w+)'\s*hookimpl definition: (\S+\(.*?\))\s*Argument\(s\) (\{.*?\}) are declared",
                  text, re.S)
    spec = getattr(hookspecs, m.group(1), None) if m else None
    if m and spec is not None:
        import inspect

        want = ", ".join(p for p in inspect.signature(spec).parameters)
        return (f"hook {m.group(1)}({want}) is implemented as {m.group(2)}: argument(s) {m.group(3)} are not "
                f"in the hookspec (a typo? argument names must match)")
    return " ".join(text.split())


def check_generator(gen: Any, kind: str) -> None:
    gid = getattr(gen, "id", None)
    if not isinstance(gid, str) or not ID_RE.match(gid):
        raise ValueError(f"id must be a lowercase string like 'my-dungeon', got {gid!r}")
    if getattr(gen, "kind", None) != kind:
        raise ValueError(f"kind is {getattr(gen, 'kind', None)!r} but it was registered as a {kind} generator")
    if kind not in KINDS:  # pragma: no cover
        raise ValueError(f"unknown kind {kind!r}")
    version = getattr(gen, "version", None)
    if not isinstance(version, str) or not version:
        raise ValueError(f"version must be a non-empty string, got {version!r}")
    check_schema(getattr(gen, "params", ()))
    if not callable(getattr(gen, "generate", None)):
        raise ValueError("has no generate(request) method")


def check_exporter(exp: Any) -> None:
    eid = getattr(exp, "id", None)
    if not isinstance(eid, str) or not ID_RE.match(eid):
        raise ValueError(f"id must be a lowercase string, got {eid!r}")
    kinds = getattr(exp, "kinds", None)
    if not isinstance(kinds, tuple) or not kinds or not all(k in KINDS for k in kinds):
        raise ValueError(f"kinds must be a tuple drawn from {KINDS}, got {kinds!r}")
    exts = getattr(exp, "extensions", None)
    if not isinstance(exts, tuple) or not all(isinstance(e, str) and e.startswith(".") for e in exts):
        raise ValueError(f"extensions must be a tuple like ('.tmj',), got {exts!r}")
    if not callable(getattr(exp, "export", None)):
        raise ValueError("has no export(content, path, options) method")
