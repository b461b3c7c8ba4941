"""PNG sprite sheets + TexturePacker JSON-hash atlases for characters and casts."""
import json

import numpy as np
import pytest
from PIL import Image

from engine import Cast, InputError

FRAME_KEYS = {"frame", "rotated", "trimmed", "spriteSourceSize", "sourceSize", "anchor"}


@pytest.fixture(scope="module")
def classic_cast(eng):
    level = eng.generate("level", "dungeon", 4)
    return eng.generate("character", "classic-character", 4, context={"level": level})


def check_atlas(json_path, content, scale=1):
    """Parse the atlas, check every frame lies in the sheet and slices to the sprite it names."""
    atlas = json.loads(json_path.read_text())
    assert set(atlas) >= {"frames", "animations", "meta"}
    meta = atlas["meta"]
    assert set(meta) >= {"app", "version", "image", "format", "size", "scale"}
    sheet_path = json_path.parent / meta["image"]
    sheet = Image.open(sheet_path)
    assert sheet.mode == "RGBA" and sheet.size == (meta["size"]["w"], meta["size"]["h"])
    px = np.asarray(sheet)
    chars = content.characters if isinstance(content, Cast) else [content]
    expected = {}
    for c in chars:
        for f in c.sprite.frames:
            expected[f"{c.id}/{f}" if isinstance(content, Cast) else f] = (c, f)
    assert set(atlas["frames"]) == set(expected)
    rects = []
    for name, fr in atlas["frames"].items():
        assert set(fr) == FRAME_KEYS
        r = fr["frame"]
        assert 0 <= r["x"] and 0 <= r["y"] and r["x"] + r["w"] <= sheet.width and r["y"] + r["h"] <= sheet.height
        assert fr["rotated"] is False and fr["trimmed"] is False
        assert fr["sourceSize"] == {"w": r["w"], "h": r["h"]}
        assert fr["spriteSourceSize"] == {"x": 0, "y": 0, "w": r["w"], "h": r["h"]}
        assert fr["anchor"] == {"x": 0.5, "y": 1.0}
        c, f = expected[name]
        want = c.sprite.rgba(f)
        if scale > 1:
            want = np.repeat(np.repeat(want, scale, 0), scale, 1)
        crop = np.asarray(sheet.crop((r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"])))
        assert (crop == want).all(), name
        rects.append((r["x"], r["y"], r["w"], r["h"]))
    for i, (x, y, w, h) in enumerate(rects):  # frames never overlap
        for x2, y2, w2, h2 in rects[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y
    for anim, frames in atlas["animations"].items():
        assert frames and all(f in atlas["frames"] for f in frames), anim
    return atlas


def test_cast_atlas_from_the_cli_extension(eng, classic_cast, tmp_path):
    written = eng.export(classic_cast, tmp_path / "cast.atlas.json")
    assert sorted(p.name for p in written) == ["cast.atlas.json", "cast.sheet.png"]
    atlas = check_atlas(tmp_path / "cast.atlas.json", classic_cast)
    assert atlas["meta"]["image"] == "cast.sheet.png" and atlas["meta"]["format"] == "RGBA8888"
    assert atlas["animations"]["char-hero/walk"] == ["char-hero/walk1", "char-hero/walk2"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # atomic writes leave no temp files


def test_single_character_sheet_png_extension_and_scale(eng, tmp_path):
    ch = eng.generate("character", "classic-character", 8)
    eng.export(ch, tmp_path / "hero.sheet.png", scale=3, padding=2)
    atlas = check_atlas(tmp_path / "hero.atlas.json", ch, scale=3)
    assert set(atlas["frames"]) == {"idle", "walk1", "walk2"}
    assert atlas["frames"]["idle"]["frame"]["w"] == 48
    assert atlas["animations"] == {"idle": ["idle"], "walk": ["walk1", "walk2"]}


def test_learned_cast_atlas(eng, tmp_path):
    pytest.importorskip("torch")
    level = eng.generate("level", "dungeon", 6)
    cast = eng.generate("character", "character-ml", 6, context={"level": level})
    eng.export(cast, tmp_path / "ml.atlas.json")
    atlas = check_atlas(tmp_path / "ml.atlas.json", cast)
    # both facings are animations: down (idle, walk) and side (idle_side, walk_side; mirror for the left)
    assert atlas["animations"]["char-hero/walk_side"] == ["char-hero/side_walk1", "char-hero/side_walk2"]
    assert atlas["animations"]["char-hero/idle_side"] == ["char-hero/side_idle"]
    assert atlas["animations"]["char-hero/walk"] == ["char-hero/walk1", "char-hero/walk2"]


def test_plain_png_is_still_the_preview(eng, classic_cast, tmp_path):
    assert eng.exporter_for(tmp_path / "x.png", kind="character").id == "png"
    assert eng.exporter_for(tmp_path / "x.sheet.png", kind="character").id == "atlas"
    assert eng.exporter_for(tmp_path / "x.atlas.json", kind="character").id == "atlas"
    assert eng.exporter_for(tmp_path / "x.json", kind="character").id == "json"


def test_write_beside_a_preview(classic_cast, tmp_path):
    from plugins.atlas import write_beside

    paths = write_beside(classic_cast, tmp_path / "hero.png")
    assert sorted(p.name for p in paths) == ["hero.atlas.json", "hero.sheet.png"]
    check_atlas(tmp_path / "hero.atlas.json", classic_cast)


def test_same_content_same_bytes_and_bad_options(eng, classic_cast, tmp_path):
    a = eng.export(classic_cast, tmp_path / "a" / "c.atlas.json")
    b = eng.export(classic_cast, tmp_path / "b" / "c.atlas.json")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    with pytest.raises(InputError, match="scale"):
        eng.export(classic_cast, tmp_path / "c.atlas.json", scale=0)
    with pytest.raises(InputError, match="padding"):
        eng.export(classic_cast, tmp_path / "c.atlas.json", padding="x")


def test_levels_are_refused(eng, tmp_path):
    level = eng.generate("level", "dungeon", 1)
    with pytest.raises(InputError, match="does not take level"):
        eng.export(level, tmp_path / "l.atlas.json", format="atlas")
