"""What the installed package knows about itself, in one place: Conjure's version (``importlib.metadata``)
and the data files shipped inside a package (``importlib.resources``), so a checkout, an editable install
and a wheel find them the same way.
"""
from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

UNKNOWN_VERSION = "0+unknown"


def conjure_version() -> str:
    """The installed distribution's version (``"0+unknown"`` from a tree that is not installed)."""
    try:
        return metadata.version("conjure")
    except Exception:  # pragma: no cover - PackageNotFoundError, or broken metadata
        return UNKNOWN_VERSION


def data_path(package: str, *parts: str) -> Path:
    """A data file or folder shipped inside ``package``: ``data_path("plugins", "data", "models", "story-lm")``.

    Found through ``importlib.resources``; the package must live on the file system (not in a zip), which
    every install of Conjure does. The path may not exist yet (a folder a tool writes into).
    """
    root = resources.files(package)
    if not isinstance(root, Path):  # pragma: no cover - a zip import
        raise FileNotFoundError(f"package {package!r} is not on the file system ({root!r})")
    return root.joinpath(*parts)
