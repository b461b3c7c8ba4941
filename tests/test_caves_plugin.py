"""examples/conjure-caves, a third-party plugin, exercised only through its ``conjure`` entry point.

It is installed from its folder (``pip install --no-deps --no-build-isolation -e examples/conjure-caves``);
these tests never import ``conjure_caves``: the engine has to find it.
"""
import importlib.metadata
import json
import sys

import pytest

from engine import Engine
from engine.testing import check_generator

from .conftest import ROOT, run_cli

INSTALL = "pip install --no-deps --no-build-isolation -e examples/conjure-caves"


def _caves_entry_point():
    for ep in importlib.metadata.entry_points(group="conjure"):
        if ep.name == "caves":
            return ep
    return None


pytestmark = pytest.mark.skipif(_caves_entry_point() is None,
                                reason=f"conjure-caves is not installed (run: {INSTALL})")


@pytest.fixture(scope="module")
def caves_engine():
    return Engine(load=["caves", "formats"])


def test_found_through_the_entry_point(caves_engine):
    ep = _caves_entry_point()
    assert ep.value == "conjure_caves" and ep.dist.name == "conjure-caves"
    info = {p.name: p for p in caves_engine.plugins()}["caves"]
    assert info.status == "ok" and info.source == "distribution conjure-caves" and info.version == "0.1.0"
    assert info.registered == ["level generator caves", "exporter caves-ascii"]
    assert caves_engine.plugin_of("caves") == "caves"
    assert "caves-ascii" in {e.id for e in caves_engine.exporters()}


def test_installed_from_the_example_folder():
    dist = importlib.metadata.distribution("conjure-caves")
    direct = dist.read_text("direct_url.json")
    if direct:  # editable or local installs record where they came from
        assert "examples/conjure-caves" in json.loads(direct)["url"]


def test_contract(caves_engine):
    check_generator(caves_engine, "caves", seeds=[0, 3, "cavern"],
                    params_cases=[{}, {"width": 16, "height": 16, "treasure": 0}, {"fill": 0.5, "steps": 10}],
                    subprocess_plugins=True)


def test_validator_is_run_by_the_engine(caves_engine):
    lv = caves_engine.generate("level", "caves", seed=11)
    req = caves_engine.request("level", "caves", seed=11)
    assert caves_engine.problems(lv, req) == []
    lv.tiles[:, lv.width // 2] = 1  # cut the cave in two
    assert caves_engine.problems(lv, req)


def test_blocklist_hides_it():
    eng = Engine(block=["caves"])
    assert "caves" not in {g.id for g in eng.generators()}
    assert {p.name: p.status for p in eng.plugins()}["caves"] == "blocked"


def test_cli_lists_and_generates(tmp_path):
    r = run_cli("list", "plugins", "--json")
    assert r.returncode == 0, r.stderr
    caves = {p["name"]: p for p in json.loads(r.stdout)}["caves"]
    assert caves["source"] == "distribution conjure-caves" and caves["status"] == "ok"
    r = run_cli("generate", "level", "-g", "caves", "-s", "7", "-p", "width=30", "-p", "height=20",
                "-o", tmp_path / "cave.caves.txt")
    assert r.returncode == 0, r.stderr
    rows = (tmp_path / "cave.caves.txt").read_text().splitlines()
    assert len(rows) == 20 and all(len(row) == 30 for row in rows) and "@" in "".join(rows)
    r = run_cli("generate", "level", "-g", "caves", "-p", "fill=0.9")
    assert r.returncode == 2 and b"generator 'caves': parameter 'fill'" in r.stderr


def test_its_own_test_suite_passes():
    import subprocess

    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "examples" / "conjure-caves")], capture_output=True, text=True, timeout=300,
                       cwd=ROOT / "examples" / "conjure-caves")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
