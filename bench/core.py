"""Core figures (issue 2): `import engine` time vs `import numpy, msgpack, pluggy`, and dungeon 64x64
generate+validate latency (p50/p99) vs generate alone. Ratios in one run; run with the project's venv."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _import_seconds(stmt: str, runs: int = 5) -> float:
    code = f"import time; t=time.perf_counter(); {stmt}; print(time.perf_counter()-t)"
    vals = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(runs)]
    return statistics.median(vals)


def import_time() -> None:
    base = _import_seconds("import numpy, msgpack, pluggy")
    eng = _import_seconds("import engine")
    torch_loaded = subprocess.run([sys.executable, "-c", "import sys, engine; e = engine.Engine(); "
                                   "print('torch' in sys.modules)"], capture_output=True, text=True).stdout.strip()
    print(f"import engine: {eng * 1000:.0f} ms (baseline import numpy, msgpack, pluggy {base * 1000:.0f} ms) "
          f"ratio x{eng / base:.2f}; torch imported by Engine(): {torch_loaded}")


def dungeon_latency(n: int = 300) -> None:
    import engine

    eng = engine.Engine(entry_points=False)
    gen = eng.generator("dungeon")
    params = {"width": 64, "height": 64, "rooms": 10}
    eng.generate("level", "dungeon", 0, params)  # warm-up (scipy import)
    full, raw = [], []
    for s in range(n):
        t = time.perf_counter()
        eng.generate("level", "dungeon", s, params)
        full.append(time.perf_counter() - t)
        req = eng.request("level", "dungeon", s, params)
        t = time.perf_counter()
        gen.generate(req)
        raw.append(time.perf_counter() - t)
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))] * 1000  # noqa: E731
    print(f"dungeon 64x64 generate+validate: p50 {q(full, 0.5):.2f} ms, p99 {q(full, 0.99):.2f} ms "
          f"(baseline generate alone p50 {q(raw, 0.5):.2f} ms) ratio x{q(full, 0.5) / q(raw, 0.5):.2f}")


FIGURES = [import_time, dungeon_latency]

if __name__ == "__main__":
    for f in FIGURES:
        f()
