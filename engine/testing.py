"""pytest helpers for plugin authors (a pytest plugin: ``pytest11`` entry point ``conjure``).

Fixtures:

- ``conjure_engine``: a factory, ``conjure_engine(*plugins, builtins=False)`` -> a fresh :class:`Engine` with
  only the given plugin objects (modules, classes, instances) registered; no entry points, and the
  built-in plugins only with ``builtins=True``. ``CONJURE_*`` environment variables are ignored.
- ``check_generator``: the function :func:`check_generator` below.

:func:`check_generator` checks a generator's contract in one call: params (declared, defaults valid,
out-of-range values rejected by the engine before anything runs), determinism (byte-identical msgpack for
the same seed and params, whatever the global ``random``/``numpy`` state; optionally in a fresh process),
every output valid (``engine.problems``) and surviving a msgpack round trip, and ``generate_batch`` giving
the same content as one request at a time.

Use it without pytest too: ``from engine.testing import make_engine, check_generator`` works when pytest is
not installed (only the two fixtures need pytest; nothing else does). A failure raises :class:`ContractError`
chained to the error that caused it (``raise ... from err``), so the traceback still reaches the line of your
generator that failed.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

try:  # the fixtures need pytest; make_engine and check_generator do not
    import pytest
except ImportError:  # pragma: no cover - exercised by a test in a child process without pytest
    pytest = None

from .core import Engine
from .errors import ConjureError, InputError
from .serialize import dumps, loads

DEFAULT_SEEDS: tuple = (0, 1, 7, "conjure")


def make_engine(*plugins: Any, builtins: bool = False, tries: int | None = None) -> Engine:
    """A fresh Engine with only ``plugins`` (plus the built-ins when ``builtins``); no entry points."""
    kwargs = {} if tries is None else {"tries": tries}
    return Engine(plugins, load=None if builtins else [], entry_points=False, env={}, **kwargs)


def conjure_engine():
    """Factory fixture: ``conjure_engine(*plugins, builtins=False)`` -> a fresh Engine with those plugins."""
    return make_engine


if pytest is not None:
    conjure_engine = pytest.fixture(conjure_engine)


@dataclass
class GeneratorReport:
    """What :func:`check_generator` checked (handy to print or to assert more on)."""

    generator: str
    version: str
    cases: int = 0
    params_checked: list[str] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)


class ContractError(AssertionError):
    """A generator broke its contract; the message names the generator and the case."""


def _fail(gen_id: str, message: str) -> ContractError:
    return ContractError(f"generator {gen_id!r}: {message}")


def _bad_values(p) -> list[Any]:
    """Values the engine must refuse for param ``p`` (outside its range, wrong type, unknown choice)."""
    bad: list[Any] = []
    if p.type in ("int", "float"):
        step = 1 if p.type == "int" else 1e-6 * max(1.0, abs(p.min or 0), abs(p.max or 0))
        if p.min is not None:
            bad.append(p.min - step)
        if p.max is not None:
            bad.append(p.max + step)
        bad.append("not a number")
    elif p.type == "bool":
        bad.append("maybe")
    elif p.type == "choice":
        bad.append("\x00not-a-choice")
    elif p.type == "str":
        bad.append(12345)
    return bad


def _global_noise(n: int) -> None:
    """Put the global RNGs in a state depending on ``n``: output that changes with it used global state."""
    random.seed(n)
    np.random.seed(n)  # noqa: NPY002 - deliberately disturbing the legacy global state
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(n)


def _key(seed: Any, params: Mapping[str, Any]) -> str:
    return json.dumps([seed, dict(params)], sort_keys=True, default=str)


def check_generator(engine: Engine, generator_id: str, seeds: Iterable[Any] = DEFAULT_SEEDS,
                    params_cases: Sequence[Mapping[str, Any]] = ({},), *, context: Mapping | None = None,
                    batch: bool = True, subprocess_plugins: Sequence[str] | bool = False,
                    tries: int | None = None) -> GeneratorReport:
    """Check the contract of ``generator_id`` as registered in ``engine``; raise AssertionError if broken.

    :param seeds: seeds to try (ints and strings).
    :param params_cases: parameter dicts to try, each with every seed; ``{}`` means the defaults.
    :param context: a generation context passed with every request.
    :param batch: also check that ``engine.generate_batch`` equals generating one seed at a time.
    :param subprocess_plugins: also regenerate in a fresh Python process (with another hash seed) and
        compare bytes: ``True`` builds the default ``Engine()`` there (built-ins and installed entry
        points); a list of module names registers just those modules (``["my_plugin"]``).
    :param tries: passed to ``engine.generate``.
    :return: a :class:`GeneratorReport`.
    """
    try:
        gen = engine.generator(generator_id)
    except InputError as e:
        broken = [f"{i.name}: {'; '.join(i.errors)}" for i in engine.plugins() if i.status == "broken"]
        more = f" (broken plugins: {' | '.join(broken)})" if broken else ""
        raise _fail(generator_id, f"not registered: {e}{more}") from None
    kind = gen.kind
    seeds = list(seeds)
    if not seeds:
        raise ValueError("check_generator needs at least one seed")
    report = GeneratorReport(generator_id, gen.version)

    # ---- params: declared, defaults valid, bad values refused before the generator runs
    defaults = engine.request(kind, generator_id).params
    for p in gen.params:
        if p.name not in defaults:
            raise _fail(generator_id, f"param {p.name!r} is declared but not in a resolved request")
        for bad in _bad_values(p):
            try:
                engine.request(kind, generator_id, params={p.name: bad})
            except InputError as e:
                if p.name not in str(e) or generator_id not in str(e):
                    raise _fail(generator_id, f"the error for param {p.name}={bad!r} names neither "
                                f"the param nor the generator: {e}") from None
            else:
                raise _fail(generator_id, f"param {p.name}={bad!r} was accepted; it must be refused")
        report.params_checked.append(p.name)
    try:
        engine.request(kind, generator_id, params={"\x00no-such-param": 1})
    except InputError:
        pass
    else:  # pragma: no cover - the engine does this, not the plugin
        raise _fail(generator_id, "an unknown parameter was accepted")

    # ---- determinism, validity, round trip
    state = (random.getstate(), np.random.get_state())  # noqa: NPY002
    try:
        for params in params_cases:
            for seed in seeds:
                where = f"seed {seed!r}, params {dict(params)!r}"
                blobs = []
                for noise in (1, 2):
                    _global_noise(noise)
                    try:
                        content = engine.generate(kind, generator_id, seed, params, context, tries=tries)
                    except ConjureError as e:  # chained: the traceback keeps the author's frame
                        raise _fail(generator_id, f"{where}: {e}") from e
                    problems = engine.problems(content, engine.request(kind, generator_id, seed, params,
                                                                       context))
                    if problems:
                        raise _fail(generator_id, f"{where}: output fails validation: {problems[0]}")
                    if content.metadata.get("generator_version") != gen.version:
                        raise _fail(generator_id, f"{where}: metadata lacks generator_version")
                    blobs.append(dumps(content, "msgpack"))
                if blobs[0] != blobs[1]:
                    raise _fail(generator_id, f"{where}: not deterministic: the same request gave different "
                                "bytes (use request.rng(), never global random state or time)")
                back = loads(blobs[0], "msgpack", f"<{generator_id} {where}>")
                if dumps(back, "msgpack") != blobs[0]:
                    raise _fail(generator_id, f"{where}: content changes in a msgpack round trip")
                report.digests[_key(seed, params)] = blobs[0].hex()
                report.cases += 1

            if batch:
                try:
                    got = engine.generate_batch(kind, generator_id, seeds, params, context, tries=tries)
                except ConjureError as e:
                    raise _fail(generator_id, f"generate_batch with params {dict(params)!r}: {e}") from e
                for seed, content in zip(seeds, got):
                    if dumps(content, "msgpack").hex() != report.digests[_key(seed, params)]:
                        raise _fail(generator_id, f"generate_batch differs from generate for seed {seed!r}, "
                                    f"params {dict(params)!r}")
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])  # noqa: NPY002

    if subprocess_plugins:
        _check_in_subprocess(generator_id, kind, seeds, params_cases, context, subprocess_plugins, tries,
                             report)
    return report


_CHILD = r"""
import importlib, json, sys
from engine.core import Engine
from engine.serialize import dumps
spec = json.loads(sys.argv[1])
if spec["modules"] is None:
    eng = Engine()
else:
    eng = Engine([importlib.import_module(m) for m in spec["modules"]], load=[], entry_points=False, env={})
out = {}
for params in spec["params_cases"]:
    for seed in spec["seeds"]:
        c = eng.generate(spec["kind"], spec["generator"], seed, params, None, tries=spec["tries"])
        out[json.dumps([seed, params], sort_keys=True, default=str)] = dumps(c, "msgpack").hex()
print(json.dumps(out))
"""


def _check_in_subprocess(gen_id, kind, seeds, params_cases, context, modules, tries, report) -> None:
    if context:
        raise ValueError("subprocess checks do not take a context")
    spec = {"generator": gen_id, "kind": kind, "seeds": seeds, "params_cases": [dict(p) for p in params_cases],
            "modules": None if modules is True else list(modules), "tries": tries}
    env = dict(os.environ, PYTHONHASHSEED="4242")
    r = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True, text=True,
                       env=env, timeout=600)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise _fail(gen_id, f"failed in a fresh process: {last}")
    for key, digest in json.loads(r.stdout).items():
        if report.digests.get(key) != digest:
            raise _fail(gen_id, f"not deterministic across processes for {key} (hash-order or global state?)")


def _check_generator_fixture():
    """The :func:`check_generator` function, as a fixture."""
    return check_generator


if pytest is not None:
    _check_generator_fixture = pytest.fixture(name="check_generator")(_check_generator_fixture)
