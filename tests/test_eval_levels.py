"""engine.eval_levels: metrics for classic and learned level generators, and the report files."""
import numpy as np

from engine import eval_levels as ev

from .conftest import ROOT, run_cli


def test_evaluate_learned_writes_report(eng, tmp_path):
    from engine.evaluate import evaluate

    m = evaluate(eng, "dungeon-vae", count=24, seed=0, report=tmp_path / "r")
    assert m["playability_after"] == 1.0
    assert 0.0 <= m["playability_raw"] <= 1.0
    assert 0.0 < m["diversity"] < 1.0
    assert m["novelty"] >= 0.9 and m["kl_2x2"] >= 0 and m["kl_3x3"] >= m["kl_2x2"] * 0.5
    for f in ("report.md", "samples.png", "expressive_range.png", "corpus.png"):
        assert (tmp_path / "r" / f).stat().st_size > 100
    text = (tmp_path / "r" / "report.md").read_text()
    assert "expressive_range.png" in text and "Output vs the corpus's own figures" in text
    assert "| `D` | door |" in text and "trained on" in text  # the shipped dungeon-vae: zelda-like rooms
    assert 0 < m["fidelity_3x3"] <= m["fidelity_2x2"] <= 1 and m["corpus_own"]["fidelity_2x2"] > 0.9


def test_evaluate_classic_against_shipped_corpus(eng):
    from engine.evaluate import evaluate

    # the shipped platformer-gan weights now learn corpora/mario-like (another tileset): the classic platformer
    # is measured against the shipped corpus of its own tileset, named with --data
    m = evaluate(eng, "platformer", count=6, seed=1, report=None, data=[ROOT / "plugins/data/levels/platformer"])
    assert m["playability_after"] == 1.0 and isinstance(m["novelty"], float) and m["kl_3x3"] > 0
    m = evaluate(eng, "terrain", count=3, seed=1, report=None) if "terrain" in [g.id for g in eng.generators("level")] else {"novelty": "n/a"}
    assert m["novelty"] == "n/a"


def test_metric_helpers():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 4, (20, 30))
    c = ev.pattern_counts([g], 2, 4)
    assert ev.kl_divergence(c, c) == 0.0
    assert ev.kl_divergence(c, ev.pattern_counts([rng.integers(0, 4, (20, 30))], 2, 4)) > 0
    wins = ev._windows(g, 8, 8, 2, 2)
    d = ev.nearest_distances(wins[:3], wins, 4)
    assert np.allclose(d, 0)
    other = rng.integers(0, 4, (3, 8, 8))
    assert (ev.nearest_distances(other, wins, 4) > 0.3).all()


def test_cli_evaluate_json(tmp_path):
    r = run_cli("evaluate", "dungeon", "--count", "5", "--json", "--report", tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "report.md").is_file()


def test_corpus_figures_on_the_corpus_itself():
    from plugins.learned_levels.corpus import load_corpus

    c = load_corpus([ROOT / "plugins/data/corpora/mario-like"])
    train, held = c.split()
    f = ev.corpus_figures([c.grids[i] for i in train], c, train=train, held=held)
    m, own = f["model"], f["corpus"]
    assert m["fidelity_2"] == m["fidelity_3"] == 1.0 and m["novelty"] == 0.0  # copies of training levels
    assert 0.9 < own["fidelity_2"] <= 1.0 and own["novelty"] == 1.0 and own["kl_2x2"] > 0
    shares = {t["char"]: t for t in f["tiles"]}
    assert abs(sum(t["corpus"] for t in f["tiles"]) - 1) < 1e-3 and shares["<"]["corpus"] > 0
    # a grid with a pattern the corpus never has (a pipe top alone in the air) lowers fidelity
    g = c.grids[train[0]].copy()
    pipe = [t.id for t in c.tileset.tiles if t.char == ">"][0]
    g[2:5, 10:40] = pipe
    assert ev.corpus_figures([g], c, train=train, held=held)["model"]["fidelity_3"] < 1.0
