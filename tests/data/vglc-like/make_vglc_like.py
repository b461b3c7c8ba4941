"""Write small synthetic corpora in the Video Game Level Corpus's published layouts (deterministic).

The levels are authored here by small recipes: they are not any game's levels. The *formats* are VGLC's as
published for each game (folder layout, level size, characters, and the legend JSON's tags verbatim), so the
corpus reader, the fitted rules and the three learned level generators are tried on data shaped exactly as a
user's real VGLC download (tests/test_vglc_like.py):

- ``Super Mario Bros/``: ``Processed/*.txt``, 14 rows, legend ``smb.json`` in the game folder (characters
  ``X S - ? Q E < > [ ] o B b``); ground, gaps, 2-wide pipes with tops, ?-blocks, bricks, enemies on the
  ground, coins, staircases, cannons.
- ``Kid Icarus/``: ``Processed/*.txt``, **vertical**: 16 columns wide, 36–48 rows tall (heights differ, as in
  VGLC), the player starts at the bottom and climbs up through one-way platforms; legend ``KidIcarus.json``
  (``# - D H M T``: ``T``/``M`` are ``["solidtop", "passable", ...]``: platforms one jumps up through and
  stands on, ``H`` solid hazards, ``D`` solid doors).
- ``Lode Runner/``: ``Processed/Level N.txt``, 22 rows × 32 columns, legend ``Loderunner.json``
  (``B b . - # G E M``: solid and diggable ground, empty, ropes, ladders, gold, enemies, the player's spawn);
  no jumping: floors are joined by ladders and ropes.
- ``MegaMan/``: ``Processed/*.txt`` with ``@`` (``["null"]``) outside the playable area, ladders ``|``
  (``["passable", "climbable"]``), a spawn ``P``; legend ``MM.json`` (a subset of VGLC's characters with their
  tags); two levels 15 rows high and one 17 rows high (VGLC's Mega Man levels differ in size).
- ``The Legend of Zelda/``: ``Processed/*.txt``, dungeons as grids of rooms 16 wide × 11 high, characters
  ``F B M P O I D S W -``, and no legend (as VGLC's Zelda): ``legends/zelda.json`` is a user's.

Run: ``.venv/bin/python tests/data/vglc-like/make_vglc_like.py`` (rewrites the folders beside it).
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent

SMB_LEGEND = {"tiles": {
    "X": ["solid", "ground"], "S": ["solid", "breakable"], "-": ["passable", "empty"],
    "?": ["solid", "question block", "full question block"], "Q": ["solid", "question block", "empty question block"],
    "E": ["enemy", "damaging", "hazard", "moving"], "<": ["solid", "top-left pipe", "pipe"],
    ">": ["solid", "top-right pipe", "pipe"], "[": ["solid", "left pipe", "pipe"], "]": ["solid", "right pipe", "pipe"],
    "o": ["coin", "collectable", "passable"], "B": ["Cannon top", "cannon", "solid", "hazard"],
    "b": ["Cannon bottom", "cannon", "solid"]}}
KI_LEGEND = {"tiles": {
    "#": ["solid", "ground"], "-": ["passable", "empty"], "D": ["solid", "openable", "door"],
    "H": ["solid", "damaging", "hazard"], "M": ["solidtop", "passable", "moving", "platform"],
    "T": ["solidtop", "passable", "platform"]}}
LR_LEGEND = {"tiles": {
    "B": ["solid", "ground"], "b": ["solid", "diggable", "ground"], ".": ["passable", "empty"],
    "-": ["passable", "climbable", "rope"], "#": ["passable", "climbable", "ladder"],
    "G": ["passable", "pickupable", "gold"], "E": ["damaging", "enemy"], "M": ["passable", "spawn"]}}
MM_LEGEND = {"tiles": {
    "P": ["passable", "empty", "spawn"], "@": ["null"], "-": ["passable", "empty"], "#": ["solid", "ground", "wall"],
    "|": ["passable", "climbable"], "B": ["solid", "breakable"], "W": ["passable", "collectable", "powerup"],
    "H": ["solid", "hazard"], "C": ["passable", "hazard"], "g": ["enemy", "damaging"],
    "j": ["enemy", "damaging", "flying"]}}
ZELDA_LEGEND = {"tiles": {
    "F": ["floor", "passable"], "B": ["block", "solid"], "M": ["monster", "enemy", "passable"],
    "P": ["element", "water", "solid", "hazard"], "O": ["element floor", "passable"],
    "I": ["element block", "solid"], "D": ["door", "passable"], "S": ["stairs", "passable"],
    "W": ["wall", "solid"], "-": ["void", "empty"]}}


def _write(game: str, files: dict[str, list[list[str]]], legend: tuple[str, dict] | None, readme: str) -> None:
    d = HERE / game
    if d.exists():
        shutil.rmtree(d)
    (d / "Processed").mkdir(parents=True)
    for name, g in files.items():
        (d / "Processed" / name).write_text("\n".join("".join(r) for r in g) + "\n")
    if legend is not None:
        (d / legend[0]).write_text(json.dumps(legend[1], indent=1) + "\n")
    (d / "README.txt").write_text(readme + "\n")


# --------------------------------------------------------------------------------------------- Mario
def smb_level(rng: random.Random, w: int) -> list[list[str]]:
    H = 14
    g = [["-"] * w for _ in range(H)]
    for x in range(w):
        g[12][x] = g[13][x] = "X"
    x = 12
    while x < w - 16:
        kind = rng.choice(["gap", "pipe", "blocks", "enemy", "stairs", "cannon", "coins", "flat"])
        if kind == "gap":
            n = rng.randint(2, 3)
            for i in range(n):
                g[12][x + i] = g[13][x + i] = "-"
            x += n + 3
        elif kind == "pipe":
            h = rng.randint(2, 4)
            top = 12 - h
            g[top][x], g[top][x + 1] = "<", ">"
            for y in range(top + 1, 12):
                g[y][x], g[y][x + 1] = "[", "]"
            x += 5
        elif kind == "blocks":
            n = rng.randint(3, 5)
            for i in range(n):
                g[8][x + i] = rng.choice("S?SQ")
            if rng.random() < 0.5:
                g[4][x + 1] = "?"
            x += n + 2
        elif kind == "enemy":
            g[11][x] = "E"
            if rng.random() < 0.4:
                g[11][x + 2] = "E"
            x += 4
        elif kind == "stairs":
            n = rng.randint(3, 4)
            for i in range(n):
                for y in range(12 - (i + 1), 12):
                    g[y][x + i] = "X"
            x += n + 3
        elif kind == "cannon":
            g[10][x], g[11][x] = "B", "b"
            x += 3
        elif kind == "coins":
            for i in range(3):
                g[9][x + i] = "o"
            x += 5
        else:
            x += rng.randint(2, 4)
    return g


# --------------------------------------------------------------------------------------------- Kid Icarus
def ki_level(rng: random.Random, h: int) -> list[list[str]]:
    W = 16
    g = [["-"] * W for _ in range(h)]
    for y in range(h):
        g[y][0] = g[y][W - 1] = "#"
    for x in range(W):
        g[h - 1][x] = g[h - 2][x] = "#"
    y = h - 5  # platform rows every 3 rows up from the ground: jump 3 up through them
    side = 0
    while y >= 2:
        n = rng.randint(4, 7)
        x0 = 1 + (0 if side == 0 else W - 2 - n) if rng.random() < 0.7 else rng.randint(3, 6)
        kind = rng.choice("TTTTM#")
        for i in range(n):
            g[y][x0 + i] = kind
        if kind == "#" and n > 4 and rng.random() < 0.5:
            g[y][x0 + n - 1] = "H"
        if rng.random() < 0.25 and kind == "T" and y < h - 8:
            g[y - 1][x0] = "D"
        side ^= 1
        y -= 3
    return g


# --------------------------------------------------------------------------------------------- Lode Runner
def lr_level(rng: random.Random) -> list[list[str]]:
    H, W = 22, 32
    g = [["."] * W for _ in range(H)]
    for x in range(W):
        g[H - 1][x] = "B"
    floors = [H - 1, 16, 11, 6, 2]
    for fy in floors[1:]:
        a, b = rng.randint(0, 3), rng.randint(W - 4, W)
        for x in range(a, b):
            g[fy][x] = "b"
        if rng.random() < 0.5:  # a hole to drop through, at a floor's end (the ladders stay within reach)
            g[fy][a] = "."
    for lower, upper in zip(floors, floors[1:]):  # a ladder from each floor to the next one up
        lx = rng.randint(4, W - 5)
        while g[upper][lx] != "b":
            lx = rng.randint(4, W - 5)
        for y in range(upper, lower):
            g[y][lx] = "#"
    ry = 13  # a rope across a gap between two floors' heights
    rx = rng.randint(2, 12)
    for x in range(rx, rx + rng.randint(6, 12)):
        if g[ry][x] == ".":
            g[ry][x] = "-"
    for fy in floors:
        for _ in range(rng.randint(1, 2)):
            x = rng.randint(1, W - 2)
            if fy - 1 >= 0 and g[fy - 1][x] == "." and g[fy][x] in "bB":
                g[fy - 1][x] = "G"
        x = rng.randint(1, W - 2)
        if fy < H - 1 and g[fy - 1][x] == "." and g[fy][x] == "b":
            g[fy - 1][x] = "E"
    x = rng.randint(1, 8)
    while g[H - 2][x] != ".":
        x += 1
    g[H - 2][x] = "M"
    return g


# --------------------------------------------------------------------------------------------- Mega Man
def mm_level(rng: random.Random, h: int, w: int) -> list[list[str]]:
    """A corridor going right on the bottom screen, a ladder shaft up, a corridor going right on top;
    ``@`` outside."""
    g = [["@"] * w for _ in range(h)]
    low_top, low_bot = h - 7, h - 1  # lower corridor rows low_top..low_bot-1, floor at low_bot
    split = w // 2
    for y in range(low_top, low_bot):
        for x in range(0, split + 4):
            g[y][x] = "-"
    for x in range(0, split + 4):
        g[low_bot][x] = "#"
        g[low_top - 1][x] = "#"
    for y in range(0, low_top - 1):  # upper corridor above, reached by the shaft
        for x in range(split, w):
            g[y][x] = "-" if 1 <= y <= 5 else ("#" if y in (0, 6) else "@")
    for x in range(split, w):
        g[6][x] = "#"
    for y in range(1, low_bot):  # the shaft with its ladder
        for x in (split, split + 1, split + 2, split + 3):
            if g[y][x] != "-" or y > 6:
                g[y][x] = "-" if y >= low_top or y <= 5 else g[y][x]
        g[y][split + 1] = "|" if y >= 2 else g[y][split + 1]
    for y in range(7, low_top):
        g[y][split] = g[y][split + 3] = "#"
        g[y][split + 2] = "-"
    g[6][split + 1] = "|"
    g[6][split + 2] = "-"
    for x in range(3, split - 2, 5):
        r = rng.random()
        if r < 0.3:
            g[low_bot - 1][x] = "g"
        elif r < 0.5:
            g[low_bot - 1][x] = "H"
        elif r < 0.65:
            g[low_top + 1][x] = "j"
        elif r < 0.8:
            g[low_bot - 1][x] = "#"
            g[low_bot - 2][x] = "B"
    for x in range(split + 6, w - 2, 4):
        if rng.random() < 0.5:
            g[5][x] = rng.choice("gWH")
    g[low_bot - 1][1] = "P"
    return g


# --------------------------------------------------------------------------------------------- Zelda
def zelda_room(rng: random.Random, doors: set[str]) -> list[list[str]]:
    H, W = 11, 16
    r = [["F"] * W for _ in range(H)]
    for y in range(H):
        for x in range(W):
            if y < 2 or y >= H - 2 or x < 2 or x >= W - 2:
                r[y][x] = "W"
    if "n" in doors:
        r[0][7] = r[0][8] = r[1][7] = r[1][8] = "D"
    if "s" in doors:
        r[H - 1][7] = r[H - 1][8] = r[H - 2][7] = r[H - 2][8] = "D"
    if "w" in doors:
        r[5][0] = r[5][1] = "D"
    if "e" in doors:
        r[5][W - 1] = r[5][W - 2] = "D"
    style = rng.choice(["blocks", "water", "plain", "monsters"])
    if style == "blocks":
        for y, x in ((3, 4), (3, 11), (7, 4), (7, 11)):
            r[y][x] = "B"
    elif style == "water":
        for y in range(4, 7):
            for x in range(5, 11):
                r[y][x] = "P"
        r[5][5] = "O"
    for _ in range(rng.randint(0, 3)):
        y, x = rng.randint(3, 7), rng.randint(3, 12)
        if r[y][x] == "F":
            r[y][x] = "M"
    return r


def zelda_dungeon(rng: random.Random, rows: int, cols: int) -> list[list[str]]:
    H, W = 11, 16
    on = {(0, c) for c in range(cols)} | {(r, cols // 2) for r in range(rows)}
    for step in (-1, 1):  # bottom-row rooms out from the middle column (every room joined to the rest)
        c = cols // 2 + step
        while 0 <= c < cols and rng.random() < 0.6:
            on.add((rows - 1, c))
            c += step
    g = [["-"] * (W * cols) for _ in range(H * rows)]
    far = max(on, key=lambda rc: (rc[0], abs(rc[1] - cols // 2)))
    for (r0, c0) in on:
        doors = {d for d, (dr, dc) in {"n": (-1, 0), "s": (1, 0), "w": (0, -1), "e": (0, 1)}.items()
                 if (r0 + dr, c0 + dc) in on}
        if (r0, c0) == (rows - 1, cols // 2):
            doors.add("s")  # the entrance, in the outer wall
        room = zelda_room(rng, doors)
        if (r0, c0) == far:
            room[8][7] = "S"  # below the pool of the water rooms
        for y in range(H):
            for x in range(W):
                g[r0 * H + y][c0 * W + x] = room[y][x]
    return g


def main() -> None:
    rng = random.Random(2026_12_02)
    widths = (96, 120, 84, 110, 100)
    _write("Super Mario Bros", {f"mario-{i}-1.txt": smb_level(rng, w) for i, w in enumerate(widths, 1)},
           ("smb.json", SMB_LEGEND), "Synthetic levels in VGLC's Super Mario Bros layout (not the game's levels).")
    _write("Kid Icarus", {f"kidicarus_{i}.txt": ki_level(rng, h) for i, h in enumerate((36, 42, 48, 39), 1)},
           ("KidIcarus.json", KI_LEGEND), "Synthetic vertical levels in VGLC's Kid Icarus layout.")
    _write("Lode Runner", {f"Level {i}.txt": lr_level(rng) for i in range(1, 6)},
           ("Loderunner.json", LR_LEGEND), "Synthetic levels in VGLC's Lode Runner layout (22x32).")
    _write("MegaMan", {"megaman_1_1.txt": mm_level(rng, 15, 40), "megaman_1_2.txt": mm_level(rng, 15, 48),
                       "megaman_1_3.txt": mm_level(rng, 17, 44)},
           ("MM.json", MM_LEGEND), "Synthetic levels in VGLC's Mega Man layout (@ = outside the level).")
    _write("The Legend of Zelda", {f"tloz{i}_1.txt": zelda_dungeon(rng, r, c)
                                   for i, (r, c) in enumerate(((3, 3), (2, 3), (3, 2), (2, 2)), 1)},
           None, "Synthetic dungeons in VGLC's Zelda layout: rooms 16x11. F floor, B block, M monster, "
                 "P element (water), O element+floor, I element+block, D door, S stairs, W wall, - void. "
                 "No tile legend is shipped (as VGLC's Zelda).")
    (HERE / "legends").mkdir(exist_ok=True)
    (HERE / "legends" / "zelda.json").write_text(json.dumps(ZELDA_LEGEND, indent=1) + "\n")


if __name__ == "__main__":
    main()
