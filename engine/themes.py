"""Tile themes: pictures for tiles and entities, so level previews look like a game.

The registry is part of the engine (``conjure list themes``, ``conjure serve`` and the exporters' ``-O theme=NAME``
use it without importing a plugin); the built-in ``kenney`` theme's files are shipped as plugin data in
``plugins/data/themes/kenney`` (made by :func:`plugins.themes.cut_kenney`).

A theme is a folder with a ``manifest.json``, its images and its licence::

    {"name": "kenney", "description": "...", "source": "Kenney ...", "license": "CC0-1.0",
     "license_file": "License.txt", "tile_size": 32,
     "tiles": {"wall": "tiles/wall.png", "ground": {"image": "tiles/dirt.png", "top": "tiles/grass.png"},
               "tag:water": "tiles/water.png"},
     "entities": {"enemy": "entities/slime.png"}}

``tiles`` maps a tile *name* (``TileDef.name``) — or ``tag:PROPERTY`` for any tile whose properties set it
(``tag:solid``, ``tag:water``) — to an image, or to ``{"image", "top"}`` where ``top`` is drawn on cells whose
upper neighbour is another tile (grass on the surface, earth below). Images with transparency are drawn over
the tile's flat colour, so a bush over the forest's green works. Tiles a theme does not map keep their flat
colour: any level of any generator renders with any theme. ``entities`` maps entity kinds to sprites drawn
over their cell (kinds not mapped get the flat previews' marker).

Themes come from the shipped folders (``plugins/data/themes/*/``, found as package data with
:func:`engine.resources.data_path`), from :func:`register_theme` (a plugin module calls it at import or from a
hook), and from the ``conjure.themes`` entry-point group (each entry point names a theme folder path, a
:class:`Theme`, or a callable returning either; scanned once per process, a broken one skipped with a warning).
``conjure list themes`` shows each with its source and licence; ``-O theme=NAME`` on PNG previews, Tiled and
LDtk tilesets uses one.

Loading is defensive: the manifest is size-limited JSON, image paths must stay inside the theme folder, images
are at most 512x512 and are decoded with Pillow's own limits.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .content import Level
from .errors import InputError
from .serialize import read_bytes

ENTRY_POINT_GROUP = "conjure.themes"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_MANIFEST_BYTES = 256 * 1024
MAX_IMAGE_SIDE = 512
MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_ENTRIES = 512

_REGISTERED: dict[str, "Theme"] = {}
_LOCK = threading.Lock()


@dataclass
class Theme:
    """A loaded theme: RGBA images (uint8 ``(s, s, 4)`` arrays at ``tile_size``) by tile name/tag and entity kind."""

    name: str
    description: str
    source: str
    license: str
    license_text: str
    tile_size: int
    tiles: dict[str, np.ndarray] = field(default_factory=dict)
    tops: dict[str, np.ndarray] = field(default_factory=dict)
    entities: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = ""
    _scaled: dict = field(default_factory=dict, repr=False)

    def scaled(self, image: np.ndarray, size: int) -> np.ndarray:
        """``image`` at ``size`` pixels (box-filtered down, nearest up), cached."""
        key = (id(image), size)
        hit = self._scaled.get(key)
        if hit is None:
            if image.shape[0] == size:
                hit = image
            else:
                from PIL import Image

                resample = Image.Resampling.BOX if size < image.shape[0] else Image.Resampling.NEAREST
                hit = np.asarray(Image.fromarray(image).resize((size, size), resample), dtype=np.uint8)
            self._scaled[key] = hit
        return hit

    def image_for(self, tile: Any, top: bool = False) -> np.ndarray | None:
        """The image for a :class:`~engine.content.TileDef`: by name, else by its first mapped tag."""
        table = self.tops if top else self.tiles
        img = table.get(tile.name)
        if img is None:
            for prop, value in tile.properties.items():
                if value is True and f"tag:{prop}" in table:
                    return table[f"tag:{prop}"]
        return img

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "source": self.source,
                "license": self.license, "tile_size": self.tile_size, "tiles": sorted(self.tiles),
                "entities": sorted(self.entities), "path": self.path}


# ------------------------------------------------------------------------------------------ loading
def _image(folder: Path, rel: Any, where: str, size: int) -> np.ndarray:
    if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or ".." in Path(rel).parts:
        raise InputError(f"{where}: image path must be a relative path inside the theme folder, got {rel!r}")
    path = (folder / rel).resolve()
    if folder.resolve() not in path.parents:
        raise InputError(f"{where}: {rel!r} is outside the theme folder")
    data = read_bytes(path, MAX_IMAGE_BYTES)
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width > MAX_IMAGE_SIDE or im.height > MAX_IMAGE_SIDE:
                raise InputError(f"{where}: {rel} is {im.width}x{im.height}, over {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}")
            rgba = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise InputError(f"{where}: {rel} is not a readable image ({type(e).__name__})") from None
    if rgba.size != (size, size):  # fit inside the square, keeping the aspect, standing on the bottom edge
        from PIL import Image as _I

        rgba.thumbnail((size, size), _I.Resampling.LANCZOS)
        canvas = _I.new("RGBA", (size, size), (0, 0, 0, 0))
        canvas.paste(rgba, ((size - rgba.width) // 2, size - rgba.height))
        rgba = canvas
    return np.asarray(rgba, dtype=np.uint8).copy()


def load_theme(folder: str | Path) -> Theme:
    """Read a theme folder (its ``manifest.json``); errors are one-line InputErrors naming the file and field."""
    folder = Path(folder)
    mpath = folder / "manifest.json"
    where = str(mpath)
    raw = read_bytes(mpath, MAX_MANIFEST_BYTES)
    try:
        m = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InputError(f"{where}: not valid JSON ({type(e).__name__})") from None
    if not isinstance(m, dict):
        raise InputError(f"{where}: expected a JSON object")

    def need(key: str, types: type | tuple, default: Any = ...) -> Any:
        v = m.get(key, default)
        if v is ... or not isinstance(v, types) or isinstance(v, bool):
            raise InputError(f"{where}: field {key!r} is missing or not a {getattr(types, '__name__', types)}")
        return v

    name = need("name", str)
    if not NAME_RE.match(name):
        raise InputError(f"{where}: theme name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
    size = need("tile_size", int)
    if not 4 <= size <= 128:
        raise InputError(f"{where}: tile_size {size} outside 4..128")
    lic_file = need("license_file", str)
    lic_text = read_bytes(folder / lic_file, 64 * 1024).decode("utf-8", "replace") if lic_file else ""
    if ".." in Path(lic_file).parts or not lic_text.strip():
        raise InputError(f"{where}: license_file must name a non-empty licence file inside the theme folder")
    theme = Theme(name, need("description", str, ""), need("source", str), need("license", str), lic_text, size,
                  path=str(folder))
    tiles, ents = need("tiles", dict, {}), need("entities", dict, {})
    if len(tiles) + len(ents) > MAX_ENTRIES:
        raise InputError(f"{where}: more than {MAX_ENTRIES} images")
    for key, spec in tiles.items():
        w = f"{where}: tiles[{key!r}]"
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - {"image", "top"})
            if unknown or "image" not in spec:
                raise InputError(f"{w}: expected an image path or {{\"image\": ..., \"top\": ...}}")
            theme.tiles[key] = _image(folder, spec["image"], w, size)
            if "top" in spec:
                theme.tops[key] = _image(folder, spec["top"], w, size)
        else:
            theme.tiles[key] = _image(folder, spec, w, size)
    for kind, rel in ents.items():
        theme.entities[kind] = _image(folder, rel, f"{where}: entities[{kind!r}]", size)
    return theme


_BUILTIN_CACHE: dict[str, Theme] = {}


def builtin_dir() -> Path | None:
    """The folder of the themes shipped with Conjure (``plugins/data/themes``, package data: no plugin module is
    imported), or None where the ``plugins`` package is not installed."""
    try:
        from .resources import data_path

        return data_path("plugins", "data", "themes")
    except (ImportError, FileNotFoundError):  # pragma: no cover - an engine without the built-in plugins
        return None


def register_theme(theme: Theme | str | Path) -> Theme:
    """Make a theme available by name (a :class:`Theme` or a theme folder). The first one of a name wins;
    a second one of the same name is an InputError naming both."""
    t = theme if isinstance(theme, Theme) else load_theme(theme)
    with _LOCK:
        old = _REGISTERED.get(t.name)
        if old is not None and old is not t:
            raise InputError(f"theme {t.name!r} is registered twice ({old.path or 'in code'} and "
                             f"{t.path or 'in code'})")
        _REGISTERED[t.name] = t
    return t


#: ``conjure.themes`` entry points, scanned once per process: (themes by name, broken entry point name -> message).
_ENTRY_POINTS: tuple[dict[str, Theme], dict[str, str]] | None = None


def _entry_point_themes() -> tuple[dict[str, Theme], dict[str, str]]:
    """The ``conjure.themes`` entry points, loaded once per process and cached. One that fails to load (its
    import raises, its callable raises, its folder is a bad theme) is skipped with a RuntimeWarning naming it,
    like a broken plugin, so it cannot take the other themes down; its message is kept for :func:`theme`, which
    raises it only when that name is asked for."""
    global _ENTRY_POINTS
    with _LOCK:
        if _ENTRY_POINTS is not None:
            return _ENTRY_POINTS
    import warnings
    from importlib.metadata import entry_points

    found: dict[str, Theme] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, Theme):
                obj = obj()
            t = obj if isinstance(obj, Theme) else load_theme(obj)
        except Exception as e:  # noqa: BLE001 - third-party code: any failure marks that one theme broken
            message = f"theme entry point {ep.name!r} ({ep.value}) is broken: " + (
                str(e) if isinstance(e, InputError) else f"{type(e).__name__}: {e}")
            broken[ep.name] = message
            warnings.warn(message + " (skipped; the other themes still work)", RuntimeWarning, stacklevel=3)
            continue
        found.setdefault(t.name, t)
    with _LOCK:
        if _ENTRY_POINTS is None:
            _ENTRY_POINTS = (found, broken)
        return _ENTRY_POINTS


def themes() -> dict[str, Theme]:
    """Every available theme by name: built-in folders, registered ones, entry points (broken ones left out)."""
    out: dict[str, Theme] = {}
    builtin = builtin_dir()
    if builtin is not None and builtin.is_dir():
        for folder in sorted(p for p in builtin.iterdir() if (p / "manifest.json").is_file()):
            t = _BUILTIN_CACHE.get(folder.name)
            if t is None:
                t = _BUILTIN_CACHE[folder.name] = load_theme(folder)
            out[t.name] = t
    with _LOCK:
        for name, t in _REGISTERED.items():
            out.setdefault(name, t)
    for name, t in _entry_point_themes()[0].items():
        out.setdefault(name, t)
    return out


def theme(name: Any) -> Theme:
    """The theme with this name; the entry point's error if that name is a broken ``conjure.themes`` entry point;
    an InputError naming the known ones otherwise."""
    found = themes()
    if isinstance(name, str) and name in found:
        return found[name]
    broken = _entry_point_themes()[1]
    if isinstance(name, str) and name in broken:
        raise InputError(broken[name])
    raise InputError(f"unknown theme {name!r} (known: {', '.join(sorted(found)) or 'none'})")


# ------------------------------------------------------------------------------------------ rendering
def _over(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """``src`` RGBA composited over ``dst`` RGB (same height and width)."""
    a = src[..., 3:4].astype(np.uint16)
    return ((src[..., :3] * a + dst * (255 - a) + 127) // 255).astype(np.uint8)


def level_rgb(level: Level, theme_: Theme, tile_size: int | None = None, entities: bool = True) -> np.ndarray:
    """The level as an ``(h*ts, w*ts, 3)`` uint8 picture with the theme's tiles and sprites; what the theme does
    not map keeps the flat colours of :func:`engine.images.level_rgb`."""
    from . import images

    ts = tile_size or theme_.tile_size
    img = images.level_rgb(level, ts, entities=False)  # the flat colours under everything
    h, w = level.height, level.width
    for depth, layer in enumerate(level.layers.values()):
        tiles = np.zeros((256, ts, ts, 4), dtype=np.uint8)  # alpha 0: keep what is below
        tops = np.zeros((256, ts, ts, 4), dtype=np.uint8)
        has_top = np.zeros(256, dtype=bool)
        used = False
        for t in level.tileset.tiles:
            if not 0 <= t.id <= 255 or (depth and t.id == 0):
                continue
            pic = theme_.image_for(t)
            if pic is not None:
                tiles[t.id] = theme_.scaled(pic, ts)
                used = True
            top = theme_.image_for(t, top=True)
            if top is not None:
                tops[t.id] = theme_.scaled(top, ts)
                has_top[t.id] = used = True
        if not used:
            continue
        cells = tiles[layer]  # (h, w, ts, ts, 4)
        if has_top.any():
            above = np.vstack([np.full((1, w), -1, dtype=np.int16), layer[:-1].astype(np.int16)])
            surface = has_top[layer] & (above != layer)
            cells = np.where(surface[:, :, None, None, None], tops[layer], cells)
        rgba = cells.transpose(0, 2, 1, 3, 4).reshape(h * ts, w * ts, 4)
        img = _over(img, rgba)
    if entities:
        for e in level.entities:
            if not (0 <= e.x < w and 0 <= e.y < h):
                continue
            y0, x0 = e.y * ts, e.x * ts
            sprite = theme_.entities.get(e.kind)
            if sprite is None:
                if ts >= 3:
                    m = max(1, ts // 4)
                    marker = images.ENTITY_COLORS.get(e.kind, images.ENTITY_DEFAULT)
                    img[y0 + m:y0 + ts - m, x0 + m:x0 + ts - m] = marker
                continue
            img[y0:y0 + ts, x0:x0 + ts] = _over(img[y0:y0 + ts, x0:x0 + ts], theme_.scaled(sprite, ts))
    return np.ascontiguousarray(img)


def draw_tileset(rgba: np.ndarray, cols: int, tileset: Any, grid: int, name: str) -> np.ndarray:
    """Draw theme ``name``'s art into a tileset sheet in place (:func:`engine.images.tileset_sheet`'s
    ``rgba``, ``cols`` slots of ``grid`` px a row, slot = tile id): each tile the theme maps gets its image over
    its flat colour, opaque; tiles it does not map keep their patterned slot. Used by the LDtk and Tiled
    exporters' ``-O theme=NAME``."""
    th = theme(name)
    for t in tileset.tiles:
        art = th.image_for(t)
        if art is None:
            continue
        art = th.scaled(art, grid).astype(np.uint16)
        y, x = divmod(t.id, cols)
        a = art[..., 3:4]
        flat = np.array(t.color, dtype=np.uint16)
        slot = rgba[y * grid:(y + 1) * grid, x * grid:(x + 1) * grid]
        slot[..., :3] = ((art[..., :3] * a + flat * (255 - a) + 127) // 255).astype(np.uint8)
        slot[..., 3] = 255
    return rgba


def png_bytes(level: Level, name: str, tile_size: int | None = None) -> bytes:
    """A themed PNG preview of a level (deterministic bytes)."""
    from . import images

    if not isinstance(level, Level):
        raise InputError(f"png option theme: themes draw levels, not {type(level).__name__} content")
    return images.png_bytes(level_rgb(level, theme(name), tile_size))


def describe_all() -> list[dict]:
    """Rows for ``conjure list themes``."""
    return [t.describe() for _, t in sorted(themes().items())]


