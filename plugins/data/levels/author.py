"""Authoring script for the shipped training corpora (run once; its output is committed data).

    .venv/bin/python plugins/data/levels/author.py

Writes ``dungeon/d000.vglc.txt`` … and ``platformer/p000.vglc.txt`` … with a legend beside each file, through
the engine's VGLC exporter (``plugins/vglc.py``), so ``engine.load`` reads them back as the same levels.
The layouts follow hand-design recipes different from the classic generators (shaped rooms — halls with
pillars, crosses, caves, L-rooms —, a sealed vault behind a locked door; platformer segments built from
"chunks": runs, gaps, stairs, pipes, brick rows with coins, plateaus). Every level is checked with the
engine's validators and only passing ones are written. Deterministic for a given seed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from engine.content import Entity, Level  # noqa: E402
from engine.quality import dungeon_problems, platformer_problems, _label  # noqa: E402
from plugins import dungeon as dmod, platformer as pmod  # noqa: E402
from engine import Engine  # noqa: E402

VOID, FLOOR, WALL, DOOR, LOCKED = range(5)
AIR, GROUND, BRICK, QUESTION, PTL, PTR, PL, PR = range(8)

# --------------------------------------------------------------------------------------------- dungeons
def _shape(rng, kind, w, h):
    """A room's floor mask (h, w) for a shape kind."""
    m = np.ones((h, w), dtype=bool)
    if kind == "cross" and w >= 5 and h >= 5:
        cw, ch = max(1, w // 4), max(1, h // 4)
        m[:ch, :cw] = m[:ch, w - cw:] = m[h - ch:, :cw] = m[h - ch:, w - cw:] = False
    elif kind == "pillars" and w >= 5 and h >= 5:
        for y in range(1, h - 1, 2):
            for x in range(1, w - 1, 2):
                if 0 < y < h - 1 and 0 < x < w - 1 and (y + x) % 4 == 2:
                    m[y, x] = False
    elif kind == "lroom" and w >= 5 and h >= 5:
        m[: h // 2, w // 2 + 1:] = False
        if rng.random() < 0.5:
            m = m[:, ::-1].copy()
    elif kind == "cave":
        noise = rng.random((h, w)) < 0.62
        for _ in range(2):
            p = np.pad(noise, 1)
            n = sum(p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
            noise = n >= 5
        cy, cx = h // 2, w // 2
        noise[cy - 1:cy + 2, cx - 1:cx + 2] = True
        lab = _label(noise)
        m = lab == lab[cy, cx]
    return m


_path = dmod._l_path  # the same L-shaped corridor as the classic dungeon


def dungeon_level(rng, H, W):
    tiles = np.full((H, W), VOID, dtype=np.uint8)
    style = rng.choice(["halls", "cells", "caves", "mixed"])
    big = {"halls": (6, 11), "cells": (4, 7), "caves": (6, 11), "mixed": (4, 10)}[style]
    rooms = []  # (x, y, w, h, mask)
    # the vault first: small, near an edge
    vw, vh = int(rng.integers(3, 6)), int(rng.integers(3, 5))
    if rng.random() < 0.5:
        vw, vh = vh, vw
    side = int(rng.integers(4))
    vx = int(rng.integers(2, W - vw - 2)) if side in (0, 2) else (2 if side == 3 else W - vw - 2)
    vy = int(rng.integers(2, H - vh - 2)) if side in (1, 3) else (2 if side == 0 else H - vh - 2)
    vault = (vx, vy, vw, vh)
    want = int(rng.integers(3, 8))
    for _ in range(300):
        if len(rooms) >= want:
            break
        w, h = int(rng.integers(big[0], big[1] + 1)), int(rng.integers(big[0], big[1] + 1))
        if W - w - 2 <= 2 or H - h - 2 <= 2:
            continue
        x, y = int(rng.integers(2, W - w - 1)), int(rng.integers(2, H - h - 1))
        boxes = [(r[0], r[1], r[2], r[3]) for r in rooms] + [vault]
        if any(not (x + w + 3 <= bx or bx + bw + 3 <= x or y + h + 3 <= by or by + bh + 3 <= y)
               for bx, by, bw, bh in boxes):
            continue
        kind = {"halls": ["rect", "pillars", "cross"], "cells": ["rect", "rect", "lroom"],
                "caves": ["cave", "cave", "rect"], "mixed": ["rect", "cross", "pillars", "lroom", "cave"]}[style]
        m = _shape(rng, kind[int(rng.integers(len(kind)))], w, h)
        rooms.append((x, y, w, h, m))
    if len(rooms) < 2:
        return None
    for x, y, w, h, m in rooms:
        tiles[y:y + h, x:x + w][m] = FLOOR
    gx0, gy0, gx1, gy1 = vx - 1, vy - 1, vx + vw, vy + vh  # the vault with its ring (inclusive)

    def in_guard(px, py):
        return gx0 <= px <= gx1 and gy0 <= py <= gy1

    centers = []
    for x, y, w, h, m in rooms:
        ys, xs = np.nonzero(m)
        i = int(np.argmin((ys - h / 2) ** 2 + (xs - w / 2) ** 2))
        centers.append((x + int(xs[i]), y + int(ys[i])))
    # corridors: chain by nearest unconnected room, plus a loop sometimes
    order = [0]
    left = set(range(1, len(rooms)))
    wide = style == "halls" and rng.random() < 0.5
    edges = []
    while left:
        best = min(((abs(centers[i][0] - centers[j][0]) + abs(centers[i][1] - centers[j][1]), i, j)
                    for i in order for j in left))
        edges.append((best[1], best[2]))
        order.append(best[2])
        left.discard(best[2])
    if len(rooms) > 3 and rng.random() < 0.5:
        edges.append((0, len(rooms) - 1))
    for i, j in edges:
        hf = bool(rng.integers(2))
        pts = _path(centers[i], centers[j], hf)
        if any(in_guard(px, py) for px, py in pts):
            pts = _path(centers[i], centers[j], not hf)
            if any(in_guard(px, py) for px, py in pts):
                return None
        for px, py in pts:
            tiles[py, px] = FLOOR
            if wide and py + 1 < H - 1 and not in_guard(px, py + 1):
                tiles[py + 1, px] = FLOOR
    # the vault: interior floor, door on the side facing the nearest room
    tiles[vy:vy + vh, vx:vx + vw] = FLOOR
    vcx, vcy = vx + vw // 2, vy + vh // 2
    tx, ty = min(centers, key=lambda c: abs(c[0] - vcx) + abs(c[1] - vcy))
    dx, dy = tx - vcx, ty - vcy
    if abs(dx) >= abs(dy):
        door = (vx + vw if dx > 0 else vx - 1, vcy)
        outside = (door[0] + (1 if dx > 0 else -1), vcy)
        hf = True
    else:
        door = (vcx, vy + vh if dy > 0 else vy - 1)
        outside = (vcx, door[1] + (1 if dy > 0 else -1))
        hf = False
    pts = _path(outside, (tx, ty), hf)
    if any(in_guard(px, py) for px, py in pts):
        return None
    for px, py in pts:
        tiles[py, px] = FLOOR
    # walls around all floor
    floor = tiles == FLOOR
    p = np.pad(floor, 1)
    near = np.zeros_like(floor)
    for ddy in (-1, 0, 1):
        for ddx in (-1, 0, 1):
            near |= p[1 + ddy:1 + ddy + H, 1 + ddx:1 + ddx + W]
    tiles[(tiles == VOID) & near] = WALL
    for yy in range(gy0, gy1 + 1):
        for xx in range(gx0, gx1 + 1):
            if not (vx <= xx < vx + vw and vy <= yy < vy + vh):
                tiles[yy, xx] = WALL
    tiles[door[1], door[0]] = LOCKED
    # doors where corridors enter rooms (a floor cell with walls on both sides across the corridor)
    for x, y, w, h, m in rooms:
        ring = [(xx, yy) for xx in range(x - 1, x + w + 1) for yy in (y - 1, y + h)] + \
               [(xx, yy) for yy in range(y, y + h) for xx in (x - 1, x + w)]
        for xx, yy in ring:
            if not (0 < xx < W - 1 and 0 < yy < H - 1) or tiles[yy, xx] != FLOOR:
                continue
            horiz = yy in (y - 1, y + h)
            a, b = ((tiles[yy, xx - 1], tiles[yy, xx + 1]) if horiz else (tiles[yy - 1, xx], tiles[yy + 1, xx]))
            if a == WALL and b == WALL and rng.random() < 0.75:
                tiles[yy, xx] = DOOR
    # entities
    occupied = set()
    ents = []

    def spot(room_idx=None, area=None):
        if area is None:
            x, y, w, h, m = rooms[room_idx]
            ys, xs = np.nonzero(m & (tiles[y:y + h, x:x + w] == FLOOR))
            cells = [(x + int(a), y + int(b)) for a, b in zip(xs, ys)]
        else:
            cells = area
        cells = [c for c in cells if c not in occupied]
        if not cells:
            return None
        c = cells[int(rng.integers(len(cells)))]
        occupied.add(c)
        return c

    far = max(range(len(rooms)), key=lambda k: abs(centers[k][0] - vcx) + abs(centers[k][1] - vcy))
    s = spot(far)
    ents.append(Entity("spawn", "spawn", *s))
    vault_cells = [(xx, yy) for xx in range(vx, vx + vw) for yy in range(vy, vy + vh)]
    e = spot(area=vault_cells)
    ents.append(Entity("exit", "exit", *e))
    others = [k for k in range(len(rooms)) if k != far] or [far]
    k = spot(others[int(rng.integers(len(others)))])
    ents.append(Entity("key", "key", *k))
    density = float(rng.choice([0.0, 0.01, 0.03, 0.05, 0.08, 0.12]))
    nfloor = int((tiles == FLOOR).sum())
    for i in range(int(round(density * nfloor))):
        r = int(rng.integers(len(rooms)))
        if r == far and rng.random() < 0.7:
            continue
        c = spot(r)
        if c:
            ents.append(Entity(f"enemy-{i + 1}", "enemy", *c))
    for i in range(int(rng.integers(0, 4))):
        c = spot(area=vault_cells) if i == 0 and rng.random() < 0.5 else spot(int(rng.integers(len(rooms))))
        if c:
            ents.append(Entity(f"treasure-{i + 1}", "treasure", *c))
    lv = Level({"tiles": tiles}, dmod.tileset(), ents, [], {})
    if dungeon_problems(lv):
        return None
    walk = ~lv.tileset.lookup("solid")[tiles]
    lab = _label(walk)
    if len(np.unique(lab[walk])) != 1:  # every room reachable once the door opens
        return None
    return lv


# --------------------------------------------------------------------------------------------- platformer
def platformer_level(rng, W, H=16):
    t = np.full((H, W), AIR, dtype=np.uint8)
    ents = []
    surface = np.full(W, -1, dtype=int)
    s = H - 3
    x = 0
    enemy_rate = float(rng.choice([0.0, 0.03, 0.06, 0.1]))
    gap_rate = float(rng.choice([0.1, 0.25, 0.4]))
    pipes_on = rng.random() < 0.7
    bricks_on = rng.random() < 0.8

    def run(n, h):
        nonlocal x
        n = min(n, W - x)
        surface[x:x + n] = h
        x += n

    run(5, s)
    while x < W - 8:
        r = rng.random()
        if r < gap_rate:
            x += int(rng.integers(1, 4))
            s = int(np.clip(s + int(rng.integers(-2, 3)), H - 6, H - 2))
            run(int(rng.integers(3, 8)), s)
        elif r < gap_rate + 0.12:  # stairs up then down (VGLC-style pyramid of ground blocks)
            top = int(rng.integers(2, 5))
            for k in range(1, top + 1):
                run(1, s - k)
            run(int(rng.integers(1, 3)), s - top)
            if rng.random() < 0.5:
                x += int(rng.integers(1, 3))
            for k in range(top - 1, -1, -1):
                run(1, s - k)
        elif r < gap_rate + 0.22:  # plateau
            s2 = int(np.clip(s - int(rng.integers(-3, 4)), H - 7, H - 2))
            s = s2
            run(int(rng.integers(4, 10)), s)
        else:
            run(int(rng.integers(4, 12)), s)
    run(W - x, s)
    for cx in range(W):
        if surface[cx] >= 0:
            t[surface[cx]:, cx] = GROUND
    # decorations on flat stretches, not in the first 6 or last 6 columns
    cx = 6
    while cx < W - 8:
        flat = surface[cx] >= 0 and all(surface[cx + i] == surface[cx] for i in range(1, 4))
        r = rng.random()
        if flat and pipes_on and r < 0.1:
            ph = int(rng.integers(1, 4))
            top = surface[cx] - ph
            t[top, cx], t[top, cx + 1] = PTL, PTR
            t[top + 1:surface[cx], cx] = PL
            t[top + 1:surface[cx], cx + 1] = PR
            cx += 4
            continue
        if flat and bricks_on and r < 0.3:
            n = int(rng.integers(2, 6))
            py = surface[cx] - 4
            if py >= 3 and all(cx + i < W - 6 and surface[cx + i] == surface[cx] for i in range(n)):
                for i in range(n):
                    t[py, cx + i] = QUESTION if rng.random() < 0.3 else BRICK
                    if rng.random() < 0.4:
                        ents.append(Entity(f"coin-{len(ents)}", "coin", int(cx + i), int(py - 1)))
                if rng.random() < 0.3 and py - 4 >= 2:  # a second, higher row
                    for i in range(1, n):
                        t[py - 4, cx + i] = BRICK
                cx += n + 2
                continue
        cx += 1
    for cx in range(7, W - 6):
        if surface[cx] < 1 or t[surface[cx] - 1, cx] != AIR:
            continue
        if rng.random() < enemy_rate:
            ents.append(Entity(f"enemy-{len(ents)}", "enemy", int(cx), int(surface[cx]) - 1))
        elif rng.random() < 0.04 and surface[cx] >= 4 and t[surface[cx] - 3, cx] == AIR:
            ents.append(Entity(f"coin-{len(ents)}", "coin", int(cx), int(surface[cx]) - 3))
    lv = Level({"tiles": t}, pmod.tileset(), ents, [], {})
    check = Level({"tiles": t}, pmod.tileset(), [Entity("spawn", "spawn", 1, int(surface[1]) - 1),
                                                 Entity("goal", "goal", W - 3, int(surface[W - 3]) - 1)], [], {})
    if platformer_problems(check, 4, 4):
        return None
    return lv


def main():
    base = Path(__file__).resolve().parent
    eng = Engine(entry_points=False)
    rng = np.random.default_rng(20240601)
    for genre in ("dungeon", "platformer"):
        (base / genre).mkdir(exist_ok=True)
        for old in (base / genre).glob("*"):
            old.unlink()
    n = 0
    while n < 64:
        H, W = int(rng.integers(32, 41)), int(rng.integers(32, 45))
        lv = dungeon_level(rng, H, W)
        if lv is not None:
            eng.export(lv, base / "dungeon" / f"d{n:03d}.vglc.txt")
            n += 1
    n = 0
    while n < 40:
        lv = platformer_level(rng, int(rng.integers(100, 181)))
        if lv is not None:
            eng.export(lv, base / "platformer" / f"p{n:03d}.vglc.txt")
            n += 1
    print("wrote 64 dungeon levels and 40 platformer segments")


if __name__ == "__main__":
    main()
