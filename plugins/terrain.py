"""``terrain``: an overworld from fBm Perlin noise (the ``noise`` package's ``pnoise2``, vectorized).

Two noise fields, height and moisture, are evaluated at *world* coordinates, so chunk ``(cx, cy)`` of a
seed covers world tiles ``[cx*width, (cx+1)*width)`` and adjacent chunks join without a seam (no per-chunk
normalisation). Height and moisture map to biomes: deep water, water, sand, grass, forest, hills,
mountain, snow. Large biome areas become named regions; towns are placed on land.

The noise is :func:`pnoise2_grid`, a numpy re-implementation of ``noise.pnoise2`` over a grid that gives
the *same float32 values bit for bit* (same permutation table, gradient table, fade, lerp order, float32
arithmetic, ``repeat`` wrapping and octave loop), about 10x faster than calling ``pnoise2`` per point;
``tests/test_noise.py`` keeps ``noise.pnoise2`` as the reference. One quirk is reproduced on purpose:
``pnoise2`` indexes its 512-entry permutation table up to entry 765 when ``base`` is large (``PERM[A + j]``
with ``j`` already offset by ``base``), so the entries after 511 are the bytes that follow the table in
the compiled module (the start of its float32 ``GRAD4`` table): :data:`PERM_TABLE` spells them out.
"""
from __future__ import annotations

import numpy as np

from engine import Entity, Generator, Level, Param, Region, TileDef, Tileset, hookimpl
from engine.generator import Chunking

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


# ------------------------------------------------------------------------------------- Perlin noise
#: Ken Perlin's permutation of 0..255, as in the ``noise`` package (``_noise.h``).
_PERM256 = (
    151, 160, 137, 91, 90, 15, 131, 13, 201, 95, 96, 53, 194, 233, 7, 225, 140, 36, 103, 30, 69, 142, 8, 99,
    37, 240, 21, 10, 23, 190, 6, 148, 247, 120, 234, 75, 0, 26, 197, 62, 94, 252, 219, 203, 117, 35, 11, 32,
    57, 177, 33, 88, 237, 149, 56, 87, 174, 20, 125, 136, 171, 168, 68, 175, 74, 165, 71, 134, 139, 48, 27,
    166, 77, 146, 158, 231, 83, 111, 229, 122, 60, 211, 133, 230, 220, 105, 92, 41, 55, 46, 245, 40, 244,
    102, 143, 54, 65, 25, 63, 161, 1, 216, 80, 73, 209, 76, 132, 187, 208, 89, 18, 169, 200, 196, 135, 130,
    116, 188, 159, 86, 164, 100, 109, 198, 173, 186, 3, 64, 52, 217, 226, 250, 124, 123, 5, 202, 38, 147,
    118, 126, 255, 82, 85, 212, 207, 206, 59, 227, 47, 16, 58, 17, 182, 189, 28, 42, 223, 183, 170, 213,
    119, 248, 152, 2, 44, 154, 163, 70, 221, 153, 101, 155, 167, 43, 172, 9, 129, 22, 39, 253, 19, 98, 108,
    110, 79, 113, 224, 232, 178, 185, 112, 104, 218, 246, 97, 228, 251, 34, 242, 193, 238, 210, 144, 12,
    191, 179, 162, 241, 81, 51, 145, 235, 249, 14, 239, 107, 49, 192, 214, 31, 181, 199, 106, 157, 184, 84,
    204, 176, 115, 121, 50, 45, 127, 4, 150, 254, 138, 236, 205, 93, 222, 114, 67, 29, 24, 72, 243, 141,
    128, 195, 78, 66, 215, 61, 156, 180)
#: The first 16 rows of the simplex ``GRAD4`` table that follows ``PERM`` in the compiled ``noise`` module;
#: their float32 bytes are what ``pnoise2`` reads past the end of ``PERM`` (see the module docstring).
_GRAD4_HEAD = ((0, 1, 1, 1), (0, 1, 1, -1), (0, 1, -1, 1), (0, 1, -1, -1), (0, -1, 1, 1), (0, -1, 1, -1),
               (0, -1, -1, 1), (0, -1, -1, -1), (1, 0, 1, 1), (1, 0, 1, -1), (1, 0, -1, 1), (1, 0, -1, -1),
               (-1, 0, 1, 1), (-1, 0, 1, -1), (-1, 0, -1, 1), (-1, 0, -1, -1))
PERM_TABLE = np.concatenate([np.array(_PERM256 * 2, dtype=np.intp),
                             np.frombuffer(np.array(_GRAD4_HEAD, dtype="<f4").tobytes(), dtype=np.uint8)
                             .astype(np.intp)])
#: ``grad2`` uses the x and y columns of the 3-D gradient table, indexed by ``hash & 15``.
_GX = np.array((1, -1, 1, -1, 1, -1, 1, -1, 0, 0, 0, 0, 1, -1, 0, 0), dtype=np.float32)
_GY = np.array((1, 1, -1, -1, 0, 0, 0, 0, 1, -1, 1, -1, 0, 0, -1, 1), dtype=np.float32)
_F1, _F6, _F10, _F15 = np.float32(1), np.float32(6), np.float32(10), np.float32(15)


def _axis(c: np.ndarray, freq: np.float32, repeat: np.float32, base: int):
    """Per-coordinate lattice cells (offset by ``base``), fractions and fade, in float32 like the C code."""
    cf = c * freq
    period = repeat * freq
    i = np.floor(np.fmod(cf, period)).astype(np.intp)
    ii = np.fmod((i + 1).astype(np.float32), period).astype(np.intp)  # C truncates toward zero
    t = cf - np.floor(cf)
    fade = ((t * t) * t) * ((t * ((t * _F6) - _F15)) + _F10)
    return (i & 255) + base, (ii & 255) + base, t, fade


def _cells(i: np.ndarray):
    """Distinct cells, each coordinate's cell number, and the first coordinate of each cell."""
    if len(i) > 1 and bool(np.all(i[1:] >= i[:-1])):  # a sorted grid: cells are runs
        starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
        inv = np.cumsum(np.r_[0, (i[1:] != i[:-1]).astype(np.intp)])
        return i[starts], inv, starts
    u, inv = np.unique(i, return_inverse=True)
    first = np.empty(len(u), np.intp)
    first[inv[::-1]] = np.arange(len(i))[::-1]
    return u, inv.reshape(-1), first


def pnoise2_grid(xs, ys, octaves: int = 1, persistence: float = 0.5, lacunarity: float = 2.0,
                 repeatx: float = 1024, repeaty: float = 1024, base: int = 0) -> np.ndarray:
    """``noise.pnoise2(x, y, octaves, persistence, lacunarity, repeatx, repeaty, base)`` at every ``(x, y)``
    of the grid ``xs`` x ``ys``: shape ``(len(ys), len(xs))``, float64 holding the float32 results, equal
    to the C function's bit for bit. ``base`` must lie in 0..255 (beyond that the C code reads memory it
    does not own)."""
    if not 0 <= int(base) <= 255:
        raise ValueError(f"base must lie in 0..255, got {base}")
    if int(octaves) < 1:
        raise ValueError("Expected octaves value > 0")
    if not (repeatx > 0 and repeaty > 0):
        raise ValueError("repeatx and repeaty must be positive")
    base = int(base)
    x = np.asarray(xs, dtype=np.float64).reshape(-1).astype(np.float32)
    y = np.asarray(ys, dtype=np.float64).reshape(-1).astype(np.float32)
    f32 = np.float32
    per, lac, rx, ry = f32(persistence), f32(lacunarity), f32(repeatx), f32(repeaty)
    freq, amp, amp_sum = f32(1), f32(1), f32(0)
    shape = (len(y), len(x))
    total = np.zeros(shape, np.float32)
    if 0 in shape:
        return total.astype(np.float64)
    corners = [np.empty(shape, np.float32) for _ in range(4)]
    T = PERM_TABLE
    for _ in range(int(octaves)):
        i, ii, tx, fx = _axis(x, freq, rx, base)
        j, jj, ty, fy = _axis(y, freq, ry, base)
        ucol, col_of, col_first = _cells(i)
        urow, row_of, row_first = _cells(j)
        a_hash, b_hash = T[ucol][None, :], T[ii[col_first]][None, :]
        j0, j1 = urow[:, None], jj[row_first][:, None]
        tx1, y0, y1 = tx - _F1, ty[:, None], (ty - _F1)[:, None]
        # the four corners' gradient . offset, x*gx + y*gy, as float32 like grad2()
        for out, h, xo, yo in ((corners[0], T[T[a_hash + j0]] & 15, tx, y0),
                               (corners[1], T[T[b_hash + j0]] & 15, tx1, y0),
                               (corners[2], T[T[a_hash + j1]] & 15, tx, y1),
                               (corners[3], T[T[b_hash + j1]] & 15, tx1, y1)):
            gx = _GX[h][:, col_of]  # (row cells, columns): small
            gx *= xo
            gy = _GY[h][:, col_of].take(row_of, axis=0)
            gy *= yo
            np.add(gx.take(row_of, axis=0), gy, out=out)
        a, b, c, d = corners
        fxr = fx[None, :]
        b -= a
        b *= fxr
        a += b  # lerp(fx, grad AA, grad BA)
        d -= c
        d *= fxr
        c += d  # lerp(fx, grad AB, grad BB)
        c -= a
        c *= fy[:, None]
        a += c  # lerp(fy, ...)
        if amp != _F1:
            a *= amp
        total += a
        amp_sum = f32(amp_sum + amp)
        freq = f32(freq * lac)
        amp = f32(amp * per)
    if amp_sum != _F1:
        total /= amp_sum
    return total.astype(np.float64)


def fbm_grid(xs: np.ndarray, ys: np.ndarray, octaves: int, base: int, persistence: float = 0.5,
             lacunarity: float = 2.0) -> np.ndarray:
    """fBm Perlin noise at every (x, y) of a grid: shape (len(ys), len(xs)), float64 values equal to
    ``noise.pnoise2(x, y, octaves, persistence, lacunarity, REPEAT, REPEAT, base)``."""
    return pnoise2_grid(xs, ys, octaves, persistence, lacunarity, REPEAT, REPEAT, base)


def fbm_grid_reference(xs: np.ndarray, ys: np.ndarray, octaves: int, base: int, persistence: float = 0.5,
                       lacunarity: float = 2.0) -> np.ndarray:
    """The per-point ``noise.pnoise2`` loop :func:`fbm_grid` replaced (tests and ``bench/`` compare)."""
    from noise import pnoise2

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
    #: the chunked-world protocol (engine.generator.Chunked): engine.world() streams these params' chunks
    chunking = Chunking(width="width", height="height", x="chunk_x", y="chunk_y")

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

    def validate(self, level, request):
        """Every entity on walkable land; a spawn exactly when the chunk has land; towns on distinct tiles,
        all of those asked for wherever there is that much grass (an all-water chunk is valid: the world
        decides what a chunk holds, and a resample could not change it)."""
        out = []
        tiles = level.tiles
        walkable = np.isin(tiles, (SAND, GRASS, FOREST, HILLS))
        for e in level.entities:
            if not walkable[e.y, e.x]:
                out.append(f"{e.kind} {e.id!r} at x={e.x}, y={e.y} is not on walkable land")
        spawns = level.entities_of("spawn")
        if bool(walkable.any()) != (len(spawns) == 1):
            out.append(f"{len(spawns)} spawns on a chunk with {int(walkable.sum())} land tiles")
        towns = level.entities_of("town")
        want = request.params["towns"]
        if len({(t.x, t.y) for t in towns}) != len(towns):
            out.append("two towns on one tile")
        if len(towns) > want or (len(towns) < want and int((tiles == GRASS).sum()) >= want):
            out.append(f"{len(towns)} towns instead of {want}")
        return out

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
