"""The vectorized fBm Perlin noise equals ``noise.pnoise2`` (the reference) and keeps terrain unchanged."""
import numpy as np
import pytest
from noise import pnoise2

from engine import serialize
from plugins import terrain
from plugins.terrain import fbm_grid, fbm_grid_reference, pnoise2_grid


def reference(xs, ys, octaves, persistence, lacunarity, rx, ry, base):
    return np.array([[pnoise2(float(x), float(y), octaves, persistence, lacunarity, rx, ry, base) for x in xs]
                     for y in ys])


def test_random_grids_match_pnoise2():
    rng = np.random.default_rng(20240607)
    worst = 0.0
    for trial in range(150):
        base = int(rng.integers(0, 256))
        octaves = int(rng.integers(1, 9))
        persistence = float(rng.choice([0.5, 0.25, 0.35, 0.7, 1.0]))
        lacunarity = float(rng.choice([2.0, 1.5, 1.9, 2.5, 3.0]))
        rx, ry = (float(v) for v in rng.choice([1024, 256, 64, 16, 8, 5.5, 3], size=2))
        span = float(rng.choice([1.0, 10.0, 300.0, 2000.0]))
        xs = rng.uniform(-span, span, int(rng.integers(1, 23)))
        ys = rng.uniform(-span, span, int(rng.integers(1, 17)))
        if trial % 3 == 0:  # sorted grids take the fast path for cells
            xs, ys = np.sort(xs), np.sort(ys)
        got = pnoise2_grid(xs, ys, octaves, persistence, lacunarity, rx, ry, base)
        want = reference(xs, ys, octaves, persistence, lacunarity, rx, ry, base)
        assert got.shape == want.shape
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst <= 1e-6
    assert worst == 0.0  # in fact bit for bit: the same float32 operations in the same order


@pytest.mark.parametrize("base", [0, 1, 17, 128, 200, 254, 255])
def test_regular_grids_every_base_negative_coordinates(base):
    xs = -40.0 + np.arange(70) / 7.3
    ys = -3.0 + np.arange(50) / 3.1
    for octaves in (1, 2, 4, 6):
        got = pnoise2_grid(xs, ys, octaves, 0.5, 2.0, 1024, 1024, base)
        assert np.array_equal(got, reference(xs, ys, octaves, 0.5, 2.0, 1024, 1024, base))


def test_lattice_points_and_wrapping():
    xs = np.array([-1024.0, -512.0, -1.0, -0.5, 0.0, 0.5, 1.0, 255.0, 256.0, 1023.0, 1024.0, 1500.25])
    ys = np.array([-7.0, -0.25, 0.0, 3.0, 8.0, 9.5])
    for rep in (1024, 8, 3):
        for base in (0, 255):
            got = pnoise2_grid(xs, ys, 3, 0.5, 2.0, rep, rep, base)
            assert np.array_equal(got, reference(xs, ys, 3, 0.5, 2.0, rep, rep, base))


def test_terrain_helpers_and_argument_checks():
    xs, ys = 37 + np.arange(40) / 48, 91 + np.arange(30) / 48
    assert np.array_equal(fbm_grid(xs, ys, 4, 200), fbm_grid_reference(xs, ys, 4, 200))
    assert pnoise2_grid([], [1.0]).shape == (1, 0)
    with pytest.raises(ValueError):
        pnoise2_grid([1.0], [1.0], base=256)
    with pytest.raises(ValueError):
        pnoise2_grid([1.0], [1.0], octaves=0)


def test_terrain_bytes_unchanged(eng, monkeypatch):
    """The fast noise gives exactly the tiles the per-point loop gave (Terrain.version stays "1")."""
    cases = [(s, {}) for s in range(6)] + [
        (7, {"chunk_x": -3, "chunk_y": 2}), ("island", {"chunk_x": 5, "chunk_y": -9, "scale": 20.0, "octaves": 6}),
        (2**63, {"chunk_x": -100000, "chunk_y": 100000, "width": 16, "height": 16, "scale": 2.0, "octaves": 8}),
    ]
    fast = [serialize.dumps(eng.generate("level", "terrain", s, p)) for s, p in cases]
    monkeypatch.setattr(terrain, "fbm_grid", fbm_grid_reference)
    slow = [serialize.dumps(eng.generate("level", "terrain", s, p)) for s, p in cases]
    assert fast == slow
    assert terrain.Terrain.version == "1"
