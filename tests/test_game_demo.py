"""The game demo plays generated floors headless with its autopilot."""
import os
import subprocess
import sys

import pytest
from PIL import Image

from .conftest import ROOT


def test_headless_autopilot_two_floors(tmp_path):
    shot = tmp_path / "s.png"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    r = subprocess.run([sys.executable, "-m", "game_demo", "--headless", "--floors", "2", "--seed", "1",
                        "--screenshot", str(shot)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "floor 1:" in r.stdout and "floor 2:" in r.stdout and "2/2 floors completed" in r.stdout
    assert "talked to 1 NPC" in r.stdout
    img = Image.open(shot).convert("RGB")
    assert img.size == (640, 480)
    assert len(img.getcolors(1 << 16) or []) > 20  # a rendered floor with sprites, not a blank screen
    assert (tmp_path / "s-floor2.png").exists() and (tmp_path / "s-world.png").exists()


@pytest.mark.parametrize("world", ["test-world", 3, 4, 8])
def test_autopilot_completes_floors_in_process(world):
    """Several worlds (3, 4 and 8 once had an NPC standing in a doorway on the only way on)."""
    from game_demo.content import FloorSource
    from game_demo.play import Autopilot, FloorState, apply

    source = FloorSource(world)
    try:
        for n in (1, 2, 3):
            state = FloorState(source.get(n))
            pilot = Autopilot(n)
            actions = 0
            while not state.done and actions < 20000:  # actions, not steps: talking and choosing count too
                action = pilot.step(state)
                assert action is not None, f"autopilot stuck on floor {n} of world {world!r}"
                apply(state, action)
                actions += 1
            assert state.done and state.has_key and state.talked, f"floor {n} of world {world!r}"
    finally:
        source.close()
