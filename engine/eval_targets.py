"""The learned-level targets, checked on ``conjure evaluate``'s figures: each measure beside its target and
*met* or *missed* with the figure, so a report on any corpus says at once where a generator stands.

The targets (issue 13 of the tracker; ``docs/learned-levels.md``):

=====================  ==================================================================================
playable_raw           playable before any repair or resampling (first attempt), ≥ 95%
playable_returned      playable as returned 100%, with ≤ 3 tries on average
fidelity_3x3           share of the output's 3×3 windows that occur in the training levels, ≥ 99%
tile_kinds             every tile kind with ≥ 0.5% share in the corpus at 0.5–2× that share in the output
novelty                no output equal to a training level or a same-size section of one (100%)
kl_2x2                 tile-pattern KL(held-out ‖ output) ≤ 1.5× the corpus's own KL(held-out ‖ train)
diversity              mean pairwise distance ≥ 0.8× the corpus's own
controls               each control bucket asked lands in that bucket: ≥ 90% per attribute, ``none`` 100%
=====================  ==================================================================================

Controls are measured only for a generator with the :class:`engine.generator.LevelControls` protocol and
only when asked (``conjure evaluate --controls N``: N levels per attribute and bucket, as returned by the
engine). Speed targets live in ``bench/`` (ratios measured in one run), not here.
"""
from __future__ import annotations

from typing import Any

from .errors import ConjureError
from .seeds import derive

PLAYABLE_RAW = 0.95
MAX_TRIES = 3.0
FIDELITY = 0.99
KIND_SHARE = 0.005
KIND_RANGE = (0.5, 2.0)
KL_RATIO = 1.5
DIVERSITY_RATIO = 0.8
CONTROL_SHARE = 0.9


def _row(name: str, target: str, value: str, met: bool | None) -> dict:
    return {"name": name, "target": target, "value": value, "met": met}


def level_targets(metrics: dict) -> list[dict]:
    """One row per target that ``metrics`` (from :func:`engine.eval_levels.evaluate`) can judge:
    ``{"name", "target", "value", "met"}`` (``met`` is None where a figure is missing, e.g. no corpus)."""
    rows = []
    raw = metrics.get("playability_raw")
    if isinstance(raw, (int, float)):
        rows.append(_row("playable_raw", f"≥ {PLAYABLE_RAW:.0%}", f"{raw:.1%}", raw >= PLAYABLE_RAW))
    after, tries = metrics.get("playability_after"), metrics.get("mean_tries")
    if isinstance(after, (int, float)) and isinstance(tries, (int, float)):
        rows.append(_row("playable_returned", f"100%, ≤ {MAX_TRIES:g} tries on average",
                         f"{after:.1%}, {tries:.2f} tries", after >= 1.0 and tries <= MAX_TRIES))
    own = metrics.get("corpus_own") or {}
    fid = metrics.get("fidelity_3x3")
    if isinstance(fid, (int, float)):
        rows.append(_row("fidelity_3x3", f"≥ {FIDELITY:.0%}", f"{fid:.2%}", fid >= FIDELITY))
    tiles = metrics.get("tiles") or []
    if tiles:
        lo, hi = KIND_RANGE
        judged = [t for t in tiles if t["corpus"] >= KIND_SHARE]
        off = [t for t in judged if not lo <= t["model"] / t["corpus"] <= hi]
        ratios = ", ".join(f"`{t['char']}` {t['model'] / t['corpus']:.2f}×" for t in (off or judged))
        value = (f"{len(judged) - len(off)}/{len(judged)} kinds in range"
                 + (f"; outside: {ratios}" if off else f" ({ratios})"))
        rows.append(_row("tile_kinds", f"kinds ≥ {KIND_SHARE:.1%} share at {lo:g}–{hi:g}× their share", value,
                         not off))
    nov = metrics.get("novelty_exact")
    if isinstance(nov, (int, float)):
        rows.append(_row("novelty", "100% not a copy", f"{nov:.1%}", nov >= 1.0))
    kl, kl_own = metrics.get("kl_2x2"), own.get("kl_2x2")
    if isinstance(kl, (int, float)) and isinstance(kl_own, (int, float)):
        ratio = kl / kl_own if kl_own > 0 else float("inf") if kl > 0 else 1.0
        rows.append(_row("kl_2x2", f"≤ {KL_RATIO:g}× the corpus's own",
                         f"{kl:.4f} vs {kl_own:.4f} = {ratio:.3f}×", ratio <= KL_RATIO))
    div, div_own = metrics.get("diversity"), own.get("diversity")
    if isinstance(div, (int, float)) and isinstance(div_own, (int, float)) and div_own > 0:
        ratio = div / div_own
        rows.append(_row("diversity", f"≥ {DIVERSITY_RATIO:g}× the corpus's own",
                         f"{div:.4f} vs {div_own:.4f} = {ratio:.3f}×", ratio >= DIVERSITY_RATIO))
    controls = metrics.get("controls")
    if controls:
        for attr, buckets in controls.items():
            shares = {b: f["landed"] / f["judged"] for b, f in buckets.items() if f["judged"]}
            met = all(s >= (1.0 if b == "none" else CONTROL_SHARE) for b, s in shares.items()) and bool(shares)
            value = ", ".join(f"{b} {s:.0%}" for b, s in shares.items()) or "no level could be judged"
            rows.append(_row(f"controls.{attr}", f"≥ {CONTROL_SHARE:.0%} per bucket, none 100%", value, met))
    return rows


def control_figures(engine: Any, gen: Any, *, per_bucket: int, seed: Any, params: dict) -> dict:
    """For a :class:`~engine.generator.LevelControls` generator: for every attribute and bucket it offers,
    ``per_bucket`` levels made with that bucket asked (seeds ``derive(seed, "controls", attr, bucket, i)``)
    and measured: ``{attr: {bucket: {"asked", "judged", "landed", "first_try"}}}`` — ``judged`` counts the
    levels the generator could measure (a level too small for a bucket may not be) and those the engine could
    not make within its tries (counted as missed; ``error`` quotes the first such failure), ``landed`` those
    whose measured bucket is the one asked, ``first_try`` those returned on the engine's first attempt."""
    out: dict[str, dict] = {}
    errors: dict[str, dict[str, str]] = {}
    for attr, buckets in gen.level_controls(params).items():
        for b in buckets:
            p = {**params, attr: b}
            seeds = [derive(seed, "controls", attr, b, i) for i in range(per_bucket)]
            try:
                levels: list = engine.generate_batch("level", gen.id, seeds, p)
            except ConjureError:  # one level the engine could not make in its tries: one by one, counted
                levels = []
                for s in seeds:
                    try:
                        levels.append(engine.generate("level", gen.id, s, p))
                    except ConjureError as e:
                        levels.append(None)
                        errors.setdefault(attr, {}).setdefault(b, str(e))
            judged = landed = first = 0
            for lv in levels:
                if lv is None:  # not made within the engine's tries: asked and missed
                    judged += 1
                    continue
                got = gen.measure_controls(lv, p).get(attr)
                first += int(lv.metadata.get("tries", 1) == 1)
                if got is None:
                    continue
                judged += 1
                landed += int(got == b)
            out.setdefault(attr, {})[b] = {"asked": per_bucket, "judged": judged, "landed": landed,
                                           "first_try": first}
            if attr in errors and b in errors[attr]:
                out[attr][b]["error"] = errors[attr][b]
    return out


def report_lines(rows: list[dict]) -> list[str]:
    """The markdown section of ``report.md``."""
    if not rows:
        return []
    met = sum(r["met"] is True for r in rows)
    lines = ["## Targets", "", f"{met} of {len(rows)} met (speed targets: `bench/`).", "",
             "| measure | target | output | |", "| --- | --- | --- | --- |"]
    for r in rows:
        verdict = "met" if r["met"] else ("n/a" if r["met"] is None else "**missed**")
        lines.append(f"| {r['name']} | {r['target']} | {r['value']} | {verdict} |")
    return lines + [""]
