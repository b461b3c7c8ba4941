"""Drawing with pygame-ce: the floor, sprites, HUD, dialogue and the world map. No engine calls here."""
from __future__ import annotations

import numpy as np
import pygame

from engine.images import level_rgb

from .content import TILE_SIZE
from .play import FloorState

LOGICAL_SIZE = (640, 480)
HUD_H = 40
FOOTER_H = 20
BG = (12, 10, 16)
TEXT = (230, 230, 230)
ACCENT = (255, 215, 110)
ITEM_COLORS = {"key": (255, 215, 0), "treasure": (255, 150, 0), "exit": (250, 250, 250)}
CONTROLS = "arrows/WASD move  E talk  1-4 choose  M world map  Esc quit"


def rgb_surface(rgb: np.ndarray) -> pygame.Surface:
    return pygame.surfarray.make_surface(np.ascontiguousarray(rgb.transpose(1, 0, 2)))


def rgba_surface(rgba: np.ndarray) -> pygame.Surface:
    h, w = rgba.shape[:2]
    surf = pygame.Surface((w, h), pygame.SRCALPHA)
    pygame.surfarray.blit_array(surf, np.ascontiguousarray(rgba[..., :3].transpose(1, 0, 2)))
    alpha = pygame.surfarray.pixels_alpha(surf)
    alpha[:] = rgba[..., 3].T
    del alpha
    return surf


class Renderer:
    def __init__(self, screen: pygame.Surface):
        self.screen = screen
        self.canvas = pygame.Surface(LOGICAL_SIZE)
        self.font = pygame.font.Font(None, 20)
        self.small = pygame.font.Font(None, 16)
        self._floor = None
        self._tiles: list[pygame.Surface] = []
        self._sprites: dict[str, dict[str, list[pygame.Surface]]] = {}  # entity -> facing -> walk frames
        self.frame = 0
        self._hero_at: tuple[int, int] | None = None
        self.facing = "down"  # the hero's: "down", "right" or "left", from its last move

    def _prepare(self, state: FloorState) -> None:
        floor = state.floor
        self._floor = floor
        self._tiles = [rgb_surface(t) for t in floor.tileset_rgb]
        self._sprites = {}
        self._hero_at = None
        for ent_id, ch in floor.characters.items():
            if ch.sprite is None:
                continue

            def surfaces(names: list[str], flip: bool = False) -> list[pygame.Surface]:
                out = []
                for f in names:
                    surf = pygame.transform.scale(rgba_surface(ch.sprite.rgba(f)), (TILE_SIZE, TILE_SIZE))
                    out.append(pygame.transform.flip(surf, True, False) if flip else surf)
                return out

            down = ch.sprite.animations.get("walk") or list(ch.sprite.frames)
            side = ch.sprite.animations.get("walk_side")  # faces right; the left facing is its mirror
            self._sprites[ent_id] = {"down": surfaces(down), "right": surfaces(side) if side else surfaces(down),
                                     "left": surfaces(side, flip=True) if side else surfaces(down)}

    def draw_floor(self, state: FloorState, hud: str) -> None:
        if self._floor is not state.floor:
            self._prepare(state)
        self.frame += 1
        c = self.canvas
        c.fill(BG)
        view_w, view_h = LOGICAL_SIZE[0], LOGICAL_SIZE[1] - HUD_H - FOOTER_H
        h, w = state.tiles.shape
        cam_x = min(max(0, state.x * TILE_SIZE - view_w // 2), max(0, w * TILE_SIZE - view_w))
        cam_y = min(max(0, state.y * TILE_SIZE - view_h // 2), max(0, h * TILE_SIZE - view_h))
        x0, y0 = cam_x // TILE_SIZE, cam_y // TILE_SIZE
        for ty in range(y0, min(h, y0 + view_h // TILE_SIZE + 2)):
            for tx in range(x0, min(w, x0 + view_w // TILE_SIZE + 2)):
                c.blit(self._tiles[state.tiles[ty, tx]], (tx * TILE_SIZE - cam_x, ty * TILE_SIZE - cam_y + HUD_H))
        step = (self.frame // 8) % 2
        for e in state.entities.values():
            px, py = e.x * TILE_SIZE - cam_x, e.y * TILE_SIZE - cam_y + HUD_H
            frames = self._sprites.get(e.id, {}).get("down")
            if frames:
                c.blit(frames[step % len(frames)], (px, py))
            else:
                color = ITEM_COLORS.get(e.kind, (200, 0, 200))
                r = pygame.Rect(px + 4, py + 4, TILE_SIZE - 8, TILE_SIZE - 8)
                (pygame.draw.ellipse if e.kind == "treasure" else pygame.draw.rect)(c, color, r)
        if self._hero_at is not None and (state.x, state.y) != self._hero_at:
            dx, dy = state.x - self._hero_at[0], state.y - self._hero_at[1]
            self.facing = ("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else "down"
        self._hero_at = (state.x, state.y)
        hero = self._sprites.get("spawn", {}).get(self.facing)
        px, py = state.x * TILE_SIZE - cam_x, state.y * TILE_SIZE - cam_y + HUD_H
        if hero:
            c.blit(hero[step % len(hero)], (px, py))
        else:
            pygame.draw.rect(c, (40, 220, 60), (px + 2, py + 2, TILE_SIZE - 4, TILE_SIZE - 4))
        pygame.draw.rect(c, (0, 0, 0), (0, 0, LOGICAL_SIZE[0], HUD_H))
        for i, text in enumerate(hud.split("\n")[:2]):
            c.blit((self.font if i == 0 else self.small).render(text[:100], True, ACCENT if i == 0 else TEXT),
                   (8, 4 + 20 * i))
        pygame.draw.rect(c, (0, 0, 0), (0, LOGICAL_SIZE[1] - FOOTER_H, LOGICAL_SIZE[0], FOOTER_H))
        c.blit(self.small.render(CONTROLS, True, TEXT), (8, LOGICAL_SIZE[1] - FOOTER_H + 4))
        if state.dialogue is not None:
            self._draw_dialogue(state)

    def _draw_dialogue(self, state: FloorState) -> None:
        story = state.floor.story
        node = story.node(state.dialogue.node)
        names = {ch["id"]: ch["name"] for ch in story.characters}
        box = pygame.Rect(20, LOGICAL_SIZE[1] - FOOTER_H - 170, LOGICAL_SIZE[0] - 40, 160)
        pygame.draw.rect(self.canvas, (20, 18, 34), box)
        pygame.draw.rect(self.canvas, ACCENT, box, 2)
        y = box.y + 8
        self.canvas.blit(self.font.render(names.get(node.speaker, node.speaker), True, ACCENT), (box.x + 10, y))
        y += 22
        for line in node.lines:
            self.canvas.blit(self.small.render(line[:90], True, TEXT), (box.x + 10, y))
            y += 16
        y += 4
        for i, ch in enumerate(node.choices):
            self.canvas.blit(self.small.render(f"{i + 1}. {ch.text}"[:90], True, (150, 200, 255)), (box.x + 16, y))
            y += 16
        if not node.choices:
            self.canvas.blit(self.small.render("(1 to close)", True, (150, 150, 150)), (box.x + 16, y))

    def draw_world(self, world, marker_text: str) -> None:
        c = self.canvas
        c.fill(BG)
        rgb = level_rgb(world, tile_size=1, entities=False)
        surf = rgb_surface(rgb)
        scale = min((LOGICAL_SIZE[0] - 40) / surf.get_width(), (LOGICAL_SIZE[1] - 80) / surf.get_height())
        size = (int(surf.get_width() * scale), int(surf.get_height() * scale))
        ox, oy = (LOGICAL_SIZE[0] - size[0]) // 2, 40
        c.blit(pygame.transform.scale(surf, size), (ox, oy))
        for e in world.entities:
            if e.kind == "town":
                pygame.draw.circle(c, (200, 30, 30), (ox + int((e.x + 0.5) * scale), oy + int((e.y + 0.5) * scale)), 4)
        c.blit(self.font.render("World map", True, ACCENT), (20, 10))
        c.blit(self.small.render(marker_text, True, TEXT), (20, LOGICAL_SIZE[1] - 30))

    def present(self) -> None:
        """Scale the logical canvas to the (resizable) window."""
        if self.screen.get_size() == LOGICAL_SIZE:
            self.screen.blit(self.canvas, (0, 0))
        else:
            pygame.transform.scale(self.canvas, self.screen.get_size(), self.screen)
        pygame.display.flip()

    def save(self, path) -> None:
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.canvas, str(path))
