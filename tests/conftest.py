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


def run_cli_process(*args, env=None, input=None, cwd=None):
    """Run ``python -m engine ARGS`` in a fresh process; returns CompletedProcess (bytes stdout). For what is
    about processes: plugin isolation, environment read at start-up, hash seeds, kills."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True,
                          env=full_env, input=input, cwd=cwd or ROOT, timeout=300)


def run_cli(*args, env=None, input=None, cwd=None):
    """Run the ``conjure`` CLI (``engine.cli.main``) with ARGS and answer like :func:`run_cli_process`: a
    CompletedProcess with the exit code and bytes stdout/stderr (an uncaught exception is exit 1 with its
    traceback on stderr, as Python would).

    In this process (no interpreter start, no re-import: most CLI tests are about the CLI, not processes),
    in ``cwd`` (default the repository root) with ``input`` as stdin; a call that sets ``env`` runs in a fresh
    process, since plugins and the environment are read once per process."""
    if env:
        return run_cli_process(*args, env=env, input=input, cwd=cwd)
    import io
    import traceback

    from engine.cli import main

    argv = [str(a) for a in args]
    out, err = io.BytesIO(), io.BytesIO()
    streams = (sys.stdin, sys.stdout, sys.stderr)
    here = os.getcwd()
    fakes = (io.TextIOWrapper(io.BytesIO(input or b""), encoding="utf-8"),
             io.TextIOWrapper(out, encoding="utf-8", write_through=True),
             io.TextIOWrapper(err, encoding="utf-8", write_through=True))
    sys.stdin, sys.stdout, sys.stderr = fakes
    try:
        os.chdir(cwd or ROOT)
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: usage errors (2), --help (0)
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        except BaseException:  # what an interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = streams
        os.chdir(here)
        for f in fakes:  # keep the byte buffers open when the wrappers go
            f.flush()
            f.detach()
    return subprocess.CompletedProcess(["conjure", *argv], code, out.getvalue(), err.getvalue())


def run_py(code: str, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          cwd=ROOT, timeout=300)
