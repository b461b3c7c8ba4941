"""Parameter schemas for generators.

A generator declares ``params = (Param("width", "int", 64, min=16, max=256, help="..."), ...)``. The
engine checks and coerces every request's parameters against it before anything runs, so a bad parameter is
an :class:`~engine.errors.InputError` naming the generator and the parameter. Strings from the CLI
(``-p width=64``) are coerced to the declared type.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .errors import InputError

TYPES = ("int", "float", "bool", "str", "choice")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One parameter: name, type (int, float, bool, str, choice), default, inclusive range, choices, help."""

    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple = field(default=())
    help: str = ""

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"param {self.name!r}: type must be one of {TYPES}, got {self.type!r}")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"param {self.name!r}: a choice param needs choices")
        # the default must itself be valid
        self.coerce(self.default, where=f"default of param {self.name!r}")

    def coerce(self, value: Any, where: str = "") -> Any:
        """Return ``value`` converted to this parameter's type; raise InputError naming it if impossible."""
        label = where or f"parameter {self.name!r}"
        t = self.type
        try:
            if t == "int":
                if isinstance(value, bool):
                    raise ValueError
                if isinstance(value, str):
                    value = int(value.strip(), 10)
                elif isinstance(value, float):
                    if not value.is_integer():
                        raise ValueError
                    value = int(value)
                elif not isinstance(value, int):
                    raise ValueError
            elif t == "float":
                if isinstance(value, bool):
                    raise ValueError
                if isinstance(value, str):
                    value = float(value.strip())
                elif isinstance(value, (int, float)):
                    value = float(value)
                else:
                    raise ValueError
                if not math.isfinite(value):
                    raise ValueError
            elif t == "bool":
                if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                    value = value.strip().lower() in _TRUE
                elif not isinstance(value, bool):
                    raise ValueError
            elif t in ("str", "choice"):
                if not isinstance(value, str):
                    raise ValueError
        except (ValueError, TypeError):
            raise InputError(f"{label}: expected {t}, got {value!r}") from None
        if t == "choice" and value not in self.choices:
            raise InputError(f"{label}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        if t in ("int", "float"):
            if self.min is not None and value < self.min:
                raise InputError(f"{label}: {value} is below the minimum {self.min}")
            if self.max is not None and value > self.max:
                raise InputError(f"{label}: {value} is above the maximum {self.max}")
        return value

    def describe(self) -> dict:
        d = {"name": self.name, "type": self.type, "default": self.default, "help": self.help}
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        if self.choices:
            d["choices"] = list(self.choices)
        return d


def check_schema(params: Iterable[Param]) -> tuple[Param, ...]:
    """Validate a generator's declared schema: Param objects with unique names."""
    out = tuple(params)
    seen = set()
    for p in out:
        if not isinstance(p, Param):
            raise TypeError(f"params must be engine.Param objects, got {type(p).__name__}")
        if p.name in seen:
            raise ValueError(f"param {p.name!r} declared twice")
        seen.add(p.name)
    return out


def resolve(schema: Iterable[Param], given: Mapping[str, Any] | None, generator: str) -> dict:
    """Coerce ``given`` against ``schema``, fill defaults; return a dict in schema order.

    Unknown names and bad values raise InputError naming the generator and the parameter.
    """
    given = dict(given or {})
    schema = tuple(schema)
    names = {p.name for p in schema}
    unknown = sorted(k for k in given if k not in names)
    if unknown:
        known = ", ".join(p.name for p in schema) or "none"
        raise InputError(f"generator {generator!r}: unknown parameter {unknown[0]!r} (known: {known})")
    out = {}
    for p in schema:
        value = given.get(p.name, p.default)
        out[p.name] = p.coerce(value, where=f"generator {generator!r}: parameter {p.name!r}")
    return out


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """Parse CLI ``KEY=VALUE`` strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"-p {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out
