"""Reading packs back out: ``conjure info PACK`` lines and ``conjure extract`` through the exporters."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InputError


def info_lines(path: str | os.PathLike) -> list[str]:
    from ..packs import open_pack

    with open_pack(path) as r:
        s = r.summary()
    lines = [f"{path}: Conjure pack v{s['format_version']} (written by Conjure {s['conjure_version']})",
             f"  assets: {s['count']}  size: {s['bytes']:,} bytes  raw records: {s['raw_bytes']:,} bytes  "
             f"compression: {s['compression']}"]
    for j in s["jobs"] if isinstance(s["jobs"], list) else []:
        if not isinstance(j, dict):  # a hand-made or damaged manifest: say so, do not trip over it
            lines.append(f"  job: malformed entry ({type(j).__name__}, expected a map)")
            continue
        raw = j.get("params")
        params = " ".join(f"{k}={v}" for k, v in raw.items()) if isinstance(raw, dict) else ""
        lines.append(f"  job {j.get('name')}: {j.get('count')} x {j.get('kind')} by {j.get('generator')} "
                     f"v{j.get('generator_version')}  seed {j.get('seed')!r}  {params}")
    return lines


def extract(pack: str | os.PathLike, out: str | os.PathLike, fmt: str = "msgpack", ids: list[str] | None = None,
            engine: Any = None, options: dict | None = None) -> list[Path]:
    """Write assets of a pack through the engine's exporters: ``OUT/<job>/<index><ext>``."""
    from ..core import Engine
    from ..packs import open_pack

    eng = engine or Engine()
    exp = eng.exporter(fmt)
    ext = exp.extensions[0] if exp.extensions else f".{fmt}"
    written: list[Path] = []
    with open_pack(pack) as r:
        todo = [r.index_of(i) for i in ids] if ids else range(len(r))
        for i in todo:
            aid = r.records[i][0]
            if not isinstance(aid, str) or any(ord(ch) < 32 or ch in "\\:" for ch in aid):
                raise InputError(f"{pack}: record {i}: asset id {aid!r} cannot become a file name (control "
                                 "characters, '\\' or ':')")
            parts = [p for p in aid.split("/") if p not in ("", ".", "..")]
            target = Path(out).joinpath(*parts[:-1], (parts[-1] if parts else str(i)) + ext)
            written += eng.export(r[i], target, fmt, **(options or {}))
    return written
