"""``platformer``: side-view levels with ground, gaps, floating platforms, pipes, enemies, coins and a goal.

The jump model (``jump_height``, ``jump_distance`` in tiles) is a parameter: gaps, steps, pipes and
platforms are laid out within it, and :func:`engine.quality.platformer_problems` checks that the goal is
reachable from the spawn under exactly that model. Tile glyphs follow the VGLC Super Mario Bros convention
(``-`` air, ``X`` ground, ``S`` brick, ``?`` question block, ``<>[]`` pipes).
"""
from __future__ import annotations

import numpy as np

from engine import Entity, Generator, Level, Param, Region, TileDef, Tileset, hookimpl
from engine.quality import platformer_problems

from .words import pick

AIR, GROUND, BRICK, QUESTION, PIPE_TL, PIPE_TR, PIPE_L, PIPE_R = range(8)

TILESET = Tileset("platformer", [
    TileDef(AIR, "air", "-", (110, 160, 255), {}),
    TileDef(GROUND, "ground", "X", (150, 80, 30), {"solid": True}),
    TileDef(BRICK, "brick", "S", (200, 100, 50), {"solid": True, "breakable": True}),
    TileDef(QUESTION, "question", "?", (240, 200, 40), {"solid": True, "item": True}),
    TileDef(PIPE_TL, "pipe_top_left", "<", (40, 190, 60), {"solid": True}),
    TileDef(PIPE_TR, "pipe_top_right", ">", (40, 190, 60), {"solid": True}),
    TileDef(PIPE_L, "pipe_left", "[", (30, 150, 50), {"solid": True}),
    TileDef(PIPE_R, "pipe_right", "]", (30, 150, 50), {"solid": True}),
])
ENEMIES = ("goomba", "koopa", "spiny", "beetle")
SECTION_NAMES = ("the Green Start", "the Broken Bridge", "the Pipe Maze", "the High Road", "the Pits",
                 "the Coin Field", "the Last Stretch", "the Windy Steps")


def tileset() -> Tileset:
    return Tileset(TILESET.name, [TileDef(t.id, t.name, t.char, t.color, dict(t.properties))
                                  for t in TILESET.tiles])


class Platformer(Generator):
    id = "platformer"
    kind = "level"
    version = "2"
    description = "Side-view platformer segment whose every gap is passable under the jump model"
    params = (
        Param("width", "int", 120, min=24, max=2000, help="level length in tiles"),
        Param("height", "int", 16, min=10, max=64, help="level height in tiles"),
        Param("jump_height", "int", 4, min=1, max=12, help="highest jump in tiles"),
        Param("jump_distance", "int", 4, min=1, max=12, help="widest jump in tiles"),
        Param("gap_rate", "float", 0.3, min=0.0, max=1.0, help="chance that a stretch of ground ends in a gap"),
        Param("enemy_density", "float", 0.04, min=0.0, max=0.5, help="enemies per ground column"),
        Param("platforms", "float", 0.3, min=0.0, max=1.0, help="chance of a floating platform per stretch"),
    )

    def generate(self, request):
        p = request.params
        rng = request.rng()
        W, H = p["width"], p["height"]
        jh, jd = p["jump_height"], p["jump_distance"]
        tiles = np.full((H, W), AIR, dtype=np.uint8)
        base = H - 3  # surface row of the default ground (ground fills surface..bottom)
        lo_surface, hi_surface = max(4, H - 3 - 2 * jh), H - 2
        surface = np.full(W, -1, dtype=int)  # -1 = gap column
        ents: list[Entity] = []
        coins = enemies = 0
        x, s = 0, base
        start_len, goal_len = 6, 6
        while x < W:
            run = start_len if x == 0 else int(rng.integers(3, 10))
            run = min(run, W - x)
            if W - (x + run) < goal_len:
                run = W - x
            surface[x:x + run] = s
            x += run
            if x >= W:
                break
            # the next stretch: a step up/down, maybe across a gap
            if rng.random() < p["gap_rate"] and jd >= 2:
                gap = int(rng.integers(1, jd))  # crossing needs gap + 1 <= jump_distance
                gap = min(gap, W - x - goal_len)
                if gap > 0:
                    x += gap
                rise_max = max(0, jh - 1)
            else:
                rise_max = jh
            step = int(rng.integers(-rise_max, rise_max + 1)) if rise_max else 0
            s = int(np.clip(s - step, lo_surface, hi_surface))
        for cx in range(W):
            if surface[cx] >= 0:
                tiles[surface[cx]:, cx] = GROUND
        # pipes and floating platforms on flat stretches (never in the start or goal zones)
        cx = start_len
        while cx < W - goal_len - 3:
            flat = surface[cx] >= 0 and surface[cx + 1] == surface[cx] and surface[cx + 2] == surface[cx]
            r = rng.random()
            if flat and r < 0.12 and jh >= 2 and surface[cx - 1] == surface[cx]:  # climbable from the left
                ph = int(rng.integers(1, min(jh, 4)))  # pipe height above the surface, climbable
                top = int(surface[cx]) - ph
                if top - 1 > 1:
                    tiles[top, cx], tiles[top, cx + 1] = PIPE_TL, PIPE_TR
                    tiles[top + 1:surface[cx], cx] = PIPE_L
                    tiles[top + 1:surface[cx], cx + 1] = PIPE_R
                    cx += 4
                    continue
            elif flat and r < 0.12 + p["platforms"] * 0.5 and jh >= 3:
                length = int(rng.integers(2, 5))
                py = int(surface[cx]) - int(rng.integers(3, jh + 1))
                # over flat ground with a free column on each side: never a lid over a step or a gap's edge
                if py > 1 and all(cx + i < W and surface[cx + i] == surface[cx] for i in range(-1, length + 1)):
                    for i in range(length):
                        tiles[py, cx + i] = QUESTION if rng.random() < 0.25 else BRICK
                        if rng.random() < 0.5 and tiles[py - 1, cx + i] == AIR:
                            coins += 1
                            ents.append(Entity(f"coin-{coins}", "coin", cx + i, py - 1, {"value": 1}))
                    cx += length + 2
                    continue
            cx += 1
        # entities: spawn, goal, enemies on the ground, coins over gaps and ground
        ents.insert(0, Entity("spawn", "spawn", 1, int(surface[1]) - 1, {}))
        gx = W - 3
        ents.insert(1, Entity("goal", "goal", gx, int(surface[gx]) - 1, {"type": "flag"}))
        taken = {(e.x, e.y) for e in ents}
        for cx in range(start_len + 2, W - goal_len):
            if surface[cx] < 0 or tiles[surface[cx] - 1, cx] != AIR:
                continue
            if rng.random() < p["enemy_density"] and (cx, surface[cx] - 1) not in taken:
                enemies += 1
                ents.append(Entity(f"enemy-{enemies}", "enemy", cx, int(surface[cx]) - 1,
                                   {"type": pick(rng, ENEMIES), "patrol": int(rng.integers(1, 5))}))
                taken.add((cx, surface[cx] - 1))
            elif rng.random() < 0.05 and (cx, surface[cx] - 2) not in taken and surface[cx] - 2 >= 0:
                coins += 1
                ents.append(Entity(f"coin-{coins}", "coin", cx, int(surface[cx]) - 2, {"value": 1}))
        regions = []
        n_sec = max(1, W // 40)
        bounds = np.linspace(0, W, n_sec + 1).astype(int)
        for i in range(n_sec):
            name = SECTION_NAMES[i] if i < len(SECTION_NAMES) else f"section {i + 1}"
            regions.append(Region(f"section-{i + 1}", "section", name, int(bounds[i]), 0,
                                  int(bounds[i + 1] - bounds[i]), H, {}))
        gaps = int(np.sum((surface[1:] < 0) & (surface[:-1] >= 0)))
        meta = {"genre": "platformer", "jump_height": jh, "jump_distance": jd, "gaps": gaps}
        return Level({"tiles": tiles}, tileset(), ents, regions, meta)

    def validate(self, level, request):
        p = request.params
        return platformer_problems(level, p["jump_height"], p["jump_distance"])


@hookimpl
def register_level_generators(register):
    register(Platformer())
