"""Synthetic corpora in VGLC's published layouts (tests/data/vglc-like/, written by make_vglc_like.py): each is
read with the right view, tags and rules, the rules pass all its own levels, and bad corpora give one-line
errors. Regression tests for the reviewer's rules items: strict start/goal, fall height, card paths."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError
from plugins.learned_levels.corpus import CorpusError, load_corpus, roles_of, tile_tags
from plugins.learned_levels.rules import Rules, fit_rules

DATA = Path(__file__).parent / "data" / "vglc-like"
ZELDA_LEGEND = DATA / "legends" / "zelda.json"


def _corpus(game: str, legend=None):
    return load_corpus([DATA / game], legend=legend)


def _roles(c) -> dict[str, set[str]]:
    return {t.char: roles_of(tile_tags(t)) for t in c.tileset.tiles}


def _grid(c, rows: list[str]) -> np.ndarray:
    ids = {t.char: t.id for t in c.tileset.tiles}
    return np.array([[ids[ch] for ch in r] for r in rows], dtype=np.uint8)


@pytest.fixture(scope="module")
def corpora():
    return {"smb": _corpus("Super Mario Bros"), "ki": _corpus("Kid Icarus"), "lr": _corpus("Lode Runner"),
            "mm": _corpus("MegaMan"), "zelda": _corpus("The Legend of Zelda", ZELDA_LEGEND)}


@pytest.fixture(scope="module")
def rules(corpora):
    return {k: fit_rules(c) for k, c in corpora.items()}


def test_the_corpora_are_what_the_script_writes(tmp_path):
    """The committed files are the script's output (deterministic)."""
    import importlib.util

    shutil.copy(DATA / "make_vglc_like.py", tmp_path / "make_vglc_like.py")
    spec = importlib.util.spec_from_file_location("make_vglc_like_copy", tmp_path / "make_vglc_like.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main()
    for f in sorted(DATA.rglob("*")):
        if f.is_file() and f.suffix in (".txt", ".json"):
            assert (tmp_path / f.relative_to(DATA)).read_bytes() == f.read_bytes(), f


def test_views_sizes_and_skips(corpora):
    smb, ki, lr, mm, zelda = (corpora[k] for k in ("smb", "ki", "lr", "mm", "zelda"))
    assert (smb.view, smb.orientation, {g.shape[0] for g in smb.grids}) == ("side", "horizontal", {14})
    assert (ki.view, ki.orientation, {g.shape[1] for g in ki.grids}) == ("side", "vertical", {16})
    assert len({g.shape[0] for g in ki.grids}) == 4 and len(ki.grids) == 4  # four heights, all kept
    assert (lr.view, {g.shape for g in lr.grids}) == ("side", {(22, 32)})
    # Mega Man's levels differ in height and mark their outside with "@" (null): the 15-row ones are padded
    # with "@" above to the 17-row one's height, none skipped
    assert mm.view == "side" and len(mm.grids) == 3 and {g.shape[0] for g in mm.grids} == {17}
    assert len(mm.padded) == 2 and mm.describe()["padded_with_void"] == 2
    at = next(t.id for t in mm.tileset.tiles if t.char == "@")
    assert all((g[:2] == at).all() for g, p in zip(mm.grids, mm.sources) if p in mm.padded)
    assert (zelda.view, zelda.room) == ("top", (11, 16))  # VGLC Zelda's rooms, though most rooms are void
    for c in corpora.values():
        assert all("README" in p for p, r in c.skipped if "not a level" in r)


def test_tags_give_roles(corpora):
    smb, ki, lr, mm = (_roles(corpora[k]) for k in ("smb", "ki", "lr", "mm"))
    assert {"solid", "pipe"} <= smb["<"] and "enemy" in smb["E"] and "collectable" in smb["o"]
    assert ki["T"] == {"platform"} and "platform" in ki["M"] and "solid" not in ki["T"]  # solidtop, passable
    assert {"solid", "hazard"} <= ki["H"] and {"solid", "door"} <= ki["D"]
    assert lr["#"] == {"climbable"} and lr["-"] == {"climbable", "rope"}
    assert "collectable" in lr["G"] and "start" in lr["M"] and "enemy" in lr["E"] and "solid" in lr["b"]
    assert mm["@"] == {"void"} and mm["|"] == {"climbable"} and "start" in mm["P"]


def test_rules_pass_every_corpus_level(rules):
    for k, r in rules.items():
        assert r.report["corpus_pass"] == 1.0, (k, r.report["failures"])


def test_fitted_rules_per_kind(corpora, rules):
    lr, mm, ki = rules["lr"], rules["mm"], rules["ki"]
    # Lode Runner: no jumping; ladders and ropes make the floors reachable
    assert lr.jump == (0, 1) and lr.params["one_start"]
    assert "no jumping" in lr.describe() and "climbs" in lr.describe()
    # its gold is all stood on in every corpus level: required (Mario's coins float in the air: not)
    assert lr.params["required"] == ["collectable"] and "required" not in rules["smb"].params
    c = corpora["lr"]
    ids = {t.char: t.id for t in c.tileset.tiles}
    g = c.grids[0].copy()
    g[0, :] = ids["b"]  # a sealed-off gold on top of the map
    g[0, 5], g[0, 6] = ids["."], ids["b"]
    g2 = np.vstack([np.full((2, g.shape[1]), ids["."], np.uint8), g])
    g2[1, 5] = ids["G"]
    g2[2, 5] = ids["b"]
    assert "collectable 'G' at x=5, y=1 cannot be reached" in lr.problems(g2)[0]
    # Mega Man: the ladder shaft is climbed, not jumped (it is 6 rows)
    assert mm.jump[0] <= 2 and mm.params["one_start"]
    # Kid Icarus: one-way platforms are stood on, jumped up through
    assert "one-way platforms" in ki.describe() and ki.jump[0] <= 6
    # Zelda: the stairs and every door reached from the entrance
    assert rules["zelda"].params["required"] == ["stairs", "door"]
    # without climbing a Lode Runner level's upper floors are out of reach
    g = corpora["lr"].grids[0]
    flat = Rules("side", [sorted(set(r) - {"climbable", "rope"}) for r in lr.roles], dict(lr.params), chars=lr.chars)
    top_row = int(np.argwhere(flat.solid(g)[1:] & ~flat.solid(g)[:-1])[:, 0].min())
    start, _ = lr.endpoints(g)
    assert any(y <= top_row for _, y in lr.reach(g, start)) and not any(y <= top_row for _, y in flat.reach(g, start))


def test_climbing_moves():
    roles = [["solid"], [], ["climbable"], ["climbable", "rope"], ["platform"]]
    r = Rules("side", roles, {"jump_height": 0, "jump_distance": 1})
    X, _, L, R, P = 0, 1, 2, 3, 4
    g = np.array([[_, _, _, _, _],
                  [X, X, L, X, X],
                  [_, _, L, R, R],
                  [_, _, L, _, _],
                  [X, X, X, X, X]], dtype=np.uint8)
    got = r.reach(g, (0, 3))
    assert (2, 0) in got  # up the ladder and onto its top
    assert (4, 2) in got  # along the rope
    assert (4, 3) in got  # let go of the rope: fall to the floor
    g2 = np.array([[_, _, _],
                   [P, P, P],
                   [_, _, _],
                   [X, X, X]], dtype=np.uint8)
    r2 = Rules("side", roles, {"jump_height": 2, "jump_distance": 1})
    assert (1, 0) in r2.reach(g2, (1, 2))  # straight up through a one-way platform, standing on it


def test_strict_start_and_goal():
    """Every corpus level has exactly one start and one goal: a level with two starts (the first no longer
    wins) or none (the left edge no longer stands in) fails; so does a missing goal (no right-edge stand-in)."""
    roles = [["solid"], [], ["start"], ["goal"]]
    rows = ["......", "S....G", "XXXXXX"]
    lut = {"X": 0, ".": 1, "S": 2, "G": 3}

    def grid(rs):
        return np.array([[lut[c] for c in r] for r in rs], dtype=np.uint8)

    class C:  # the little a corpus needs for fit_rules
        view, orientation = "side", "horizontal"
        grids = [grid(rows), grid(["S....G", "XX.XXX", "XXXXXX"])]
        sources = ["a", "b"]

        class tileset:
            tiles = []

    from plugins.learned_levels import rules as rules_mod

    fit = rules_mod.Rules("side", roles, {})
    ones = {r: all(fit._count(roles, g, r) == 1 for g in C.grids) for r in ("start", "goal")}
    assert ones == {"start": True, "goal": True}
    r = Rules("side", roles, {"jump_height": 1, "jump_distance": 2, "one_start": True, "one_goal": True})
    assert r.problems(grid(rows)) == []
    assert "2 start tiles" in r.problems(grid(["S.....", "S....G", "XXXXXX"]))[0]
    assert "0 start tiles" in r.problems(grid(["......", ".....G", "XXXXXX"]))[0]
    assert "0 goal tiles" in r.problems(grid(["......", "S.....", "XXXXXX"]))[0]
    lenient = Rules("side", roles, {"jump_height": 1, "jump_distance": 2})
    assert lenient.problems(grid(["......", "S.....", "XXXXXX"])) == []  # no start/goal fitted: edges stand in
    assert Rules.from_dict(r.to_dict()).params["one_goal"] is True
    with pytest.raises(InputError, match="one_start"):
        Rules.from_dict({**r.to_dict(), "params": {**r.params, "one_start": "yes"}})


def test_strict_start_fitted_on_a_corpus(corpora, rules):
    lr = rules["lr"]
    g = corpora["lr"].grids[0].copy()
    spawn = next(t.id for t in corpora["lr"].tileset.tiles if t.char == "M")
    empty = next(t.id for t in corpora["lr"].tileset.tiles if t.char == ".")
    g2 = g.copy()
    g2[g2 == spawn] = empty
    assert "0 start tiles" in lr.problems(g2)[0]
    ys, xs = np.nonzero(g == empty)
    g3 = g.copy()
    g3[ys[0], xs[0]] = spawn
    assert "2 start tiles" in lr.problems(g3)[0]


def _tall_corpus(tmp_path: Path, drops: list[int]) -> Path:
    """Side-view levels 20 rows high whose only drops are ``drops`` (steps down a staircase)."""
    d = tmp_path / "Stairs" / "Processed"
    d.mkdir(parents=True)
    (tmp_path / "Stairs" / "stairs.json").write_text(json.dumps(
        {"tiles": {"X": ["solid", "ground"], "-": ["passable", "empty"]}}))
    for i, drop in enumerate(drops):
        H, W = 20, 40
        g = [["-"] * W for _ in range(H)]
        level = 4
        for x in range(W):
            if x and x % 10 == 0:
                level = min(H - 2, level + drop)
            for y in range(level, H):
                g[y][x] = "X"
        (d / f"s{i}.txt").write_text("\n".join("".join(r) for r in g) + "\n")
    return tmp_path / "Stairs"


def test_fall_height_fitted_when_the_corpus_shows_a_bound(tmp_path):
    c = load_corpus([_tall_corpus(tmp_path / "a", [2, 3, 2])])
    r = fit_rules(c)
    assert r.max_fall == 3 and r.report["corpus_pass"] == 1.0
    assert "falls of 3 rows at most" in r.describe()
    deep = _grid(c, ["-" * 12] * 4 + ["X" * 5 + "-" * 7] + ["X" * 5 + "-" * 7] * 4 + ["X" * 12] * 11)
    assert "falls of 3 at most" in r.problems(deep)[0]
    assert Rules("side", r.roles, {**r.params, "max_fall": 0}).problems(deep) == []
    # a corpus whose levels already drop half their height: no bound (any fall), as the shipped corpora
    assert fit_rules(load_corpus([_tall_corpus(tmp_path / "b", [2, 12])])).max_fall == 0


def test_shipped_corpora_rules_unchanged():
    """Corpora without climbable/platform tiles and with long drops fit as before (the shipped weights'
    rules stay what they validate against)."""
    c = load_corpus([Path("plugins/data/corpora/mario-like")])
    r = fit_rules(c)
    assert (r.jump, r.max_fall, r.report["corpus_pass"]) == ((4, 4), 0, 1.0)


def test_vertical_corpus_refused_by_a_horizontal_generator(corpora):
    from plugins.learned_levels.model import refuse_vertical

    with pytest.raises(InputError) as e:
        refuse_vertical(corpora["ki"], "platformer-gan", ["Kid Icarus"])
    msg = str(e.value)
    assert "\n" not in msg and "platformer-gan" in msg and "Kid Icarus" in msg and "vertical" in msg
    refuse_vertical(corpora["smb"], "platformer-gan", ["smb"])  # horizontal: fine
    refuse_vertical(corpora["ki"], "some-gen", ["Kid Icarus"], supported=True)


def test_bad_corpora_one_line(tmp_path):
    # Zelda as published has no tile legend: every level is skipped with that reason, in one line
    with pytest.raises(CorpusError) as e:
        load_corpus([DATA / "The Legend of Zelda"])
    assert "\n" not in str(e.value) and "no legend" in str(e.value)
    # VGLC Zelda's room graphs (Graphviz) beside the levels are skipped as what they are
    z = tmp_path / "Z"
    shutil.copytree(DATA / "The Legend of Zelda", z)
    (z / "Graph Processed").mkdir()
    (z / "Graph Processed" / "tloz1_1.dot").write_text('digraph G {\n  0 [label="e"];\n}\n')
    c = load_corpus([z], legend=ZELDA_LEGEND)
    assert len(c.grids) == 4 and any(p.endswith(".dot") and "Graphviz" in r for p, r in c.skipped)
    # vertical levels of another width are skipped with their reason
    d = tmp_path / "KI"
    shutil.copytree(DATA / "Kid Icarus", d)
    (d / "Processed" / "odd.txt").write_text("\n".join(["#-------#"] * 30 + ["#########"]) + "\n")
    c = load_corpus([d])
    assert len(c.grids) == 4 and any("9 columns wide" in r for _, r in c.skipped)


def test_card_paths_work_from_any_folder(tmp_path, monkeypatch):
    """A model card's files are found relative to the card, wherever the command reading it runs."""
    from engine import Engine
    from engine.training import train
    from plugins.learned_levels.model import card_corpus

    work = tmp_path / "work"
    shutil.copytree(DATA / "Lode Runner", work / "Lode Runner")
    monkeypatch.chdir(work)
    eng = Engine(entry_points=False)
    card = train(eng, "platformer-gan", ["Lode Runner"], epochs=1, out="models/lr", show_progress=False, tiny=1)
    assert card["data"][0]["path"].startswith("Lode Runner/")  # as the command wrote it (relative to work/)
    assert card["data"][0]["from_card"].startswith("../../Lode Runner/")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    got, _ = card_corpus(json.loads((work / "models/lr/model.json").read_text()), work / "models/lr/model.safetensors")
    assert len(got.grids) == 5
    assert not (elsewhere / "Lode Runner").exists() and os.getcwd() == str(elsewhere)


def test_text_as_editors_leave_it(tmp_path):
    """CRLF line ends, a byte-order mark, trailing blank lines and trailing blanks (when the legend has no
    blank tile) read as the same level."""
    src = DATA / "Super Mario Bros" / "Processed" / "mario-1-1.txt"
    text = src.read_text()
    d = tmp_path / "G" / "Processed"
    d.mkdir(parents=True)
    shutil.copy(DATA / "Super Mario Bros" / "smb.json", tmp_path / "G" / "smb.json")
    (d / "crlf.txt").write_bytes(text.replace("\n", "\r\n").encode())
    (d / "bom.txt").write_bytes("\ufeff".encode() + text.encode())
    (d / "blank-lines.txt").write_text(text + "\n\n")
    (d / "blanks.txt").write_text("\n".join(line + "  " for line in text.splitlines()) + "\n")
    c = load_corpus([tmp_path / "G"])
    assert len(c.grids) == 4 and not c.skipped
    assert all(np.array_equal(g, c.grids[0]) for g in c.grids)


@pytest.mark.parametrize("gen", ["platformer-gan", "dungeon-vae"])  # level-lm: its own tests (rows bottom-first)
def test_cli_train_refuses_a_vertical_corpus_in_one_line(gen, tmp_path):
    from .conftest import run_cli

    r = run_cli("train", gen, "--data", DATA / "Kid Icarus", "--out", tmp_path / "o", "-O", "tiny=1")
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert gen in last and ("vertical" in last or "top-down" in last), last
    assert not (tmp_path / "o").exists()


def test_evaluate_metrics_are_strict_json():
    """A figure that cannot be measured (the diversity of fewer than two levels) is None, not NaN."""
    from engine.evaluate import _finite

    got = _finite({"diversity": float("nan"), "kl": [1.0, float("inf")], "own": {"x": (float("-inf"), 2)}})
    assert got == {"diversity": None, "kl": [1.0, None], "own": {"x": (None, 2)}}
    json.dumps(got, allow_nan=False)
