"""``python -m game_demo``: a top-down dungeon crawler whose floors Conjure generates while you play.

``python -m game_demo --headless --floors 3 --seed 1 --screenshot s.png`` runs without a window: an
autopilot plays every floor, talks to one NPC per floor, prints per floor the generation time, steps and
outcome, saves screenshots and exits 0 only if every floor was completed. Floors are drawn with the ``kenney``
tile theme (Kenney's CC0 tiles); ``--theme NAME`` picks another installed theme, ``--theme none`` flat colours.

The window opens at the largest integer scale of the 640x480 canvas that fits the desktop (:func:`window_scale`;
``--scale N`` to choose) and stays resizable.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

MAX_STEPS_PER_FLOOR = 5000
MAX_ACTIONS_PER_FLOOR = 20000  # steps, bumps, talks and choices: a stuck autopilot fails the floor, never hangs
FPS = 30
KEYS = {"up": ("up", "w"), "down": ("down", "s"), "left": ("left", "a"), "right": ("right", "d")}
#: room the desktop keeps around a window: frame and title bar across, title bar and task bar down
DESKTOP_RESERVE = (40, 100)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m game_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", default="1", help="world seed (int or string)")
    ap.add_argument("--floors", type=int, default=3, help="floors to play")
    ap.add_argument("--headless", action="store_true", help="no window; the autopilot plays")
    ap.add_argument("--screenshot", default=None, help="PNG path for screenshots (headless)")
    ap.add_argument("--theme", default="kenney",
                    help="tile theme the floors are drawn with (default kenney: Kenney's CC0 tiles; 'none' for "
                    "flat colours; `conjure list themes` shows the installed ones)")
    ap.add_argument("--scale", type=int, default=None,
                    help="window scale (windowed mode; default: the largest that fits the desktop)")
    return ap.parse_args(argv)


def window_scale(desktop: tuple[int, int], canvas: tuple[int, int] = (640, 480),
                 reserve: tuple[int, int] = DESKTOP_RESERVE) -> int:
    """The largest integer scale of ``canvas`` whose window fits ``desktop`` (less ``reserve`` for the window
    frame and the task bar); 1 when even the canvas does not fit (the window can still be resized)."""
    return max(1, min((desktop[0] - reserve[0]) // canvas[0], (desktop[1] - reserve[1]) // canvas[1]))


def desktop_size(pygame) -> tuple[int, int] | None:
    """The size of the first desktop as pygame reports it (call after ``pygame.init``), or None."""
    sizes = pygame.display.get_desktop_sizes()
    if sizes and sizes[0][0] > 0 and sizes[0][1] > 0:
        return tuple(sizes[0])
    info = pygame.display.Info()
    return (info.current_w, info.current_h) if info.current_w > 0 and info.current_h > 0 else None


class Game:
    """One session: :meth:`open` the window, then :meth:`run` floor after floor. Each frame the game
    :meth:`handle`\\ s input events (or lets the autopilot act, headless), :meth:`step`\\ s the floor's rules
    and :meth:`draw`\\ s; generation stays in :mod:`game_demo.content`, rules in :mod:`game_demo.play`,
    drawing in :mod:`game_demo.render`."""

    def __init__(self, args):
        self.args = args
        self.shot = Path(args.screenshot) if args.screenshot else None
        self.completed = 0
        self.world = None
        self.show_map = False
        self.quit_code: int | None = None  # set when the player quits or the run is interrupted

    # ------------------------------------------------------------------ set-up
    def open(self) -> None:
        """Start pygame and open the window (or the headless canvas)."""
        if self.args.headless:
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        from .render import LOGICAL_SIZE, Renderer

        self.pg = pygame
        pygame.init()
        if self.args.headless:
            self.screen = pygame.display.set_mode(LOGICAL_SIZE, 0)
        else:
            scale = self.args.scale
            if scale is None:
                desk = desktop_size(pygame)
                scale = window_scale(desk, LOGICAL_SIZE) if desk else 1
            self.scale = max(1, scale)
            size = (LOGICAL_SIZE[0] * self.scale, LOGICAL_SIZE[1] * self.scale)
            self.screen = pygame.display.set_mode(size, pygame.RESIZABLE)
        pygame.display.set_caption("Conjure demo")
        self.renderer = Renderer(self.screen)
        self.clock = pygame.time.Clock()

    # ------------------------------------------------------------------ one floor
    def start_floor(self, number: int) -> None:
        from .play import Autopilot, FloorState

        t_wait = time.perf_counter()
        self.number = number
        self.floor = self.source.get(number)
        self.waited = time.perf_counter() - t_wait
        if number < self.args.floors:
            self.source.prefetch(number + 1)  # generate the next floor while this one is played
        self.state = FloorState(self.floor)
        self.pilot = Autopilot(hash_seed(self.seed, number)) if self.args.headless else None
        self.shot_taken = False
        self.actions = 0

    def floor_running(self) -> bool:
        s = self.state
        return (not s.done and s.steps < MAX_STEPS_PER_FLOOR and self.quit_code is None
                and (self.pilot is None or self.actions < MAX_ACTIONS_PER_FLOOR))

    def hud(self) -> str:
        s = self.state
        return (f"Floor {self.number}: {self.floor.story.title}   key: {'yes' if s.has_key else 'no'}   "
                f"gold: {s.gold}\nQuest: {s.quest_line()}")

    def handle(self, ev) -> None:
        """One input event: quit, resize, map, talk, choose or move."""
        pygame, s = self.pg, self.state
        if ev.type == pygame.QUIT or (ev.type == pygame.KEYDOWN and ev.key == pygame.K_ESCAPE):
            self.quit_code = 0 if self.completed == self.args.floors else 1
        elif ev.type == pygame.VIDEORESIZE:
            self.screen = pygame.display.set_mode(ev.size, pygame.RESIZABLE)
            self.renderer.screen = self.screen
        elif ev.type == pygame.KEYDOWN:
            name = pygame.key.name(ev.key)
            if name == "m":
                self.show_map = not self.show_map
                if self.show_map and self.world is None:
                    self.world = self.source.world_map()
            elif name == "e":
                near = [e for e in s.entities.values() if e.kind == "npc"
                        and abs(e.x - s.x) + abs(e.y - s.y) == 1]
                if near:
                    s.talk(near[0])
            elif name in "1234" and len(name) == 1:
                s.choose(int(name) - 1)
            else:
                for d, names in KEYS.items():
                    if name in names:
                        s.move(d)

    def step(self) -> None:
        """Advance the floor by one action: the autopilot's (headless) or the events the player gave."""
        from .play import apply

        self.actions += 1
        if self.pilot is None:
            for ev in self.pg.event.get():
                self.handle(ev)
            return
        if self.actions % 32 == 1 and self.pg.event.peek(self.pg.QUIT):  # SIGTERM/Ctrl-C arrive as QUIT
            print("interrupted", flush=True)
            self.quit_code = 1
            return
        action = self.pilot.step(self.state)
        if action is None:
            self.actions = MAX_ACTIONS_PER_FLOOR  # stuck: the floor fails
            return
        apply(self.state, action)
        if self.shot and not self.shot_taken and self.state.talked and self.state.dialogue is None:
            self.renderer.draw_floor(self.state, self.hud())
            self.renderer.save(self._shot_path(f"-floor{self.number}" if self.number > 1 else ""))
            self.shot_taken = True

    def draw(self) -> None:
        """The floor (or the world map) on the canvas, scaled to the window."""
        if self.show_map and self.world is not None:
            self.renderer.draw_world(self.world, "M to return")
        else:
            self.renderer.draw_floor(self.state, self.hud())
        self.renderer.present()

    def finish_floor(self) -> None:
        s = self.state
        outcome = "completed" if s.done else "failed"
        self.completed += s.done
        if self.shot and self.pilot is not None:
            self.renderer.draw_floor(s, f"Floor {self.number} {outcome}")
            if not self.shot_taken:
                self.renderer.save(self._shot_path(f"-floor{self.number}" if self.number > 1 else ""))
        print(f"floor {self.number}: generated in {self.floor.seconds * 1000:.0f} ms (waited "
              f"{self.waited * 1000:.0f} ms), {s.steps} steps, talked to {len(s.talked)} NPC, "
              f"flags {','.join(sorted(s.flags)) or '-'}; {outcome}", flush=True)

    def _shot_path(self, suffix: str) -> Path:
        return self.shot.with_name(f"{self.shot.stem}{suffix}{self.shot.suffix}") if suffix else self.shot

    # ------------------------------------------------------------------ the session
    def run(self) -> int:
        from engine.seeds import parse_seed

        from .content import FloorSource

        self.open()
        self.seed = parse_seed(self.args.seed)
        self.source = FloorSource(self.seed, theme=self.args.theme)
        self.source.prefetch(1)
        try:
            for number in range(1, self.args.floors + 1):
                self.start_floor(number)
                while self.floor_running():
                    self.step()
                    if self.pilot is None and self.quit_code is None:
                        self.draw()
                        self.clock.tick(FPS)
                if self.quit_code is not None:
                    return self.quit_code
                self.finish_floor()
                if not self.state.done:
                    break
            if self.args.headless:
                self.renderer.draw_world(self.source.world_map(), f"seed {self.args.seed}")
                if self.shot:
                    self.renderer.save(self._shot_path("-world"))
            if self.shot:
                print(f"screenshots: {self.shot.parent / (self.shot.stem + '*' + self.shot.suffix)}")
        finally:
            self.source.close()
            self.pg.quit()
        print(f"{self.completed}/{self.args.floors} floors completed")
        return 0 if self.completed == self.args.floors else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    from engine.errors import ConjureError

    from .content import check_theme

    try:
        check_theme(args.theme)  # before any window opens: a bad name is one line, exit 2
    except ConjureError as e:
        print(f"python -m game_demo: error: --theme: {e}", file=sys.stderr)
        return 2
    return Game(args).run()


def hash_seed(seed, number: int) -> int:
    from engine import derive

    return derive(seed, "autopilot", number)


if __name__ == "__main__":
    sys.exit(main())
