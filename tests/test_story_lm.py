"""story-lm: corpus and tokenizer, KV cache equals the naive loop, batch equals single, determinism across
processes, grounding and faithfulness over every dialogue path, line checks with reasons, training on a
user's own text (plain lines, headers, tiny corpora), evaluation, Ink playback, lazy torch import."""
import json
import re

import pytest

import engine
from engine import eval_stories
from engine.textfilter import ContentFilter
from plugins import story_lm
from plugins.story_lm import MODEL_DIR, WEIGHTS, StoryLM, StoryState, check_line

from .conftest import ROOT, run_cli, run_py
from .test_ink import check_all_branches, check_compiled

torch = pytest.importorskip("torch")
CORPUS = ROOT / "plugins/data/stories/corpus.txt"
QUESTS = ("fetch", "slay", "rescue", "deliver", "explore")
TONES = ("earnest", "grim", "playful")


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


@pytest.fixture(scope="module")
def user_lines(tmp_path_factory):
    """A user's own plain text: 48 lines, none with a header or a placeholder."""
    subjects = ["The old miller", "My cousin", "The night watch", "A tired soldier", "The baker's boy", "Old Maren"]
    verbs = ["swears by the river", "keeps a lantern lit", "hates the rain", "counts crows", "remembers the hills",
             "never locks doors", "sleeps with knives", "trades apples for stories"]  # no five-word phrase repeats
    lines = [f"{s} {v}." for s in subjects for v in verbs]
    path = tmp_path_factory.mktemp("user") / "my_lines.txt"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path, lines


# ----------------------------------------------------------------------------------------- corpus, tokenizer
def test_corpus_is_large_covers_every_cell_and_is_rewritten_deterministically():
    from plugins.learned_stories.corpus import lines
    from plugins.learned_stories.tokenizer import KINDS, parse_line

    text = CORPUS.read_text("utf-8").splitlines()
    assert len(text) >= 10_000
    assert text == lines()  # `python -m plugins.learned_stories.corpus` reproduces the file
    rows = [parse_line(ln) for ln in text]
    kinds = {r[2] for r in rows}
    assert kinds == set(KINDS) - {"line"}
    for kind in ("ask", "promise", "accept", "thanks"):
        assert {(r[0], r[1]) for r in rows if r[2] == kind} >= {(q, t) for q in QUESTS for t in TONES}, kind
    for kind in ("greet", "haggle", "decline", "lore_q", "lore_a", "offer", "bye", "place", "item"):
        assert {r[1] for r in rows if r[2] == kind} == set(TONES), kind
    # the facts a player needs are in the lines that state them
    for q, t, k, line in rows:
        if k == "greet":
            assert "{giver}" in line, line
        if k in ("promise", "offer"):
            assert "{reward}" in line, line


def test_tokenizer_round_trips_and_keeps_slots_whole(lm):
    _, tok = lm.load()
    for ln in CORPUS.read_text("utf-8").splitlines()[::97]:
        text = ln.split("|", 3)[3]
        assert tok.decode(tok.encode(text) + [2, 5, 9]) == text
    ids = tok.encode("Take the {item} to {other} in {place}.")
    for slot in ("{item}", "{other}", "{place}"):
        assert tok.tk.token_to_id(slot) in ids
    assert tok.vocab_size <= 2048


def test_header_with_an_unknown_kind_is_an_error_naming_the_line(tmp_path):
    data = tmp_path / "mine.txt"
    data.write_text("A plain line of my own.\nfetch|grim|ask|Bring the {item} from {place}.\n"
                    "heist|grim|ask|Steal the {item}.\n", "utf-8")
    r = run_cli("train", "story-lm", "--data", data, "--out", tmp_path / "m", "-O", "tiny=1", "--epochs", "1")
    assert r.returncode == 2
    err = r.stderr.decode()
    assert f"{data}:3" in err and "unknown quest kind 'heist'" in err and "Traceback" not in err
    for bad, what in (("fetch|sad|ask|x y", "tone 'sad'"), ("fetch|grim|speech|x y", "line kind 'speech'")):
        data.write_text(bad + "\n", "utf-8")
        r = run_cli("train", "story-lm", "--data", data, "--out", tmp_path / "m", "-O", "tiny=1")
        assert r.returncode == 2 and what in r.stderr.decode()


# ----------------------------------------------------------------------------------------- model, decoding
def test_engine_import_does_not_import_torch():
    r = run_py("import sys, engine; e = engine.Engine(entry_points=False); "
               "assert 'story-lm' in [g.id for g in e.generators('story')]; print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_shipped_weights_and_card(lm):
    w = MODEL_DIR / WEIGHTS
    assert w.stat().st_size <= 5 * 1024 * 1024
    card = json.loads((MODEL_DIR / "model.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert card["generator"] == "story-lm" and card["generator_version"] == StoryLM.version
    assert card["command"].startswith("conjure train story-lm --data plugins/data/stories/corpus.txt")
    assert card["metrics"]["final_loss"] < card["metrics"]["first_loss"]
    assert card["config"]["examples"] >= 10_000
    assert {x["file"] for x in card["weights"]} == {WEIGHTS}
    model, tok = lm.load()
    assert tok.vocab_size == model.config.vocab_size
    assert {"place", "giver", "item", "foe", "other", "reward", "place2"} == set(tok.slots)


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_kv_cache_equals_naive_loop(lm, temperature):
    from plugins.learned_stories.model import sample, sample_naive

    model, tok = lm.load()
    prompts = torch.tensor([tok.control("fetch", "grim", "ask"), tok.control("any", "playful", "greet"),
                            tok.control("any", "any", "beat_goto"), tok.control("slay", "earnest", "promise")])
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2, 3, 4)]  # noqa: E731
    torch.set_num_threads(1)
    fast = sample(model, prompts, gens(), 40, temperature=temperature, top_k=20, top_p=0.95)
    slow = sample_naive(model, prompts, gens(), 40, temperature=temperature, top_k=20, top_p=0.95)
    assert torch.equal(fast, slow)


def test_batch_equals_single(eng):
    seeds = [1, 2, 3, 4]
    batch = eng.generate_batch("story", "story-lm", seeds)
    for s, st in zip(seeds, batch):
        assert eng.dumps(st, "json") == eng.dumps(eng.generate("story", "story-lm", s), "json")
    assert len({st.title for st in batch}) > 1


def test_cli_story_plays_in_three_runtimes_and_is_deterministic(eng, tmp_path):
    out = tmp_path / "q.ink.json"
    r = run_cli("generate", "story", "-g", "story-lm", "-s", "9", "-o", out)
    assert r.returncode == 0, r.stderr.decode()
    check_compiled(out.read_bytes())
    story = eng.generate("story", "story-lm", 9)
    assert eng.dumps(story, "ink-json") == out.read_bytes()  # same bytes in this process and the CLI's
    assert story.metadata["generator"] == "story-lm"
    check_all_branches(story, out, tmp_path)


# ----------------------------------------------------------------------------------------- grounding, faithfulness
@pytest.mark.parametrize("quest", QUESTS)
def test_grounded_and_faithful_on_every_path(eng, world, quest):
    level, cast = world
    place_ids = {r.id for r in level.regions}
    char_ids = {c.id for c in cast.characters}
    ctx = {"level": level, "cast": cast}
    for seed in (11, 12):
        story = eng.generate("story", "story-lm", seed, params={"quest": quest}, context=ctx)
        assert eval_stories.ids_outside(story, ctx) == []
        assert {p["id"] for p in story.places} <= place_ids and story.quest.giver in char_ids
        paths = eval_stories.accept_paths(story)
        assert len(paths) == 3  # accept at once, after the lore, after haggling
        assert eval_stories.missing_facts(story) == [], story
        foreign = [r.name for r in level.regions] + [c.name for c in cast.characters]
        assert eval_stories.contradictions(story, foreign) == []
        if story.quest.kind == quest and quest != "explore":
            names = {r["id"]: r["name"] for r in story.places}
            assert any(n in story.quest.summary for n in names.values())
        unbound = eng.generate("story", "story-lm", seed, params={"quest": quest})
        assert eval_stories.missing_facts(unbound) == []


def test_without_context_invents_places(eng):
    story = eng.generate("story", "story-lm", 3)
    assert story.places and all(p["id"].startswith("place-") for p in story.places)
    assert not story.metadata["grounded"]


# ----------------------------------------------------------------------------------------- line checks
BOUND = {"place": "the Vault", "item": "lantern", "foe": "", "giver": "Ada", "place2": "", "other": "",
         "reward": "50 gold"}


@pytest.mark.parametrize("raw, why", [
    ("Kill {foe}.", "placeholder {foe} has no part in this quest"),
    ("Go to {castle}.", "unknown placeholder {castle}"),
    ("Go home now.", "missing {place}"),
    ("x", "length 1"),
    ("Fimd the {item} in {place}.", "unknown word 'fimd'"),
    ("Go them out of {place}.", "dangling object 'go' 'them'"),
    ("They is waiting in {place}.", "agreement 'they' 'is'"),
    ("It it waits in {place}.", "stutter 'it' 'it'"),
    ("Bring. {place} waits.", "dangling object: 'bring' without one"),
    ("Meet {giver} in {place} and.", "ends mid-phrase on 'and'"),
    ("Find a {item} in {place}.", "article 'a' 'lantern'"),
    ("Go to {place} and the Sunken Crypt.", "names 'the Sunken Crypt'"),
    ("Go to {place} for 300 gold.", "names '300 gold'"),
    ("Give the {item} to {giver}at {place}.", "placeholder glued to a word: '{giver}a'"),
])
def test_check_line_says_why(raw, why):
    vocab = frozenset("go to home now find a in the them out of they is waiting it waits bring meet and kill "
                      "for gold sunken crypt".split())
    state = StoryState(["the Sunken Crypt"])
    text, got = check_line(raw, {**BOUND, "item": "amulet" if "a {item}" in raw else "lantern"}, ("place",),
                           None, vocab, state)
    assert text is None and got.startswith(why.replace("'lantern'", "'amulet'")), got


def test_repeated_lines_and_phrases_within_a_story_are_rejected():
    state = StoryState()
    assert check_line("Sit down.", BOUND, (), None, None, state)[0] == "Sit down."
    state.add("Sit down.")
    assert check_line("Sit down!", BOUND, (), None, None, state)[1] == "repeats an earlier line of this story"
    state.add("The road through {place} is long.")
    _, why = check_line("Walk the road through {place} is long.", BOUND, (), None, None, state)
    assert why == "repeats the phrase 'road through {place} is long' said earlier in this story", why
    # "Sit down." twice in a row, inside different lines
    state.add("Sit down. {place} is cold.")
    assert check_line("Fine, fine. Sit down.", BOUND, (), None, None, state)[1] == \
        "repeats the sentence 'sit down' said earlier in this story"
    assert check_line("Go carefully. {place} is not far.", BOUND)[0] == "Go carefully. The Vault is not far."
    assert check_line("Meet {giver} an.", BOUND)[0] is None


def test_a_word_for_word_copy_of_a_long_training_line_is_rejected(lm):
    from plugins.learned_stories.tokenizer import copy_key

    line = "Bring the {item} back from {place} and I will pay you well."
    copies = frozenset({copy_key(line)})
    assert copy_key("Go to {place} now.") is None  # 8 words or fewer: no key, never a copy
    assert check_line(line, BOUND, copies=copies) == (None, "copies a training line word for word")
    assert check_line(line.upper().replace(".", "!"), BOUND, copies=copies)[1] == \
        "copies a training line word for word"  # case and punctuation do not make a line new
    assert check_line(line.replace("well", "fairly"), BOUND, copies=copies)[0] is not None
    # the shipped weights carry their training lines' keys
    _, tok = lm.load()
    corpus = [ln.split("|", 3)[3] for ln in CORPUS.read_text("utf-8").splitlines()]
    assert tok.copies == {k for ln in corpus if (k := copy_key(ln))}


def test_new_lines_param_refuses_copies_and_is_off_by_default(eng):
    from engine.eval_stories import all_lines

    seeds = list(range(6))
    off = eng.generate_batch("story", "story-lm", seeds)
    on = eng.generate_batch("story", "story-lm", seeds, params={"new_lines": True})
    why = "copies a training line word for word"
    assert not any(r["why"] == why for s in off for r in s.metadata["rejections"])
    assert any(r["why"] == why for s in on for r in s.metadata["rejections"])
    ref = StoryLM().story_reference({})
    train = eval_stories._train_templates(ref["training_lines"])
    copied = [sum(eval_stories._template(ln, s) in train for ln in all_lines(s)) for s in on if
              not s.metadata["fallback_lines"]]
    assert sum(copied) == 0, copied


def test_every_rejection_says_why_in_metadata(eng):
    stories = eng.generate_batch("story", "story-lm", list(range(8)), params={"temperature": 1.3})
    rejections = [r for s in stories for r in s.metadata["rejections"]]
    assert rejections  # a hot temperature makes some bad samples
    for s in stories:
        md = s.metadata
        assert len(md["rejections"]) == md["rejected_lines"] + md["filtered_lines"]
        assert md["accepted_first"] + len({r["line"] for r in md["rejections"]}) == md["lines"]
    for r in rejections:
        assert set(r) == {"line", "round", "why", "text"} and r["why"]


def test_filter_resampling_is_counted(monkeypatch, eng):
    strict = ContentFilter(["you", "your"])
    monkeypatch.setattr(story_lm, "default_filter", lambda: strict)
    story = eng.generate("story", "story-lm", 21, params={"tone": "playful"})
    assert story.metadata["filtered_lines"] > 0
    assert any(r["why"] == "content filter" for r in story.metadata["rejections"])
    for n in story.nodes:
        for line in n.lines + [c.text for c in n.choices]:
            assert strict.text_ok(line), line


# ----------------------------------------------------------------------------------------- training on your own text
def test_training_file_over_the_size_limit_is_an_error_naming_it(tmp_path, monkeypatch):
    from plugins.learned_stories import train

    data = tmp_path / "huge.txt"
    data.write_text("A plain line of my own.\n" * 8, "utf-8")
    monkeypatch.setattr(train, "MAX_DATA_BYTES", 64)
    with pytest.raises(engine.InputError, match=r"huge\.txt.*over the 64-byte limit") as e:
        train.read_examples([data])
    assert "\n" not in str(e.value)
    small = tmp_path / "small.txt"
    small.write_text("A short line.\n", "utf-8")
    assert train.read_examples([small]) == ([("any", "any", "line", "A short line.")], 0)


def test_tiny_corpus_warns_with_the_count_and_the_card_is_json(tmp_path):
    data = tmp_path / "mine.txt"
    data.write_text("The lantern went out in the hall.\nany|grim|greet|Sit down, {giver}, and listen.\n")
    out = tmp_path / "m"
    r = run_cli("train", "story-lm", "--data", data, "--epochs", "1", "--out", out, "-O", "tiny=1")
    assert r.returncode == 0, r.stderr.decode()
    assert "only 2 training lines" in r.stderr.decode()
    card = json.loads((out / "model.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in card"))
    assert card["config"]["examples"] == 2 and "val_loss" not in card["metrics"]
    assert any("only 2 training lines" in w for w in card["config"]["warnings"])


def test_user_plain_text_model_writes_stories_with_its_own_lines(tmp_path, user_lines, eng):
    from engine.training import train

    path, lines = user_lines
    out = tmp_path / "mine"
    card = train(eng, "story-lm", [path], epochs=150, out=out, show_progress=False, tiny=1, d_model=64, n_layers=2)
    assert card["config"]["kinds"] == ["line"] and card["config"]["slots"] == []
    s = eng.generate("story", "story-lm", 4, {"weights": str(out)})
    said = [ln for n in s.nodes for ln in n.lines] + [c.text for n in s.nodes for c in n.choices]
    assert sum(ln in lines for ln in said) >= len(said) // 2, said  # the user's lines, not ours
    words = {w for ln in lines for w in re.findall(r"[a-z]+(?:'[a-z]+)?", ln.lower())}
    assert not any(r["why"].startswith("unknown word") and r["text"] and
                   set(re.findall(r"[a-z]+", r["text"].lower())) <= words for r in s.metadata["rejections"])
    ref = StoryLM().story_reference({"weights": str(out)})
    assert ref["training_lines"] == lines


def test_own_weights_through_the_weights_param(tmp_path):
    """`conjure train story-lm` output is usable with -p weights=DIR (and a bad path is a clear error)."""
    e = engine.Engine(entry_points=False)
    s = e.generate("story", "story-lm", 3, {"weights": str(MODEL_DIR)})
    assert s.title == e.generate("story", "story-lm", 3).title  # the shipped folder, named explicitly
    with pytest.raises(engine.InputError, match="no weights"):
        e.generate("story", "story-lm", 3, {"weights": str(tmp_path / "nothing")})


# ----------------------------------------------------------------------------------------- other contexts
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


# ----------------------------------------------------------------------------------------- evaluation
def test_evaluate_reports_targets_and_prints_stories(eng, tmp_path, monkeypatch):
    monkeypatch.setattr(eval_stories, "THROUGHPUT_BATCH", 2)  # the speed figure itself: bench and the CLI
    m = eng_evaluate(eng, "story-lm", tmp_path / "r")
    for k in ("fallback_rate_with", "first_sample_rate_without", "unfaithful_stories_with", "ids_not_in_context",
              "distinct_lines_without", "copied_lines_with", "stories_per_second"):
        assert k in m, k
    assert m["ids_not_in_context"] == 0 and m["unfaithful_stories_with"] == 0
    report = (tmp_path / "r" / "report.md").read_text("utf-8")
    assert "| lines accepted on the first sample |" in report
    assert report.count("**[start]**") == 8 and "Quest log:" in report
    g = eng_evaluate(eng, "grammar-story", tmp_path / "g")  # any story generator (no line counts there)
    assert "fallback_rate_with" not in g and g["ids_not_in_context"] == 0


def eng_evaluate(eng, gen, folder):
    from engine.evaluate import evaluate

    return evaluate(eng, gen, count=4, seed=3, report=folder)


def test_eval_stories_imports_no_plugin():
    src = (ROOT / "engine" / "eval_stories.py").read_text("utf-8")
    assert not re.search(r"^\s*(from|import)\s+plugins", src, re.M)


def test_generator_contract(eng, world):
    """engine.testing.check_generator: determinism (global RNGs scrambled), params honoured, valid output,
    msgpack round trip, batch equals single — without context and with a level and cast."""
    from engine.testing import check_generator

    level, cast = world
    check_generator(eng, "story-lm", seeds=(0, "x"), params_cases=({}, {"quest": "rescue", "tone": "grim"}))
    check_generator(eng, "story-lm", seeds=(2,), context={"level": level, "cast": cast})
