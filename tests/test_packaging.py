"""A normal (non-editable) install must carry every built-in plugin, its subpackages and its data."""
import subprocess
import sys
import zipfile

import engine

from .conftest import ROOT


def _tree(root):
    """Every path under the checkout but the virtual environment, the caches and node packages."""
    skip = {".venv", ".git", "node_modules", "__pycache__", ".pytest_cache", ".hypothesis", "out"}
    out, stack = set(), [root]
    while stack:
        for p in stack.pop().iterdir():
            if p.name in skip:
                continue
            out.add(p.relative_to(root).as_posix())
            if p.is_dir() and not p.is_symlink():
                stack.append(p)
    return out


def test_wheel_has_every_plugin_module_and_data_file(tmp_path):
    before = _tree(ROOT)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    # a non-editable build writes nothing into the checkout (setuptools left build/ and conjure.egg-info/)
    written = sorted(p for p in _tree(ROOT) - before if p.split("/")[0] in {"build", "dist"} or "egg-info" in p)
    assert not written, f"building the wheel wrote into the checkout: {written[:5]}"
    (wheel,) = tmp_path.glob("conjure-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for mod in engine.DEFAULT_PLUGINS:
        path = mod.replace(".", "/")  # a module file or a package (plugins.tiled is one)
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, f"{mod} missing from the wheel"
    packages = sorted({p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("plugins/**/__init__.py")})
    for pkg in packages + ["engine", "game_demo"]:
        assert f"{pkg}/__init__.py" in names, f"package {pkg} missing from the wheel"
    tracked = subprocess.run(["git", "ls-files", "plugins/data", "engine/data"], capture_output=True, text=True,
                             cwd=ROOT).stdout.split()
    if tracked:  # a git checkout: every data file the project ships is in the wheel
        missing = [f for f in tracked if f not in names]
        assert not missing, f"data files missing from the wheel: {missing[:5]}"
