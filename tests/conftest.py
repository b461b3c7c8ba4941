import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def eng():
    """One engine with the built-in plugins (read-only use)."""
    return engine.Engine(entry_points=False)


def run_cli(*args, env=None, input=None, cwd=None):
    """Run ``python -m engine ARGS`` in a fresh process; returns CompletedProcess (bytes stdout)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True,
                          env=full_env, input=input, cwd=cwd or ROOT, timeout=300)


def run_py(code: str, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          cwd=ROOT, timeout=300)
