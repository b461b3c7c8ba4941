"""``dungeon``: rooms and corridors with walls, doors, one locked door guarding the way out, its key,
a player spawn, enemies and treasure.

**Layout.** The map is cut into a grid of cells (Rogue's way), one room per chosen cell, so a layout that
fits is known before anything is drawn: ``rooms`` and ``room_size`` default to ``"auto"`` (scaled to the
map's size), and explicit values that cannot fit are refused at once with the largest value that does
(:func:`layout`). Rooms are at least 4x4 tiles inside, 3 tiles apart (wall, corridor, wall), and joined by
a minimum spanning tree of L-shaped corridors plus a few loops.

**The way out.** With three rooms or more, the exit room is the room farthest from the spawn in the tree
(a leaf), sealed so its only opening is the locked door; corridors of other rooms are routed around it. With
one or two rooms (a shrine, a shop, a boss room: down to a single 7x5 room on a 9x9 map), the exit is a
stair nook set into a room's wall behind the locked door. The key lies in a room other than the spawn's
whenever there are two rooms or more. :func:`engine.quality.dungeon_problems` validates every level.
"""
from __future__ import annotations

import math
from collections import deque
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from engine import Entity, Generator, Level, Param, Region, TileDef, Tileset, hookimpl
from engine.errors import InputError
from engine.quality import dungeon_problems

from .words import ENEMY_TYPES, TREASURES, room_name

NPC_MOODS = ("worried", "cheerful", "suspicious", "weary", "eager")

VOID, FLOOR, WALL, DOOR, LOCKED = range(5)

TILESET = Tileset("dungeon", [
    TileDef(VOID, "void", "-", (12, 10, 16), {"solid": True}),
    TileDef(FLOOR, "floor", "F", (150, 140, 120), {}),
    TileDef(WALL, "wall", "W", (70, 62, 80), {"solid": True}),
    TileDef(DOOR, "door", "D", (160, 100, 40), {"door": True}),
    TileDef(LOCKED, "locked_door", "L", (200, 40, 160), {"door": True, "locked": True}),
])


def tileset() -> Tileset:
    return Tileset(TILESET.name, [TileDef(t.id, t.name, t.char, t.color, dict(t.properties))
                                  for t in TILESET.tiles])


GAP = 3          # tiles between two rooms' floors: wall, corridor, wall
MIN_SIDE = 4     # smallest room side (floor tiles)
MAX_SIDE = 20    # largest room side, auto or explicit (the schema's maximum)
NOOK = 2         # tiles a stair nook needs beyond a room's wall: the exit and the wall behind it
AUTO = "auto"


class AutoInt(Param):
    """An int parameter that also takes ``"auto"`` (the generator then picks a value that fits)."""

    def coerce(self, value, where: str = ""):
        if isinstance(value, str) and value.strip().lower() == AUTO:
            return AUTO
        try:
            return super().coerce(value, where)
        except InputError as e:
            if "expected" in str(e):
                raise InputError(f"{where or f'parameter {self.name!r}'}: expected an int or 'auto', "
                                 f"got {value!r}") from None
            raise

    def describe(self) -> dict:
        return {**super().describe(), "auto": True}


class Layout(NamedTuple):
    """Where rooms go: ``rooms`` of the ``cols`` x ``rows`` grid cells; ``size`` caps a room side (None:
    auto, scaled to the cell)."""

    rooms: int
    cols: int
    rows: int
    size: int | None


def _span(total: int, n: int) -> int:
    """The (smallest) cell length when ``total`` tiles are cut into ``n`` cells with GAP between them."""
    return (total - GAP * (n - 1)) // n


def _usable(rooms: int, cols: int, rows: int, W: int, H: int) -> tuple[int, int]:
    """The smallest cell's room space (width, height), less the stair nook for one or two rooms."""
    cw, ch = _span(W - 2, cols), _span(H - 2, rows)
    if rooms <= 2:  # the nook takes its tiles along the cell's longer side
        if ch >= cw:
            ch -= NOOK
        else:
            cw -= NOOK
    return cw, ch


def _grid_ok(W: int, H: int, rooms: int, cols: int, rows: int, size: int | None) -> bool:
    if cols * rows < rooms or (rooms <= 2 and cols > 1 and rows > 1):
        return False
    cw, ch = _usable(rooms, cols, rows, W, H)
    return cw >= MIN_SIDE and ch >= MIN_SIDE and (size is None or max(cw, ch) >= size)


def _best_grid(W: int, H: int, rooms: int, size: int | None) -> tuple[int, int] | None:
    """The grid for exactly ``rooms`` rooms: few empty cells, cells near square; None if none fits."""
    best, best_score = None, math.inf
    for cols in range(1, rooms + 1):
        rows = -(-rooms // cols)
        if not _grid_ok(W, H, rooms, cols, rows, size):
            continue
        cw, ch = _span(W - 2, cols), _span(H - 2, rows)
        score = abs(math.log(cw / ch)) + 0.15 * (cols * rows - rooms)
        if score < best_score:
            best, best_score = (cols, rows), score
    return best


def _most_rooms(W: int, H: int, size: int | None) -> int:
    return max((r for r in range(1, 65) if _best_grid(W, H, r, size)), default=0)


def _largest_size(W: int, H: int, rooms: int) -> int:
    return max((s for s in range(MIN_SIDE, MAX_SIDE + 1) if _best_grid(W, H, rooms, s)), default=0)


@lru_cache(maxsize=1024)
def layout(W: int, H: int, rooms: int | str = AUTO, room_size: int | str = AUTO) -> Layout:
    """The grid of a ``W`` x ``H`` dungeon; raises InputError (naming the params and the largest value
    that fits) when explicit ``rooms``/``room_size`` cannot fit. Pure: the same arguments, the same layout."""
    size = None if room_size == AUTO else int(room_size)
    where = f"generator 'dungeon': on a {W}x{H} map"
    if rooms == AUTO:
        target = (size + GAP) if size is not None else 7 + min(W, H) / 8  # cell pitch aimed at
        cols = max(1, min(round((W - 2) / target), (W - 2 + GAP) // (MIN_SIDE + GAP)))
        rows = max(1, min(round((H - 2) / target), (H - 2 + GAP) // (MIN_SIDE + GAP)))
        n = int(0.75 * cols * rows + 0.5)
        if _grid_ok(W, H, n, cols, rows, size):
            return Layout(n, cols, rows, size)
        for n in range(n, 0, -1):  # an explicit room_size too big for the aimed-at cells: fewer rooms
            grid = _best_grid(W, H, n, size)
            if grid:
                return Layout(n, *grid, size)
        raise InputError(f"{where}, room_size={size} does not fit; the largest room_size that fits is "
                         f"{_largest_size(W, H, 1)}")
    n = int(rooms)
    grid = _best_grid(W, H, n, size)
    if grid:
        return Layout(n, *grid, size)
    if size is None or not _best_grid(W, H, n, None):
        most = _most_rooms(W, H, size)
        with_size = f" of room_size {size}" if size is not None else ""
        raise InputError(f"{where}, rooms={n}{with_size} does not fit; the most that fit is rooms={most}")
    raise InputError(f"{where}, rooms={n} with room_size={size} does not fit; the largest room_size that fits "
                     f"{n} rooms is {_largest_size(W, H, n)} (or rooms={_most_rooms(W, H, size)})")


class Room:
    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x, y, w, h):
        self.x, self.y, self.w, self.h = x, y, w, h

    @property
    def center(self):
        return self.x + self.w // 2, self.y + self.h // 2


# A corridor is a list of segments: ("h", y, x0, x1) or ("v", x, y0, y1), ends inclusive and ordered.
def _l_path(a, b, horizontal_first: bool):
    (x0, y0), (x1, y1) = a, b
    if horizontal_first:
        return [("h", y0, min(x0, x1), max(x0, x1)), ("v", x1, min(y0, y1), max(y0, y1))]
    return [("v", x0, min(y0, y1), max(y0, y1)), ("h", y1, min(x0, x1), max(x0, x1))]


def _z_paths(a, b, guard, W, H):
    """Three-segment corridors whose middle runs just outside ``guard`` (x0, y0, x1, y1 inclusive)."""
    (ax, ay), (bx, by) = a, b
    gx0, gy0, gx1, gy1 = guard
    for mx in (gx0 - 1, gx1 + 1):
        if 1 <= mx <= W - 2:
            yield [("h", ay, min(ax, mx), max(ax, mx)), ("v", mx, min(ay, by), max(ay, by)),
                   ("h", by, min(mx, bx), max(mx, bx))]
    for my in (gy0 - 1, gy1 + 1):
        if 1 <= my <= H - 2:
            yield [("v", ax, min(ay, my), max(ay, my)), ("h", my, min(ax, bx), max(ax, bx)),
                   ("v", bx, min(my, by), max(my, by))]


def _hits(path, rect) -> bool:
    gx0, gy0, gx1, gy1 = rect
    for d, c, lo, hi in path:
        if d == "h":
            if gy0 <= c <= gy1 and lo <= gx1 and hi >= gx0:
                return True
        elif gx0 <= c <= gx1 and lo <= gy1 and hi >= gy0:
            return True
    return False


def _cells(path):
    out = set()
    for d, c, lo, hi in path:
        out.update(((x, c) for x in range(lo, hi + 1)) if d == "h" else ((c, y) for y in range(lo, hi + 1)))
    return out


def _bfs_path(a, b, guard, W, H):
    """A shortest 4-connected corridor from a to b inside the map's border, around ``guard``; or None."""
    gx0, gy0, gx1, gy1 = guard
    prev = {a: None}
    todo = deque([a])
    while todo:
        x, y = cur = todo.popleft()
        if cur == b:
            path = []
            while cur is not None:
                path.append(("h", cur[1], cur[0], cur[0]))
                cur = prev[cur]
            return path
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if (1 <= nx <= W - 2 and 1 <= ny <= H - 2 and (nx, ny) not in prev
                    and not (gx0 <= nx <= gx1 and gy0 <= ny <= gy1)):
                prev[(nx, ny)] = cur
                todo.append((nx, ny))
    return None


def _below(rng, k: int) -> int:
    """A uniform int in ``0..k-1`` (``rng.random`` is about 4x cheaper than ``rng.integers``)."""
    return min(int(rng.random() * k), k - 1)


def _sample(rng, k: int, n: int) -> list[int]:
    """``n`` distinct ints of ``0..k-1``, in random order."""
    return rng.random(k).argsort()[:n].tolist()


def _tree_dist(adj, src):
    dist = {src: 0}
    todo = [src]
    while todo:
        n = todo.pop()
        for m in adj[n]:
            if m not in dist:
                dist[m] = dist[n] + 1
                todo.append(m)
    return dist


def _ring_floor(fl: np.ndarray, r: Room):
    """Floor cells on the ring around a room: (x, y, doorway) where doorway means walls on both sides."""
    out = []
    x0, x1, y0, y1 = r.x - 1, r.x + r.w, r.y - 1, r.y + r.h  # the ring; always inside the map
    for y in (y0, y1):
        seg = fl[y, x0:x1 + 1]
        for i in np.flatnonzero(seg[1:-1]) + 1:
            out.append((x0 + int(i), y, not seg[i - 1] and not seg[i + 1]))
    for x in (x0, x1):
        seg = fl[y0:y1 + 1, x]
        for i in np.flatnonzero(seg[1:-1]) + 1:
            out.append((x, y0 + int(i), not seg[i - 1] and not seg[i + 1]))
    return out


class Dungeon(Generator):
    id = "dungeon"
    kind = "level"
    version = "2"
    description = "Rooms and corridors with a locked door, its key, enemies and treasure"
    params = (
        Param("width", "int", 48, min=9, max=256, help="map width in tiles"),
        Param("height", "int", 32, min=9, max=256, help="map height in tiles"),
        AutoInt("rooms", "int", AUTO, min=1, max=64,
                help="rooms to place, or auto (scaled to the map); too many to fit is an error"),
        AutoInt("room_size", "int", AUTO, min=MIN_SIDE, max=MAX_SIDE,
                help="largest room side in tiles, or auto (scaled to the room's share of the map)"),
        Param("enemy_density", "float", 0.03, min=0.0, max=0.3, help="enemies per floor tile outside the start"),
        Param("treasure", "int", 3, min=0, max=50, help="treasure chests"),
        Param("npcs", "int", 1, min=0, max=20, help="friendly characters (quest givers, merchants)"),
        Param("loops", "float", 0.25, min=0.0, max=1.0, help="extra corridors per room, making loops"),
    )

    def generate(self, request):
        p = request.params
        W, H = p["width"], p["height"]
        lay = layout(W, H, p["rooms"], p["room_size"])
        rng = request.rng()
        n = lay.rooms
        spawn_room = _below(rng, 2) if n == 2 else 0
        rooms, nook_side = self._place_rooms(rng, W, H, lay, spawn_room)
        tiles = np.full((H, W), VOID, dtype=np.uint8)
        for r in rooms:
            tiles[r.y:r.y + r.h, r.x:r.x + r.w] = FLOOR
        # minimum spanning tree (Prim, Manhattan distance between centres; ties to the lower index)
        centers = [r.center for r in rooms]
        adj = {i: [] for i in range(n)}
        edges = []
        todo = set(range(1, n))
        best = {k: (abs(centers[k][0] - centers[0][0]) + abs(centers[k][1] - centers[0][1]), 0) for k in todo}
        while todo:
            j = min(todo, key=lambda k: (best[k][0], k))
            i = best[j][1]
            todo.discard(j)
            edges.append((i, j))
            adj[i].append(j)
            adj[j].append(i)
            for k in todo:
                d = abs(centers[k][0] - centers[j][0]) + abs(centers[k][1] - centers[j][1])
                if d < best[k][0]:
                    best[k] = (d, j)
        exit_room = None
        if n >= 3:  # spawn: farthest from room 0; exit: farthest from the spawn (a leaf of the tree)
            d0 = _tree_dist(adj, 0)
            spawn_room = max(range(n), key=lambda k: (d0[k], -k))
            ds = _tree_dist(adj, spawn_room)
            exit_room = max(range(n), key=lambda k: (ds[k], -k))
        else:
            ds = _tree_dist(adj, spawn_room)
        extra = []
        if n >= 3:
            for _ in range(int(round(p["loops"] * n))):
                i, j = _sample(rng, n, 2)
                if exit_room in (i, j) or j in adj[i]:
                    continue
                extra.append((i, j))
        nook = None
        if nook_side is not None:  # one or two rooms: a stair nook behind the locked door, kept clear
            nook = self._nook(rooms[0 if n == 1 else 1 - spawn_room], nook_side, rng)
            guard = nook[2]
        if exit_room is not None:
            ex = rooms[exit_room]
            guard = (ex.x - 1, ex.y - 1, ex.x + ex.w, ex.y + ex.h)
            ring = _cells([("h", guard[1], guard[0], guard[2]), ("h", guard[3], guard[0], guard[2]),
                           ("v", guard[0], guard[1], guard[3]), ("v", guard[2], guard[1], guard[3])])
        for e, (i, j) in enumerate(edges + extra):
            a, b = rooms[i].center, rooms[j].center
            hf = rng.random() < 0.5
            options = [_l_path(a, b, hf), _l_path(a, b, not hf)]
            if exit_room in (i, j):  # leave the exit room through exactly one ring cell
                path = next((o for o in options if len(_cells(o) & ring) == 1), None)
            else:  # keep out of the exit room (or the stair nook)
                path = next((o for o in options if not _hits(o, guard)), None)
                if path is None and e < len(edges):  # a tree edge must be drawn: go around
                    path = next((z for z in _z_paths(a, b, guard, W, H) if not _hits(z, guard)), None)
                    if path is None:
                        path = _bfs_path(a, b, guard, W, H)
            if path is None:
                continue  # an extra loop that cannot avoid the exit room (or, never seen, a tree edge)
            for d, c, lo, hi in path:
                if d == "h":
                    tiles[c, lo:hi + 1] = FLOOR
                else:
                    tiles[lo:hi + 1, c] = FLOOR
        exit_at = None
        if nook is not None:
            (dx, dy), exit_at, _ = nook
            tiles[dy, dx] = LOCKED
            tiles[exit_at[1], exit_at[0]] = FLOOR
        # walls: void cells next to floor (8-neighbourhood, as a row pass then a column pass)
        floor = tiles == FLOOR
        row = floor.copy()
        row[:, 1:] |= floor[:, :-1]
        row[:, :-1] |= floor[:, 1:]
        near = row.copy()
        near[1:] |= row[:-1]
        near[:-1] |= row[1:]
        tiles[(tiles == VOID) & near] = WALL
        # doors where corridors meet rooms (a ring cell with walls on both sides along the ring); the exit
        # room keeps exactly one opening, locked
        ring_h = np.zeros((H, W), dtype=bool)  # top and bottom ring cells (corners excluded)
        ring_v = np.zeros((H, W), dtype=bool)  # left and right ring cells
        for k, r in enumerate(rooms):
            if k != exit_room:
                ring_h[[r.y - 1, r.y + r.h], r.x:r.x + r.w] = True
                ring_v[r.y:r.y + r.h, [r.x - 1, r.x + r.w]] = True
        wall_lr = np.zeros((H, W), dtype=bool)
        wall_lr[:, 1:-1] = ~floor[:, :-2] & ~floor[:, 2:]
        wall_ud = np.zeros((H, W), dtype=bool)
        wall_ud[1:-1] = ~floor[:-2] & ~floor[2:]
        tiles[floor & ((ring_h & wall_lr) | (ring_v & wall_ud))] = DOOR
        if exit_room is not None:
            ring_floor = _ring_floor(floor, rooms[exit_room])
            if ring_floor:
                doorways = [(x, y) for x, y, ok in ring_floor if ok]
                keep = doorways[0] if doorways else ring_floor[0][:2]
                for x, y, _ in ring_floor:
                    tiles[y, x] = WALL
                tiles[keep[1], keep[0]] = LOCKED
        # regions and entities
        key_room = self._key_room(rng, n, spawn_room, exit_room, ds)
        used: set[str] = set()
        regions = []
        for k, r in enumerate(rooms):
            role = ("start" if k == spawn_room else
                    "exit" if k == exit_room or (n == 2 and k == key_room) else "room")
            regions.append(Region(f"room-{k + 1}", "room", room_name(rng, used), r.x, r.y, r.w, r.h,
                                  {"role": role}))
        occupied: set[tuple[int, int]] = set()
        sx, sy = rooms[spawn_room].center
        near_spawn = {(sx + dx, sy + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}

        def spot(room: Room, keep_away: bool = False):
            for _ in range(50):
                x = room.x + _below(rng, room.w)
                y = room.y + _below(rng, room.h)
                if (x, y) not in occupied and not (keep_away and (x, y) in near_spawn):
                    occupied.add((x, y))
                    return x, y
            return None

        ents = []
        occupied.add((sx, sy))
        ents.append(Entity("spawn", "spawn", sx, sy, {}))
        if exit_at is None:
            exit_at = rooms[exit_room].center
        occupied.add(exit_at)
        ents.append(Entity("exit", "exit", exit_at[0], exit_at[1], {}))
        kp = spot(rooms[key_room], keep_away=key_room == spawn_room)
        if kp:
            ents.append(Entity("key", "key", kp[0], kp[1], {"opens": "locked_door"}))
        enemy_rooms = [k for k in range(n) if k != spawn_room] or [spawn_room]
        area = sum(rooms[k].w * rooms[k].h for k in enemy_rooms)
        n_enemies = int(round(p["enemy_density"] * area))
        for i in range(n_enemies):
            k = enemy_rooms[_below(rng, len(enemy_rooms))]
            s = spot(rooms[k], keep_away=k == spawn_room)
            if s:
                ents.append(Entity(f"enemy-{i + 1}", "enemy", s[0], s[1],
                                   {"type": ENEMY_TYPES[_below(rng, len(ENEMY_TYPES))],
                                    "hp": 2 + _below(rng, 8)}))
        npc_rooms = [k for k in range(n) if k != exit_room]
        for i in range(p["npcs"]):
            s = spot(rooms[npc_rooms[_below(rng, len(npc_rooms))]])
            if s:
                ents.append(Entity(f"npc-{i + 1}", "npc", s[0], s[1], {"mood": NPC_MOODS[_below(rng, len(NPC_MOODS))]}))
        for i in range(p["treasure"]):
            s = spot(rooms[_below(rng, n)])
            if s:
                ents.append(Entity(f"treasure-{i + 1}", "treasure", s[0], s[1],
                                   {"loot": TREASURES[_below(rng, len(TREASURES))],
                                    "value": 5 + _below(rng, 95)}))
        return Level({"tiles": tiles}, tileset(), ents, regions, {"genre": "dungeon", "rooms": n})

    @staticmethod
    def _key_room(rng, n, spawn_room, exit_room, ds):
        """Never the spawn's room when there are two rooms or more, never the locked exit room."""
        if n == 1:
            return 0
        if n == 2:
            return 1 - spawn_room
        others = [k for k in range(n) if k not in (spawn_room, exit_room)]
        if rng.random() < 0.5:
            return max(others, key=lambda k: (ds[k], -k))
        return others[_below(rng, len(others))]

    @staticmethod
    def _place_rooms(rng, W, H, lay: Layout, spawn_room: int):
        """One room per chosen grid cell; for one or two rooms the nook room's cell gives NOOK tiles on the
        side where the stair nook goes (away from the other room). Returns (rooms, nook side or None)."""
        cols, rows, n = lay.cols, lay.rows, lay.rooms

        def cuts(total, k):
            base = _span(total, k)
            sizes = np.full(k, base)
            rem = total - GAP * (k - 1) - base * k
            if rem:
                sizes[_sample(rng, k, rem)] += 1
            starts = 1 + np.concatenate([[0], np.cumsum(sizes + GAP)[:-1]])
            return [int(v) for v in starts], [int(v) for v in sizes]

        xs, ws = cuts(W - 2, cols)
        ys, hs = cuts(H - 2, rows)
        chosen = sorted(_sample(rng, cols * rows, n))
        nook_side = None
        nook_room = -1
        if n <= 2:  # the nook goes along the longer side of its room's cell, away from the other room
            nook_room = 0 if n == 1 else 1 - spawn_room
            row, col = divmod(chosen[nook_room], cols)
            vertical = hs[row] >= ws[col]
            if n == 2 and (cols == 1) == vertical:
                outward = chosen[nook_room] > chosen[1 - nook_room]
            else:
                outward = rng.random() < 0.5
            nook_side = ("bottom" if outward else "top") if vertical else ("right" if outward else "left")
        rooms = []
        for k, cell in enumerate(chosen):
            row, col = divmod(cell, cols)
            x0, y0, cw, ch = xs[col], ys[row], ws[col], hs[row]
            if k == nook_room:
                if nook_side in ("top", "bottom"):
                    ch -= NOOK
                    y0 += NOOK if nook_side == "top" else 0
                else:
                    cw -= NOOK
                    x0 += NOOK if nook_side == "left" else 0
            sides = []
            for c in (cw, ch):
                if lay.size:  # explicit: any side from MIN_SIDE to room_size that the cell holds
                    lo, hi = MIN_SIDE, min(c, lay.size)
                elif n <= 2:  # a lone room or a pair: most of the map
                    lo, hi = round(0.8 * c), c
                else:  # auto: 45% to 90% of the cell
                    lo, hi = round(0.45 * c), (c if c < 8 else round(0.9 * c))
                hi = min(hi, MAX_SIDE)
                lo, hi = max(MIN_SIDE, min(lo, hi)), max(MIN_SIDE, hi)
                sides.append(lo + _below(rng, hi - lo + 1))
            w, h = sides
            x = x0 + _below(rng, cw - w + 1)
            y = y0 + _below(rng, ch - h + 1)
            rooms.append(Room(x, y, w, h))
        return rooms, nook_side

    @staticmethod
    def _nook(r: Room, side: str, rng):
        """A stair nook in the room's wall on ``side``: (locked door, exit tile behind it, the rectangle
        (x0, y0, x1, y1) corridors keep out of: the door with its two wall neighbours, the exit with its
        own, and the wall behind)."""
        if side in ("top", "bottom"):
            x = r.x + _below(rng, r.w)
            door_y = r.y - 1 if side == "top" else r.y + r.h
            step = -1 if side == "top" else 1
            far = door_y + 2 * step
            return (x, door_y), (x, door_y + step), (x - 1, min(door_y, far), x + 1, max(door_y, far))
        y = r.y + _below(rng, r.h)
        door_x = r.x - 1 if side == "left" else r.x + r.w
        step = -1 if side == "left" else 1
        far = door_x + 2 * step
        return (door_x, y), (door_x + step, y), (min(door_x, far), y - 1, max(door_x, far), y + 1)

    def validate(self, level, request):
        out = dungeon_problems(level)
        p = request.params
        want = layout(p["width"], p["height"], p["rooms"], p["room_size"]).rooms
        got = level.metadata.get("rooms", 0)
        if got != want:
            out.append(f"{got} rooms instead of {want} on a {level.width}x{level.height} map")
        keys, start = level.entities_of("key"), [r for r in level.regions if r.properties.get("role") == "start"]
        if want >= 2 and keys and start and start[0].contains(keys[0].x, keys[0].y):
            out.append(f"the key lies in the spawn room ({start[0].name}) of a {want}-room dungeon")
        return out


@hookimpl
def register_level_generators(register):
    register(Dungeon())
