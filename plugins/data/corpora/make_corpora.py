"""Write the two VGLC-layout corpora in this folder (deterministic; the committed files are the data).

They are *not* any real game's levels: they are authored here by recipes, in the formats and layouts that
the Video Game Level Corpus publishes, so that the learned generators are shown on data laid out exactly
as users will bring it.

- ``mario-like/``: a game folder as VGLC publishes Super Mario Bros: ``Processed/*.txt`` (14 rows,
  150–300 columns, one character per tile), the game's legend ``mario-like.json`` in the game folder (one
  above ``Processed/``, VGLC's tags), and a ``README.txt``. Characters ``X S - ? Q E < > [ ] o B b``:
  ground, bricks, air, full and empty ?-blocks, enemies standing on the ground, pipes 2 wide with tops,
  coins, cannons; gaps and staircases.
- ``zelda-like/``: a game folder as VGLC publishes The Legend of Zelda: ``Processed/*.txt`` (dungeons as
  grids of 16×11 rooms, walls two tiles thick, doors in the middle of walls), ``Processed/README.txt``
  listing the tile meanings, and ``Graph/*.json`` room graphs, but **no tile legend** (as that game ships
  none): the user-written legend is ``legends/zelda-like.json``, given with ``--legend``. Characters
  ``F B M P O I D S W -``: floor, block, monster, element (water), element+floor, element+block, door,
  stairs, wall, void.

Every level written is checked with the rules fitted on the corpus (``fit_rules``); the script fails if one
does not pass. Run: ``.venv/bin/python plugins/data/corpora/make_corpora.py``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

H = 14
GROUND = 12  # rows 12 and 13 are ground; the player stands on row 11

MARIO_LEGEND = {"tiles": {
    "X": ["solid", "ground"],
    "S": ["solid", "breakable"],
    "-": ["passable", "empty"],
    "?": ["solid", "question block", "full question block"],
    "Q": ["solid", "question block", "empty question block"],
    "E": ["enemy", "damaging", "hazard", "moving"],
    "<": ["solid", "top-left pipe", "pipe"],
    ">": ["solid", "top-right pipe", "pipe"],
    "[": ["solid", "left pipe", "pipe"],
    "]": ["solid", "right pipe", "pipe"],
    "o": ["coin", "collectable", "passable"],
    "B": ["Cannon top", "cannon", "solid", "hazard"],
    "b": ["Cannon bottom", "cannon", "solid"],
}}

ZELDA_LEGEND = {"tiles": {
    "F": ["floor", "passable"],
    "B": ["block", "solid"],
    "M": ["monster", "enemy", "passable"],
    "P": ["element", "water", "solid", "hazard"],
    "O": ["element floor", "passable"],
    "I": ["element block", "solid"],
    "D": ["door", "passable"],
    "S": ["stairs", "passable"],
    "W": ["wall", "solid"],
    "-": ["void", "empty"],
}}


# --------------------------------------------------------------------------------------------- side view
def mario_level(rng: np.random.Generator, width: int) -> list[str]:
    g = np.full((H, width), "-", dtype="<U1")
    g[GROUND:, :] = "X"
    x = 6
    last = None
    while x < width - 14:
        kind = rng.choice(["run", "gap", "pipe", "blocks", "stairs", "cannon", "enemies", "coins"],
                          p=[0.12, 0.16, 0.17, 0.2, 0.09, 0.06, 0.12, 0.08])
        if kind == last and kind in ("gap", "stairs", "cannon"):
            continue
        last = kind
        if kind == "run":
            x += int(rng.integers(3, 8))
        elif kind == "gap":
            w = int(rng.integers(1, 4))
            g[GROUND:, x:x + w] = "-"
            x += w + int(rng.integers(2, 5))
        elif kind == "pipe":
            h = int(rng.integers(2, 5))
            top = GROUND - h
            g[top, x], g[top, x + 1] = "<", ">"
            g[top + 1:GROUND, x] = "["
            g[top + 1:GROUND, x + 1] = "]"
            if rng.random() < 0.4:  # an enemy between this pipe and the next stretch
                g[GROUND - 1, x + 3] = "E"
            x += 2 + int(rng.integers(3, 6))
        elif kind == "blocks":
            n = int(rng.integers(3, 7))
            row = GROUND - 4
            for i in range(n):
                g[row, x + i] = "?" if rng.random() < 0.35 else ("Q" if rng.random() < 0.1 else "S")
            if rng.random() < 0.5:
                for i in range(n):
                    if rng.random() < 0.6:
                        g[row - 1, x + i] = "o"
            if n >= 5 and rng.random() < 0.5:  # a second row higher up, reached from the first
                for i in range(1, n - 1):
                    g[row - 4, x + i] = "S" if rng.random() < 0.7 else "?"
            if rng.random() < 0.5:
                g[GROUND - 1, x + int(rng.integers(0, n))] = "E"
            x += n + int(rng.integers(2, 5))
        elif kind == "stairs":
            h = int(rng.integers(2, 5))
            for i in range(h):
                g[GROUND - 1 - i:GROUND, x + i] = "X"
            top_w = int(rng.integers(1, 3))
            g[GROUND - h:GROUND, x + h:x + h + top_w] = "X"
            if rng.random() < 0.5:  # down again
                for i in range(h):
                    g[GROUND - h + i:GROUND, x + h + top_w + i] = "X"
                x += 2 * h + top_w + int(rng.integers(2, 4))
            else:  # a gap after the top, as at the end of many stages
                gap = int(rng.integers(1, 3))
                g[GROUND:, x + h + top_w:x + h + top_w + gap] = "-"
                x += h + top_w + gap + int(rng.integers(2, 4))
        elif kind == "cannon":
            h = int(rng.integers(1, 3))
            g[GROUND - h, x] = "B"
            g[GROUND - h + 1:GROUND, x] = "b"
            x += 1 + int(rng.integers(3, 6))
        elif kind == "enemies":
            n = int(rng.integers(1, 4))
            for i in range(n):
                g[GROUND - 1, x + 2 * i] = "E"
            x += 2 * n + int(rng.integers(2, 5))
        elif kind == "coins":
            n = int(rng.integers(3, 7))
            g[GROUND - 3, x:x + n] = "o"
            x += n + int(rng.integers(1, 4))
    # no enemy in mid-air (a gap cut the ground under it) or on a pipe body
    for y, xx in np.argwhere(g == "E"):
        if y + 1 >= H or g[y + 1, xx] not in ("X", "S", "?", "Q", "<", ">", "[", "]", "b", "B"):
            g[y, xx] = "-"
    return ["".join(r) for r in g]


# --------------------------------------------------------------------------------------------- top down
RW, RH = 16, 11


def zelda_room(rng: np.random.Generator, doors: set[str], stairs: bool, entrance: bool) -> np.ndarray:
    r = np.full((RH, RW), "W", dtype="<U1")
    r[2:RH - 2, 2:RW - 2] = "F"
    pattern = rng.choice(["plain", "blocks4", "water", "pillars", "ring", "moat"])
    inner = r[2:RH - 2, 2:RW - 2]  # 7 x 12 view
    if pattern == "blocks4":
        for yy, xx in ((1, 2), (1, 9), (5, 2), (5, 9)):
            inner[yy, xx] = "B"
    elif pattern == "water":
        inner[1:3, 1:4] = "P"
        inner[4:6, 8:11] = "P"
        inner[1, 8:11] = "I"
    elif pattern == "pillars":
        for xx in (1, 3, 8, 10):
            inner[1, xx] = "B"
            inner[5, xx] = "B"
    elif pattern == "ring":
        inner[1, 2:10] = "O"
        inner[5, 2:10] = "O"
        inner[1:6, 2] = "O"
        inner[1:6, 9] = "O"
        inner[2, 3] = inner[4, 8] = "I"
    elif pattern == "moat":
        inner[1, 1:5] = "P"
        inner[5, 7:11] = "P"
        inner[1, 7:11] = "O"
        inner[5, 1:5] = "O"
    # keep the cross between doors clear
    inner[3, :] = np.where(np.isin(inner[3, :], ["B", "P", "I"]), "F", inner[3, :])
    inner[:, 5:7] = np.where(np.isin(inner[:, 5:7], ["B", "P", "I"]), "F", inner[:, 5:7])
    for _ in range(int(rng.integers(0, 4))):
        yy, xx = int(rng.integers(0, 7)), int(rng.integers(0, 12))
        if inner[yy, xx] == "F":
            inner[yy, xx] = "M"
    if stairs:
        inner[3, 9] = "S"
    if "N" in doors:
        r[0:2, 7:9] = "D"
    if "S" in doors or entrance:
        r[RH - 2:RH, 7:9] = "D"
    if "W" in doors:
        r[5, 0:2] = "D"
    if "E" in doors:
        r[5, RW - 2:RW] = "D"
    return r


def zelda_level(rng: np.random.Generator) -> tuple[list[str], dict]:
    rows, cols = int(rng.integers(3, 6)), int(rng.integers(3, 6))
    n_rooms = int(rng.integers(max(4, rows * cols // 2), rows * cols + 1))
    start = (rows - 1, int(rng.integers(0, cols)))
    rooms = {start}
    edges = set()
    while len(rooms) < n_rooms:
        a = sorted(rooms)[int(rng.integers(len(rooms)))]
        dy, dx = [(-1, 0), (1, 0), (0, -1), (0, 1)][int(rng.integers(4))]
        b = (a[0] + dy, a[1] + dx)
        if 0 <= b[0] < rows and 0 <= b[1] < cols and b not in rooms:
            rooms.add(b)
            edges.add((a, b))
    # a few loops, as real dungeons have
    for a in sorted(rooms):
        for dy, dx in ((0, 1), (1, 0)):
            b = (a[0] + dy, a[1] + dx)
            if b in rooms and (a, b) not in edges and (b, a) not in edges and rng.random() < 0.2:
                edges.add((a, b))
    far = max(sorted(rooms), key=lambda r: (abs(r[0] - start[0]) + abs(r[1] - start[1]), r))
    grid = np.full((rows * RH, cols * RW), "-", dtype="<U1")
    for (ry, rx) in sorted(rooms):
        doors = set()
        for a, b in edges:
            if (ry, rx) in (a, b):
                o = b if a == (ry, rx) else a
                doors.add({(-1, 0): "N", (1, 0): "S", (0, -1): "W", (0, 1): "E"}[(o[0] - ry, o[1] - rx)])
        room = zelda_room(rng, doors, (ry, rx) == far, (ry, rx) == start)
        grid[ry * RH:(ry + 1) * RH, rx * RW:(rx + 1) * RW] = room
    graph = {"rooms": [{"id": f"{ry},{rx}", "start": (ry, rx) == start, "stairs": (ry, rx) == far}
                       for ry, rx in sorted(rooms)],
             "edges": [[f"{a[0]},{a[1]}", f"{b[0]},{b[1]}"] for a, b in sorted(edges)]}
    return ["".join(r) for r in grid], graph


# --------------------------------------------------------------------------------------------- writing
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def main() -> int:
    sys.path.insert(0, str(ROOT))
    rng = np.random.default_rng(20261202)
    game = HERE / "mario-like"
    _write(game / "mario-like.json", json.dumps(MARIO_LEGEND, indent=1) + "\n")
    _write(game / "README.txt", "Mario-like: 16 side-view levels authored by make_corpora.py in VGLC's layout.\n"
                                "Processed/: one character per tile, 14 rows; legend: mario-like.json.\n")
    for i in range(16):
        width = int(rng.integers(150, 301))
        _write(game / "Processed" / f"mario-like-{i + 1:02d}.txt", "\n".join(mario_level(rng, width)) + "\n")
    game = HERE / "zelda-like"
    _write(HERE / "legends" / "zelda-like.json", json.dumps(ZELDA_LEGEND, indent=1) + "\n")
    _write(game / "Processed" / "README.txt",
           "Zelda-like dungeons authored by make_corpora.py in VGLC's layout: rooms 16 wide, 11 high.\n"
           "F = floor, B = block, M = monster, P = element (water), O = element + floor,\n"
           "I = element + block, D = door, S = stairs, W = wall, - = void\n")
    for i in range(10):
        lines, graph = zelda_level(rng)
        _write(game / "Processed" / f"zelda-like-{i + 1}.txt", "\n".join(lines) + "\n")
        _write(game / "Graph" / f"zelda-like-{i + 1}.json", json.dumps(graph, indent=1) + "\n")
    # check every level with the rules fitted on its corpus
    from plugins.learned_levels.corpus import load_corpus
    from plugins.learned_levels.rules import fit_rules

    ok = True
    for data, legend in ((HERE / "mario-like" / "Processed", None),
                         (HERE / "zelda-like", HERE / "legends" / "zelda-like.json")):
        c = load_corpus([data], legend=legend)
        r = fit_rules(c)
        print(f"{data.relative_to(ROOT)}: {len(c.grids)} levels, view {c.view}, room {c.room}, "
              f"{len(c.tileset.tiles)} tile kinds; rules: {r.describe()}; corpus passing: "
              f"{r.report['corpus_pass']:.0%}; skipped: {len(c.skipped)}")
        for f, why in r.report["failures"]:
            print(f"  FAILS {f}: {why}")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
