"""Ink export: compiled JSON (inkVersion 21) played along every branch in two runtimes (bink, inkcpp-py),
the lines seen compared with the story graph; Ink source and markdown renderings."""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import engine
from engine import Beat, Choice, DialogueNode, Quest, Story
from plugins import ink as inkx

from .conftest import run_cli

pytest.importorskip("bink")


# ------------------------------------------------------------------------------------------ players
def bink_play(text: str, path: list[int]):
    """Play ``path`` (choice indices) in bink: (lines, choices offered at each step, final flags)."""
    from bink.story import Story as BinkStory

    s = BinkStory(text)
    lines, offered = [], []
    for step in [*path, None]:
        while s.can_continue():
            line = s.cont().strip()
            if line:
                lines.append(line)
        offered.append([c for c in s.get_current_choices()])
        if step is not None:
            s.choose_choice_index(step)
    return lines, offered, s


try:
    import inkcpp_py
except ImportError:  # builds from source; without it the bink half still runs (see docs/stories.md)
    inkcpp_py = None


def inkcpp_play(json_path, path: list[int], tmp_path):
    ink = inkcpp_py
    bin_path = tmp_path / (json_path.stem + ".bin")
    if not bin_path.exists():
        ink.compile_json(str(json_path), str(bin_path))
    story = ink.Story.from_file(str(bin_path))
    glob = story.new_globals()
    r = story.new_runner(glob)
    lines, offered = [], []
    for step in [*path, None]:
        while r.can_continue():
            line = r.getline().strip()
            if line:
                lines.append(line)
        offered.append([r.get_choice(i).text() for i in range(r.num_choices())])
        if step is not None:
            r.choose(step)
    return lines, offered, glob


JS = Path(__file__).resolve().parent / "js"


def inkjs_play(story: Story, paths: list[list[int]], compiled: str | None = None):
    """Compile the story's ``.ink`` source with inkjs's compiler and play ``paths`` in the inkjs runtime, and the
    compiled JSON (ours) too when given: {"source": [run...], "compiled": [run...]} with run = {lines, offered,
    flags, globalTags}. node and tests/js/node_modules (``make test`` runs ``npm ci`` there) are required."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed: the inkjs checks need node >= 18 and `npm ci` in tests/js")
    if not (JS / "node_modules" / "inkjs").is_dir():
        pytest.fail("inkjs is not installed: run `make test` (or `npm ci --prefix tests/js`)")
    _, flags = inkx.names(story)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump({"source": inkx.ink_source(story), "compiled": compiled, "paths": paths,
                   "flags": list(flags.values())}, f)
    try:
        r = subprocess.run(["node", str(JS / "ink_play.js"), f.name], capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(f.name)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["errors"] == [], out["errors"]
    assert out["warnings"] == [], out["warnings"]
    return out["runs"]


def branches(story: Story):
    """Every path from start to an ending: (choice indices, expected lines, expected offers, flags set)."""
    out = []

    def walk(nid, path, lines, offers, flags, seen):
        n = story.node(nid)
        lines = lines + [inkx.clean(x) for x in n.lines if inkx.clean(x)]
        offers = offers + [[inkx.clean(c.text) for c in n.choices]]
        if not n.choices:
            out.append((path, lines, offers, flags))
            return
        for i, c in enumerate(n.choices):
            if (nid, i) in seen:  # once-only choices: a cycle would not offer it again
                continue
            walk(c.target, path + [i], lines, offers, flags | set(c.set_flags), seen | {(nid, i)})

    walk(story.start, [], [], [], frozenset(), frozenset())
    return out


def check_all_branches(story: Story, json_path, tmp_path):
    text = json_path.read_text("utf-8")
    _, flag_names = inkx.names(story)
    all_flags = set(flag_names)
    paths = branches(story)
    assert len(paths) >= 2
    for path, lines, offers, flags in paths:
        got_lines, got_offers, s = bink_play(text, path)
        assert got_lines == lines, (path, got_lines, lines)
        assert got_offers == offers
        for f in all_flags:
            assert s.get_variable(flag_names[f]) is (f in flags), (path, f)
        if inkcpp_py is None:
            continue
        got_lines, got_offers, glob = inkcpp_play(json_path, path, tmp_path)
        assert got_lines == lines, (path, got_lines, lines)
        assert got_offers == offers
        for f in all_flags:
            assert getattr(glob, flag_names[f]).as_bool() is (f in flags), (path, f)
    # inkjs: the .ink source through inkjs's compiler, and our compiled JSON, play every branch the same way
    runs = inkjs_play(story, [p for p, _, _, _ in paths], text)
    tags = inkx.quest_tags(story)
    for which in ("source", "compiled"):
        for (path, lines, offers, flags), run in zip(paths, runs[which]):
            assert run["lines"] == lines, (which, path, run["lines"], lines)
            assert run["offered"] == offers, (which, path)
            assert run["flags"] == {flag_names[f]: f in flags for f in all_flags}, (which, path)
            assert run["globalTags"] == tags, which
    return paths


def check_compiled(data: bytes):
    assert not data.startswith(b"\xef\xbb\xbf")
    doc = json.loads(data.decode("utf-8"))
    assert doc["inkVersion"] == 21 and doc["listDefs"] == {}
    root = doc["root"]
    assert root[-2] == "done" and isinstance(root[-1], dict)
    named = root[-1]
    choice_targets = 0
    for name, knot in named.items():
        if name in ("#f", "global decl") or not isinstance(knot, list):
            continue
        for item in knot:
            if isinstance(item, dict) and "*" in item:
                assert item["flg"] == 20
                cname = item["*"].split(".")[-1]
                assert knot[-1][cname][-1] == {"#f": 5}
                choice_targets += 1
    assert choice_targets > 0
    return doc


# ------------------------------------------------------------------------------------------ tests
def test_grammar_story_cli_plays_every_branch(tmp_path):
    out = tmp_path / "q.ink.json"
    r = run_cli("generate", "story", "-s", "9", "-o", out)
    assert r.returncode == 0, r.stderr.decode()
    check_compiled(out.read_bytes())
    eng = engine.Engine(entry_points=False)
    story = eng.generate("story", seed=9)
    assert eng.dumps(story, "ink-json") == out.read_bytes()
    check_all_branches(story, out, tmp_path)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grammar_stories_with_context_play(eng, tmp_path, seed):
    level = eng.generate("level", "dungeon", seed=seed)
    cast = eng.generate("character", seed=seed, context={"level": level})
    story = eng.generate("story", "grammar-story", seed=seed, context={"level": level, "cast": cast})
    path = tmp_path / f"s{seed}.ink.json"
    eng.export(story, path)
    check_compiled(path.read_bytes())
    check_all_branches(story, path, tmp_path)


def _tricky_story():
    """Markup characters in text, odd node ids and flag names, a node reached along two routes."""
    nodes = [
        DialogueNode("1st node", "g", ["Say {hello} #not-a-tag | [x] -> y // z ~ w", "* star - dash"],
                     [Choice("[Bracketed] choice", "end-a", ["flag one", "END"]),
                      Choice("Other -> way", "mid", ["c"])]),
        DialogueNode("mid", "g", ["Middle <> glue?"],
                     [Choice("go", "end-a", ["c"]), Choice("stop", "END", [])]),
        DialogueNode("end-a", "g", ["Ending A."]),
        DialogueNode("END", "g", ["Ending B."]),
    ]
    q = Quest("fetch", "g", "Find it.", [Beat("b1", "talk", "Talk.", character="g")])
    return Story("s", "Tricky # title", q, "1st node", nodes, characters=[{"id": "g", "name": "G"}])


def test_markup_and_identifiers_are_escaped(tmp_path):
    story = _tricky_story()
    assert story.problems() == []
    knots, flags = inkx.names(story)
    assert len(set(knots.values()) | set(flags.values())) == len(knots) + len(flags)
    path = tmp_path / "t.ink.json"
    path.write_bytes(inkx.dumps_json(story))
    check_compiled(path.read_bytes())
    check_all_branches(story, path, tmp_path)
    src = inkx.ink_source(story)
    assert "VAR flag_one = false" in src and "\\{hello\\}" in src and "\\#not-a-tag" in src
    assert "=== n_1st_node ===" in src


def test_ink_source_and_markdown(eng, tmp_path):
    story = eng.generate("story", seed=4)
    eng.export(story, tmp_path / "s.ink")
    eng.export(story, tmp_path / "s.story.md")
    src = (tmp_path / "s.ink").read_text("utf-8")
    knots, flags = inkx.names(story)
    for n in story.nodes:
        assert f"=== {knots[n.id]} ===" in src
    for v in flags.values():
        assert f"VAR {v} = false" in src and f"~ {v} = true" in src
    assert src.count("-> END") == sum(1 for n in story.nodes if not n.choices)
    assert f"# quest: {story.quest.kind}" in src
    md = (tmp_path / "s.story.md").read_text("utf-8")
    assert md.startswith(f"# {story.title}")
    for n in story.nodes:
        for line in n.lines:
            assert inkx.clean(line) in md
    for b in story.quest.beats:
        assert b.text in md


def test_all_three_runtimes_are_installed():
    """`make test` installs bink, inkcpp-py (built from source) and inkjs (npm ci in tests/js): no runtime may
    be silently missing from the branch checks."""
    assert inkcpp_py is not None, "inkcpp-py is not installed (make test builds it; see docs/stories.md)"
    assert shutil.which("node") and (JS / "node_modules" / "inkjs").is_dir(), "inkjs: run npm ci --prefix tests/js"


def test_inkjs_compiles_every_kind_of_story_source(eng):
    """inkjs's compiler takes the `.ink` export of grammar-story and story-lm stories, with and without context."""
    level = eng.generate("level", "dungeon", seed=2)
    cast = eng.generate("character", seed=2, context={"level": level})
    for gen in ("grammar-story", "story-lm"):
        for ctx in ({}, {"level": level, "cast": cast}):
            story = eng.generate("story", gen, seed=6, context=ctx)
            runs = inkjs_play(story, [[0]])
            assert runs["source"][0]["lines"][:1] == [inkx.clean(story.node(story.start).lines[0])]


def test_quest_beats_are_global_tags(eng, tmp_path):
    from bink.story import Story as BinkStory

    story = eng.generate("story", seed=5)
    s = BinkStory(inkx.dumps_json(story).decode("utf-8"))
    tags = list(s.get_global_tags())
    assert f"quest: {story.quest.kind}" in tags
    assert sum(t.startswith("beat: ") for t in tags) == len(story.quest.beats)
