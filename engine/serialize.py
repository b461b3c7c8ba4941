"""Native serialization: msgpack (tiles as raw bytes) and JSON (tiles as rows of ints).

Both carry the schema name and major version (``"schema": "conjure.level/1"``). Reading is defensive: files
are size-limited, msgpack limits every container to what the input can hold, extension types are refused,
and a truncated or corrupt file, an unknown schema or a newer major version is an :class:`InputError` that
names the file. Nothing here ever unpickles.
"""
from __future__ import annotations

import json
import os
import stat
from contextlib import contextmanager
import threading
from pathlib import Path
from typing import Any

import msgpack

from .content import CONTENT_TYPES, Content
from .errors import ConjureError, ContentError, InputError

MAX_FILE_BYTES = 256 * 1024 * 1024  # untrusted content files larger than this are refused
#: JSON content holds tiles as rows of ints: Python spends ~20x the text on them, so a JSON document may
#: hold at most this many values (a 2,800 x 2,800 level); msgpack keeps tiles as bytes and has no such cap.
MAX_JSON_VALUES = 1 << 23
FORMATS = ("msgpack", "json")


def dumps(content: Content, fmt: str = "msgpack") -> bytes:
    """Serialize content to bytes. Same content -> same bytes (dict order is fixed by ``to_dict``)."""
    if fmt == "msgpack":
        return msgpack.packb(content.to_dict(binary=True), use_bin_type=True)
    if fmt == "json":
        text = json.dumps(content.to_dict(binary=False), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
        return (text + "\n").encode("utf-8")
    raise InputError(f"unknown native format {fmt!r} (known: {', '.join(FORMATS)})")


def refuse_ext(code: int, data: bytes) -> Any:
    """msgpack's ``ext_hook`` for every untrusted read (content files, packs): extension types are refused."""
    raise InputError(f"msgpack extension type {code} is not allowed in content files")


def decode(data: bytes, fmt: str, source: str = "<bytes>") -> Any:
    """Decode bytes to plain Python objects, with limits; errors name ``source``."""
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{source}: {len(data)} bytes is over the {MAX_FILE_BYTES}-byte limit")
    if fmt == "msgpack":
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=refuse_ext,
                                   use_list=True)
        except InputError as e:
            raise InputError(f"{source}: {e}") from None
        except msgpack.ExtraData:
            raise InputError(f"{source}: corrupt msgpack (extra bytes after the content)") from None
        except (msgpack.StackError, RecursionError):
            raise InputError(f"{source}: corrupt msgpack (nested too deeply)") from None
        except (ValueError, TypeError, OverflowError, UnicodeDecodeError, msgpack.FormatError) as e:
            what = "truncated" if "incomplete" in str(e) else "corrupt"
            raise InputError(f"{source}: {what} msgpack ({str(e) or type(e).__name__})") from None
    if fmt == "json":
        values = data.count(b",") + 1  # a cheap upper bound on list items, before Python builds them
        if values > MAX_JSON_VALUES:
            raise InputError(f"{source}: about {values:,} JSON values, over the {MAX_JSON_VALUES:,}-value limit "
                             "(each costs ~20x its text in memory; use .msgpack for big content: tiles as bytes)")
        try:
            text = data.decode("utf-8")
            if text.startswith("\ufeff"):
                text = text[1:]
            return json.loads(text)
        except UnicodeDecodeError as e:
            raise InputError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except RecursionError:
            raise InputError(f"{source}: JSON nested too deeply") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{source}: malformed or truncated JSON ({e.msg} at line {e.lineno} "
                             f"column {e.colno})") from None
        except ValueError as e:  # e.g. an integer longer than Python's int_max_str_digits
            raise InputError(f"{source}: malformed JSON ({e})") from None
    raise InputError(f"unknown native format {fmt!r} (known: {', '.join(FORMATS)})")


def from_plain(obj: Any, source: str = "<bytes>") -> Content:
    """Turn a decoded document into a content object, checking its schema name and version."""
    if not isinstance(obj, dict):
        raise InputError(f"{source}: expected a map at the top level, got {type(obj).__name__}")
    schema = obj.get("schema")
    if not isinstance(schema, str) or "/" not in schema:
        raise InputError(f"{source}: missing or malformed 'schema' field (expected e.g. 'conjure.level/1')")
    name, _, version = schema.partition("/")
    if len(schema) > 200:
        raise InputError(f"{source}: malformed 'schema' field ({len(schema)} characters)")
    cls = CONTENT_TYPES.get(name)
    if cls is None:
        known = ", ".join(sorted(CONTENT_TYPES))
        raise InputError(f"{source}: unknown schema {schema!r} (known: {known})")
    supported = int(cls.SCHEMA.partition("/")[2])
    major = version.split(".")[0]
    if not (major.isascii() and major.isdigit() and len(major) <= 9):  # not '²', not 5000 digits
        raise InputError(f"{source}: malformed schema version in {schema!r}")
    if int(major) != supported:
        raise InputError(f"{source}: schema {schema!r} has major version {major}; this Conjure reads "
                         f"{cls.SCHEMA}")
    try:
        content = cls.from_dict(obj)
        content.validate()
    except ContentError as e:
        raise ContentError(f"{source}: {e}") from None
    except RecursionError:
        raise InputError(f"{source}: nested too deeply") from None
    return content


def loads(data: bytes, fmt: str = "msgpack", source: str = "<bytes>") -> Content:
    return from_plain(decode(data, fmt, source), source)


@contextmanager
def file_errors(path: str | os.PathLike, action: str = "read"):
    """Turn OS errors while reading (or writing, ``action="write"``) ``path`` into one-line InputErrors."""
    try:
        yield
    except FileNotFoundError as e:
        if action == "read":
            raise InputError(f"{path}: no such file") from None
        raise InputError(f"{path}: cannot {action} ({e.strerror})") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as e:
        raise InputError(f"{path}: cannot {action} ({e.strerror or type(e).__name__})") from None


def read_bytes(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read an untrusted file with a size limit; errors name the file."""
    p = Path(path)
    with file_errors(p):
        # opened without blocking and checked on the open descriptor: a FIFO, /dev/stdin or a device as a
        # content, tileset or word-list file would otherwise hang forever or read without end
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise InputError(f"{p}: is a directory")
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{p}: not a regular file (a FIFO, device or socket cannot be read as input)")
            size = st.st_size
            if size > limit:
                raise InputError(f"{p}: {size} bytes is over the {limit}-byte limit")
            data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{p}: over the {limit}-byte limit")
    return data


class WriteError(InputError, OSError):
    """Writing a file failed (disk full, permissions, a missing folder): one line naming the file, exit 2;
    still an ``OSError`` for callers that catch those."""


@contextmanager
def _write_errors(path: Path):
    try:
        yield
    except ConjureError:
        raise
    except OSError as e:
        raise WriteError(f"{path}: cannot write ({e.strerror or e or type(e).__name__})") from None


def write_target(path: str | os.PathLike) -> str:
    """What a write to ``path`` will do: ``"file"`` (a new or regular file: temporary file + rename),
    ``"direct"`` (a character device such as ``/dev/null`` or a FIFO: written in place, never replaced) or
    ``"link"`` (a symlink: the link itself is replaced by the file; its target is left untouched).
    Block devices, sockets and other special files are refused with an InputError."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "file"
    except OSError as e:
        raise InputError(f"{path}: cannot write ({e.strerror})") from None
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "direct"
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory")
    what = "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file"
    raise InputError(f"{path}: is {what}; refusing to write there")


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A failure leaves any earlier file at ``path`` intact, and OS errors (disk full, permissions) become one
    :class:`WriteError` (an InputError and an OSError) naming ``path``. A character device (``/dev/null``) or FIFO at ``path`` is written directly
    instead (renaming over it would replace the node); block devices and sockets are refused; a symlink is
    replaced by the new file (its target is not written). See :func:`write_target`.
    """
    p = Path(path)
    if write_target(p) == "direct":
        with _write_errors(p), open(p, "wb") as f:
            f.write(data)
        return p
    with _write_errors(p):
        p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with _write_errors(p):
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return p
