"""Content packs (``.cpk``): many assets in one file, with random access, a manifest and content hashes.

Byte layout (all integers little-endian; see ``docs/baking.md``)::

    header    64 bytes   magic b"\\x89CPK\\r\\n\\x1a\\n", u16 format version (1), u16 header size (64),
                         u32 flags (0), u64 record count N, u64 index offset, u64 manifest offset,
                         u64 manifest length, 16-byte BLAKE2b of (header[0:48] + index + manifest)
    records   N blobs    one per asset: the msgpack of ``Content.to_dict(binary=True)`` (what
                         ``engine.serialize.dumps`` writes), stored raw or zstd-compressed
    index     N x 20     u64 offset, u32 stored length, u32 raw length, u8 codec (0 raw, 1 zstd), 3 zero
                         bytes; records are contiguous, in order, starting right after the header
    manifest  msgpack    format, format version, Conjure version, compression, jobs (name, kind,
                         generator, generator version, seed, params, context, count, first record) and
                         per record [asset id, job number, index in job, seed, BLAKE2b-128 of the raw record]

Nothing in a pack depends on the clock, the machine or how a bake was split: the same spec gives the same
bytes. Writing is atomic (temporary file, fsync, rename). Reading checks the header, the checksum over
header, index and manifest, the index's layout, and each record's hash when it is read; anything wrong is an
:class:`~engine.errors.InputError` naming the pack and the record. Every length read from the file is
checked against the file's size before anything is allocated.

Reads go through a read-only memory map of the whole file, made once when the pack is opened: a record is a
slice of the map (no system call, no per-read open), so one raw record costs a few microseconds plus its hash
check. Packs are replaced atomically (a new file renamed over the old one), so an open map keeps seeing the
file it opened; a pack rewritten *in place* while a reader has it mapped is not supported (``mmap=False``
reads with ``os.pread`` instead, e.g. on network file systems).
"""
from __future__ import annotations

import gc
import hashlib
import mmap as _mmap
import os
import struct
import threading
from pathlib import Path
from typing import Any, Iterator

import msgpack
import numpy as np

from .content import CONTENT_TYPES, Content, Entity, Level, Region, TileDef, Tileset
from .errors import ConjureError, ContentError, InputError
from .resources import conjure_version  # noqa: F401  (re-exported: bake and serve import it from here)
from .serialize import file_errors, from_plain, write_target
from .serialize import refuse_ext as _refuse_ext

MAGIC = b"\x89CPK\r\n\x1a\n"
FORMAT = "conjure.pack"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sHHIQQQQ16s")  # 64 bytes
HEADER_SIZE = HEADER.size
ENTRY = struct.Struct("<QIIB3x")  # 20 bytes
ENTRY_SIZE = ENTRY.size
CODEC_RAW, CODEC_ZSTD = 0, 1
CODECS = {"none": CODEC_RAW, "zstd": CODEC_ZSTD}
CODEC_NAMES = {v: k for k, v in CODECS.items()}
ZSTD_LEVEL = 3
HASH_SIZE = 16
MAX_RECORD_BYTES = 256 * 1024 * 1024  # one asset, raw
MAX_MANIFEST_BYTES = 1024 * 1024 * 1024
MAX_RECORDS = 100_000_000

assert HEADER_SIZE == 64 and ENTRY_SIZE == 20


def record_hash(raw: bytes) -> bytes:
    """The content hash of a record: BLAKE2b-128 of its raw (uncompressed) msgpack bytes."""
    return hashlib.blake2b(raw, digest_size=HASH_SIZE).digest()


_zstd_local = threading.local()


def _zstd():
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is a dependency
        raise InputError("zstd compression needs the 'zstandard' package (pip install zstandard)") from None
    return zstandard


def compress(raw: bytes, codec: int) -> bytes:
    if codec == CODEC_RAW:
        return raw
    c = getattr(_zstd_local, "c", None)
    if c is None:  # one compressor per thread: zstandard objects are not thread-safe
        c = _zstd_local.c = _zstd().ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True, threads=0)
    return c.compress(raw)


def decompress(stored: bytes | memoryview, codec: int, raw_len: int) -> bytes:
    """A record's raw bytes from its stored bytes: the one place records are decompressed."""
    if codec == CODEC_RAW:
        return bytes(stored)
    zstd = _zstd()
    # python-zstandard allocates a frame's *declared* content size and ignores max_output_size when the
    # header carries one: read the header first, so a 64 KB record cannot claim (and get) gigabytes.
    declared = zstd.frame_content_size(stored)
    if declared >= 0 and declared != raw_len:  # -1: size not in the header (max_output_size then holds)
        raise ValueError(f"zstd frame declares {declared} bytes, the index says {raw_len}")
    d = getattr(_zstd_local, "d", None)
    if d is None:
        d = _zstd_local.d = zstd.ZstdDecompressor()
    return d.decompress(stored, max_output_size=raw_len)


def codec_of(compression: str | None) -> int:
    name = compression or "none"
    if name not in CODECS:
        raise InputError(f"unknown compression {compression!r} (known: {', '.join(CODECS)})")
    if name == "zstd":
        _zstd()
    return CODECS[name]


# --------------------------------------------------------------------------------------------- writing
class PackWriter:
    """Write a pack record by record, then :meth:`close` to publish it atomically at ``path``.

    ``add`` takes the record as it is stored (already compressed with ``codec``) plus its raw length and
    hash, so bake workers can compress in parallel; :meth:`add_content` does it all for one content.
    """

    def __init__(self, path: str | os.PathLike, jobs: list[dict] | None = None, compression: str | None = None):
        self.path = Path(path)
        self.codec = codec_of(compression)
        self.compression = CODEC_NAMES[self.codec]
        self.jobs = [dict(j) for j in (jobs or [])]
        if write_target(self.path) == "direct":  # renaming over /dev/null or a FIFO would replace the node
            raise InputError(f"{self.path}: is not a regular file; a pack is written to a file (seekable)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        self._f = open(self._tmp, "wb")
        self._f.write(b"\0" * HEADER_SIZE)
        self._offset = HEADER_SIZE
        self._index = bytearray()
        self._records: list[list] = []
        self._ids: set[str] = set()
        self._closed = False

    def add(self, asset_id: str, job: int, index: int, seed: Any, stored: bytes, raw_len: int,
            digest: bytes, codec: int | None = None) -> None:
        codec = self.codec if codec is None else codec
        if asset_id in self._ids:
            raise InputError(f"duplicate asset id {asset_id!r} in pack {self.path}")
        if not 0 <= raw_len <= MAX_RECORD_BYTES or len(stored) > MAX_RECORD_BYTES:
            raise InputError(f"asset {asset_id!r}: record over the {MAX_RECORD_BYTES}-byte limit")
        self._ids.add(asset_id)
        self._f.write(stored)
        self._index += ENTRY.pack(self._offset, len(stored), raw_len, codec)
        self._offset += len(stored)
        self._records.append([asset_id, job, index, seed, bytes(digest)])

    def add_content(self, asset_id: str, content: Content, job: int = 0, index: int | None = None,
                    seed: Any = None) -> None:
        raw = msgpack.packb(content.to_dict(binary=True), use_bin_type=True)
        if index is None:
            index = len(self._records)
        if seed is None:
            seed = content.metadata.get("seed", 0)
        self.add(asset_id, job, index, seed, compress(raw, self.codec), len(raw), record_hash(raw))

    def manifest(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "conjure_version": conjure_version(),
                "compression": self.compression, "count": len(self._records), "jobs": self.jobs,
                "records": self._records}

    def close(self) -> Path:
        """Write index and manifest, then the header; fsync and rename into place."""
        if self._closed:
            return self.path
        try:
            index = bytes(self._index)
            manifest = msgpack.packb(self.manifest(), use_bin_type=True)
            index_off = self._offset
            manifest_off = index_off + len(index)
            self._f.write(index)
            self._f.write(manifest)
            head = HEADER.pack(MAGIC, FORMAT_VERSION, HEADER_SIZE, 0, len(self._records), index_off,
                               manifest_off, len(manifest), b"\0" * 16)[:48]
            check = hashlib.blake2b(head, digest_size=16)
            check.update(index)
            check.update(manifest)
            self._f.seek(0)
            self._f.write(head + check.digest())
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            os.replace(self._tmp, self.path)
            _fsync_dir(self.path.parent)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def abort(self) -> None:
        self._closed = True
        try:
            self._f.close()
        except OSError:
            pass
        try:
            self._tmp.unlink()
        except OSError:
            pass

    def __enter__(self) -> "PackWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_pack(path: str | os.PathLike, contents: list[Content] | dict[str, Content],
               compression: str | None = None) -> Path:
    """Write a pack of ready-made content (ids ``"0"``, ``"1"``, … for a list)."""
    items = contents.items() if isinstance(contents, dict) else ((str(i), c) for i, c in enumerate(contents))
    with PackWriter(path, [], compression) as w:
        for i, (aid, c) in enumerate(items):
            w.add_content(aid, c, 0, i)
    return Path(path)


# --------------------------------------------------------------------------------------------- reading
_LEVEL_DECODER: Any = None
_LEVEL_MARK = b"conjure.level/"


def _level_decoder() -> Any:
    """A msgspec decoder typed like ``Level.from_dict``'s checks (built on first use; False without msgspec)."""
    global _LEVEL_DECODER
    if _LEVEL_DECODER is None:
        try:
            from typing import Annotated

            import msgspec
        except ImportError:  # pragma: no cover - msgspec is a dependency; without it the checked path runs
            _LEVEL_DECODER = False
            return False
        u8 = Annotated[int, msgspec.Meta(ge=0, le=255)]
        # properties: string keys, values scalars or one level of lists/maps of scalars, all typed here (deeper
        # nesting is legal content but rare: such a record takes the checked path); metadata is walked instead
        scalar = None | bool | int | float | str  # (msgspec unions take one str-like type: bytes values fall back)
        props = dict[str, scalar | list[scalar] | dict[str, scalar]]
        meta = dict[str, Any]
        struct = msgspec.defstruct  # the functional form: this module's annotations are strings
        tile = struct("Tile", [("id", int), ("name", str), ("char", str),
                               ("color", Annotated[list[u8], msgspec.Meta(min_length=3, max_length=3)]),
                               ("properties", props)])
        tiles = struct("Tiles", [("name", str), ("tiles", list[tile])])
        layer = struct("Layer", [("name", str), ("tiles", bytes)])
        ent = struct("Ent", [("id", str), ("kind", str), ("x", int), ("y", int), ("properties", props)])
        reg = struct("Reg", [("id", str), ("kind", str), ("name", str), ("x", int), ("y", int), ("w", int),
                             ("h", int), ("properties", props)])
        lvl = struct("Lvl", [("schema", str), ("width", int), ("height", int), ("layers", list[layer]),
                             ("tileset", tiles), ("entities", list[ent]), ("regions", list[reg], []),
                             ("metadata", meta, {})])
        _LEVEL_DECODER = msgspec.msgpack.Decoder(lvl, ext_hook=_refuse_ext)
    return _LEVEL_DECODER


def _str_keys(value: Any) -> bool:
    """True when every map nested in ``value`` has string keys (False also for nesting too deep to walk)."""
    try:
        stack = [value]
        while stack:
            v = stack.pop()
            if type(v) is dict:
                for k, x in v.items():
                    if type(k) is not str:
                        return False
                    if type(x) is dict or type(x) is list:
                        stack.append(x)
            else:
                stack.extend(x for x in v if type(x) is dict or type(x) is list)
        return True
    except Exception:  # pragma: no cover - defensive
        return False


def fast_level(raw: bytes | memoryview) -> Any:
    """A level record straight to a :class:`~engine.content.Level`, or None to take the checked path.

    msgspec decodes the msgpack into typed structs in C, checking every field's type (ints never bools,
    colours three ints in 0..255, tiles as bytes, maps with string keys, no extension types); the few checks
    that span fields (size bounds, tile bytes = width x height, unique layer names, string keys in maps nested
    in metadata) follow; properties nested deeper than a list or map of scalars take the checked path. Anything it does
    not accept returns None and the record goes through ``msgpack`` + ``Level.from_dict``, which accepts it or
    names the problem exactly as before: this path is never more lenient than that one, only faster (about
    3x; ``tests/test_packs.py`` checks that both give the same content, and the same errors)."""
    if _LEVEL_MARK not in raw[:40]:
        return None
    dec = _LEVEL_DECODER if _LEVEL_DECODER is not None else _level_decoder()
    if not dec:
        return None
    try:
        d = dec.decode(raw)
    except Exception:
        return None
    name, _, version = d.schema.partition("/")
    w, h = d.width, d.height
    if (name != "conjure.level" or version.split(".")[0] != Level.SCHEMA.partition("/")[2]
            or not (0 < w <= 16384 and 0 < h <= 16384)):
        return None
    layers = {}
    for layer in d.layers:
        if layer.name in layers or len(layer.tiles) != w * h:
            return None
        layers[layer.name] = np.frombuffer(layer.tiles, dtype=np.uint8).reshape(h, w).copy()
    # maps nested in metadata: string keys only, as msgpack's strict_map_key (properties are typed throughout)
    for v in d.metadata.values():
        if (type(v) is dict or type(v) is list) and not _str_keys(v):
            return None
    tileset = Tileset(d.tileset.name, [TileDef(id=t.id, name=t.name, char=t.char, color=tuple(t.color),
                                               properties=t.properties) for t in d.tileset.tiles])
    entities = [Entity(e.id, e.kind, e.x, e.y, e.properties) for e in d.entities]
    regions = [Region(r.id, r.kind, r.name, r.x, r.y, r.w, r.h, properties=r.properties) for r in d.regions]
    return Level(layers, tileset, entities, regions, d.metadata)


class PackReader:
    """Random access to a pack: ``len(r)``, ``r[i]``, ``r.get("asset-id")``, iteration, :meth:`read_all`.

    Opening reads and checks the header, index and manifest (their checksum and layout); each record's
    hash is checked when it is read (``verify=False`` skips that). Records are rebuilt with the content
    types' ``from_dict``, which checks every field's type; ``validate=True`` also runs the full schema
    checks (``Content.validate``: bounds, tile ids, references), which the baker already ran before it
    hashed the record; that costs about as much again. Thread-safe: reads are slices of a read-only memory
    map of the file (``mmap=False``: ``os.pread`` on a kept file descriptor), made once at open.
    """

    def __init__(self, path: str | os.PathLike, verify: bool = True, validate: bool = False, mmap: bool = True):
        self.path = Path(path)
        self.verify = verify
        self.validate = validate
        self._mm: _mmap.mmap | None = None
        with file_errors(self.path):
            # O_NONBLOCK: a FIFO named like a pack must not hang the open (its size 0 is then refused)
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            self._open()
            if mmap:
                with file_errors(self.path):
                    self._mm = _mmap.mmap(self._fd, self.size, access=_mmap.ACCESS_READ)
                os.close(self._fd)  # the map keeps the file; no descriptor held per open pack
                self._fd = -1
        except BaseException:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = -1
            raise

    def _err(self, what: str) -> InputError:
        return InputError(f"{self.path}: {what}")

    def _pread(self, n: int, off: int, what: str) -> bytes:
        mm = self._mm
        if mm is not None:
            data = mm[off: off + n]
        elif self._fd < 0:
            raise self._err("the pack is closed")
        else:
            with file_errors(self.path):
                data = os.pread(self._fd, n, off)
        if len(data) != n:
            raise self._err(f"truncated pack: {what} ends past the end of the file")
        return data

    def _open(self) -> None:
        size = os.fstat(self._fd).st_size
        self.size = size
        if size < HEADER_SIZE:
            raise self._err(f"not a Conjure pack or truncated header ({size} bytes, need {HEADER_SIZE})")
        head = self._pread(HEADER_SIZE, 0, "the header")
        magic, ver, hsize, flags, n, index_off, manifest_off, manifest_len, check = HEADER.unpack(head)
        if magic != MAGIC:
            raise self._err("not a Conjure pack (bad magic in the header)")
        if ver != FORMAT_VERSION:
            raise self._err(f"pack format version {ver}; this Conjure reads version {FORMAT_VERSION}")
        if hsize != HEADER_SIZE or flags != 0:
            raise self._err("corrupt header (bad header size or flags)")
        if n > MAX_RECORDS or n * ENTRY_SIZE > size:
            raise self._err(f"corrupt header: {n} records cannot fit in {size} bytes")
        if not (HEADER_SIZE <= index_off <= size and index_off + n * ENTRY_SIZE == manifest_off
                and manifest_len <= MAX_MANIFEST_BYTES and manifest_off + manifest_len == size):
            if manifest_off + manifest_len > size or index_off > size:
                raise self._err("truncated pack: the index or manifest ends past the end of the file "
                                f"({size} bytes)")
            raise self._err("corrupt header: index/manifest offsets do not match the file "
                            f"({size} bytes)")
        index = self._pread(n * ENTRY_SIZE, index_off, "the index")
        manifest_bytes = self._pread(manifest_len, manifest_off, "the manifest")
        h = hashlib.blake2b(head[:48], digest_size=16)
        h.update(index)
        h.update(manifest_bytes)
        if h.digest() != check:
            raise self._err("corrupt header, index or manifest (checksum mismatch)")
        # index: contiguous records in order, right after the header
        entries = list(ENTRY.iter_unpack(index))
        pos = HEADER_SIZE
        for i, (off, slen, rlen, codec) in enumerate(entries):
            if off != pos or codec not in CODEC_NAMES or rlen > MAX_RECORD_BYTES or slen > MAX_RECORD_BYTES:
                raise self._err(f"corrupt index at record {i}")
            pos += slen
        if pos != index_off:
            raise self._err("corrupt index: records do not end where the index starts")
        self._entries = entries
        self._records_end = index_off
        try:
            m = msgpack.unpackb(manifest_bytes, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
        except Exception as e:
            raise self._err(f"corrupt manifest ({type(e).__name__}: {e})") from None
        self.manifest = self._check_manifest(m, n)

    def _check_manifest(self, m: Any, n: int) -> dict:
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise self._err("corrupt manifest (not a conjure.pack manifest)")
        if m.get("format_version") != FORMAT_VERSION:
            raise self._err(f"manifest format version {m.get('format_version')!r} is not {FORMAT_VERSION}")
        recs, jobs = m.get("records"), m.get("jobs")
        if not isinstance(recs, list) or len(recs) != n or not isinstance(jobs, list):
            raise self._err(f"corrupt manifest: expected {n} records and a job list")
        ids: dict[str, int] = {}
        hashes = []
        for i, r in enumerate(recs):
            if not (isinstance(r, list) and len(r) == 5 and isinstance(r[0], str) and isinstance(r[1], int)
                    and isinstance(r[4], bytes) and len(r[4]) == HASH_SIZE):
                raise self._err(f"corrupt manifest entry for record {i}")
            if r[0] in ids:
                raise self._err(f"corrupt manifest: asset id {r[0]!r} appears twice (records {ids[r[0]]} "
                                f"and {i})")
            ids[r[0]] = i
            hashes.append(r[4])
        self._ids = ids
        self._hashes = hashes
        self.records = recs
        self.jobs = jobs
        return m

    # -- properties
    @property
    def ids(self) -> list[str]:
        return [r[0] for r in self.records]

    @property
    def compression(self) -> str:
        return str(self.manifest.get("compression", "none"))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._ids

    def index_of(self, asset_id: str) -> int:
        try:
            return self._ids[asset_id]
        except (KeyError, TypeError):
            raise InputError(f"{self.path}: no asset {asset_id!r} in this pack") from None

    def _where(self, i: int) -> str:
        return f"record {i} ({self.records[i][0]!r})"

    def _check_i(self, i: int) -> int:
        if not isinstance(i, int) or isinstance(i, bool):
            raise InputError(f"pack index must be an int, got {type(i).__name__}")
        n = len(self._entries)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise InputError(f"{self.path}: record {i} out of range (pack holds {n})")
        return i

    # -- records
    def _raw(self, i: int, stored: bytes | memoryview) -> bytes:
        off, slen, rlen, codec = self._entries[i]
        try:
            raw = decompress(stored, codec, rlen)
        except ConjureError:
            raise
        except Exception as e:
            raise self._err(f"corrupt {self._where(i)}: cannot decompress ({e})") from None
        if len(raw) != rlen:
            raise self._err(f"corrupt {self._where(i)}: {len(raw)} bytes, expected {rlen}")
        if self.verify and record_hash(raw) != self._hashes[i]:
            raise self._err(f"corrupt {self._where(i)}: content hash mismatch")
        return raw

    def raw(self, i: int) -> bytes:
        """Record ``i`` as raw msgpack bytes (decompressed, hash checked)."""
        return self._raw_at(self._check_i(i))

    def _raw_at(self, i: int) -> bytes:
        off, slen, _, _ = self._entries[i]
        mm = self._mm
        if mm is not None:  # the layout was checked at open: the record lies inside the map
            return self._raw(i, mm[off: off + slen])
        return self._raw(i, self._pread(slen, off, self._where(i)))

    def _decode(self, i: int, raw: bytes) -> Content:
        if not self.validate:
            fast = fast_level(raw)
            if fast is not None:
                return fast
        try:
            obj = msgpack.unpackb(raw, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
        except Exception as e:
            raise self._err(f"corrupt {self._where(i)}: {type(e).__name__}: {e}") from None
        return self._content(i, obj)

    def _content(self, i: int, obj: Any) -> Content:
        source = f"{self.path} {self._where(i)}"
        if self.validate:
            return from_plain(obj, source)
        schema = obj.get("schema") if isinstance(obj, dict) else None
        name, _, version = schema.partition("/") if isinstance(schema, str) else ("", "", "")
        cls = CONTENT_TYPES.get(name)
        if cls is None or version.split(".")[0] != cls.SCHEMA.partition("/")[2]:
            return from_plain(obj, source)  # the full path names what is wrong
        try:
            return cls.from_dict(obj)
        except ContentError as e:
            raise ContentError(f"{source}: {e}") from None
        except RecursionError:
            raise InputError(f"{source}: nested too deeply") from None
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
            raise InputError(f"{source}: malformed content ({type(e).__name__}: {e})") from None

    def __getitem__(self, i: int) -> Content:
        i = self._check_i(i)
        return self._decode(i, self._raw_at(i))

    def get(self, asset_id: str) -> Content:
        """The asset with this id."""
        return self[self.index_of(asset_id)]

    def info(self, i: int) -> dict:
        """Manifest data of record ``i``: id, job, index, seed, hash (hex), stored and raw sizes."""
        i = self._check_i(i)
        aid, job, idx, seed, digest = self.records[i]
        _, slen, rlen, codec = self._entries[i]
        return {"id": aid, "job": job, "index": idx, "seed": seed, "hash": digest.hex(),
                "stored_bytes": slen, "raw_bytes": rlen, "codec": CODEC_NAMES[codec]}

    def __iter__(self) -> Iterator[Content]:
        for i in range(len(self)):
            yield self[i]

    def read_all(self, start: int = 0, stop: int | None = None, plain: bool = False) -> list:
        """Records ``start:stop`` in one read: content objects (or plain dicts with ``plain=True``).

        Reads the byte range at once and pauses the garbage collector while decoding (the collector
        otherwise triples the time spent allocating many small objects).
        """
        n = len(self)
        stop = n if stop is None else min(stop, n)
        if start >= stop:
            return []
        lo = self._entries[start][0]
        hi = self._entries[stop - 1][0] + self._entries[stop - 1][1]
        if self._mm is not None:  # a zero-copy view of the map, released below so close() can unmap
            data = memoryview(self._mm)[lo:hi]
        else:
            data = memoryview(self._pread(hi - lo, lo, f"records {start}..{stop - 1}"))
        out: list = []
        unpack = msgpack.unpackb
        was = gc.isenabled()
        gc.disable()
        try:
            fast = not plain and not self.validate
            for i in range(start, stop):
                off, slen, _, _ = self._entries[i]
                raw = self._raw(i, data[off - lo: off - lo + slen])
                if fast:
                    level = fast_level(raw)
                    if level is not None:
                        out.append(level)
                        continue
                try:
                    obj = unpack(raw, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
                except Exception as e:
                    raise self._err(f"corrupt {self._where(i)}: {type(e).__name__}: {e}") from None
                out.append(obj if plain else self._content(i, obj))
        finally:
            data.release()
            if was:
                gc.enable()
        return out

    def check(self) -> int:
        """Read and verify every record; returns how many. Raises InputError naming the first bad one."""
        step = 1024
        for s in range(0, len(self), step):
            self.read_all(s, s + step, plain=True)
        return len(self)

    def summary(self) -> dict:
        m = self.manifest
        return {"path": str(self.path), "format_version": m.get("format_version"),
                "conjure_version": m.get("conjure_version"), "compression": self.compression,
                "count": len(self), "bytes": self.size,
                "raw_bytes": sum(e[2] for e in self._entries),
                "jobs": [{k: j.get(k) for k in ("name", "kind", "generator", "generator_version", "seed",
                                                 "count", "params")} if isinstance(j, dict) else j
                         for j in self.jobs]}

    def close(self) -> None:
        mm, self._mm = self._mm, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:  # a memoryview of it is still alive (read_all's): the GC unmaps it later
                pass
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "PackReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def open_pack(path: str | os.PathLike, verify: bool = True, validate: bool = False,
              mmap: bool = True) -> PackReader:
    """Open a pack for reading (see :class:`PackReader`)."""
    return PackReader(path, verify=verify, validate=validate, mmap=mmap)


def is_pack(path: str | os.PathLike) -> bool:
    """True when the file starts with the pack magic (or is named ``*.cpk``)."""
    p = Path(path)
    if p.suffix.lower() == ".cpk":
        return True
    if not p.is_file():  # a FIFO or device: never opened just to sniff it (it could block forever)
        return False
    try:
        with open(p, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False
