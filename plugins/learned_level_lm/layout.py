"""Top-down dungeons for level-lm: a layout graph of rooms on a grid, the per-room door constraints, and the
assembled map (numpy only).

The layout grows a spanning tree from the start room (each new room joins an existing room through a free
side; slots touching more rooms are likelier, so layouts are compact like the corpus's maps), then adds a
loop door between about half of the other adjacent pairs. The goal room is
the room farthest from the start (breadth-first, through doors). Each room is then decoded by the network
with its door sides as control tokens; the doors themselves are fixed cells: a side with a door gets the
corpus's usual door cells (the most common door cells of that side in the corpus's rooms), a side without
one may hold no door tile in its wall band. Rooms meet wall to wall, as in the corpus's maps.
:func:`add_entrance` then moves the start to a room on the corpus's entrance edge of the map and opens its
outer wall there (the goal is again the room farthest from the start).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from engine import Region

STEP = {"n": (-1, 0), "s": (1, 0), "w": (0, -1), "e": (0, 1)}
OPP = {"n": "s", "s": "n", "w": "e", "e": "w"}
SIDE_ORDER = ("n", "e", "s", "w")
COMPACT = 4.0


def dungeon_layout(n: int, rng: np.random.Generator, sides=SIDE_ORDER, loops: float = 0.5) -> dict:
    """``n`` rooms: ``{"rooms": [{"pos": (r, c), "doors": {side: bool}}], "edges": [(i, j)], "start": 0,
    "goal": k}`` with positions shifted to start at (0, 0)."""
    sides = [s for s in SIDE_ORDER if s in sides]
    pos = [(0, 0)]
    at = {(0, 0): 0}
    edges: list[tuple[int, int, str]] = []
    while len(pos) < n:
        frontier, weight = [], []
        for i, (r, c) in enumerate(pos):
            for s in sides:
                dr, dc = STEP[s]
                p = (r + dr, c + dc)
                if p not in at:
                    frontier.append((i, s))
                    # compact layouts, as the corpus's maps are: slots touching more rooms are likelier
                    nb = sum((p[0] + a, p[1] + b) in at for a, b in STEP.values())
                    weight.append(COMPACT ** (nb - 1))
        if not frontier:
            break
        w = np.array(weight, dtype=np.float64)
        i, s = frontier[int(np.searchsorted(np.cumsum(w), rng.random() * w.sum(), side="right").clip(
            max=len(frontier) - 1))]
        dr, dc = STEP[s]
        p = (pos[i][0] + dr, pos[i][1] + dc)
        at[p] = len(pos)
        pos.append(p)
        edges.append((i, at[p], s))
    linked = {(a, b) for a, b, _ in edges} | {(b, a) for a, b, _ in edges}
    for i, (r, c) in enumerate(pos):
        for s in ("e", "s"):
            if s not in sides or OPP[s] not in sides:
                continue
            dr, dc = STEP[s]
            j = at.get((r + dr, c + dc))
            if j is not None and (i, j) not in linked and rng.random() < loops:
                edges.append((i, j, s))
                linked |= {(i, j), (j, i)}
    r0 = min(p[0] for p in pos)
    c0 = min(p[1] for p in pos)
    rooms = [{"pos": (p[0] - r0, p[1] - c0), "doors": {s: False for s in SIDE_ORDER}} for p in pos]
    for a, b, s in edges:
        rooms[a]["doors"][s] = True
        rooms[b]["doors"][OPP[s]] = True
    return with_goal({"rooms": rooms, "edges": [(a, b) for a, b, _ in edges], "start": 0})


def door_sides_available(spec) -> list[str]:
    return [s for s in SIDE_ORDER if spec.doors.get(s)]


def room_unary(spec, doors: dict[str, bool]) -> np.ndarray:
    """``(rh, rw, K)`` allowed symbols per cell of a room with these door sides."""
    rh, rw = spec.room
    K, V = spec.K, spec.V
    t = spec.d.get("wall", 2)
    u = np.ones((rh, rw, K), dtype=bool)
    u[:, :, spec.B] = False
    doorish = np.zeros(K, dtype=bool)
    doorish[:V] = (spec.masks["door"] | spec.masks["locked"])[:V]
    bands = {"n": (slice(0, t), slice(None)), "s": (slice(rh - t, rh), slice(None)),
             "w": (slice(None), slice(0, t)), "e": (slice(None), slice(rw - t, rw))}
    for s in SIDE_ORDER:
        u[bands[s]] &= ~doorish
    for s in SIDE_ORDER:
        if doors.get(s):
            for y, x, tile in spec.doors.get(s, []):
                if 0 <= y < rh and 0 <= x < rw and 0 <= tile < V:
                    u[y, x] = False
                    u[y, x, tile] = True
    return u


def fill_tile(spec) -> int:
    """The tile for map slots without a room: the corpus's void tile, else its first solid one."""
    for role in ("void", "solid"):
        ids = np.nonzero(spec.masks[role][:spec.V])[0]
        if len(ids):
            return int(ids[0])
    return 0


def assemble(spec, layout: dict, rooms: list[np.ndarray]) -> tuple[np.ndarray, list]:
    """The dungeon map (uint8, corpus ids) and one region per room."""
    rh, rw = spec.room
    R = 1 + max(r["pos"][0] for r in layout["rooms"])
    C = 1 + max(r["pos"][1] for r in layout["rooms"])
    grid = np.full((R * rh, C * rw), fill_tile(spec), dtype=np.uint8)
    regions = []
    for i, (room, tiles) in enumerate(zip(layout["rooms"], rooms)):
        r, c = room["pos"]
        grid[r * rh:(r + 1) * rh, c * rw:(c + 1) * rw] = tiles
        kind = "start" if i == layout["start"] else ("goal" if i == layout["goal"] else "room")
        regions.append(Region(f"room-{i + 1}", "room", f"room {i + 1}" + (f" ({kind})" if kind != "room" else ""),
                              c * rw, r * rh, rw, rh, {"role": kind,
                                                       "doors": "".join(s for s in SIDE_ORDER if room["doors"][s])}))
    return grid, regions


def edge_rooms(layout: dict, side: str) -> list[int]:
    """The rooms whose ``side`` wall lies on the map's outer edge (the layout's bounding grid of rooms)."""
    pos = [r["pos"] for r in layout["rooms"]]
    R, C = max(p[0] for p in pos), max(p[1] for p in pos)
    return [i for i, (r, c) in enumerate(pos) if {"n": r == 0, "s": r == R, "w": c == 0, "e": c == C}[side]]


def room_distances(layout: dict, start: int) -> list[int]:
    """Doors to pass from room ``start`` to each room of ``layout`` (breadth first over its door edges;
    -1 for a room it cannot reach)."""
    n = len(layout["rooms"])
    nbr: list[list[int]] = [[] for _ in range(n)]
    for a, b in layout["edges"]:
        nbr[a].append(b)
        nbr[b].append(a)
    d = [-1] * n
    d[start] = 0
    q = deque([start])
    while q:
        i = q.popleft()
        for j in nbr[i]:
            if d[j] < 0:
                d[j] = d[i] + 1
                q.append(j)
    return d


def with_goal(layout: dict) -> dict:
    """``layout`` with its ``goal``: the room farthest from its ``start`` through doors (ties: the lowest
    index)."""
    dist = room_distances(layout, layout["start"])
    layout["goal"] = int(max(range(len(dist)), key=lambda i: (dist[i], -i)))
    return layout


def add_entrance(layout: dict, side: str) -> dict:
    """An entrance as the corpus's dungeons have one: the start moves to a room on the map's ``side`` edge
    (the one whose farthest room is farthest through doors, ties by the lowest index), that room gets a door
    in its outer wall on ``side``, and the goal becomes the room farthest from the new start (ties: the lowest
    index). ``layout`` is changed in place and returned."""
    rooms = layout["rooms"]
    n = len(rooms)
    start = max(edge_rooms(layout, side), key=lambda i: (max(room_distances(layout, i)), -i))
    d = room_distances(layout, start)
    layout["start"] = int(start)
    layout["goal"] = int(max(range(n), key=lambda i: (d[i], -i)))
    rooms[start]["doors"][side] = True
    layout["entrance"] = side
    return layout
