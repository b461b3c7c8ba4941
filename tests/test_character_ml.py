"""character-ml: learned names, stats and sprites; weights, training, determinism, context casts."""
import json
import sys

import numpy as np
import pytest

import engine
from engine import Cast, Character, InputError
from engine.serialize import dumps
from engine.textfilter import ContentFilter, default_filter
from engine.weights import file_digest

from .conftest import ROOT, run_cli, run_py

torch = pytest.importorskip("torch")

GEN = "character-ml"
MODELS = ROOT / "plugins" / "data" / "models" / "character-ml"
CORPUS = ROOT / "plugins" / "data" / "characters"
STYLES = ("elven", "dwarven", "orcish", "nordic", "desert")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def gen_of(eng):
    return eng.generator(GEN)


def test_engine_start_does_not_import_torch():
    r = run_py("import sys, engine\neng = engine.Engine(entry_points=False)\n"
               "assert 'character-ml' in [g.id for g in eng.generators('character')]\n"
               "assert 'atlas' in [e.id for e in eng.exporters()]\n"
               "print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_shipped_weights_and_model_card():
    card = json.loads((MODELS / "model.json").read_text())
    assert card["generator"] == GEN
    assert card["command"].startswith("conjure train character-ml --data plugins/data/characters/names")
    files = {w["file"]: w for w in card["weights"]}
    assert set(files) == {"names.safetensors", "stats.safetensors", "sprites.safetensors"}
    for name, w in files.items():
        p = MODELS / name
        assert p.stat().st_size <= 5 * 1024 * 1024
        assert file_digest(p) == w["sha256"], f"{name} differs from its model card"
    from plugins.learned_characters.models import read_part

    for part in ("names", "stats", "sprites"):
        model, extra = read_part(MODELS / f"{part}.safetensors", part)
        assert isinstance(model, torch.nn.Module) and not model.training
    assert set(read_part(MODELS / "names.safetensors", "names")[1]["styles"]) == set(STYLES)


def test_weights_of_the_wrong_part_are_refused():
    from plugins.learned_characters.models import read_part

    with pytest.raises(InputError, match="not a character-ml stats model"):
        read_part(MODELS / "names.safetensors", "stats")


FRAMES = ("idle", "walk1", "walk2", "side_idle", "side_walk1", "side_walk2")


def _outlined(g):
    solid = g >= 2
    pad = np.pad(solid, 1)
    touch = pad[:-2, 1:-1] | pad[2:, 1:-1] | pad[1:-1, :-2] | pad[1:-1, 2:]
    return ((g == 1) == (~solid & touch)).all()


def test_one_character(eng):
    from engine.eval_characters import pixel_art_problems

    ch = eng.generate("character", GEN, 5)
    assert isinstance(ch, Character) and not eng.problems(ch)
    assert ch.style in STYLES and default_filter().name_ok(ch.name)
    spr = ch.sprite
    assert spr.size == (16, 16) and tuple(spr.frames) == FRAMES
    assert spr.animations == {"idle": ["idle"], "walk": ["walk1", "walk2"], "idle_side": ["side_idle"],
                              "walk_side": ["side_walk1", "side_walk2"]}
    assert pixel_art_problems(spr) == []
    assert len(spr.palette) <= 16 and {c[3] for c in spr.palette} <= {0, 255}
    for idle_name, walks in (("idle", ("walk1", "walk2")), ("side_idle", ("side_walk1", "side_walk2"))):
        idle = spr.frames[idle_name]
        rows = np.nonzero((idle >= 2).any(1))[0]
        assert rows.size and _outlined(idle)
        for w in walks:  # a walk changes only the legs (the lower half), keeps the colors in place
            f = spr.frames[w]
            assert _outlined(f)
            assert not (f != idle)[: rows[0] + (rows[-1] - rows[0]) // 2].any()
    assert (spr.frames["side_idle"] != spr.frames["idle"]).any()  # two facings, not one drawn twice


def test_pixel_art_rules_on_200_characters(eng):
    from engine.eval_characters import pixel_art_problems

    chars = eng.generate_batch("character", GEN, range(200))
    assert all(pixel_art_problems(c.sprite) == [] for c in chars)
    masks = {(c.sprite.frames["idle"] > 0).tobytes() for c in chars}
    assert len(masks) > 0.8 * len(chars)  # new silhouettes, not a few corpus shapes


def test_pixel_art_problems_name_each_rule():
    from engine.content import Sprite
    from engine.eval_characters import pixel_art_problems

    g = np.zeros((16, 16), np.uint8)
    g[4:12, 5:11] = 1
    g[5:11, 6:10] = 2
    pal = [(0, 0, 0, 0), (0, 0, 0, 255), (200, 0, 0, 255)]
    assert pixel_art_problems(Sprite(pal, {"idle": g})) == []
    assert "alpha" in pixel_art_problems(Sprite(pal[:2] + [(200, 0, 0, 128)], {"idle": g}))[0]
    no_line = g.copy()
    no_line[no_line == 1] = 0
    no_line[5, 6] = 1
    assert "outline" in pixel_art_problems(Sprite(pal, {"idle": no_line}))[0]
    short = g.copy()
    short[4:7] = 0
    short[7, 5:11] = 1
    probs = pixel_art_problems(Sprite(pal, {"idle": g, "w": short}, {"idle": ["idle"], "walk": ["w"]}))
    assert any("height" in p for p in probs) and any("colors in place" in p for p in probs)
    many = np.arange(256, dtype=np.uint8).reshape(16, 16) % 20
    assert any("20 colors" in p for p in pixel_art_problems(Sprite([(9, 9, 9, 255)] * 20, {"idle": many})))


def test_stats_obey_the_rules_on_500_seeds(eng):
    from plugins.rules import ATTR_MAX, ATTR_MIN, ATTRS

    chars = eng.generate_batch("character", GEN, range(500))
    for c in chars:
        vals = [c.attributes[a] for a in ATTRS]
        assert set(c.attributes) == set(ATTRS)
        assert all(ATTR_MIN <= v <= ATTR_MAX for v in vals) and sum(vals) == 60, (c.id, c.attributes)
        assert c.metadata["tries"] == 1  # valid on the first try: rules are enforced, not hoped for
    for budget in (18, 19, 45, 100, 107, 108):
        for c in eng.generate_batch("character", GEN, range(20), {"budget": budget, "role": "beast"}):
            assert sum(c.attributes.values()) == budget
            assert all(ATTR_MIN <= v <= ATTR_MAX for v in c.attributes.values())


def test_allocation_is_exact_for_any_proportions():
    from plugins.learned_characters.data import allocate, allocate_many

    rng = np.random.default_rng(0)
    props = np.stack([rng.dirichlet(np.full(6, rng.uniform(0.05, 5))) for _ in range(2000)])
    budgets = rng.integers(18, 109, 2000)
    got = allocate_many(props, budgets)
    assert (got.sum(1) == budgets).all() and got.min() >= 3 and got.max() <= 18
    for i in range(0, 2000, 40):  # a row alone gets what it gets in the batch
        assert (allocate(props[i], int(budgets[i])) == got[i]).all()
    with pytest.raises(InputError):
        allocate(np.ones(6), 200)


def test_stats_depend_on_role(eng):
    means = {}
    for role in ("warrior", "mage", "rogue", "merchant"):
        cs = eng.generate_batch("character", GEN, range(60), {"role": role})
        means[role] = {a: np.mean([c.attributes[a] for c in cs]) for a in cs[0].attributes}
    assert means["warrior"]["strength"] > means["mage"]["strength"] + 3
    assert means["mage"]["intelligence"] > means["warrior"]["intelligence"] + 3
    assert means["rogue"]["dexterity"] > means["merchant"]["dexterity"] + 2
    assert means["merchant"]["charisma"] > means["warrior"]["charisma"] + 2


def test_names_are_filtered_and_resampled(eng, monkeypatch):
    import plugins.character_ml as cm

    before = eng.generate("character", GEN, 11, {"style": "orcish"})
    blocked = before.name.lower().replace("'", "")[:3]
    custom = ContentFilter([blocked])
    monkeypatch.setattr(cm, "default_filter", lambda: custom)
    after = eng.generate("character", GEN, 11, {"style": "orcish"})
    assert blocked not in after.name.lower().replace("'", "")
    assert after.name != before.name
    assert after.metadata["name_resamples"] >= 1
    # the injected filter is also what validation checks
    assert gen_of(eng).validate(before, eng.request("character", GEN, 11, {"style": "orcish"}))


def test_names_are_not_copies_of_the_training_list(eng):
    _, extra = gen_of(eng).model("names")
    seen = extra["training_names"]
    cs = eng.generate_batch("character", GEN, range(300), {"temperature": 0.5})
    assert not [c.name for c in cs if c.name.lower() in seen]
    copies = eng.generate_batch("character", GEN, range(300), {"temperature": 0.5, "allow_copies": True})
    assert any(c.name.lower() in seen for c in copies)  # the model does know its corpus


def test_style_conditioning_changes_names(eng):
    from engine.eval_characters import BigramNB
    from plugins.learned_characters.data import shipped_names

    nb = BigramNB(shipped_names())
    right = total = 0
    for style in STYLES:
        cs = eng.generate_batch("character", GEN, range(40), {"style": style})
        right += sum(nb.predict(c.name) == style for c in cs)
        total += len(cs)
    assert right / total > 0.7  # chance is 0.2
    # orcish names use apostrophes and hard clusters; elven ones never do
    orc = eng.generate_batch("character", GEN, range(60), {"style": "orcish"})
    elf = eng.generate_batch("character", GEN, range(60), {"style": "elven"})
    assert sum("'" in c.name for c in orc) > 5 and not any("'" in c.name for c in elf)


def test_temperature_changes_names(eng):
    cold = [c.name for c in eng.generate_batch("character", GEN, range(30), {"temperature": 0.3})]
    hot = [c.name for c in eng.generate_batch("character", GEN, range(30), {"temperature": 1.5})]
    assert cold != hot


def test_batch_equals_single(eng):
    seeds = list(range(24))
    batch = eng.generate_batch("character", GEN, seeds, {"style": "nordic"})
    for s, b in zip(seeds, batch):
        assert dumps(eng.generate("character", GEN, s, {"style": "nordic"})) == dumps(b)


def test_cast_for_a_level(eng):
    level = eng.generate("level", "dungeon", 3)
    cast = eng.generate("character", GEN, 3, context={"level": level})
    assert isinstance(cast, Cast) and not eng.problems(cast)
    ents = {e.id: e for e in level.entities}
    assert cast.characters[0].id == "char-hero" and cast.characters[0].metadata["entity"] == "spawn"
    linked = [c for c in cast.characters[1:]]
    assert linked
    for c in linked:
        e = ents[c.metadata["entity"]]
        assert c.id == f"char-{e.id}"
        assert c.metadata["hostile"] == (e.kind == "enemy")
        if e.kind == "enemy":
            from plugins.rules import ENEMY_ROLE

            assert c.role == ENEMY_ROLE.get(str(e.properties.get("type", "")), "beast")
    assert len({c.name for c in cast.characters}) == len(cast.characters)  # unique names in a cast
    n_enemy_npc = sum(e.kind in ("enemy", "npc", "town") for e in level.entities)
    assert len(cast.characters) == min(1 + n_enemy_npc, 24)
    # batch of casts == casts one by one
    casts = eng.generate_batch("character", GEN, [3, 4], context={"level": level})
    assert dumps(casts[0]) == dumps(cast)


CODE = """
import sys, torch
from engine import Engine
from engine.serialize import dumps
eng = Engine(entry_points=False)
lv = eng.generate("level", "dungeon", 9)
a = dumps(eng.generate("character", "character-ml", 5))
b = dumps(eng.generate("character", "character-ml", 9, context={"level": lv}))
sys.stdout.write((a + b).hex())
"""


def test_deterministic_across_processes(eng):
    r1, r2 = run_py(CODE), run_py(CODE, env={"OMP_NUM_THREADS": "2"})
    assert r1.returncode == 0, r1.stderr
    assert r1.stdout == r2.stdout and len(r1.stdout) > 1000
    lv = eng.generate("level", "dungeon", 9)
    here = dumps(eng.generate("character", GEN, 5)) + dumps(eng.generate("character", GEN, 9, context={"level": lv}))
    assert here.hex() == r1.stdout


def test_cli_must_show(tmp_path):
    r = run_cli("generate", "character", "-g", GEN, "-s", "5", "-o", tmp_path / "hero.json")
    assert r.returncode == 0, r.stderr
    r = run_cli("generate", "character", "-g", GEN, "-s", "5", "-o", tmp_path / "hero.atlas.json")
    assert r.returncode == 0, r.stderr
    eng = engine.Engine(entry_points=False)
    hero = eng.load(tmp_path / "hero.json")
    assert dumps(hero) == dumps(eng.generate("character", GEN, 5))
    atlas = json.loads((tmp_path / "hero.atlas.json").read_text())
    assert atlas["meta"]["image"] == "hero.sheet.png" and (tmp_path / "hero.sheet.png").is_file()
    assert set(atlas["frames"]) == set(FRAMES)


def test_bad_weights_folder_is_an_input_error(eng, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        eng.generate("character", GEN, 1, {"weights": str(tmp_path / "nope")})


def _tiny_data(tmp_path, styles=("elven", "orcish")):
    d = tmp_path / "data"
    (d / "names").mkdir(parents=True)
    for style in styles:
        (d / "names" / f"{style}.txt").write_text((CORPUS / "names" / f"{style}.txt").read_text())
    lines = (CORPUS / "stats.csv").read_text().splitlines()
    (d / "stats.csv").write_text("\n".join(lines[:1] + lines[1::4]) + "\n")
    (d / "sprites").mkdir()
    for role in ("warrior", "mage", "beast"):
        (d / "sprites" / f"{role}.txt").write_text((CORPUS / "sprites" / f"{role}.txt").read_text())
    return d


def test_training_a_tiny_config_writes_loadable_weights(eng, tmp_path):
    from engine.training import train
    from plugins.learned_characters.models import read_part

    d = _tiny_data(tmp_path)
    out = tmp_path / "out"
    card = train(eng, GEN, [d / "names", d / "stats.csv", d / "sprites"], epochs=3, seed=1, out=out,
                 show_progress=False, tiny=True)
    m = card["metrics"]
    assert m["names_loss_last"] < m["names_loss_first"]
    assert m["stats_nll_last"] < m["stats_nll_first"]
    assert m["sprites_loss_last"] < m["sprites_loss_first"]
    assert {w["file"] for w in card["weights"]} == {"names.safetensors", "stats.safetensors", "sprites.safetensors"}
    assert json.loads((out / "model.json").read_text())["config"]["data"] == {"names": 2, "stats": 1, "sprites": 3}
    _, extra = read_part(out / "names.safetensors", "names")
    assert extra["styles"] == ["elven", "orcish"]
    _, sp = read_part(out / "sprites.safetensors", "sprites")
    assert sp["roles"] == ["beast", "mage", "warrior"] and len(sp["heldout_grids"]) == 24  # every 5th held out
    ch = eng.generate("character", GEN, 2, {"weights": str(out), "style": "orcish", "role": "mage",
                                            "temperature": 1.0})
    assert not eng.problems(ch)
    # styles and roles come from the trained data; asking for others names the ones the weights have
    with pytest.raises(InputError, match=r"'nordic' is not in the names weights.*they have: elven, orcish"):
        eng.generate("character", GEN, 2, {"weights": str(out), "style": "nordic"})
    with pytest.raises(InputError, match=r"'rogue' is not in the stats and sprites weights.*beast, mage, warrior"):
        eng.generate("character", GEN, 2, {"weights": str(out), "role": "rogue"})
    # a folder with only some parts falls back to the shipped weights for the others
    names_only = tmp_path / "names_only"
    train(eng, GEN, [d / "names"], epochs=1, seed=1, out=names_only, show_progress=False, tiny=True)
    assert sorted(p.name for p in names_only.glob("*.safetensors")) == ["names.safetensors"]
    assert not eng.problems(eng.generate("character", GEN, 2, {"weights": str(names_only), "style": "elven"}))


def test_wrong_style_or_role_names_the_ones_there_are(eng):
    with pytest.raises(InputError, match=r"'klingon' is not in the names weights \(shipped\); they have: desert, "
                                         r"dwarven, elven, nordic, orcish"):
        eng.generate("character", GEN, 1, {"style": "klingon"})
    with pytest.raises(InputError, match=r"'pirate' is not in the stats and sprites weights.*beast, cleric"):
        eng.generate("character", GEN, 1, {"role": "pirate"})


def test_a_new_style_trains_and_is_then_the_only_one(eng, tmp_path):
    from engine.training import train

    (tmp_path / "klingon.txt").write_text("; style: klingon\n" + "\n".join(
        ["Worf", "Kahless", "Gowron", "Martok", "Kurn", "Koloth", "Kang", "Korax", "Kor", "Duras"] * 3) + "\n")
    out = tmp_path / "o"
    train(eng, GEN, [tmp_path / "klingon.txt"], epochs=1, out=out, show_progress=False, tiny=True)
    ch = eng.generate("character", GEN, 1, {"weights": str(out), "style": "klingon", "allow_copies": True})
    assert ch.style == "klingon"
    with pytest.raises(InputError, match="they have: klingon$"):
        eng.generate("character", GEN, 1, {"weights": str(out), "style": "elven"})


def test_training_refuses_data_it_cannot_use(eng, tmp_path):
    from engine.training import train

    (tmp_path / "bad.csv").write_text("role,strength\nwarrior,3\n")
    with pytest.raises(InputError, match="missing columns"):
        train(eng, GEN, [tmp_path / "bad.csv"], epochs=1, out=tmp_path / "o", show_progress=False)
    good = (CORPUS / "sprites" / "mage.txt").read_text().splitlines()
    # a sprite of the wrong size is a sprite error naming the file and line, not a bad name
    narrow = good[:5] + [good[5][:15] + good[5][16:]] + good[6:]
    (tmp_path / "narrow.txt").write_text("\n".join(narrow) + "\n")
    with pytest.raises(InputError, match=r"narrow.txt:6: frame 1 is 15 pixels wide, sprites are 16x16"):
        train(eng, GEN, [tmp_path / "narrow.txt"], epochs=1, out=tmp_path / "o", show_progress=False)
    short = ["; role: mage"] + good[4:15] + good[20:37]  # a sprite of 11 rows, then a whole one
    (tmp_path / "short.txt").write_text("\n".join(short) + "\n")
    with pytest.raises(InputError, match=r"short.txt:2: sprite has 11 rows, sprites are 16x16"):
        train(eng, GEN, [tmp_path / "short.txt"], epochs=1, out=tmp_path / "o", show_progress=False)
    (tmp_path / "bad_role.csv").write_text("role,strength,dexterity,constitution,intelligence,wisdom,charisma\n"
                                           "Bad Role!,3,3,3,3,3,3\n")
    with pytest.raises(InputError, match=r"bad_role.csv:2: role 'Bad Role!' is not a name"):
        train(eng, GEN, [tmp_path / "bad_role.csv"], epochs=1, out=tmp_path / "o", show_progress=False)


def test_corpora_are_well_formed():
    from engine.content import Sprite
    from engine.eval_characters import pixel_art_problems
    from plugins.learned_characters.data import ANIMATIONS, FRAMES as DATA_FRAMES, read_corpora, read_names
    from plugins.rules import ROLES

    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    c = read_corpora(files)
    assert set(c.names) == set(STYLES) and all(len(v) >= 200 for v in c.names.values())
    assert len(c.sprites) >= 300 and c.stats is not None and len(c.stats[0]) >= 500
    assert {a.role for a in c.sprites} == set(ROLES)
    # every corpus sprite (all six frames, as written) keeps the pixel-art rules
    lut = {ch: k for k, ch in enumerate(".#spqhem")}
    pal = [(0, 0, 0, 0), (20, 16, 24, 255)] + [(40 * k, 100, 200 - 20 * k, 255) for k in range(6)]
    n = 0
    for f in sorted((CORPUS / "sprites").glob("*.txt")):
        rows = [ln for ln in f.read_text().splitlines() if ln and not ln.startswith(";")]
        for b in range(0, len(rows), 16):
            frames = {name: np.array([[lut[ch] for ch in r.split(" ")[k]] for r in rows[b:b + 16]], np.uint8)
                      for k, name in enumerate(DATA_FRAMES)}
            assert pixel_art_problems(Sprite(pal, frames, ANIMATIONS)) == [], (f.name, b)
            n += 1
    assert n == len(c.sprites)
    filt = default_filter()
    for style in STYLES:
        _, names = read_names(CORPUS / "names" / f"{style}.txt")
        assert len(set(names)) == len(names) and all(filt.name_ok(n) for n in names)


def test_licence_manifest_covers_every_corpus_file():
    import hashlib

    manifest = json.loads((CORPUS / "manifest.json").read_text())
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert set(manifest["files"]) == files  # every file listed, nothing listed that is not there
    for rel, entry in manifest["files"].items():
        source = manifest["sources"][entry["source"]]
        assert entry["licence"] == source["licence"] and source["licence"] in ("MIT", "CC0-1.0"), rel
        assert hashlib.sha256((CORPUS / rel).read_bytes()).hexdigest() == entry["sha256"], f"{rel} changed"


def test_sprite_files_hold_two_or_six_frames(tmp_path):
    from plugins.learned_characters.data import read_corpora, read_sprites

    rows = [ln for ln in (CORPUS / "sprites" / "rogue.txt").read_text().splitlines() if ln and ln[0] != ";"][:16]
    two = ["; role: pirate", "; sprite: one"] + [" ".join(r.split(" ")[k] for k in (0, 3)) for r in rows]
    (tmp_path / "pirates.txt").write_text("\n".join(two) + "\n")
    (art,) = read_sprites(tmp_path / "pirates.txt")
    six = read_sprites(CORPUS / "sprites" / "rogue.txt")[0]
    assert art.role == "pirate" and (art.down == six.down).all() and (art.side == six.side).all()
    assert art.source == "pirates.txt:3" and not (art.down == 1).any()  # outlines are recomputed, never learned
    assert read_corpora([tmp_path / "pirates.txt"]).files["sprites"] == [tmp_path / "pirates.txt"]


def test_generator_contract(eng):
    from engine.testing import check_generator

    check_generator(eng, GEN, seeds=[0, 3, "hero"],
                    params_cases=[{}, {"role": "beast", "variety": 0.5}, {"style": "nordic", "symmetric": True}])
    level = eng.generate("level", "dungeon", 4)
    check_generator(eng, GEN, seeds=[1], context={"level": level})


def test_sprite_params_are_honoured(eng):
    sym = eng.generate_batch("character", GEN, range(20), {"symmetric": True, "role": "mage"})
    assert all((c.sprite.frames["idle"] == c.sprite.frames["idle"][:, ::-1]).all() for c in sym)
    calm = eng.generate_batch("character", GEN, range(40), {"variety": 0.0, "role": "warrior"})
    wild = eng.generate_batch("character", GEN, range(40), {"variety": 2.0, "role": "warrior"})
    looks = lambda cs: len({(c.sprite.frames["idle"] > 0).tobytes() for c in cs})  # noqa: E731
    assert looks(calm) <= 4 < looks(wild)  # variety 0: the mixture components' means only
    assert all(c.role == "warrior" for c in calm + wild)


def test_filter_fold_fast_path_on_ascii_is_the_full_normalisation():
    """``fold`` returns ``lower()`` for ASCII text (the batch speed-up): the full NFKC/NFKD path gives the same."""
    import unicodedata

    from engine.textfilter import CONFUSABLES, fold

    def full(t):
        t = unicodedata.normalize("NFKC", t).casefold()
        t = "".join(ch for ch in unicodedata.normalize("NFKD", t)
                    if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf")
        return t.translate(CONFUSABLES)

    every = "".join(map(chr, range(128)))
    assert fold(every) == full(every) == every.lower()
    assert fold("Grob\u00e9") == "grobe" and fold("ＧＲＯＢ") == "grob"  # non-ASCII still takes the full path


def test_names_with_dots_or_hashes_are_names_and_roles_must_overlap(eng, tmp_path):
    from engine.training import train

    # a names file with "." or "#" in it is read as names (and judged as names), not as sprite art
    (tmp_path / "saints.txt").write_text("; style: saintly\n" + "\n".join(["Clair", "Bob", "Marie"] * 4)
                                         + "\nJon St. Clair\n")
    with pytest.raises(InputError, match=r"saints.txt:14: 'Jon St. Clair' is not a name"):
        train(eng, GEN, [tmp_path / "saints.txt"], epochs=1, out=tmp_path / "n", show_progress=False, tiny=True)
    # stats for a role no sprite part has (user's or shipped) are refused at training, naming both sides
    cols = "role,strength,dexterity,constitution,intelligence,wisdom,charisma\n"
    (tmp_path / "bards.csv").write_text(cols + "".join(f"bard,{8 + i % 3},12,9,11,10,14\n" for i in range(20)))
    with pytest.raises(InputError, match=r"stats roles \(bard\) and the sprite roles \(.*\) share none"):
        train(eng, GEN, [tmp_path / "bards.csv"], epochs=1, out=tmp_path / "o", show_progress=False, tiny=True)
    assert not (tmp_path / "o").exists()


def test_pixel_art_checked_for_a_batch_is_the_same_as_one_by_one(eng):
    """``pixel_art_problems_many`` (character-ml's ``validate_batch``) gives exactly ``pixel_art_problems``'s
    lists, for clean sprites and for sprites breaking each rule, mixed in one batch."""
    from engine.content import Sprite
    from engine.eval_characters import pixel_art_problems, pixel_art_problems_many

    chars = eng.generate_batch("character", GEN, range(40))
    sprites = [c.sprite for c in chars]
    rng = np.random.default_rng(0)
    broken = []
    for k, sp in enumerate(sprites[:24]):
        frames = {n: f.copy() for n, f in sp.frames.items()}
        pal = list(sp.palette)
        rule = k % 6
        if rule == 0:
            pal[3] = (*pal[3][:3], 128)  # alpha
        elif rule == 1:
            frames["walk1"][frames["walk1"] == 1] = 3  # outline color
        elif rule == 2:
            frames["side_walk2"][:] = 0
            frames["side_walk2"][2:5, 6:9] = 1  # height
        elif rule == 3:
            inner = frames["idle"] >= 2
            frames["walk2"][inner] = rng.integers(2, 8, inner.sum())  # colors in place
        elif rule == 4:
            frames["idle"][8, 8] = 9  # beyond the palette
        else:
            pal = pal + [(k, k, k, 255)] * 12
            frames["side_idle"][frames["side_idle"] >= 2] = np.arange((frames["side_idle"] >= 2).sum()) % 20
        broken.append(Sprite(pal, frames, sp.animations))
    odd = [Sprite([(0, 0, 0, 0), (1, 1, 1, 255)], {"idle": np.ones((4, 4), np.uint8)}),
           Sprite([(0, 0, 0, 0)], {"idle": np.zeros((4, 4), np.int64)})]
    mixed = sprites[:8] + broken[:12] + odd + sprites[8:] + broken[12:]
    want = [pixel_art_problems(sp) for sp in mixed]
    assert pixel_art_problems_many(mixed) == want
    assert sum(bool(w) for w in want) >= 20  # the broken ones are broken


def test_the_engine_checks_a_batch_with_validate_batch(eng, monkeypatch):
    """The BatchValidator protocol: ``Engine.generate_batch`` validates the first tries in one
    ``validate_batch`` call (after metadata and hooks), resamples what it refuses one by one, and gives the
    same content as ``generate`` per seed."""
    from engine.generator import BatchValidator

    gen = gen_of(eng)
    assert isinstance(gen, BatchValidator)
    calls = []
    real = type(gen).validate_batch

    def spy(self, contents, requests):
        calls.append(len(contents))
        found = real(self, contents, requests)
        if len(contents) > 1:
            assert all(c.metadata["generator"] == GEN and c.metadata["tries"] == 1 for c in contents)
            found[2] = found[2] + ["refused once by the test"]  # the engine must resample item 2
        return found

    monkeypatch.setattr(type(gen), "validate_batch", spy)
    made = eng.generate_batch("character", GEN, range(6))
    assert calls[0] == 6 and all(n == 1 for n in calls[1:])  # one batch call; the resample alone
    assert made[2].metadata["tries"] == 2 and [m.metadata["tries"] for m in made[:2]] == [1, 1]
    monkeypatch.undo()
    for s in (0, 1, 3, 4, 5):
        assert dumps(eng.generate("character", GEN, s)) == dumps(made[s])
    assert eng.problems_batch(made, [eng.request("character", GEN, s) for s in range(6)]) == [[]] * 6
