"""``dungeon``: rooms and corridors with walls, doors, one locked door guarding the exit room, its key,
a player spawn, enemies and treasure.

Rooms are placed without overlap, joined by a minimum spanning tree of L-shaped corridors (plus a few
loops), so every room is reachable. The exit room is the room farthest from the spawn in the tree (always a
leaf), sealed so its only opening is the locked door. The key lies in another room reachable from the
spawn. The engine's :func:`engine.quality.dungeon_problems` validates every level; the rare layout it
rejects (a corridor cutting through the exit room) is resampled.
"""
from __future__ import annotations

import numpy as np

from engine import Entity, Generator, Level, Param, Region, TileDef, Tileset, hookimpl
from engine.quality import dungeon_problems

from .words import ENEMY_TYPES, TREASURES, pick, room_name

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


class Room:
    __slots__ = ("x", "y", "w", "h")

    def __init__(self, x, y, w, h):
        self.x, self.y, self.w, self.h = x, y, w, h

    @property
    def center(self):
        return self.x + self.w // 2, self.y + self.h // 2

    def overlaps(self, o: "Room", margin: int) -> bool:
        return not (self.x + self.w + margin <= o.x or o.x + o.w + margin <= self.x or
                    self.y + self.h + margin <= o.y or o.y + o.h + margin <= self.y)


def _l_path(a, b, horizontal_first: bool):
    (x0, y0), (x1, y1) = a, b
    pts = []
    if horizontal_first:
        pts += [(x, y0) for x in range(min(x0, x1), max(x0, x1) + 1)]
        pts += [(x1, y) for y in range(min(y0, y1), max(y0, y1) + 1)]
    else:
        pts += [(x0, y) for y in range(min(y0, y1), max(y0, y1) + 1)]
        pts += [(x, y1) for x in range(min(x0, x1), max(x0, x1) + 1)]
    return pts


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


class Dungeon(Generator):
    id = "dungeon"
    kind = "level"
    version = "1"
    description = "Rooms and corridors with a locked door, its key, enemies and treasure"
    params = (
        Param("width", "int", 48, min=16, max=256, help="map width in tiles"),
        Param("height", "int", 32, min=16, max=256, help="map height in tiles"),
        Param("rooms", "int", 8, min=2, max=64, help="rooms to place; at least half must fit on the map"),
        Param("room_size", "int", 9, min=4, max=20, help="largest room side in tiles"),
        Param("enemy_density", "float", 0.03, min=0.0, max=0.3, help="enemies per floor tile outside the start"),
        Param("treasure", "int", 3, min=0, max=50, help="treasure chests"),
        Param("npcs", "int", 1, min=0, max=20, help="friendly characters (quest givers, merchants)"),
        Param("loops", "float", 0.25, min=0.0, max=1.0, help="extra corridors per room, making loops"),
    )

    def generate(self, request):
        p = request.params
        rng = request.rng()
        W, H = p["width"], p["height"]
        rooms = self._place_rooms(rng, W, H, p["rooms"], p["room_size"])
        n = len(rooms)
        tiles = np.full((H, W), VOID, dtype=np.uint8)
        for r in rooms:
            tiles[r.y:r.y + r.h, r.x:r.x + r.w] = FLOOR
        if n < 2:  # nothing to connect: an invalid level the engine will resample
            return Level({"tiles": tiles}, tileset(), [], [], {"genre": "dungeon", "rooms": n})
        # minimum spanning tree (Prim, Manhattan distance between centers)
        cx = np.array([r.center for r in rooms])
        dist = np.abs(cx[:, None, :] - cx[None, :, :]).sum(-1)
        adj = {i: [] for i in range(n)}
        edges = []
        in_tree = {0}
        best = dist[0].copy()
        parent = np.zeros(n, dtype=int)
        best[0] = 1 << 30
        for _ in range(n - 1):
            cand = [(best[j], j) for j in range(n) if j not in in_tree]
            _, j = min(cand)
            i = int(parent[j])
            edges.append((i, j))
            adj[i].append(j)
            adj[j].append(i)
            in_tree.add(j)
            for k in range(n):
                if k not in in_tree and dist[j, k] < best[k]:
                    best[k] = dist[j, k]
                    parent[k] = j
        # spawn: farthest from room 0; exit: farthest from spawn (a leaf of the tree)
        d0 = _tree_dist(adj, 0)
        spawn_room = max(range(n), key=lambda k: (d0[k], -k))
        ds = _tree_dist(adj, spawn_room)
        exit_room = max(range(n), key=lambda k: (ds[k], -k))
        ex = rooms[exit_room]
        guard = Room(ex.x - 1, ex.y - 1, ex.w + 2, ex.h + 2)

        def hits_guard(path):
            return any(guard.x <= x < guard.x + guard.w and guard.y <= y < guard.y + guard.h for x, y in path)

        extra = []
        for _ in range(int(round(p["loops"] * n))):
            i, j = (int(v) for v in rng.choice(n, 2, replace=False))
            if exit_room in (i, j) or j in adj[i]:
                continue
            extra.append((i, j))
        for i, j in edges + extra:
            a, b = rooms[i].center, rooms[j].center
            hf = bool(rng.integers(2))
            path = _l_path(a, b, hf)
            if exit_room not in (i, j) and hits_guard(path):
                path = _l_path(a, b, not hf)
                if hits_guard(path) and (i, j) in extra:
                    continue
            for x, y in path:
                tiles[y, x] = FLOOR
        # walls: void cells next to floor (8-neighbourhood)
        floor = tiles == FLOOR
        near = np.zeros_like(floor)
        padded = np.pad(floor, 1)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= padded[1 + dy:1 + dy + H, 1 + dx:1 + dx + W]
        tiles[(tiles == VOID) & near] = WALL
        # doors where corridors meet rooms; the exit room keeps exactly one opening, locked
        for k, r in enumerate(rooms):
            openings = self._openings(tiles, r)
            if k == exit_room:
                if not openings:
                    continue
                keep = openings[0]
                for x, y in openings[1:]:
                    tiles[y, x] = WALL
                # seal any other floor cell on the ring (a corridor running along the room)
                for x, y in self._ring(r, W, H):
                    if tiles[y, x] == FLOOR and (x, y) != keep:
                        tiles[y, x] = WALL
                tiles[keep[1], keep[0]] = LOCKED
            else:
                for x, y in openings:
                    tiles[y, x] = DOOR
        # regions and entities
        used: set[str] = set()
        regions = []
        for k, r in enumerate(rooms):
            role = "start" if k == spawn_room else "exit" if k == exit_room else "room"
            regions.append(Region(f"room-{k + 1}", "room", room_name(rng, used), r.x, r.y, r.w, r.h,
                                  {"role": role}))
        occupied: set[tuple[int, int]] = set()

        def spot(room: Room):
            for _ in range(50):
                x = int(rng.integers(room.x, room.x + room.w))
                y = int(rng.integers(room.y, room.y + room.h))
                if (x, y) not in occupied:
                    occupied.add((x, y))
                    return x, y
            return None

        ents = []
        sx, sy = rooms[spawn_room].center
        occupied.add((sx, sy))
        ents.append(Entity("spawn", "spawn", sx, sy, {}))
        ex_x, ex_y = ex.center
        occupied.add((ex_x, ex_y))
        ents.append(Entity("exit", "exit", ex_x, ex_y, {}))
        others = [k for k in range(n) if k not in (spawn_room, exit_room)] or [spawn_room]
        key_room = max(others, key=lambda k: (ds[k], -k)) if rng.random() < 0.5 else others[
            int(rng.integers(len(others)))]
        kp = spot(rooms[key_room])
        if kp:
            ents.append(Entity("key", "key", kp[0], kp[1], {"opens": "locked_door"}))
        enemy_rooms = [k for k in range(n) if k != spawn_room]
        area = sum(rooms[k].w * rooms[k].h for k in enemy_rooms)
        n_enemies = int(round(p["enemy_density"] * area))
        for i in range(n_enemies):
            r = rooms[enemy_rooms[int(rng.integers(len(enemy_rooms)))]]
            s = spot(r)
            if s:
                ents.append(Entity(f"enemy-{i + 1}", "enemy", s[0], s[1],
                                   {"type": pick(rng, ENEMY_TYPES), "hp": int(rng.integers(2, 10))}))
        npc_rooms = [k for k in range(n) if k != exit_room]
        for i in range(p["npcs"]):
            s = spot(rooms[npc_rooms[int(rng.integers(len(npc_rooms)))]])
            if s:
                ents.append(Entity(f"npc-{i + 1}", "npc", s[0], s[1], {"mood": pick(rng, NPC_MOODS)}))
        for i in range(p["treasure"]):
            r = rooms[int(rng.integers(n))]
            s = spot(r)
            if s:
                ents.append(Entity(f"treasure-{i + 1}", "treasure", s[0], s[1],
                                   {"loot": pick(rng, TREASURES), "value": int(rng.integers(5, 100))}))
        return Level({"tiles": tiles}, tileset(), ents, regions, {"genre": "dungeon", "rooms": n})

    @staticmethod
    def _place_rooms(rng, W, H, want, size):
        rooms: list[Room] = []
        lo = 4
        hi = max(lo, min(size, W - 4, H - 4))
        for _ in range(want * 40):
            if len(rooms) >= want:
                break
            w = int(rng.integers(lo, hi + 1))
            h = int(rng.integers(lo, hi + 1))
            x = int(rng.integers(2, W - w - 1))
            y = int(rng.integers(2, H - h - 1))
            r = Room(x, y, w, h)
            if all(not r.overlaps(o, 3) for o in rooms):
                rooms.append(r)
        return rooms

    @staticmethod
    def _ring(r: Room, W: int, H: int):
        for x in range(r.x, r.x + r.w):
            for y in (r.y - 1, r.y + r.h):
                if 0 <= y < H:
                    yield x, y
        for y in range(r.y, r.y + r.h):
            for x in (r.x - 1, r.x + r.w):
                if 0 <= x < W:
                    yield x, y

    @classmethod
    def _openings(cls, tiles, r: Room):
        """Floor cells on the ring around a room that look like a doorway (walls on both sides)."""
        H, W = tiles.shape
        out = []
        for x, y in cls._ring(r, W, H):
            if tiles[y, x] != FLOOR:
                continue
            horizontal_side = y in (r.y - 1, r.y + r.h)
            if horizontal_side:
                sides = [tiles[y, x + d] for d in (-1, 1) if 0 <= x + d < W]
            else:
                sides = [tiles[y + d, x] for d in (-1, 1) if 0 <= y + d < H]
            if all(s != FLOOR for s in sides):
                out.append((x, y))
        return out

    def validate(self, level, request):
        out = dungeon_problems(level)
        want = request.params["rooms"]
        got = level.metadata.get("rooms", 0)
        if got < min(want, 2) or got < want // 2:
            out.append(f"only {got} of {want} rooms fit on a {level.width}x{level.height} map")
        return out


@hookimpl
def register_level_generators(register):
    register(Dungeon())
