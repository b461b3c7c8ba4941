"""The game demo plays generated floors headless with its autopilot."""
import os
import subprocess
import sys

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


def test_autopilot_completes_floors_in_process():
    from game_demo.content import FloorSource
    from game_demo.play import Autopilot, FloorState, apply

    source = FloorSource("test-world")
    try:
        for n in (1, 2, 3):
            state = FloorState(source.get(n))
            pilot = Autopilot(n)
            while not state.done and state.steps < 3000:
                action = pilot.step(state)
                assert action is not None, f"autopilot stuck on floor {n}"
                apply(state, action)
            assert state.done and state.has_key and state.talked
    finally:
        source.close()
