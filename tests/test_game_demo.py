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


@pytest.mark.parametrize("desktop, scale", [((1024, 768), 1), ((1366, 768), 1), ((1280, 1024), 1),
                                            ((1920, 1080), 2), ((2560, 1440), 2), ((3840, 2160), 4),
                                            ((800, 600), 1), ((640, 480), 1)])
def test_window_scale_fits_the_desktop(desktop, scale):
    from game_demo.__main__ import DESKTOP_RESERVE, window_scale

    assert window_scale(desktop) == scale
    if scale > 1 or desktop[0] >= 640 + DESKTOP_RESERVE[0] and desktop[1] >= 480 + DESKTOP_RESERVE[1]:
        assert 640 * scale + DESKTOP_RESERVE[0] <= desktop[0] and 480 * scale + DESKTOP_RESERVE[1] <= desktop[1]
    assert 640 * (scale + 1) + DESKTOP_RESERVE[0] > desktop[0] or 480 * (scale + 1) + DESKTOP_RESERVE[1] > desktop[1]


@pytest.mark.parametrize("desktop, size", [((1024, 768), (640, 480)), ((1920, 1080), (1280, 960)),
                                           ((3840, 2160), (2560, 1920))])
def test_game_window_opens_at_the_scale_that_fits_and_is_resizable(monkeypatch, desktop, size):
    """The window the game opens, with pygame's desktop size as a display of that size reports it."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    import pygame

    from game_demo.__main__ import Game, parse_args

    monkeypatch.setattr(pygame.display, "get_desktop_sizes", lambda: [desktop])
    game = Game(parse_args([]))
    try:
        game.open()
        assert game.screen.get_size() == size
        assert game.screen.get_flags() & pygame.RESIZABLE
        explicit = Game(parse_args(["--scale", "1"]))
        explicit.open()
        assert explicit.screen.get_size() == (640, 480)
    finally:
        pygame.quit()
