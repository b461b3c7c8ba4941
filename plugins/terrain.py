"""``terrain``: an overworld from fBm Perlin noise (the ``noise`` package's ``pnoise2``).

Two noise fields, height and moisture, are evaluated at *world* coordinates, so chunk ``(cx, cy)`` of a
seed covers world tiles ``[cx*width, (cx+1)*width)`` and adjacent chunks join without a seam (no per-chunk
normalisation). Height and moisture map to biomes: deep water, water, sand, grass, forest, hills,
mountain, snow. Large biome areas become named regions; towns are placed on land.
"""
from __future__ import annotations

import numpy as np
from noise import pnoise2

from engine import Entity, Generator, Level, Param, Region, TileDef, Tileset, hookimpl

from .words import region_name

BIOMES = ("deep_water", "water", "sand", "grass", "forest", "hills", "mountain", "snow")
DEEP, WATER, SAND, GRASS, FOREST, HILLS, MOUNTAIN, SNOW = range(8)
TILESET = Tileset("overworld", [
    TileDef(DEEP, "deep_water", "~", (20, 40, 120), {"solid": True, "water": True}),
    TileDef(WATER, "water", "w", (40, 90, 190), {"solid": True, "water": True}),
    TileDef(SAND, "sand", ".", (230, 210, 140), {}),
    TileDef(GRASS, "grass", ",", (90, 170, 70), {}),
    TileDef(FOREST, "forest", "T", (30, 110, 40), {"slow": True}),
    TileDef(HILLS, "hills", "n", (130, 140, 80), {"slow": True}),
    TileDef(MOUNTAIN, "mountain", "^", (120, 110, 100), {"solid": True}),
    TileDef(SNOW, "snow", "*", (240, 245, 250), {"solid": True}),
])
REPEAT = 1024  # pnoise2's period in noise units: world offsets stay inside it
OFFSET_RANGE = 256


def tileset() -> Tileset:
    return Tileset(TILESET.name, [TileDef(t.id, t.name, t.char, t.color, dict(t.properties))
                                  for t in TILESET.tiles])


def fbm_grid(xs: np.ndarray, ys: np.ndarray, octaves: int, base: int, persistence: float = 0.5,
             lacunarity: float = 2.0) -> np.ndarray:
    """``pnoise2`` at every (x, y) of a grid: the reference per-point loop (positional arguments, which
    the ``noise`` package parses ~4x faster than keywords). Returns shape (len(ys), len(xs)), float32."""
    out = np.empty((len(ys), len(xs)), dtype=np.float64)
    xl = xs.tolist()
    for j, y in enumerate(ys.tolist()):
        row = out[j]
        for i, x in enumerate(xl):
            row[i] = pnoise2(x, y, octaves, persistence, lacunarity, REPEAT, REPEAT, base)
    return out


def classify(height: np.ndarray, moisture: np.ndarray, sea_level: float) -> np.ndarray:
    """Biome ids from height and moisture in [0, 1]."""
    land = (height - sea_level) / max(1e-6, 1.0 - sea_level)  # 0 at the shore, 1 at the top
    t = np.empty(height.shape, dtype=np.uint8)
    t[:] = GRASS
    t[(land >= 0.0) & (land < 0.05)] = SAND
    t[(land >= 0.05) & (land < 0.45) & (moisture > 0.5)] = FOREST
    t[(land >= 0.45) & (land < 0.62)] = HILLS
    t[(land >= 0.62) & (land < 0.78)] = MOUNTAIN
    t[land >= 0.78] = SNOW
    t[land < 0] = WATER
    t[height < sea_level * 0.75] = DEEP
    return t


class Terrain(Generator):
    id = "terrain"
    kind = "level"
    version = "1"
    description = "Overworld chunks from fBm Perlin height and moisture; seamless across chunks"
    params = (
        Param("width", "int", 64, min=8, max=1024, help="chunk width in tiles"),
        Param("height", "int", 64, min=8, max=1024, help="chunk height in tiles"),
        Param("scale", "float", 48.0, min=2.0, max=1000.0, help="tiles per noise unit (bigger = broader)"),
        Param("octaves", "int", 4, min=1, max=8, help="fBm octaves (detail)"),
        Param("sea_level", "float", 0.45, min=0.0, max=1.0, help="height below which there is water"),
        Param("chunk_x", "int", 0, min=-100000, max=100000, help="chunk column in the world"),
        Param("chunk_y", "int", 0, min=-100000, max=100000, help="chunk row in the world"),
        Param("towns", "int", 3, min=0, max=64, help="towns to place on land"),
    )

    def fields(self, request) -> tuple[np.ndarray, np.ndarray]:
        """Height and moisture in [0, 1] for the requested chunk (depends on the seed, not the attempt)."""
        p = request.params
        w, h, s = p["width"], p["height"], p["scale"]
        seed = request.seed
        from engine.seeds import derive

        out = []
        for name in ("height", "moisture"):
            d = derive(seed, "terrain", name)
            base = d % 256
            ox = (d >> 8) % OFFSET_RANGE
            oy = (d >> 24) % OFFSET_RANGE
            xs = ox + (np.arange(w) + p["chunk_x"] * w) / s
            ys = oy + (np.arange(h) + p["chunk_y"] * h) / s
            # fBm amplitude sum ~ 1 + 0.5 + ...; pnoise2 output is normalised by it, lying in about +-0.5
            v = fbm_grid(xs, ys, p["octaves"], int(base))
            out.append(np.clip(0.5 + v * 1.1, 0.0, 1.0))
        return out[0], out[1]

    def generate(self, request):
        p = request.params
        height, moisture = self.fields(request)
        tiles = classify(height, moisture, p["sea_level"])
        rng = request.rng()
        regions = self._regions(tiles, rng, p)
        ents = []
        land = np.argwhere(np.isin(tiles, (SAND, GRASS, FOREST, HILLS)))
        if len(land):
            # spawn: the land tile nearest the chunk centre
            c = np.array([tiles.shape[0] / 2, tiles.shape[1] / 2])
            y, x = land[int(np.argmin(((land - c) ** 2).sum(1)))]
            ents.append(Entity("spawn", "spawn", int(x), int(y), {}))
            grass = np.argwhere(tiles == GRASS)
            pool = grass if len(grass) else land
            picks = rng.choice(len(pool), size=min(p["towns"], len(pool)), replace=False)
            for i, k in enumerate(sorted(int(v) for v in picks)):
                y, x = pool[k]
                ents.append(Entity(f"town-{i + 1}", "town", int(x), int(y),
                                   {"size": int(rng.integers(1, 4))}))
        meta = {"genre": "overworld", "chunk_x": p["chunk_x"], "chunk_y": p["chunk_y"],
                "world_x": p["chunk_x"] * p["width"], "world_y": p["chunk_y"] * p["height"]}
        return Level({"tiles": tiles}, tileset(), ents, regions, meta)

    @staticmethod
    def _regions(tiles, rng, p, limit: int = 8):
        from scipy import ndimage

        found = []
        for b in (FOREST, HILLS, MOUNTAIN, SNOW, GRASS, SAND, WATER, DEEP):
            lab, n = ndimage.label(tiles == b)
            if not n:
                continue
            sizes = np.bincount(lab.ravel())[1:]
            for idx in np.argsort(-sizes, kind="stable")[:3]:
                if sizes[idx] >= 24:
                    found.append((int(sizes[idx]), b, int(idx) + 1, lab))
        found.sort(key=lambda f: (-f[0], f[1], f[2]))
        used: set[str] = set()
        regions = []
        for k, (size, b, idx, lab) in enumerate(found[:limit]):
            ys, xs = np.nonzero(lab == idx)
            x0, y0 = int(xs.min()), int(ys.min())
            regions.append(Region(f"region-{k + 1}", BIOMES[b], region_name(rng, BIOMES[b], used), x0, y0,
                                  int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1, {"tiles": size}))
        return regions


@hookimpl
def register_level_generators(register):
    register(Terrain())
