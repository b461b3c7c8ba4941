"""platformer-gan: determinism (across processes, batch vs single), controls, validity, any width from 16,
the shipped weights, and a tiny training run end to end."""
import json
import shutil

import numpy as np
import pytest

from engine.weights import check_safetensors, load_model_card

from .conftest import ROOT, run_cli

GEN = "platformer-gan"
MODELS = ROOT / "plugins" / "data" / "models"
MARIO = ROOT / "plugins" / "data" / "corpora" / "mario-like"


def _grid(eng, lv, weights=""):
    return eng.generator(GEN).model(weights).grid_of(lv)


def test_cli_byte_identical_across_processes(tmp_path):
    outs = []
    for i in range(2):
        p = tmp_path / f"{i}.msgpack"
        r = run_cli("generate", "level", "-g", GEN, "-s", "1", "-p", "width=48", "-p", "pipes=some", "-o", p)
        assert r.returncode == 0, r.stderr
        outs.append(p.read_bytes())
    assert outs[0] == outs[1]


def test_batch_equals_one_by_one_and_valid(eng):
    """A batch samples all its levels together (numpy, vectorised across levels): each level has the bytes of
    the same request alone; every level passes validate; all differ."""
    for params, seeds in (({"width": 48}, list(range(12))), ({"width": 40, "enemies": "many"}, list(range(8)))):
        batch = eng.generate_batch("level", GEN, seeds, params)
        for s in (0, 5, seeds[-1]):
            assert eng.generate("level", GEN, s, params).to_dict() == batch[s].to_dict()
        for s, lv in zip(seeds, batch):
            assert eng.problems(lv, eng.request("level", GEN, s, params)) == []
            m = lv.metadata
            assert isinstance(m["raw_valid"], bool) and isinstance(m["repaired"], bool)
            assert m["decoding"] == "sampled, corpus 3x3 patterns"
        assert len({lv.tiles.tobytes() for lv in batch}) == len(batch)


@pytest.mark.parametrize("attr", ["pipes", "enemies", "gaps", "elevation"])
def test_controls_land_in_their_bucket(eng, attr):
    """``none`` is exact by construction (the attribute's tiles are banned while sampling); ``many`` is
    steered to a count inside the bucket: both land there on the first try (raw, no resampling)."""
    gen = eng.generator(GEN)
    m = gen.model()
    for bucket in ("none", "many"):
        params = {"width": 100, attr: bucket}
        for lv in eng.generate_batch("level", GEN, range(3), params):
            assert lv.metadata["measured"][attr] == bucket, (attr, bucket, lv.metadata)
            assert lv.metadata["asked"] == {attr: bucket}
            assert m.buckets_of(m.grid_of(lv))[attr] == bucket
            req = eng.request("level", GEN, 0, params)
            assert gen.validate(lv, req) == []
            if bucket == "none":
                assert lv.metadata[attr] == 0


def test_validate_names_a_missed_control(eng):
    gen = eng.generator(GEN)
    lv = eng.generate("level", GEN, 3, {"width": 100, "pipes": "many"})
    req = eng.request("level", GEN, 3, {"width": 100, "pipes": "none"})
    assert any(p.startswith("control pipes=none missed: measured many") for p in gen.validate(lv, req))


def test_width_from_one_screen(eng):
    for w in (16, 17, 33, 130):
        lv = eng.generate("level", GEN, 2, {"width": w})
        assert lv.width == w and lv.height == 14 and eng.problems(lv, eng.request("level", GEN, 2, {"width": w})) == []
    with pytest.raises(Exception, match="width"):
        eng.generate("level", GEN, 2, {"width": 15})


def test_check_generator_and_corpus_patterns(eng):
    """check_generator (determinism, params, validity); every 3×3 window of an output, its edges included,
    occurs in the training corpus; rare kinds appear, pipes with tops, VGLC enemies stay tiles."""
    from engine.testing import check_generator
    from plugins.learned_levels.decode import strips_side

    check_generator(eng, GEN, seeds=[0, 5], params_cases=[{"width": 40}, {"width": 70, "gaps": "few"}])
    levels = eng.generate_batch("level", GEN, list(range(6)), {"width": 64})
    m = eng.generator(GEN).model()
    glyphs = set()
    for lv in levels:
        g = m.grid_of(lv)
        assert lv.metadata["pattern_fallbacks"] == 0 and m.patterns().fidelity(strips_side(g)) == 1.0
        assert lv.entities == []
        glyphs |= {m.tileset.tiles[int(i)].char for i in np.unique(g)}
    assert {"<", ">", "[", "]", "?", "o", "E"} <= glyphs, glyphs


def test_latent_search_and_params(eng):
    lv = eng.generate("level", GEN, 4, {"search": 0, "repair": True, "width": 48})
    assert lv.metadata["search_generations"] == 0
    with pytest.raises(Exception, match="enemies"):
        eng.generate("level", GEN, 4, {"enemies": "lots"})


def test_shipped_weights_are_the_mario_like_model_with_a_card():
    folder = MODELS / GEN
    f = folder / "model.safetensors"
    card = load_model_card(folder / "model.json")
    assert card["command"].startswith(f"conjure train {GEN} --data plugins/data/corpora/mario-like ")
    assert card["generator"] == GEN and card["data"] and card["metrics"]
    assert f.stat().st_size <= 5 * 1024 * 1024
    tensors = check_safetensors(f.read_bytes(), str(f))
    assert "model.safetensors" in [w["file"] for w in card["weights"]]
    assert {"__controls__", "__patterns3__", "__tile_shares__"} <= set(tensors)


def test_declares_its_cost_so_huge_searches_are_refused_up_front():
    import engine
    from engine.generator import Costed

    eng = engine.Engine()
    gen = eng.generator(GEN)
    assert isinstance(gen, Costed)
    assert gen.cost({p.name: p.default for p in gen.params}) == 1.0
    with pytest.raises(engine.InputError, match=r"platformer-gan.*asks for 1,320x the work of its defaults"):
        eng.generate("level", GEN, params={"width": 2000, "search": 100, "population": 64})


def test_tiny_training_then_generate_with_controls_anywhere(eng, tmp_path):
    """A tiny run of `conjure train` on the VGLC-layout corpus; the weights carry the control buckets, the
    pattern table and the tile shares, so a copy away from the corpus generates the same bytes."""
    out = tmp_path / "gan"
    r = run_cli("train", GEN, "--data", MARIO, "--epochs", "1", "-O", "tiny=1", "--out", out)
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "model.json").read_text())
    assert card["command"].startswith(f"conjure train {GEN} --data") and card["epochs"] == 1
    assert all(h["held_out"] is not None for h in card["history"])
    params = {"weights": str(out), "width": 40, "enemies": "none", "pipes": "some"}
    lv = eng.generate("level", GEN, 0, params)
    assert lv.metadata["measured"]["enemies"] == "none" and eng.problems(lv, eng.request("level", GEN, 0, params)) == []
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(out / "model.safetensors", moved)
    doc = json.loads((out / "model.json").read_text())
    for d in doc["data"]:
        d["path"] = "nowhere/" + d["path"].split("/")[-1]
    (moved / "model.json").write_text(json.dumps(doc))
    again = eng.generate("level", GEN, 0, {**params, "weights": str(moved)})
    assert again.tiles.tobytes() == lv.tiles.tobytes()


def test_controls_are_fitted_with_level_lms_buckets_and_absent_attributes_refused(eng):
    """The buckets are level-lm's (the same measure and thresholds on the same corpus); an attribute whose tiles
    never occur in the training levels is not offered: asking it is one clear error, `none` is still fine."""
    import engine
    from plugins.learned_level_lm.controls import Buckets
    from plugins.platformer_gan import check_controls, fit_controls

    m = eng.generator(GEN).model()
    corpus = m.corpus()
    train, _ = m.split(corpus)
    doc = fit_controls([corpus.grids[i] for i in train], m.masks, m.classes)
    assert doc["buckets"] == m.controls()["buckets"].to_dict() and doc["base"] == m.controls()["base"] == 2
    from plugins.level_lm import load

    lm = load("", "side").spec  # level-lm's shipped side model: the same corpus, its own fit
    assert lm.base == doc["base"] and Buckets(doc["buckets"]).t == lm.buckets.t
    grids = [np.where(m.masks["enemy"][g], m.air, g) for g in (corpus.grids[i] for i in train)]  # enemies -> air
    c = check_controls(fit_controls(grids, m.masks, m.classes), "test")
    assert "enemies" not in c["available"] and "pipes" in c["available"]
    gen = eng.generator(GEN)
    saved = m._controls
    try:
        m._controls = c
        with pytest.raises(engine.InputError, match="enemies=few: this model's training levels have no enemies"):
            gen.asked(m, eng.request("level", GEN, 0, {"enemies": "few"}))
        assert gen.asked(m, eng.request("level", GEN, 0, {"enemies": "none", "pipes": "some"})) == {"pipes": "some"}
    finally:
        m._controls = saved


def test_lode_runner_like_corpus_trains_and_generates_valid_levels(eng, tmp_path):
    """On a corpus whose rules are more than the jump model (Lode Runner: no jumping, ladders and ropes, exactly
    one spawn, every gold reached) the sampler tracks reachability with the rules' own search, the latent search
    is scored by them, and the default width is the corpus's one level width (32)."""
    lr = ROOT / "tests" / "data" / "vglc-like" / "Lode Runner"
    out = tmp_path / "lr"
    r = run_cli("train", GEN, "--data", lr, "--epochs", "1", "-O", "tiny=1", "--out", out)
    assert r.returncode == 0, r.stderr
    gen = eng.generator(GEN)
    m = gen.model(str(out))
    assert not m.exact_jumps and gen.model("").exact_jumps  # the shipped mario-like rules are the jump model
    assert m.rules.params.get("required") == ["collectable"] and m.rules.params.get("one_start")
    params = {"weights": str(out)}
    levels = eng.generate_batch("level", GEN, [0, 1, 2, 3], params)  # 4: the vectorised batch sampler
    for s, lv in enumerate(levels):
        assert (lv.width, lv.height) == (32, 22)
        req = eng.request("level", GEN, s, params)
        assert eng.problems(lv, req) == []
        g = _grid(eng, lv, str(out))
        assert m.rules.problems(g) == [] and int(m.rules._mask["start"][g].sum()) == 1
    assert [lv.tiles.tobytes() for lv in levels] == [eng.generate("level", GEN, s, params).tiles.tobytes()
                                                     for s in range(4)]
    with pytest.raises(Exception, match="width"):
        eng.generate("level", GEN, 0, {**params, "width": 15})
