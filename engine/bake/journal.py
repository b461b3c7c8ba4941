"""The bake journal ``PACK.journal``: an append-only file of finished chunks (*frames*), each fsynced before
it counts, rescanned on ``--resume`` (a torn last frame is dropped).

Layout: ``b"CJNL"``, u32 length, msgpack header (plan hash, created time, spec path), then frames:
``b"CJF1"``, u32 job, u64 start, u32 count, u64 payload length, 16-byte BLAKE2b over the preceding 28 bytes
and the payload; the payload is ``count`` x (u32 stored length, u32 raw length, u8 codec, 16-byte record
hash) followed by the stored records.
"""
from __future__ import annotations

import hashlib
import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack

from ..errors import InputError

JOURNAL_MAGIC = b"CJNL"
FRAME_MAGIC = b"CJF1"
FRAME_HEAD = struct.Struct("<4sIQIQ16s")  # 44 bytes
FRAME_REC = struct.Struct("<IIB16s")  # 25 bytes


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal")


def encode_frame(job: int, start: int, records: list[tuple[bytes, int, int, bytes]]) -> bytes:
    """records: (stored bytes, raw length, codec, hash)."""
    table = b"".join(FRAME_REC.pack(len(s), r, c, h) for s, r, c, h in records)
    payload = table + b"".join(s for s, _, _, _ in records)
    head = FRAME_HEAD.pack(FRAME_MAGIC, job, start, len(records), len(payload), b"\0" * 16)[:28]
    digest = hashlib.blake2b(head, digest_size=16)
    digest.update(payload)
    return head + digest.digest() + payload


@dataclass
class Frame:
    job: int
    start: int
    count: int
    offset: int  # where the frame starts in its buffer/file
    size: int  # whole frame
    records: list[tuple[int, int, int, int, bytes]]  # (offset of stored bytes, stored len, raw len, codec, hash)


def decode_frame(buf: bytes | memoryview, pos: int = 0, limit: int | None = None) -> Frame | None:
    """Parse one frame at ``pos``; None when it is incomplete or corrupt (a torn write)."""
    end = len(buf) if limit is None else limit
    if end - pos < FRAME_HEAD.size:
        return None
    magic, job, start, count, plen, digest = FRAME_HEAD.unpack_from(buf, pos)
    if magic != FRAME_MAGIC or plen > end - pos - FRAME_HEAD.size or count * FRAME_REC.size > plen:
        return None
    body = pos + FRAME_HEAD.size
    h = hashlib.blake2b(bytes(buf[pos:pos + 28]), digest_size=16)
    h.update(buf[body:body + plen])
    if h.digest() != digest:
        return None
    recs = []
    data = body + count * FRAME_REC.size
    for k in range(count):
        slen, rlen, codec, rh = FRAME_REC.unpack_from(buf, body + k * FRAME_REC.size)
        recs.append((data, slen, rlen, codec, rh))
        data += slen
    if data != body + plen:
        return None
    return Frame(job, start, count, pos, FRAME_HEAD.size + plen, recs)


class Journal:
    """Append-only file of finished chunks (frames), each written and fsynced before it counts."""

    def __init__(self, path: Path, plan: str, source: str, resume: bool, fresh: bool):
        self.path = path
        self.frames: list[Frame] = []
        self.dropped = 0
        if path.exists() and not resume and not fresh:
            raise InputError(f"{path}: an unfinished bake's journal is here; pass --resume to continue it "
                             "or --fresh to start over")
        if path.exists() and resume:
            self._load(plan)
        else:
            header = msgpack.packb({"plan": plan, "spec": source, "created": time.time(),
                                    "created_text": time.strftime("%Y-%m-%d %H:%M:%S %z")}, use_bin_type=True)
            tmp = path.with_name(path.name + ".new")
            with open(tmp, "wb") as f:
                f.write(JOURNAL_MAGIC + struct.pack("<I", len(header)) + header)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        self._f = open(path, "ab")
        self._fd = os.open(path, os.O_RDONLY)
        self._lock = threading.Lock()

    def _load(self, plan: str) -> None:
        size = self.path.stat().st_size
        if size < 8:
            raise InputError(f"{self.path}: not a bake journal (delete it or pass --fresh)")
        with open(self.path, "rb") as f:
            # memory-mapped: a million-asset journal is scanned frame by frame, never read into memory whole
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            pos = self._scan(data, plan)
        finally:
            data.close()
        if pos < size:  # a torn or corrupt tail: drop it, those chunks are baked again
            with open(self.path, "r+b") as f:
                f.truncate(pos)
                f.flush()
                os.fsync(f.fileno())
        self.dropped = size - pos

    def _scan(self, data, plan: str) -> int:
        """Check the header, collect the intact frames; return where the intact part ends."""
        if data[:4] != JOURNAL_MAGIC or len(data) < 8:
            raise InputError(f"{self.path}: not a bake journal (delete it or pass --fresh)")
        (hlen,) = struct.unpack_from("<I", data, 4)
        if hlen > 1 << 20 or 8 + hlen > len(data):
            raise InputError(f"{self.path}: corrupt journal header (pass --fresh to start over)")
        try:
            header = msgpack.unpackb(data[8:8 + hlen], raw=False)
        except Exception:
            raise InputError(f"{self.path}: corrupt journal header (pass --fresh to start over)") from None
        if not isinstance(header, dict) or header.get("plan") != plan:
            raise InputError(f"{self.path}: this journal belongs to a different spec, parameters or "
                             "Conjure version; pass --fresh to start over")
        pos = 8 + hlen
        while pos < len(data):
            fr = decode_frame(data, pos)
            if fr is None:
                break
            self.frames.append(fr)
            pos += fr.size
        return pos

    def append(self, frame_bytes: bytes) -> Frame:
        with self._lock:
            pos = self._f.tell()
            self._f.write(frame_bytes)
            self._f.flush()
            os.fsync(self._f.fileno())
        fr = decode_frame(frame_bytes)
        assert fr is not None
        fr.offset = pos
        fr.records = [(pos + o, s, r, c, h) for (o, s, r, c, h) in fr.records]
        self.frames.append(fr)
        return fr

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise InputError(f"{self.path}: truncated while reading a record")
        return data

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            os.close(self._fd)
