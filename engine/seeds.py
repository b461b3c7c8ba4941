"""Stable seed derivation.

Seeds are ints or strings. :func:`derive` hashes a seed and a path of names/indices into a 64-bit int with
BLAKE2b over a canonical, type-tagged encoding, so ``derive(7, "floor", 3)`` is the same on every machine,
Python version and process (Python's own ``hash`` is salted per process and never used). Never use global
random state: every request gets its own ``numpy.random.Generator`` from :func:`rng`.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .errors import InputError

Seed = int | str

SEED_MIN = -(2**63)
SEED_MAX = 2**64 - 1
MAX_SEED_STR = 256


def check_seed(seed: object, where: str = "seed") -> Seed:
    """Return ``seed`` if it is a valid seed (int in int64/uint64 range, or a short str), else raise."""
    if isinstance(seed, bool) or not isinstance(seed, (int, str)):
        raise InputError(f"{where}: expected an int or a string, got {type(seed).__name__}")
    if isinstance(seed, int) and not SEED_MIN <= seed <= SEED_MAX:
        shown = seed if seed.bit_length() <= 128 else f"a {seed.bit_length()}-bit int"
        raise InputError(f"{where}: {shown} is outside {SEED_MIN}..{SEED_MAX}")
    if isinstance(seed, str) and len(seed) > MAX_SEED_STR:
        raise InputError(f"{where}: strings longer than {MAX_SEED_STR} characters are not seeds")
    if isinstance(seed, str):
        try:
            seed.encode("utf-8")
        except UnicodeEncodeError:  # e.g. a command-line argument that was not valid UTF-8 (surrogates)
            raise InputError(f"{where}: not valid UTF-8 text") from None
    return seed


def parse_seed(text: str) -> Seed:
    """CLI seeds: ASCII digits (optionally signed) are ints, anything else is a string seed."""
    t = text.strip()
    digits = t.lstrip("+-")
    if digits.isascii() and digits.isdigit() and len(t) - len(digits) <= 1:
        if len(digits) > 40:  # far outside the range; int() of thousands of digits would raise ValueError
            raise InputError(f"seed: a {len(digits)}-digit number is outside {SEED_MIN}..{SEED_MAX}")
        return check_seed(int(t))
    return check_seed(text)


def _encode(part: object) -> bytes:
    if isinstance(part, bool):
        raise InputError("seed parts must be int or str, not bool")
    if isinstance(part, int):
        body = b"i" + str(part).encode()
    elif isinstance(part, str):
        body = b"s" + part.encode("utf-8")
    else:
        raise InputError(f"seed parts must be int or str, got {type(part).__name__}")
    return len(body).to_bytes(4, "little") + body


def derive(seed: Seed, *path: int | str) -> int:
    """Derive a 64-bit seed from ``seed`` and a path of names and indices, e.g. ``derive(7, "floor", 3)``."""
    h = hashlib.blake2b(digest_size=8, person=b"conjure.seed")
    h.update(_encode(seed))
    for part in path:
        h.update(_encode(part))
    return int.from_bytes(h.digest(), "little")


def rng(seed: Seed, *path: int | str) -> np.random.Generator:
    """A fresh PCG64 ``numpy.random.Generator`` for ``derive(seed, *path)``."""
    return np.random.Generator(np.random.PCG64(derive(seed, *path)))
