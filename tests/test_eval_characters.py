"""``conjure evaluate`` for character generators (engine/eval_characters.py)."""
import json

import pytest

from engine.eval_characters import BigramNB, corpus_names, holdout_accuracy, sprite_diversity
from engine.evaluate import evaluate

from .conftest import run_cli

KEYS = {"name_novelty", "name_uniqueness", "name_filter_pass", "style_accuracy", "style_accuracy_corpus_holdout",
        "style_chance", "stats_compliance", "sprite_diversity", "silhouette_diversity", "distinct_silhouettes",
        "ms_per_character_batch", "ms_per_request_single"}


def test_style_classifier_separates_the_corpora():
    corpora = corpus_names()
    assert len(corpora) == 5
    assert holdout_accuracy(corpora) > 0.8
    nb = BigramNB(corpora)
    assert nb.predict("Gro'mak") == "orcish" and nb.predict("Elithiel") == "elven"


def test_evaluate_character_ml_with_report(eng, tmp_path):
    pytest.importorskip("torch")
    m = evaluate(eng, "character-ml", count=40, seed=1, report=tmp_path)
    assert KEYS <= set(m)
    assert m["name_novelty"] == 1.0  # copies are resampled
    assert m["stats_compliance"] == 1.0 and m["name_filter_pass"] == 1.0
    assert m["style_accuracy"] > 0.6 > m["style_chance"]
    assert m["sprite_diversity"] > 0.05 and m["distinct_silhouettes"] > 0.3
    text = (tmp_path / "report.md").read_text()
    assert "name_novelty" in text and "Style confusion" in text and "![idle frames](sprites.png)" in text
    assert (tmp_path / "sprites.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "walk.png").is_file()


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
