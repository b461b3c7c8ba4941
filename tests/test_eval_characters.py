"""``conjure evaluate`` for character generators (engine/eval_characters.py)."""
import json

import pytest

import numpy as np

from engine.eval_characters import BigramNB, RoleClassifier, holdout_accuracy, sprite_diversity, sprite_novelty
from engine.evaluate import evaluate

from .conftest import run_cli

KEYS = {"name_novelty", "name_uniqueness", "name_filter_pass", "style_accuracy", "style_accuracy_corpus_holdout",
        "style_chance", "stats_compliance", "sprite_diversity", "silhouette_diversity", "distinct_silhouettes",
        "ms_per_character_batch", "ms_per_request_single", "batch_speedup", "pixel_art_rules"}
ML_KEYS = KEYS | {"sprite_novelty", "sprite_exact_copies", "sprite_min_hamming_p5", "role_accuracy",
                  "role_accuracy_corpus", "role_chance"}


def corpus_names():
    from plugins.learned_characters.data import shipped_names

    return shipped_names()


def test_eval_characters_does_not_import_plugins():
    import ast
    from pathlib import Path

    import engine.eval_characters as ec

    tree = ast.parse(Path(ec.__file__).read_text())
    mods = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    mods += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in mods if m.startswith("plugins")]


def test_sprite_novelty_and_role_classifier():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 3, (20, 2, 16, 16)).astype(np.uint8)
    same = train[:5].copy()
    near = train[5:10].copy()
    near[:, 0, 0, :4] = (near[:, 0, 0, :4] + 1) % 3  # 4 pixels off: too close
    far = rng.integers(0, 3, (10, 2, 16, 16)).astype(np.uint8)
    m = sprite_novelty(np.concatenate([same, near, far]), train)
    assert m["sprite_exact_copies"] == 0.25 and m["sprite_novelty"] == 0.5
    # two roles told apart by where their pixels are
    a = np.zeros((10, 2, 16, 16), np.uint8)
    a[:, :, :8] = 2
    b = np.zeros((10, 2, 16, 16), np.uint8)
    b[:, :, 8:] = 2
    clf = RoleClassifier(np.concatenate([a, b]), ["top"] * 10 + ["bottom"] * 10, 3)
    assert clf.predict(np.concatenate([a[:2], b[:2]])) == ["top", "top", "bottom", "bottom"]


def test_style_classifier_separates_the_corpora():
    corpora = corpus_names()
    assert len(corpora) == 5
    assert holdout_accuracy(corpora) > 0.8
    nb = BigramNB(corpora)
    assert nb.predict("Gro'mak") == "orcish" and nb.predict("Elithiel") == "elven"


def test_evaluate_character_ml_with_report(eng, tmp_path):
    pytest.importorskip("torch")
    m = evaluate(eng, "character-ml", count=40, seed=1, report=tmp_path)
    assert ML_KEYS <= set(m), ML_KEYS - set(m)
    assert m["pixel_art_rules"] == 1.0 and m["sprite_novelty"] >= 0.9 and m["role_accuracy"] > 0.5
    assert m["name_novelty"] == 1.0  # copies are resampled
    assert m["stats_compliance"] == 1.0 and m["name_filter_pass"] == 1.0
    assert m["style_accuracy"] > 0.6 > m["style_chance"]
    assert m["sprite_diversity"] > 0.05 and m["distinct_silhouettes"] > 0.3
    text = (tmp_path / "report.md").read_text()
    assert "name_novelty" in text and "Style confusion" in text and "![idle frames](sprites.png)" in text
    assert (tmp_path / "sprites.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "walk.png").is_file() and (tmp_path / "compare.png").is_file()
    assert "Role confusion" in text and "![compare](compare.png)" in text


def test_evaluate_classic_character(eng):
    m = evaluate(eng, "classic-character", count=30, seed=2, params={"budget": 50})
    assert KEYS <= set(m)
    assert m["stats_compliance"] == 1.0
    assert 0 <= m["style_accuracy"] <= 1 and m["sprite_diversity"] > 0


def test_sprite_diversity_of_identical_sprites_is_zero(eng):
    c = eng.generate("character", "classic-character", 3)
    d = sprite_diversity([c, c, c])
    assert d["sprite_diversity"] == 0 and d["silhouette_diversity"] == 0


def test_cli_evaluate_json(tmp_path):
    r = run_cli("evaluate", "classic-character", "--count", "12", "--json", "--report", tmp_path)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["stats_compliance"] == 1.0 and (tmp_path / "report.md").is_file()
