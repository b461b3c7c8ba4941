"""Game rules and the autopilot: no pygame, no engine calls.

The player walks the floor, picks up the key, opens the locked door and reaches the exit. Enemies block
their tile until defeated (bump them), treasure is picked up, NPCs talk: their quest dialogue is the floor's
story graph, and choices set flags. Bumping an NPC you have talked to swaps places with it, so an NPC in a
doorway never locks a floor.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from engine import Entity

from .content import Floor

DIRS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}
PLAYER_DAMAGE = 3


@dataclass
class Dialogue:
    node: str
    flags: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)


class FloorState:
    def __init__(self, floor: Floor):
        self.floor = floor
        lv = floor.level
        self.tiles = lv.tiles.copy()
        self.solid = lv.tileset.lookup("solid")
        self.locked = lv.tileset.lookup("locked")
        spawn = lv.entities_of("spawn")[0]
        self.x, self.y = spawn.x, spawn.y
        self.entities: dict[str, Entity] = {e.id: e for e in lv.entities if e.kind != "spawn"}
        self.hp = {e.id: int(e.properties.get("hp", 3)) for e in lv.entities if e.kind == "enemy"}
        self.has_key = False
        self.gold = 0
        self.steps = 0
        self.done = False
        self.talked: set[str] = set()
        self.dialogue: Dialogue | None = None
        self.flags: set[str] = set()  # every flag any dialogue choice set on this floor
        self.log: list[str] = []

    # ------------------------------------------------------------------ queries
    def at(self, x: int, y: int) -> Entity | None:
        for e in self.entities.values():
            if e.x == x and e.y == y:
                return e
        return None

    def walkable(self, x: int, y: int, with_key: bool | None = None) -> bool:
        h, w = self.tiles.shape
        if not (0 <= x < w and 0 <= y < h):
            return False
        t = self.tiles[y, x]
        if self.solid[t]:
            return False
        if self.locked[t] and not (self.has_key if with_key is None else with_key):
            return False
        return True

    def quest_line(self) -> str:
        beats = self.floor.story.quest.beats
        return beats[min(len(beats) - 1, 1 if self.talked else 0)].text

    # ------------------------------------------------------------------ actions
    def move(self, direction: str) -> None:
        if self.done or self.dialogue:
            return
        dx, dy = DIRS[direction]
        nx, ny = self.x + dx, self.y + dy
        target = self.at(nx, ny)
        if target is not None and target.kind == "enemy":
            self.hp[target.id] -= PLAYER_DAMAGE
            self.steps += 1
            if self.hp[target.id] <= 0:
                del self.entities[target.id]
                name = self.floor.characters.get(target.id)
                self.log.append(f"defeated {name.name if name else target.id}")
            return
        if target is not None and target.kind == "npc":
            if target.id not in self.talked:
                self.talk(target)
                return
            if not self.walkable(nx, ny):
                return
            target.x, target.y = self.x, self.y  # already talked: squeeze past (swap places)
            self.x, self.y = nx, ny
            self.steps += 1
            return
        if not self.walkable(nx, ny):
            if self.locked[self.tiles[ny, nx]] if 0 <= ny < self.tiles.shape[0] and 0 <= nx < self.tiles.shape[1] else False:
                self.log.append("the door is locked")
            return
        self.x, self.y = nx, ny
        self.steps += 1
        if self.locked[self.tiles[ny, nx]]:
            self.tiles[ny, nx] = self.floor.level.tileset.id("door")
            self.log.append("unlocked the door")
        if target is not None:
            if target.kind == "key":
                self.has_key = True
                del self.entities[target.id]
                self.log.append("picked up the key")
            elif target.kind == "treasure":
                self.gold += int(target.properties.get("value", 1))
                del self.entities[target.id]
            elif target.kind == "exit" and self.has_key:
                self.done = True

    def talk(self, npc: Entity) -> None:
        self.talked.add(npc.id)
        self.dialogue = Dialogue(self.floor.story.start)
        self.dialogue.seen.append(self.dialogue.node)

    def choose(self, index: int) -> None:
        d = self.dialogue
        if d is None:
            return
        node = self.floor.story.node(d.node)
        if not node.choices:
            self.dialogue = None  # an ending: close the dialogue
            return
        if 0 <= index < len(node.choices):
            c = node.choices[index]
            d.flags.update(c.set_flags)
            self.flags.update(c.set_flags)
            d.node = c.target
            d.seen.append(c.target)


# ---------------------------------------------------------------------- autopilot
def bfs_path(state: FloorState, goal: tuple[int, int], with_key: bool) -> list[tuple[int, int]] | None:
    """Shortest path of cells from the player to ``goal``. Enemies count as walkable (they get bumped out of
    the way); an NPC not yet talked to does not (bumping it talks), one already talked to does (you swap
    places with it)."""
    start = (state.x, state.y)
    prev = {start: None}
    q = deque([start])
    while q:
        cur = q.popleft()
        if cur == goal:
            path = []
            while cur != start:
                path.append(cur)
                cur = prev[cur]
            return path[::-1]
        for dx, dy in DIRS.values():
            n = (cur[0] + dx, cur[1] + dy)
            if n in prev:
                continue
            if n != goal:
                if not state.walkable(*n, with_key=with_key):
                    continue
                blocker = state.at(*n)
                if blocker is not None and blocker.kind == "npc" and blocker.id not in state.talked:
                    continue  # bumping an NPC the first time only talks: go around it (or talk first)
            prev[n] = cur
            q.append(n)
    return None


class Autopilot:
    """Plays a floor: talk to one NPC (picking choices by the seed), get the key, go to the exit."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def target(self, s: FloorState) -> tuple[int, int] | None:
        npcs = [e for e in s.entities.values() if e.kind == "npc"]
        if npcs and not s.talked:
            return npcs[0].x, npcs[0].y
        if not s.has_key:
            keys = [e for e in s.entities.values() if e.kind == "key"]
            if keys:
                return keys[0].x, keys[0].y
        ex = [e for e in s.entities.values() if e.kind == "exit"]
        return (ex[0].x, ex[0].y) if ex else None

    def step(self, s: FloorState) -> str | int | None:
        """The next input: a direction name, a choice index, or None when stuck."""
        if s.dialogue is not None:
            node = s.floor.story.node(s.dialogue.node)
            if not node.choices:
                return 0
            # prefer accepting the quest, otherwise explore a random branch
            accept = [i for i, c in enumerate(node.choices) if "quest_accepted" in c.set_flags]
            if accept and self.rng.random() < 0.6:
                return accept[0]
            return int(self.rng.integers(len(node.choices)))
        goal = self.target(s)
        if goal is None:
            return None
        path = bfs_path(s, goal, with_key=s.has_key)
        if not path:
            return None
        nx, ny = path[0]
        for name, (dx, dy) in DIRS.items():
            if (s.x + dx, s.y + dy) == (nx, ny):
                return name
        return None


def apply(s: FloorState, action: str | int) -> None:
    if isinstance(action, int):
        s.choose(action)
    else:
        s.move(action)
