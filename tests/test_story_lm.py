"""story-lm: KV cache equals the naive loop, batch equals single, determinism across processes, grounding
in level and cast, filter resampling, training, shipped weights, Ink playback, lazy torch import."""
import json
import re

import pytest

import engine
from engine.textfilter import ContentFilter
from plugins import story_lm
from plugins.story_lm import MODEL_DIR, WEIGHTS, StoryLM, check_line

from .conftest import ROOT, run_cli, run_py
from .test_ink import check_all_branches, check_compiled

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def lm():
    gen = StoryLM()
    gen.load()
    return gen


@pytest.fixture(scope="module")
def world(eng):
    level = eng.generate("level", "dungeon", seed=5)
    cast = eng.generate("character", seed=5, context={"level": level})
    return level, cast


def test_engine_import_does_not_import_torch():
    r = run_py("import sys, engine; e = engine.Engine(entry_points=False); "
               "assert 'story-lm' in [g.id for g in e.generators('story')]; print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_shipped_weights_and_card(lm):
    w = MODEL_DIR / WEIGHTS
    assert w.stat().st_size <= 5 * 1024 * 1024
    card = json.loads((MODEL_DIR / "model.json").read_text())
    assert card["generator"] == "story-lm"
    assert card["command"].startswith("conjure train story-lm --data plugins/data/stories/corpus.txt")
    assert card["metrics"]["final_loss"] < card["metrics"]["first_loss"]
    assert {x["file"] for x in card["weights"]} == {WEIGHTS}
    model, tok = lm.load()
    assert model.config.n_layers >= 1 and tok.vocab_size == model.config.vocab_size


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_kv_cache_equals_naive_loop(lm, temperature):
    from plugins.learned_stories.model import sample, sample_naive

    model, tok = lm.load()
    prompts = torch.tensor([tok.control("fetch", "grim", "ask"), tok.control("any", "playful", "greet"),
                            tok.control("any", "any", "beat_goto")])
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2, 3)]  # noqa: E731
    torch.set_num_threads(1)
    fast = sample(model, prompts, gens(), 80, temperature=temperature, top_k=20, top_p=0.95)
    slow = sample_naive(model, prompts, gens(), 80, temperature=temperature, top_k=20, top_p=0.95)
    assert torch.equal(fast, slow)


def test_batch_equals_single(eng):
    seeds = [1, 2, 3, 4]
    batch = eng.generate_batch("story", "story-lm", seeds)
    for s, st in zip(seeds, batch):
        assert eng.dumps(st, "json") == eng.dumps(eng.generate("story", "story-lm", s), "json")
    assert len({st.title for st in batch}) > 1


def test_cli_story_plays_in_both_runtimes_and_is_deterministic(eng, tmp_path):
    out = tmp_path / "q.ink.json"
    r = run_cli("generate", "story", "-g", "story-lm", "-s", "9", "-o", out)
    assert r.returncode == 0, r.stderr.decode()
    check_compiled(out.read_bytes())
    story = eng.generate("story", "story-lm", 9)
    assert eng.dumps(story, "ink-json") == out.read_bytes()  # same bytes in this process and the CLI's
    assert story.metadata["generator"] == "story-lm"
    check_all_branches(story, out, tmp_path)


@pytest.mark.parametrize("quest", ["fetch", "slay", "rescue", "deliver", "explore"])
def test_grounded_in_level_and_cast(eng, world, quest):
    level, cast = world
    place_ids = {r.id for r in level.regions}
    char_ids = {c.id for c in cast.characters}
    story = eng.generate("story", "story-lm", 11, params={"quest": quest}, context={"level": level, "cast": cast})
    assert {p["id"] for p in story.places} <= place_ids
    assert {c["id"] for c in story.characters} <= char_ids
    assert story.quest.giver in char_ids
    for b in story.quest.beats:
        assert b.place is None or b.place in place_ids
        assert b.character is None or b.character in char_ids
    names = {r.id: r.name for r in level.regions} | {c.id: c.name for c in cast.characters}
    lines = " ".join(line for n in story.nodes for line in n.lines)
    # the ask names the quest's place, and the names used are the context's
    assert any(names[p["id"]] in story.quest.summary for p in story.places)
    assert any(names[p["id"]] in lines for p in story.places)
    invented = re.findall(r"\bthe (?:[A-Z][a-z]+ )+(?:Crypt|Hall|Armory|Chapel|Cellar|Library|Vault)\b", lines)
    assert set(invented) <= set(names.values())
    kinds = {b.kind for b in story.quest.beats}
    if "defeat" in kinds:
        foe = next(b.character for b in story.quest.beats if b.kind == "defeat")
        assert cast.characters[[c.id for c in cast.characters].index(foe)].metadata.get("hostile", True)


def test_without_context_invents_places(eng):
    story = eng.generate("story", "story-lm", 3)
    assert story.places and all(p["id"].startswith("place-") for p in story.places)
    assert not story.metadata["grounded"]


def test_filter_resampling_is_counted(monkeypatch, eng):
    strict = ContentFilter(["you", "your"])
    monkeypatch.setattr(story_lm, "default_filter", lambda: strict)
    story = eng.generate("story", "story-lm", 21, params={"tone": "playful"})
    assert story.metadata["filtered_lines"] > 0
    for n in story.nodes:
        for line in n.lines + [c.text for c in n.choices]:
            assert strict.text_ok(line), line


def test_check_line_rejects_malformed():
    bound = {"place": "the Vault", "item": "lantern", "foe": "", "giver": "Ada", "place2": "the Hall",
             "other": "", "reward": "5 gold"}
    assert check_line("Find the {item} in {place}.", bound, ("place",)) == ("Find the lantern in the Vault.", "")
    assert check_line("Kill {foe}.", bound)[0] is None            # unavailable here
    assert check_line("Go to {castle}.", bound)[0] is None       # unknown placeholder
    assert check_line("Go to {place.", bound)[0] is None         # stray brace
    assert check_line("Go home.", bound, ("place",))[0] is None  # required place missing
    assert check_line("x", bound)[0] is None                     # too short
    assert check_line("a" * 200, bound)[0] is None               # too long
    vocab = frozenset({"find", "the", "in"})
    assert check_line("Find the {item} in {place}.", bound, (), None, vocab)[0] is not None
    assert check_line("Fimd the {item} in {place}.", bound, (), None, vocab) == (None, "words")


def test_training_lowers_loss_and_writes_loadable_weights(tmp_path):
    from plugins.learned_stories.train import train
    from plugins.story_lm import load_model

    data = tmp_path / "lines.txt"
    data.write_text("\n".join((ROOT / "plugins/data/stories/corpus.txt").read_text("utf-8").splitlines()[::20]))
    res = train([data], tmp_path, seed=1, steps=25, batch=8, d_model=32, n_layers=1, n_heads=2, block=128)
    assert res["metrics"]["final_loss"] < res["metrics"]["first_loss"]
    model, tok = load_model(tmp_path / res["weights"][0])
    assert model.config.d_model == 32
    gen = StoryLM(tmp_path)
    st = engine.Engine(entry_points=False).generate("story", "story-lm", 1)  # shipped model still fine
    assert not st.problems()
    story = gen.generate(engine.Engine(entry_points=False).request("story", "story-lm", 2))
    assert story.problems() == []


def test_conjure_train_writes_card(tmp_path):
    from engine.training import train

    data = tmp_path / "mine.txt"
    data.write_text("The lantern went out in the hall.\nany|grim|greet|Sit down and listen.\n")
    card = train(engine.Engine(entry_points=False), "story-lm", [data], epochs=1, out=tmp_path / "m",
                 show_progress=False)
    assert (tmp_path / "m" / WEIGHTS).is_file() and card["epochs"] == 1
    assert card["config"]["examples"] == 2


@pytest.mark.parametrize("gen", ["story-lm", "grammar-story"])
def test_context_without_regions_or_friends_is_still_grounded(gen):
    """A level with no regions grounds places in its landmarks; a cast of foes gives the quest itself."""
    from engine import Cast, Entity, Level, TileDef, Tileset
    import numpy as np

    e = engine.Engine(entry_points=False)
    ts = Tileset("t", [TileDef(0, "floor", ".", (0, 0, 0))])
    lv = Level({"tiles": np.zeros((8, 8), np.uint8)}, ts,
               [Entity("spawn", "spawn", 0, 0), Entity("exit", "exit", 7, 7), Entity("town-1", "town", 3, 3)])
    foe = e.generate("character", "classic-character", 1, {"role": "beast"})
    foe.metadata["hostile"] = True
    for seed in range(12):
        s = e.generate("story", gen, seed, context={"level": lv, "cast": Cast([foe])})
        assert {p["id"] for p in s.places} <= {"spawn", "exit", "town-1"}
        assert {c["id"] for c in s.characters} == {foe.id}
    with pytest.raises(engine.InputError, match="cast is empty"):
        e.generate("story", gen, 1, context={"cast": Cast([])})


def test_lines_are_capitalised_and_never_stop_mid_phrase():
    assert check_line("Meet {giver} an.", {"giver": "Bob"})[0] is None
    assert check_line("Go carefully. {place} is not far.", {"place": "the Verdant Hall"})[0] == \
        "Go carefully. The Verdant Hall is not far."
    assert check_line("Travel to {place}.", {"place": "the Hall"})[0] == "Travel to the Hall."


def test_own_weights_through_the_weights_param(tmp_path):
    """`conjure train story-lm` output is usable with -p weights=DIR (and a bad path is a clear error)."""
    e = engine.Engine(entry_points=False)
    s = e.generate("story", "story-lm", 3, {"weights": str(MODEL_DIR)})
    assert s.title == e.generate("story", "story-lm", 3).title  # the shipped folder, named explicitly
    with pytest.raises(engine.InputError, match="no weights"):
        e.generate("story", "story-lm", 3, {"weights": str(tmp_path / "nothing")})
