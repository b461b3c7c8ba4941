"""engine.eval_levels: metrics for classic and learned level generators, and the report files."""
import numpy as np

from engine import eval_levels as ev

from .conftest import run_cli


def test_evaluate_learned_writes_report(eng, tmp_path):
    from engine.evaluate import evaluate

    m = evaluate(eng, "dungeon-vae", count=24, seed=0, report=tmp_path / "r")
    assert m["playability_after"] == 1.0
    assert 0.0 <= m["playability_raw"] <= 1.0
    assert 0.0 < m["diversity"] < 1.0
    assert m["novelty"] >= 0.9 and m["kl_2x2"] >= 0 and m["kl_3x3"] >= m["kl_2x2"] * 0.5
    for f in ("report.md", "samples.png", "expressive_range.png"):
        assert (tmp_path / "r" / f).stat().st_size > 100
    assert "expressive_range.png" in (tmp_path / "r" / "report.md").read_text()


def test_evaluate_classic_against_shipped_corpus(eng):
    from engine.evaluate import evaluate

    m = evaluate(eng, "platformer", count=6, seed=1, report=None)
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
