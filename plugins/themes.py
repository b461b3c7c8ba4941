"""The built-in ``kenney`` tile theme: how its files in ``plugins/data/themes/kenney`` were cut from Kenney's CC0
art (:func:`cut_kenney`).

The theme registry itself (loading, :func:`~engine.themes.register_theme`, the ``conjure.themes`` entry points,
themed rendering) is :mod:`engine.themes`; every name it has is re-exported here, so ``from plugins.themes
import theme`` keeps working.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.themes import (ENTRY_POINT_GROUP, MAX_ENTRIES, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE,  # noqa: F401
                           MAX_MANIFEST_BYTES, NAME_RE, Theme, describe_all, draw_tileset, level_rgb,
                           load_theme, png_bytes, register_theme, theme, themes)

__all__ = ["BUILTIN_DIR", "KENNEY_ENTITIES", "KENNEY_TILES", "cut_kenney",  # this module's own
           "ENTRY_POINT_GROUP", "MAX_ENTRIES", "MAX_IMAGE_BYTES", "MAX_IMAGE_SIDE", "MAX_MANIFEST_BYTES", "NAME_RE",
           "Theme", "describe_all", "draw_tileset", "level_rgb", "load_theme", "png_bytes", "register_theme", "theme",
           "themes"]  # engine.themes' names, re-exported

BUILTIN_DIR = Path(__file__).with_name("data") / "themes"


# ------------------------------------------------------------------------------------------ the built-in theme
#: (theme key, arcade image under resources/assets/images) for the built-in ``kenney`` theme.
KENNEY_TILES: dict[str, Any] = {
    "wall": "tiles/brickGrey.png", "floor": "tiles/sandCenter.png", "door": "tiles/doorClosed_mid.png",
    "locked_door": "tiles/lockRed.png", "rock": "tiles/stoneCenter.png",
    "ground": {"image": "tiles/grassCenter.png", "top": "tiles/grassMid.png"}, "brick": "tiles/brickBrown.png",
    "question": "tiles/boxCrate_double.png", "water": "tiles/water.png", "deep_water": "tiles/water.png",
    "sand": "tiles/sandCenter.png", "snow": "tiles/snowCenter.png", "mountain": "tiles/stoneCenter.png",
    "forest": "tiles/bush.png", "hills": "tiles/rock.png",
}
KENNEY_ENTITIES = {
    "spawn": "items/flagGreen1.png", "exit": "tiles/signExit.png", "goal": "items/flagYellow1.png",
    "key": "items/keyYellow.png", "enemy": "enemies/slimeBlue.png", "treasure": "items/gemBlue.png",
    "coin": "items/coinGold.png", "npc": "animated_characters/male_person/malePerson_idle.png",
    "town": "tiles/signRight.png",
}


def cut_kenney(images_dir: str | Path, out: str | Path, size: int = 32) -> Path:
    """Write the built-in ``kenney`` theme from Kenney's CC0 art as the ``arcade`` wheel ships it
    (``arcade/resources/assets/images``): each image fitted into ``size`` px (Lanczos), PNGs without
    metadata, the licence copied, a manifest written. How ``plugins/data/themes/kenney`` was made::

        python -c "import importlib.util as u, os, plugins.themes as t; t.cut_kenney(os.path.join(u.find_spec(
            'arcade').submodule_search_locations[0], 'resources/assets/images'), 'plugins/data/themes/kenney')"

    It reads the image files only; arcade itself (and pyglet's window code) is never imported.
    """
    from PIL import Image

    from engine import images
    from engine.serialize import atomic_write

    src, out = Path(images_dir), Path(out)
    lic = (src / "License.txt").read_text(encoding="utf-8", errors="replace")
    if "CC0" not in lic:
        raise InputError(f"{src / 'License.txt'}: not the CC0 licence this theme needs")

    def cut(rel: str, dest: str) -> str:
        with Image.open(src / rel) as im:
            rgba = im.convert("RGBA")
        rgba.thumbnail((size, size), Image.Resampling.LANCZOS)
        canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        canvas.paste(rgba, ((size - rgba.width) // 2, size - rgba.height))
        atomic_write(out / dest, images.png_bytes(np.asarray(canvas)))
        return dest

    def tile_spec(key: str, spec: Any) -> Any:
        if isinstance(spec, dict):
            return {k: cut(v, f"tiles/{Path(v).stem}.png") for k, v in spec.items()}
        return cut(spec, f"tiles/{Path(spec).stem}.png")

    manifest = {
        "name": "kenney", "description": "Kenney's platformer art (walls, floors, doors, ground, water, items, "
        "a slime, flags) cut to 32 px tiles", "source": "Kenney (www.kenney.nl), as shipped in the arcade "
        "package's resources/assets/images", "license": "CC0-1.0", "license_file": "License.txt",
        "tile_size": size, "tiles": {k: tile_spec(k, v) for k, v in KENNEY_TILES.items()},
        "entities": {k: cut(v, f"entities/{Path(v).stem}.png") for k, v in KENNEY_ENTITIES.items()},
    }
    atomic_write(out / "License.txt", lic.encode("utf-8"))
    atomic_write(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return out
