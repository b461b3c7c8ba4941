"""Loading learned weights and model cards safely: safetensors only (never pickle), size-limited.

``load_safetensors`` checks the file size and the safetensors header (8-byte little-endian length, then a
JSON header whose tensors must lie inside the file) before handing the file to the ``safetensors`` library,
so a corrupt or hostile file is an :class:`~engine.errors.InputError` naming it. ``load_model_card`` reads a
model card (JSON) with a size limit.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from .errors import InputError
from .serialize import atomic_write, read_bytes

MAX_WEIGHTS_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1024 * 1024
MAX_CARD_BYTES = 1024 * 1024
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}


def check_safetensors(data: bytes, source: str) -> dict[str, Any]:
    """Validate a safetensors blob's header; return it. Raises InputError naming ``source``."""
    if len(data) < 8:
        raise InputError(f"{source}: not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise InputError(f"{source}: safetensors header length {n} is impossible for a {len(data)}-byte file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError covers JSONDecodeError, huge ints
        raise InputError(f"{source}: safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise InputError(f"{source}: safetensors header must be a JSON object")
    body = len(data) - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise InputError(f"{source}: __metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict):
            raise InputError(f"{source}: tensor {name!r}: malformed entry")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
            raise InputError(f"{source}: tensor {name!r}: unsupported dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and 0 <= d < 2**31 for d in shape)):
            raise InputError(f"{source}: tensor {name!r}: malformed shape")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)
                and 0 <= offs[0] <= offs[1] <= body):
            raise InputError(f"{source}: tensor {name!r}: data offsets outside the file")
        count = 1
        for d in shape:
            count *= d
        if count * DTYPE_SIZES[dtype] != offs[1] - offs[0]:
            raise InputError(f"{source}: tensor {name!r}: {offs[1] - offs[0]} bytes do not hold shape {shape}")
    return header


def load_safetensors(path: str | os.PathLike, max_bytes: int = MAX_WEIGHTS_BYTES) -> dict:
    """Load tensors (torch) from a safetensors file after checking size and header."""
    data = read_bytes(path, limit=max_bytes)
    check_safetensors(data, str(path))
    from safetensors.torch import load as st_load  # torch only when weights are actually loaded

    try:
        return st_load(data)
    except Exception as e:  # the library's own errors become ours
        raise InputError(f"{path}: cannot load safetensors ({e})") from None


def load_safetensors_numpy(path: str | os.PathLike, max_bytes: int = MAX_WEIGHTS_BYTES) -> dict:
    """Load tensors as numpy arrays (no torch needed)."""
    data = read_bytes(path, limit=max_bytes)
    check_safetensors(data, str(path))
    from safetensors.numpy import load as st_load

    try:
        return st_load(data)
    except Exception as e:
        raise InputError(f"{path}: cannot load safetensors ({e})") from None


def save_safetensors(tensors: dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Save torch tensors atomically as safetensors (contiguous CPU fp32 as given)."""
    from safetensors.torch import save as st_save

    blob = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    return atomic_write(path, canonical_safetensors(blob))


def canonical_safetensors(blob: bytes) -> bytes:
    """The same file with its JSON header's keys sorted (the library writes ``__metadata__`` in a random
    order), so the same weights always give the same bytes and the model card's SHA-256 reproduces."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned, as the format recommends
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


def load_model_card(path: str | os.PathLike, max_bytes: int = MAX_CARD_BYTES) -> dict:
    data = read_bytes(path, limit=max_bytes)
    try:
        card = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError covers JSONDecodeError, huge ints
        raise InputError(f"{path}: model card is not valid JSON ({e})") from None
    if not isinstance(card, dict):
        raise InputError(f"{path}: model card must be a JSON object")
    return card


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_config(cfg: Any, bounds: dict[str, tuple[float, float]], source: str) -> dict:
    """Check a learned model's config (read from an untrusted weights file) before any network is built:
    a JSON object whose numeric entries named in ``bounds`` lie in their ``(lo, hi)`` range, so a hostile
    file cannot make the loader allocate without bound. Ints stay ints where the bound is given as ints."""
    if not isinstance(cfg, dict):
        raise InputError(f"{source}: model config must be a JSON object, got {type(cfg).__name__}")
    for key, (lo, hi) in bounds.items():
        if key not in cfg:
            continue
        v = cfg[key]
        want_int = isinstance(lo, int) and isinstance(hi, int)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (want_int and not isinstance(v, int)):
            raise InputError(f"{source}: config.{key}: expected {'an int' if want_int else 'a number'}, got {v!r}")
        if not lo <= v <= hi:
            raise InputError(f"{source}: config.{key}: {v} outside {lo}..{hi}")
    return cfg
