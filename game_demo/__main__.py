"""``python -m game_demo``: a top-down dungeon crawler whose floors Conjure generates while you play.

``python -m game_demo --headless --floors 3 --seed 1 --screenshot s.png`` runs without a window: an
autopilot plays every floor, talks to one NPC per floor, prints per floor the generation time, steps and
outcome, saves screenshots and exits 0 only if every floor was completed.
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


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m game_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", default="1", help="world seed (int or string)")
    ap.add_argument("--floors", type=int, default=3, help="floors to play")
    ap.add_argument("--headless", action="store_true", help="no window; the autopilot plays")
    ap.add_argument("--screenshot", default=None, help="PNG path for screenshots (headless)")
    ap.add_argument("--scale", type=int, default=2, help="window scale (windowed mode)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.headless:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    from engine.seeds import parse_seed

    from .content import FloorSource
    from .play import Autopilot, FloorState, apply
    from .render import LOGICAL_SIZE, Renderer

    seed = parse_seed(args.seed)
    pygame.init()
    size = LOGICAL_SIZE if args.headless else (LOGICAL_SIZE[0] * args.scale, LOGICAL_SIZE[1] * args.scale)
    screen = pygame.display.set_mode(size, 0 if args.headless else pygame.RESIZABLE)
    pygame.display.set_caption("Conjure demo")
    renderer = Renderer(screen)
    source = FloorSource(seed)
    source.prefetch(1)
    world = None
    completed = 0
    shot = Path(args.screenshot) if args.screenshot else None
    clock = pygame.time.Clock()
    try:
        for number in range(1, args.floors + 1):
            t_wait = time.perf_counter()
            floor = source.get(number)
            waited = time.perf_counter() - t_wait
            if number < args.floors:
                source.prefetch(number + 1)  # generate the next floor while this one is played
            state = FloorState(floor)
            pilot = Autopilot(hash_seed(seed, number)) if args.headless else None
            show_map = False
            shot_taken = False
            actions = 0
            while not state.done and state.steps < MAX_STEPS_PER_FLOOR and (pilot is None
                                                                          or actions < MAX_ACTIONS_PER_FLOOR):
                actions += 1
                hud = (f"Floor {number}: {floor.story.title}   key: {'yes' if state.has_key else 'no'}   "
                       f"gold: {state.gold}\nQuest: {state.quest_line()}")
                if pilot is not None:
                    if actions % 32 == 1 and pygame.event.peek(pygame.QUIT):  # SIGTERM/Ctrl-C arrive as QUIT
                        print("interrupted", flush=True)
                        return 1
                    action = pilot.step(state)
                    if action is None:
                        break
                    apply(state, action)
                    if shot and not shot_taken and state.talked and state.dialogue is None:
                        renderer.draw_floor(state, hud)
                        renderer.save(shot if number == 1 else shot.with_name(f"{shot.stem}-floor{number}{shot.suffix}"))
                        shot_taken = True
                    continue
                for ev in pygame.event.get():
                    if ev.type == pygame.QUIT or (ev.type == pygame.KEYDOWN and ev.key == pygame.K_ESCAPE):
                        return 0 if completed == args.floors else 1
                    if ev.type == pygame.VIDEORESIZE:
                        screen = pygame.display.set_mode(ev.size, pygame.RESIZABLE)
                        renderer.screen = screen
                    if ev.type == pygame.KEYDOWN:
                        name = pygame.key.name(ev.key)
                        if name == "m":
                            show_map = not show_map
                            if show_map and world is None:
                                world = source.world_map()
                        elif name == "e":
                            near = [e for e in state.entities.values() if e.kind == "npc"
                                    and abs(e.x - state.x) + abs(e.y - state.y) == 1]
                            if near:
                                state.talk(near[0])
                        elif name in "1234" and len(name) == 1:
                            state.choose(int(name) - 1)
                        else:
                            for d, names in KEYS.items():
                                if name in names:
                                    state.move(d)
                if show_map and world is not None:
                    renderer.draw_world(world, "M to return")
                else:
                    renderer.draw_floor(state, hud)
                renderer.present()
                clock.tick(FPS)
            outcome = "completed" if state.done else "failed"
            completed += state.done
            if shot and pilot is not None:
                renderer.draw_floor(state, f"Floor {number} {outcome}")
                if not shot_taken:
                    renderer.save(shot if number == 1 else shot.with_name(f"{shot.stem}-floor{number}{shot.suffix}"))
            print(f"floor {number}: generated in {floor.seconds * 1000:.0f} ms (waited {waited * 1000:.0f} ms), "
                  f"{state.steps} steps, talked to {len(state.talked)} NPC, "
                  f"flags {','.join(sorted(state.flags)) or '-'}; {outcome}", flush=True)
            if not state.done:
                break
        if args.headless:
            world = source.world_map()
            renderer.draw_world(world, f"seed {args.seed}")
            if shot:
                renderer.save(shot.with_name(f"{shot.stem}-world{shot.suffix}"))
        if shot:
            print(f"screenshots: {shot.parent / (shot.stem + '*' + shot.suffix)}")
    finally:
        source.close()
        pygame.quit()
    ok = completed == args.floors
    print(f"{completed}/{args.floors} floors completed")
    return 0 if ok else 1


def hash_seed(seed, number: int) -> int:
    from engine import derive

    return derive(seed, "autopilot", number)


if __name__ == "__main__":
    sys.exit(main())
