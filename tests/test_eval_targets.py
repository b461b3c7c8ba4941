"""The learned-level targets in ``conjure evaluate`` (engine/eval_targets.py) and the LevelControls protocol."""
from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import Generator, Level, Param, Tileset, hookimpl
from engine.eval_targets import control_figures, level_targets, report_lines
from engine.generator import LevelControls

from .conftest import run_cli_process

GOOD = {"playability_raw": 0.97, "playability_after": 1.0, "mean_tries": 1.2, "fidelity_3x3": 0.995,
        "novelty_exact": 1.0, "kl_2x2": 0.02, "diversity": 0.09,
        "corpus_own": {"kl_2x2": 0.018, "diversity": 0.1},
        "tiles": [{"char": "X", "name": "ground", "model": 0.15, "corpus": 0.14},
                  {"char": "?", "name": "block", "model": 0.004, "corpus": 0.004},   # 0.4% share: not judged
                  {"char": "<", "name": "pipe", "model": 0.003, "corpus": 0.006}]}


def _by_name(rows):
    return {r["name"]: r for r in rows}


def test_every_target_met_on_good_figures():
    rows = _by_name(level_targets(GOOD))
    assert set(rows) == {"playable_raw", "playable_returned", "fidelity_3x3", "tile_kinds", "novelty", "kl_2x2",
                         "diversity"}
    assert all(r["met"] for r in rows.values()), rows
    assert "1.111×" in rows["kl_2x2"]["value"] and "0.900×" in rows["diversity"]["value"]
    assert rows["tile_kinds"]["value"].startswith("2/2 kinds")


@pytest.mark.parametrize("change, missed", [
    ({"playability_raw": 0.94}, "playable_raw"),
    ({"playability_after": 0.99}, "playable_returned"),
    ({"mean_tries": 3.5}, "playable_returned"),
    ({"fidelity_3x3": 0.98}, "fidelity_3x3"),
    ({"novelty_exact": 0.995}, "novelty"),
    ({"kl_2x2": 0.028}, "kl_2x2"),
    ({"diversity": 0.07}, "diversity"),
    ({"tiles": [{"char": "<", "name": "pipe", "model": 0.0029, "corpus": 0.006}]}, "tile_kinds"),
    ({"tiles": [{"char": "<", "name": "pipe", "model": 0.0121, "corpus": 0.006}]}, "tile_kinds"),
])
def test_each_miss_is_named_with_its_figure(change, missed):
    rows = _by_name(level_targets({**GOOD, **change}))
    assert [n for n, r in rows.items() if not r["met"]] == [missed]
    lines = "\n".join(report_lines(list(rows.values())))
    assert f"| {missed} |" in lines and "**missed**" in lines
    if missed == "tile_kinds":
        assert "outside: `<`" in rows[missed]["value"]


def test_no_corpus_no_corpus_rows():
    rows = _by_name(level_targets({"playability_raw": 1.0, "playability_after": 1.0, "mean_tries": 1.0,
                                   "novelty": "n/a", "kl_2x2": "n/a"}))
    assert set(rows) == {"playable_raw", "playable_returned"}


# --------------------------------------------------------------------------------------------- controls
class Blocks(Generator):
    """A toy level generator with one control: ``blocks`` none/few/many; "many" lands only 3 times in 4."""
    id = "blocks-toy"
    kind = "level"
    version = "1"
    params = (Param("blocks", "choice", "any", choices=("any", "none", "few", "many")),)

    def generate(self, request):
        rng = request.rng()
        n = {"none": 0, "few": 2, "many": 10, "any": int(rng.integers(0, 11))}[request.params["blocks"]]
        if request.params["blocks"] == "many" and rng.random() < 0.25:
            n = 3
        tiles = np.zeros((4, 16), dtype=np.uint8)
        tiles.ravel()[:n] = 1
        return Level(layers={"tiles": tiles}, tileset=_tileset())

    def level_controls(self, params):
        return {"blocks": ("none", "few", "many")}

    def measure_controls(self, level, params):
        n = int(level.layers["tiles"].sum())
        return {"blocks": "none" if n == 0 else "few" if n <= 4 else "many"}


def _tileset():
    from engine import TileDef

    return Tileset("toy", [TileDef(0, "floor", "-"), TileDef(1, "block", "X")])


class _Plugin:
    @hookimpl
    def register_level_generators(self, register):
        register(Blocks())


def test_control_figures_count_landings_per_bucket():
    eng = engine.Engine(plugins=[_Plugin()], entry_points=False)
    gen = eng.generator("blocks-toy")
    assert isinstance(gen, LevelControls)
    figs = control_figures(eng, gen, per_bucket=40, seed=3, params={})
    assert set(figs["blocks"]) == {"none", "few", "many"}
    assert figs["blocks"]["none"] == {"asked": 40, "judged": 40, "landed": 40, "first_try": 40}
    assert figs["blocks"]["few"]["landed"] == 40
    assert 20 <= figs["blocks"]["many"]["landed"] < 40  # about 3 in 4
    assert figs == control_figures(eng, gen, per_bucket=40, seed=3, params={})  # seeded
    rows = _by_name(level_targets({"controls": figs}))
    assert rows["controls.blocks"]["met"] is False and "many" in rows["controls.blocks"]["value"]


def test_level_lm_declares_controls_and_the_cli_reports_targets(tmp_path):
    eng = engine.Engine(entry_points=False)
    gen = eng.generator("level-lm")
    assert isinstance(gen, LevelControls)
    assert set(gen.level_controls({})) == {"pipes", "enemies", "gaps", "elevation"}
    assert "none" not in gen.level_controls({"model": "top"})["rooms"]
    r = run_cli_process("evaluate", "level-lm", "--count", "3", "-p", "width=48", "--controls", "1",
                        "--report", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    out = r.stdout.decode()
    assert "targets: " in out and "controls.pipes:" in out and "playable_raw:" in out
    assert "## Targets" in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    bad = run_cli_process("evaluate", "story-lm", "--count", "1", "--controls", "2")
    assert bad.returncode == 2 and b"--controls" in bad.stderr


@pytest.mark.parametrize("gen_id, attrs", [("platformer-gan", {"pipes", "enemies", "gaps", "elevation"}),
                                           ("dungeon-vae", {"rooms", "enemies"})])
def test_learned_level_generators_declare_their_controls(eng, gen_id, attrs):
    gen = eng.generator(gen_id)
    assert isinstance(gen, LevelControls)
    controls = gen.level_controls({})
    assert attrs <= set(controls)
    a = sorted(attrs)[0]
    level = eng.generate("level", gen_id, 5, {a: "none"})
    assert gen.measure_controls(level, {a: "none"})[a] == "none"


class NeverMany(Blocks):
    """``many`` is never valid: the engine gives up on it after its tries."""
    id = "blocks-never-many"

    def validate(self, level, request):
        return ["too many blocks"] if request.params["blocks"] == "many" else []


class _NeverPlugin:
    @hookimpl
    def register_level_generators(self, register):
        register(NeverMany())


def test_a_bucket_the_engine_cannot_make_is_counted_as_missed_not_an_abort():
    eng = engine.Engine(plugins=[_NeverPlugin()], entry_points=False, tries=2)
    gen = eng.generator("blocks-never-many")
    figs = control_figures(eng, gen, per_bucket=4, seed=1, params={})
    assert figs["blocks"]["many"]["judged"] == 4 and figs["blocks"]["many"]["landed"] == 0
    assert "too many blocks" in figs["blocks"]["many"]["error"]
    assert figs["blocks"]["none"]["landed"] == 4
    row = _by_name(level_targets({"controls": figs}))["controls.blocks"]
    assert row["met"] is False and "many 0%" in row["value"]


def test_controls_asked_of_a_generator_without_them_says_so(eng):
    from engine.evaluate import evaluate

    m = evaluate(eng, "dungeon", count=2, params={"width": 16, "height": 16}, controls=2)
    assert "declares no controls" in m["controls_note"] and "controls" not in m
