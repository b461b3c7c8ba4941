"""The CLI end to end, in fresh processes."""
import json

import pytest
from PIL import Image

from .conftest import run_cli, run_cli_process


def test_list_json():
    r = run_cli("list", "--json")
    assert r.returncode == 0, r.stderr
    ids = {g["id"] for g in json.loads(r.stdout)}
    assert {"terrain", "dungeon", "platformer", "classic-character", "grammar-story"} <= ids
    r = run_cli("list", "exporters", "--json")
    assert {"msgpack", "json", "png"} <= {e["id"] for e in json.loads(r.stdout)}
    r = run_cli("list", "plugins", "--json")
    assert all(p["status"] == "ok" for p in json.loads(r.stdout))
    assert run_cli("list", "plugins").returncode == 0


def test_python_m_engine_in_a_fresh_process_gives_the_same_bytes_and_errors():
    """The other CLI tests run in this process (tests/conftest.py run_cli); the real entry point agrees."""
    args = ("generate", "story", "-s", "castle", "-o", "-", "--format", "msgpack")
    fresh, here = run_cli_process(*args), run_cli(*args)
    assert fresh.returncode == here.returncode == 0 and fresh.stdout == here.stdout and fresh.stdout
    bad = ("generate", "level", "-p", "width=abc")
    fresh, here = run_cli_process(*bad), run_cli(*bad)
    assert fresh.returncode == here.returncode == 2 and fresh.stderr == here.stderr
    assert fresh.stderr.count(b"\n") == 1 and b"width" in fresh.stderr


def test_generate_twice_gives_identical_bytes(tmp_path):
    for name in ("a", "b"):
        r = run_cli("generate", "level", "-g", "dungeon", "-s", "7", "-o", tmp_path / f"{name}.msgpack")
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.msgpack").read_bytes() == (tmp_path / "b.msgpack").read_bytes()


def test_generate_formats_stdout_and_summary(tmp_path):
    r = run_cli("generate", "level", "-g", "platformer", "-s", "castle", "-p", "width=60", "-o", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["schema"] == "conjure.level/1" and doc["width"] == 60 and doc["metadata"]["seed"] == "castle"
    r = run_cli("generate", "character", "-s", "3", "-o", "-")
    assert r.returncode == 0 and json.loads(r.stdout)["schema"] == "conjure.character/1"
    r = run_cli("generate", "story", "-s", "3", "-o", "-", "--format", "msgpack")
    assert r.returncode == 0 and r.stdout[:1] != b"{"
    r = run_cli("generate", "level", "-g", "terrain", "-s", "3")
    assert r.returncode == 0 and b"schema: conjure.level/1" in r.stdout and b"terrain" in r.stdout
    r = run_cli("generate", "level", "-s", "3", "-o", tmp_path / "l.png", "-p", "width=20", "-p", "height=20")
    assert r.returncode == 0
    assert Image.open(tmp_path / "l.png").size == (160, 160)


def test_info(tmp_path):
    run_cli("generate", "story", "-s", "2", "-o", tmp_path / "s.msgpack")
    r = run_cli("info", tmp_path / "s.msgpack")
    assert r.returncode == 0 and b"conjure.story/1" in r.stdout and b"grammar-story" in r.stdout
    r = run_cli("info", tmp_path / "s.msgpack", "--json")
    assert json.loads(r.stdout)["metadata"]["generator"] == "grammar-story"


def test_context_files(tmp_path):
    assert run_cli("generate", "level", "-s", "5", "-o", tmp_path / "level.msgpack").returncode == 0
    r = run_cli("generate", "character", "-s", "5", "--context", tmp_path / "level.msgpack",
                "-o", tmp_path / "cast.msgpack")
    assert r.returncode == 0, r.stderr
    r = run_cli("generate", "story", "-s", "5", "--context", tmp_path / "level.msgpack", "--context",
                tmp_path / "cast.msgpack", "-o", "-")
    assert r.returncode == 0, r.stderr
    story = json.loads(r.stdout)
    assert story["metadata"]["grounded"] is True
    assert all(p["id"].startswith("room-") for p in story["places"])


@pytest.mark.parametrize("args,needle", [
    (["generate", "level", "-g", "dungeon", "-p", "width=abc"], "parameter 'width': expected int, got 'abc'"),
    (["generate", "level", "-g", "dungeon", "-p", "width=9999"], "'width': 9999 is above the maximum"),
    (["generate", "level", "-g", "dungeon", "-p", "colour=red"], "unknown parameter 'colour'"),
    (["generate", "level", "-g", "nope"], "unknown level generator 'nope'"),
    (["generate", "level", "-g", "grammar-story"], "unknown level generator 'grammar-story'"),
    (["generate", "level", "-p", "novalue"], "expected KEY=VALUE"),
    (["generate", "level", "-o", "x.weird"], "no format can write level files named like this"),
    (["generate", "level", "--format", "nope", "-o", "x"], "unknown format 'nope'"),
    (["info", "missing.msgpack"], "missing.msgpack: no such file"),
    (["generate", "level", "-o", "x.png", "-O", "tilesize=4"], "format 'png' has no option 'tilesize'"),
    (["generate", "spaceship"], "invalid choice"),
])
def test_bad_usage_exits_2_with_one_line(args, needle):
    r = run_cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr.decode()
    assert b"Traceback" not in r.stderr


def test_corrupt_and_truncated_files_exit_2(tmp_path):
    run_cli("generate", "level", "-s", "1", "-o", tmp_path / "a.msgpack")
    data = (tmp_path / "a.msgpack").read_bytes()
    (tmp_path / "t.msgpack").write_bytes(data[:100])
    r = run_cli("info", tmp_path / "t.msgpack")
    assert r.returncode == 2 and b"truncated msgpack" in r.stderr
    (tmp_path / "c.json").write_text('{"schema": "conjure.level/7"}')
    r = run_cli("info", tmp_path / "c.json")
    assert r.returncode == 2 and b"major version 7" in r.stderr
    r = run_cli("generate", "story", "--context", tmp_path / "t.msgpack")
    assert r.returncode == 2 and b"t.msgpack" in r.stderr


def test_generation_failure_exits_1():
    # a rocky cave (the example plugin, installed by make) never opens up 60% floor: it runs out of tries
    r = run_cli("generate", "level", "-g", "caves", "-s", "1", "-p", "fill=0.5", "-p", "steps=8", "-p",
                "min_open=0.6", "--tries", "2")
    assert r.returncode == 1
    assert b"made no valid level in 2 tries" in r.stderr and b"Traceback" not in r.stderr


def test_failed_export_keeps_earlier_output(tmp_path):
    target = tmp_path / "level.msgpack"
    assert run_cli("generate", "level", "-s", "1", "-o", target).returncode == 0
    before = target.read_bytes()
    r = run_cli("generate", "level", "-s", "2", "-p", "width=abc", "-o", target)
    assert r.returncode == 2 and target.read_bytes() == before


def test_demo(tmp_path):
    r = run_cli("demo", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    for name in ("level", "cast", "hero", "story"):
        for ext in ("msgpack", "json", "png"):
            assert (tmp_path / "out" / f"{name}.{ext}").stat().st_size > 0
    for name in ("cast", "hero"):  # character previews bring their sprite sheet and atlas
        assert (tmp_path / "out" / f"{name}.sheet.png").exists() and (tmp_path / "out" / f"{name}.atlas.json").exists()
    assert b"wrote 16 files" in r.stdout


def test_unwritable_output_exits_2_naming_the_path(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    r = run_cli("generate", "level", "-o", blocker / "x.json")
    assert r.returncode == 2 and b"x.json: cannot write" in r.stderr and b"Traceback" not in r.stderr
    assert b".tmp" not in r.stderr  # names the target, not a temporary file


def test_bake_output_errors_and_resume_of_a_finished_pack(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[[job]]\nname = "d"\nkind = "level"\ngenerator = "dungeon"\ncount = 6\nseed = 1\n'
                    'params = { width = 24, height = 24 }\n')
    r = run_cli("bake", spec, "-o", tmp_path)
    assert r.returncode == 2 and b"not a folder" in r.stderr
    r = run_cli("bake", spec, "-o", spec / "x.cpk")
    assert r.returncode == 2 and b"cannot write" in r.stderr and b"Traceback" not in r.stderr
    out = tmp_path / "p.cpk"
    assert run_cli("bake", spec, "-o", out).returncode == 0
    before = out.read_bytes()
    r = run_cli("bake", spec, "-o", out, "--resume")
    assert r.returncode == 0 and b"already complete" in r.stdout and out.read_bytes() == before


def test_info_verify_reads_every_record_of_a_pack(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[[job]]\nname = "d"\nkind = "level"\ngenerator = "dungeon"\ncount = 4\nseed = 1\n'
                    'params = { width = 24, height = 24 }\n')
    out = tmp_path / "p.cpk"
    assert run_cli("bake", spec, "-o", out).returncode == 0
    r = run_cli("info", out, "--verify")
    assert r.returncode == 0 and b"verified 4 records" in r.stdout
    data = bytearray(out.read_bytes())
    data[200] ^= 0xFF  # inside the first record
    out.write_bytes(bytes(data))
    assert run_cli("info", out).returncode == 0  # header, index and manifest are intact
    r = run_cli("info", out, "--verify")
    assert r.returncode == 2 and b"record 0 ('d/0')" in r.stderr
