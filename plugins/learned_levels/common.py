"""Kept for plugins that imported it: the shared helpers now live in :mod:`plugins.learned_common`."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def single_thread():
    """Torch threads, set once per process by :func:`plugins.learned_common.torch_threads` (default 1); this
    context no longer toggles them per call."""
    from plugins.learned_common import torch_threads

    torch_threads()
    yield
