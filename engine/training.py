"""``conjure train``: the engine side of training learned generators.

A trainable generator has a ``train(job: TrainJob) -> dict`` method and may declare ``train_options`` (the
``-O KEY=VALUE`` names it reads; others are refused). The engine expands the data paths,
calls it, and writes the **model card** (``model.json`` beside the weights): generator id and version, the
data files with their SHA-256, config, seed, epochs, wall time, metrics, the weight files with their SHA-256
and the exact ``conjure train`` command that reproduces them. ``train`` returns a dict with at least
``weights`` (file names written into ``job.out``), and optionally ``config``, ``metrics``, ``epochs``,
``data`` (``[(path, sha256)]``: exactly the files it used, which the card then lists instead of every file
under ``--data``), ``device`` and ``card`` (more entries for the card: split, fitted rules, per-epoch
history…). ``job.out`` is a temporary folder; the engine moves the files into ``--out`` only on success, so
a failed run leaves nothing behind. NaN/inf in the card become null (it is strict JSON).
"""
from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, PluginError
from .progress import Progress
from .serialize import atomic_write
from .weights import file_digest

MAX_DATA_FILES = 10_000


@dataclass
class TrainJob:
    """What a generator's ``train`` gets: data files, output folder, epochs (None = its default), seed,
    the engine (to ``load`` Tiled/VGLC/pack data through the importers) and a progress factory."""

    data: list[Path]
    out: Path
    epochs: int | None
    seed: int
    engine: Any = None
    show_progress: bool = True
    options: dict = field(default_factory=dict)
    #: the ``--data`` paths as given (folders unexpanded: corpus readers look for legends around them)
    paths: list[Path] = field(default_factory=list)
    #: ``--legend`` (a legend file for VGLC text), ``--mapping`` (tags overriding the legend's), or None
    legend: Path | None = None
    mapping: Path | None = None
    #: ``--verbose``: list every skipped file, not only a count
    verbose: bool = False
    #: ``--device``: ``cpu`` (default), ``cuda`` or ``auto`` (see ``plugins.learned_common.resolve_device``)
    device: str = "cpu"

    def say(self, line: str) -> None:
        """A line for the person training (stderr; hidden when progress is off)."""
        if self.show_progress:
            import sys

            print(line, file=sys.stderr)

    def progress(self, total: int, description: str) -> Progress:
        return Progress(total, description, enabled=self.show_progress)


def expand_data(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given, folders expanded to their files (sorted, hidden files skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"--data {p}: no such file or folder")
    if not out:
        raise InputError(f"--data {', '.join(map(str, paths))}: no training files found (no files in "
                         f"{'these folders' if len(paths) > 1 else 'this folder'}, hidden ones aside)")
    if len(out) > MAX_DATA_FILES:
        raise InputError(f"--data: {len(out)} files is over the limit of {MAX_DATA_FILES}")
    return out


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def train(engine: Any, gen_id: str, data: list[str | os.PathLike], *, epochs: int | None = None, seed: int = 0,
          out: str | os.PathLike | None = None, show_progress: bool = True, legend: str | os.PathLike | None = None,
          mapping: str | os.PathLike | None = None, verbose: bool = False, device: str = "cpu",
          **options: Any) -> dict:
    """Train ``gen_id`` on ``data``; write weights and ``model.json`` into ``out``; return the model card.

    The generator writes into a fresh temporary folder beside ``out``; only when it succeeds are its files
    moved into ``out`` (created then), so a failed run leaves no folder behind and earlier weights intact."""
    gen = engine.generator(gen_id)
    if not callable(getattr(gen, "train", None)):
        trainable = ", ".join(g.id for g in engine.generators() if callable(getattr(g, "train", None))) or "none"
        raise InputError(f"generator {gen_id!r} cannot be trained (trainable: {trainable})")
    if epochs is not None and epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}")
    known = getattr(gen, "train_options", None)
    if known is not None:
        unknown = sorted(k for k in options if k not in known)
        if unknown:
            raise InputError(f"generator {gen_id!r} has no training option {unknown[0]!r} "
                             f"(its options: {', '.join(known) or 'none'})")
    for flag, p in (("--legend", legend), ("--mapping", mapping)):
        if p is not None and not Path(p).is_file():
            raise InputError(f"{flag} {p}: no such file")
    if device not in ("cpu", "cuda", "auto"):
        raise InputError(f"--device: expected cpu, cuda or auto, got {device!r}")
    files = expand_data(data)
    out_dir = Path(out) if out is not None else Path("trained") / gen_id
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    made = [d for d in reversed(out_dir.absolute().parents) if not d.exists()]  # parents this run creates
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.training-", dir=out_dir.parent))
    job = TrainJob(files, tmp, epochs, seed, engine, show_progress, dict(options), [Path(p) for p in data],
                   Path(legend) if legend is not None else None, Path(mapping) if mapping is not None else None,
                   verbose, device)
    ok = False
    try:
        card = _run(engine, gen, gen_id, job, data, epochs, seed, out_dir, options, legend, mapping)
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out_dir / f.name)
        atomic_write(out_dir / "model.json", (json.dumps(card, indent=2, allow_nan=False) + "\n").encode())
        ok = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not ok:
            for d in reversed(made):  # folders this run created, if still empty
                try:
                    d.rmdir()
                except OSError:
                    break
    return card


def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf become None (a model card is strict JSON)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _run(engine, gen, gen_id, job, data, epochs, seed, out_dir, options, legend, mapping) -> dict:
    t0 = time.time()
    try:
        result = gen.train(job)
    except (InputError, PluginError):
        raise
    except Exception as e:
        raise PluginError(f"train raised {type(e).__name__}: {e}", engine.plugin_of(gen_id), gen_id) from e
    seconds = time.time() - t0
    weights = [job.out / w for w in result.get("weights", [])]
    for w in weights:
        if not w.is_file():
            raise PluginError(f"train said it wrote {w.name} but it is not in {out_dir}", engine.plugin_of(gen_id),
                              gen_id)
    cmd = ["conjure", "train", gen_id]
    for f in data:
        cmd += ["--data", _rel(Path(f))]
    if legend is not None:
        cmd += ["--legend", _rel(Path(legend))]
    if mapping is not None:
        cmd += ["--mapping", _rel(Path(mapping))]
    if result.get("epochs") is not None:
        cmd += ["--epochs", str(result["epochs"])]
    cmd += ["--seed", str(seed), "--out", _rel(out_dir)]
    for k in sorted(options):  # the card's command must reproduce these weights exactly
        cmd += ["-O", f"{k}={options[k]}"]
    if "data" in result:  # the generator says exactly which files it used
        used = [{"path": _rel(Path(p)), "sha256": h, "bytes": Path(p).stat().st_size} for p, h in result["data"]]
    else:
        used = [{"path": _rel(f), "sha256": file_digest(f), "bytes": f.stat().st_size} for f in job.data]
    card = {
        "generator": gen_id,
        "generator_version": gen.version,
        "command": shlex.join(cmd),
        "device": result.get("device", "cpu"),
        "data": used,
        "seed": seed,
        "epochs": result.get("epochs", epochs),
        "seconds": round(seconds, 1),
        "config": result.get("config", {}),
        "metrics": result.get("metrics", {}),
        "weights": [{"file": w.name, "sha256": file_digest(w), "bytes": w.stat().st_size} for w in weights],
    }
    for k, v in (result.get("card") or {}).items():  # more a generator documents (split, rules, history...)
        card.setdefault(k, v)
    # where the files are from the card's own folder, so the weights' corpus is found wherever the command
    # that reads them runs (``-p weights=`` from any folder; the card's ``path`` is relative to where training
    # ran, as its ``command`` is)
    for d, (p, _) in zip(used, result["data"] if "data" in result else [(f, None) for f in job.data]):
        d["from_card"] = _from_card(Path(p), out_dir)
    info = card.get("corpus")
    if isinstance(info, dict):
        for k, v in (("legend", legend), ("mapping", mapping)):
            if v is not None:
                info[f"{k}_from_card"] = _from_card(Path(v), out_dir)
    return _clean(card)


def _from_card(p: Path, out_dir: Path) -> str:
    """``p`` relative to the folder ``model.json`` is written into (POSIX separators)."""
    return Path(os.path.relpath(p.resolve(), out_dir.resolve())).as_posix()
