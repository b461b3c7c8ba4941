"""The engine side of `conjure train`: options, model cards, reproducible weight files."""
import json

import pytest

import engine
from engine import Engine, Generator, InputError, hookimpl
from engine.training import train
from engine.weights import canonical_safetensors, load_model_card, load_safetensors_numpy


class Echo(Generator):
    """A trainable toy: its "weights" are one tensor holding the data's total size."""

    id = "echo"
    kind = "level"
    train_options = ("scale",)

    def generate(self, request):  # pragma: no cover - not used here
        raise NotImplementedError

    def train(self, job):
        import torch

        from engine.weights import save_safetensors

        total = sum(p.stat().st_size for p in job.data) * float(job.options.get("scale", 1))
        save_safetensors({"w": torch.tensor([total])}, job.out / "echo.safetensors",
                         {"b": "2", "a": "1", "c": json.dumps({"z": 1, "y": 2})})
        return {"weights": ["echo.safetensors"], "epochs": job.epochs or 1, "metrics": {"total": total}}


class P:
    @hookimpl
    def register_level_generators(self, register):
        register(Echo())


def test_model_card_names_data_weights_and_the_exact_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("hello")
    eng = Engine([P()], load=[], entry_points=False)
    card = train(eng, "echo", ["data"], epochs=2, seed=5, out="w", show_progress=False, scale=3)
    assert card["command"] == "conjure train echo --data data --epochs 2 --seed 5 --out w -O scale=3"
    assert card["data"][0]["path"] == "data/a.txt" and card["metrics"]["total"] == 15.0
    assert load_model_card(tmp_path / "w" / "model.json") == card
    assert load_safetensors_numpy(tmp_path / "w" / "echo.safetensors")["w"][0] == 15.0


def test_unknown_training_option_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    eng = Engine([P()], load=[], entry_points=False)
    with pytest.raises(InputError, match="has no training option 'sclae' \\(its options: scale\\)"):
        train(eng, "echo", [tmp_path], out=tmp_path / "w", show_progress=False, sclae=2)


def test_weights_files_are_byte_reproducible(tmp_path):
    """safetensors writes its metadata in a random order; ours sorts the header so hashes reproduce."""
    import torch
    from safetensors.torch import save

    from engine.weights import save_safetensors

    meta = {k: str(i) for i, k in enumerate("qwertyuiop")}
    blobs = {canonical_safetensors(save({"b": torch.ones(3), "a": torch.zeros(2)}, metadata=meta))
             for _ in range(5)}
    assert len(blobs) == 1
    (blob,) = blobs
    (n,) = __import__("struct").unpack("<Q", blob[:8])
    assert n % 8 == 0  # data stays 8-byte aligned after the padded header
    p = save_safetensors({"b": torch.ones(3), "a": torch.zeros(2)}, tmp_path / "x.safetensors", meta)
    assert p.read_bytes() == blob
    from safetensors import safe_open

    with safe_open(str(p), "np") as f:
        assert f.metadata() == meta and sorted(f.keys()) == ["a", "b"]


def test_cli_train_refuses_unknown_options_for_shipped_generators(tmp_path):
    from .conftest import run_cli

    r = run_cli("train", "story-lm", "--data", "plugins/data/stories/corpus.txt", "-O", "bogus=1",
                "--out", tmp_path / "w")
    assert r.returncode == 2 and b"has no training option 'bogus'" in r.stderr


def test_load_cached_build_may_set_torch_threads_and_load_another_model(tmp_path, monkeypatch):
    """A model's build runs under that model's own lock: it may call torch_threads() (which once took the same
    global lock: a deadlock) or load another model; one model is built once however many threads ask."""
    import threading

    import torch

    from engine.weights import save_safetensors
    from plugins import learned_common as lc

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        save_safetensors({"w": torch.zeros(1)}, tmp_path / name / "model.safetensors", {})
    monkeypatch.setattr(lc, "_THREADS", None)  # torch_threads() must take its lock again
    monkeypatch.setattr(lc, "_CACHE", {})
    monkeypatch.setattr(lc, "_KEY_LOCKS", {})
    built = []

    def build_b(tensors, card, path):
        built.append("b")
        return "B"

    def build_a(tensors, card, path):
        built.append("a")
        return ("A", lc.torch_threads(), lc.load_cached("t", str(tmp_path / "b"), build_b))

    got, errors = [], []

    def worker():
        try:
            got.append(lc.load_cached("t", str(tmp_path / "a"), build_a))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)  # a liveness check, not a speed bound: a deadlock never returns
    assert not any(t.is_alive() for t in threads), "load_cached deadlocked"
    assert not errors and got == [("A", torch.get_num_threads(), "B")] * 4
    assert sorted(built) == ["a", "b"]


def test_no_training_files_names_the_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".notes").write_text("x")
    eng = Engine([P()], load=[], entry_points=False)
    with pytest.raises(InputError) as e:
        train(eng, "echo", [tmp_path / "empty", tmp_path / "hidden"], out=tmp_path / "w", show_progress=False)
    msg = str(e.value)
    assert msg.startswith(f"--data {tmp_path / 'empty'}, {tmp_path / 'hidden'}: no training files found")
    assert not (tmp_path / "w").exists()
