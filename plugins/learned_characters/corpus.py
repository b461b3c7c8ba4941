"""The script that authored the shipped training corpora of ``character-ml``.

Run ``python -m plugins.learned_characters.corpus [ROOT]`` (default ``plugins/data/characters``) to rewrite:

- ``names/<style>.txt``: a few hundred invented names per culture, built from hand-made phonologies
  (onsets, vowels, codas, endings and patterns per culture) — the corpus a language model learns from;
- ``stats.csv``: attribute rows per role drawn around hand-set archetypes (two or three per role), each
  allocated exactly under the game's rules with a random budget;
- ``sprites/<role>.txt``: 40 characters per role painted from seeded body plans by :mod:`.painter`, each
  as six 16x16 frames side by side (idle and a two-frame walk, facing down and facing side).

Deterministic (seeded); the files are committed, so running it is only needed to change the corpora.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from engine.textfilter import default_filter

from ..rules import ATTRS, ROLES
from . import painter
from .data import FRAMES, MAX_NAME, MIN_NAME, allocate, finish, sprite_text

# --------------------------------------------------------------------------------------------- names
# per culture: syllable onsets, nuclei, codas, endings, and word patterns
# (O onset, V vowel, C coda, E ending, "'" apostrophe, "-" hyphen)
PHONOLOGY = {
    "elven": dict(
        O=("l", "th", "f", "n", "s", "c", "r", "v", "m", "gl", "el", "", "ir", "sh", "al", "t", "ny", "l", "r"),
        V=("a", "e", "i", "ae", "ia", "y", "o", "a", "e", "i"),
        C=("", "", "", "l", "n", "r", "s", "th", "ss", "nd", "ll"),
        E=("iel", "wen", "ion", "ath", "ara", "eth", "ir", "ys", "ael", "anor", "ielle", "ien", "orin",
           "adis", "essa", "uil", "ithil", "alas", "owen", "inya"),
        P=("OVCE", "OVOVE", "OVE", "VOVE", "OVCOVE", "OVOE", "OVCOV"),
    ),
    "dwarven": dict(
        O=("b", "d", "g", "k", "th", "br", "dr", "gr", "kh", "thr", "bor", "dw", "h", "m", "n", "r", "gl"),
        V=("a", "o", "u", "i", "au", "ou", "a", "o", "u"),
        C=("r", "n", "k", "m", "rn", "rk", "nd", "mm", "gg", "rr", "ld", "st", "z"),
        E=("in", "ur", "ak", "dan", "grim", "rik", "bek", "ul", "dok", "mund", "li", "rin", "ram", "gar",
           "bold", "nar", "hild", "stok", "drum", "dur"),
        P=("OVCE", "OVC", "OVCOVC", "OVE", "OVCVC", "OVCOE"),
    ),
    "orcish": dict(
        O=("g", "gr", "z", "zh", "k", "kr", "sh", "m", "b", "dr", "ug", "ur", "th", "n", "gh", "sk", "r"),
        V=("a", "u", "o", "aa", "uu", "a", "u", "o", "i"),
        C=("g", "k", "z", "rz", "sh", "gg", "kk", "th", "mb", "rg", "rk", "zg", "b", "d"),
        E=("ash", "ug", "gak", "nok", "ath", "uk", "ogg", "rag", "uz", "mak", "bur", "dush", "gul", "kar",
           "zag", "tur", "ush"),
        P=("OVCE", "OVC'OVC", "OVCVC", "OVE", "OVC", "VC'OVC", "OVCOVC", "OV'OVE"),
    ),
    "nordic": dict(
        O=("s", "h", "b", "th", "ey", "as", "g", "r", "sv", "k", "t", "fr", "hj", "st", "v", "h", "g", "br"),
        V=("a", "e", "i", "o", "u", "y", "ei", "au", "ja", "a", "e"),
        C=("", "", "r", "l", "n", "rn", "lf", "ld", "g", "k", "st", "nd", "f"),
        E=("rid", "ulf", "dis", "ar", "mund", "geir", "leif", "vald", "hild", "run", "bjorn", "a", "ny",
           "ve", "olf", "grim", "stein", "vor", "dottir", "son"),
        P=("OVCE", "OVE", "OVCVE", "OVCOVC", "OVCE", "VCOVE"),
    ),
    "desert": dict(
        O=("z", "k", "r", "sh", "h", "n", "j", "m", "f", "q", "s", "l", "b", "d", "t", "kh", "y", "al", "z"),
        V=("a", "i", "u", "aa", "ee", "a", "i", "a", "ai", "ou"),
        C=("", "", "", "r", "m", "n", "l", "s", "d", "z", "h", "sh", "ff"),
        E=("ir", "im", "ah", "an", "ad", "een", "oud", "ara", "iya", "esh", "ul", "ira", "amir", "ifa",
           "assan", "una", "ima", "ar", "ez", "ani"),
        P=("OVCE", "OVOVE", "OVE", "OVCOVE", "VOVE", "OV-OVE", "OVOVC"),
    ),
}
NAMES_PER_STYLE = 320


def _name(rng: np.random.Generator, ph: dict) -> str:
    pattern = ph["P"][int(rng.integers(len(ph["P"])))]
    out = []
    for sym in pattern:
        if sym in "OVCE":
            seq = ph[sym]
            out.append(seq[int(rng.integers(len(seq)))])
        else:
            out.append(sym)
    s = "".join(out).strip("'-")
    for bad in ("''", "--", "'-", "-'"):
        s = s.replace(bad, bad[0])
    return s


def _pronounceable(core: str) -> bool:
    """At most two vowels and three consonants in a row."""
    run_v = run_c = 0
    for c in core:
        if c in "aeiouy":
            run_v, run_c = run_v + 1, 0
        else:
            run_v, run_c = 0, run_c + 1
        if run_v > 2 or run_c > 3:
            return False
    return True


def author_names(seed: int = 20240) -> dict[str, list[str]]:
    filt = default_filter()
    out: dict[str, list[str]] = {}
    taken: set[str] = set()
    for k, (style, ph) in enumerate(sorted(PHONOLOGY.items())):
        rng = np.random.default_rng([seed, k])
        names: list[str] = []
        while len(names) < NAMES_PER_STYLE:
            s = _name(rng, ph)
            core = s.replace("'", "").replace("-", "")
            if not MIN_NAME + 1 <= len(s) <= MAX_NAME - 2 or s in taken or not filt.name_ok(s):
                continue
            if any(c * 3 in core for c in "abcdefghijklmnopqrstuvwxyz") or not _pronounceable(core):
                continue
            taken.add(s)
            names.append(s)
        out[style] = sorted(names)
    return out


# --------------------------------------------------------------------------------------------- stats
# archetypes per role: relative weights of strength, dexterity, constitution, intelligence, wisdom, charisma
ARCHETYPES = {
    "warrior": ((6, 3, 5, 1, 2, 2), (4, 5, 3, 2, 2, 3), (5, 2, 6, 1, 3, 1)),
    "mage": ((1, 2, 2, 7, 4, 2), (1, 3, 1, 6, 2, 5), (2, 1, 2, 5, 6, 2)),
    "rogue": ((2, 7, 2, 3, 1, 3), (3, 6, 3, 2, 2, 1), (1, 5, 2, 3, 2, 6)),
    "cleric": ((3, 1, 3, 2, 7, 3), (2, 2, 2, 3, 5, 6)),
    "ranger": ((3, 6, 3, 2, 4, 1), (4, 4, 4, 1, 4, 1)),
    "merchant": ((1, 2, 2, 4, 3, 7), (2, 3, 2, 6, 2, 5)),
    "villager": ((4, 3, 4, 2, 3, 3), (2, 3, 3, 3, 4, 4), (3, 2, 3, 4, 2, 3)),
    "beast": ((7, 4, 6, 1, 2, 1), (3, 7, 3, 1, 3, 1), (5, 3, 7, 1, 1, 1)),
    "undead": ((5, 2, 6, 1, 2, 1), (2, 2, 3, 6, 3, 2)),
}
ROWS_PER_ROLE = 90


def author_stats(seed: int = 20241) -> list[tuple[str, list[int]]]:
    rng = np.random.default_rng(seed)
    rows = []
    for role in ROLES:
        arch = ARCHETYPES[role]
        for _ in range(ROWS_PER_ROLE):
            a = np.array(arch[int(rng.integers(len(arch)))], dtype=float)
            p = rng.dirichlet(a * 6.0)
            budget = int(rng.integers(45, 86))
            rows.append((role, [int(v) for v in allocate(p, budget)]))
    return rows


# --------------------------------------------------------------------------------------------- sprites
SPRITES_PER_ROLE = 40


def author_sprites() -> dict[str, list[tuple[str, dict[str, np.ndarray]]]]:
    """role -> [(sprite name, the six finished frames)], painted by :mod:`.painter`."""
    out: dict[str, list] = {}
    for role, name, down, side in painter.author(ROLES, SPRITES_PER_ROLE):
        out.setdefault(role, []).append((name, finish(down, side)))
    return out


# --------------------------------------------------------------------------------------------- main
def write_all(root: Path) -> None:
    (root / "names").mkdir(parents=True, exist_ok=True)
    (root / "sprites").mkdir(parents=True, exist_ok=True)
    for style, names in author_names().items():
        head = f"; style: {style}\n; invented names for character-ml (plugins/learned_characters/corpus.py)\n"
        (root / "names" / f"{style}.txt").write_text(head + "\n".join(names) + "\n", "utf-8")
    lines = ["role," + ",".join(ATTRS)] + [f"{r}," + ",".join(map(str, v)) for r, v in author_stats()]
    (root / "stats.csv").write_text("\n".join(lines) + "\n", "utf-8")
    for old in (root / "sprites").glob("*.txt"):
        old.unlink()
    for role, sprites in author_sprites().items():
        lines = [f"; role: {role}", f"; {len(sprites)} {role} sprites painted by plugins/learned_characters/painter.py "
                 f"(slots: . transparent, # outline, s skin, p primary, q secondary, h hair, e eyes/white, m metal)",
                 f"; frames: {' '.join(FRAMES)}"]
        for name, frames in sprites:
            lines += [f"; sprite: {name}", *sprite_text(frames)]
        (root / "sprites" / f"{role}.txt").write_text("\n".join(lines) + "\n", "utf-8")

MANIFEST = "manifest.json"
#: where every file of the corpora comes from, and under which licence
SOURCES = {
    "conjure-corpus-script": {
        "author": "the Conjure project",
        "licence": "MIT",
        "how": "python -m plugins.learned_characters.corpus (names: hand-made phonologies per culture; stats: "
               "hand-set archetypes per role; sprites: seeded body plans painted by "
               "plugins/learned_characters/painter.py)",
    },
}
#: sources looked at and not used, and why (kept in the manifest so the choice is on record)
NOT_USED = {
    "kenney-cc0 (arcade wheel, arcade/resources/assets/images, License.txt: CC0)":
        "128x128 side-view platformer art (6 people with side walks, 19 enemies), no down facing and not "
        "16x16 pixel art: downscaling breaks the palette/outline rules, so none of it is in the corpus",
}


def write_manifest(root: Path) -> None:
    """``manifest.json``: every corpus file with its source, licence and SHA-256 (tests check it covers all)."""
    import hashlib
    import json

    files = {}
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = f.relative_to(root).as_posix()
        files[rel] = {"source": "conjure-corpus-script", "licence": SOURCES["conjure-corpus-script"]["licence"],
                      "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
    doc = {"sources": SOURCES, "not_used": NOT_USED, "files": files}
    (root / MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", "utf-8")


if __name__ == "__main__":  # pragma: no cover
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "data" / "characters"
    write_all(out)
    write_manifest(out)
